"""Sealing a join token to one unit's key (Juju 2.9 has no secrets): it opens for that unit, with that
key, unchanged, and for nobody else; the unit's private key lives in a 0600 file on its machine."""

from __future__ import annotations

import base64
import stat

import pytest

import unit_key
from sealing import SealError, is_sealed, new_private_key, public_key, seal, sealed_to, unseal

TOKEN = "eyJzZXJ2ZXJfbmFtZSI6Imx4ZC1jbHVzdGVyLTEiLCJzZWNyZXQiOiJzM2NyZXQifQ=="


@pytest.fixture
def joiner() -> bytes:
    return new_private_key()


def test_a_sealed_token_opens_with_the_joiners_key_for_the_joiner(joiner):
    sealed = seal(TOKEN, public_key(joiner), "lxd-cluster/1")
    assert is_sealed(sealed) and TOKEN not in sealed and "s3cret" not in sealed
    assert unseal(sealed, joiner, "lxd-cluster/1") == TOKEN
    assert sealed_to(sealed) == public_key(joiner)


def test_each_seal_is_different_so_equal_tokens_do_not_show(joiner):
    """An ephemeral key per seal: a reader cannot tell that two sealed values hold the same token."""
    assert seal(TOKEN, public_key(joiner), "lxd-cluster/1") != seal(TOKEN, public_key(joiner), "lxd-cluster/1")


def test_another_key_does_not_open_it(joiner):
    sealed = seal(TOKEN, public_key(joiner), "lxd-cluster/1")
    with pytest.raises(SealError, match="another key"):
        unseal(sealed, new_private_key(), "lxd-cluster/1")


def test_another_unit_name_does_not_open_it_even_with_the_key(joiner):
    """The unit name is associated data: a token sealed for lxd-cluster/2 does not open as lxd-cluster/1."""
    sealed = seal(TOKEN, public_key(joiner), "lxd-cluster/2")
    with pytest.raises(SealError, match="another unit"):
        unseal(sealed, joiner, "lxd-cluster/1")


@pytest.mark.parametrize("where", [0, 1, 33, 65, 77, -1])  # version, recipient key, ephemeral key, nonce, text, tag
def test_any_changed_byte_is_refused(joiner, where):
    sealed = seal(TOKEN, public_key(joiner), "lxd-cluster/1")
    blob = bytearray(base64.b64decode(sealed.removeprefix("sealed:")))
    blob[where] ^= 0x01
    with pytest.raises(SealError):
        unseal("sealed:" + base64.b64encode(bytes(blob)).decode(), joiner, "lxd-cluster/1")


@pytest.mark.parametrize("value", ["", "sealed:", "sealed:!!!", "sealed:" + base64.b64encode(b"\x01short").decode()])
def test_a_malformed_sealed_value_is_refused_not_a_crash(joiner, value):
    with pytest.raises(SealError):
        unseal(value, joiner, "lxd-cluster/1")
    assert sealed_to(value) == ""


@pytest.mark.parametrize("published", ["", "not base64!", base64.b64encode(b"short").decode()])
def test_sealing_to_a_malformed_public_key_is_refused(published):
    with pytest.raises(SealError, match="public key is malformed"):
        seal(TOKEN, published, "lxd-cluster/1")


def test_the_private_key_is_made_once_readable_by_its_owner_alone(tmp_path):
    first = unit_key.private_key(tmp_path)
    path = unit_key.key_path(tmp_path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert unit_key.private_key(tmp_path) == first  # the same key in every hook
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no partial file left behind


@pytest.mark.parametrize("damage", ["remove", "truncate"])
def test_a_vanished_or_damaged_key_file_is_replaced_by_a_new_key(tmp_path, damage):
    first = unit_key.private_key(tmp_path)
    path = unit_key.key_path(tmp_path)
    path.unlink() if damage == "remove" else path.write_bytes(b"x")
    second = unit_key.private_key(tmp_path)
    assert second != first and public_key(second) != public_key(first)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
