"""Golden tests of the generated preseeds: exactly what `lxd init --preseed` receives."""

from __future__ import annotations

import copy

import pytest
import yaml

from preseed import (
    REDACTED,
    JoinCredential,
    MaasSettings,
    PoolSpec,
    bootstrap_preseed,
    https_address,
    join_preseed,
    redacted,
)

PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
MAAS = MaasSettings("http://maas:5240/MAAS", "consumer:token:secret", "lab-v4", "lab-v6")


def boot(pool: PoolSpec, **kw) -> dict:
    args = dict(server_name="lxd-cluster-0", address="10.0.0.1", port=8443, pool=pool, bridge="br0")
    return bootstrap_preseed(**{**args, **kw})


def join(credential: JoinCredential, pool: PoolSpec, **kw) -> dict:
    args = dict(
        server_name="lxd-cluster-2",
        address="10.0.0.3",
        port=8443,
        cluster_address="10.0.0.1:8443",
        cluster_certificate=PEM,
        credential=credential,
        pool=pool,
    )
    return join_preseed(**{**args, **kw})


# -- bootstrap -----------------------------------------------------------------------------------
def test_bootstrap_zfs_on_a_block_device():
    assert boot(PoolSpec("zfs", source="/dev/vdb")) == {
        "config": {"core.https_address": "10.0.0.1:8443", "images.auto_update_interval": "6"},
        "cluster": {"server_name": "lxd-cluster-0", "enabled": True},
        "storage_pools": [
            {"name": "local", "driver": "zfs", "description": "lxd-cluster pool", "config": {"source": "/dev/vdb"}},
        ],
        "profiles": [
            {
                "name": "default",
                "description": "Default LXD profile (lxd-cluster)",
                "config": {},
                "devices": {
                    "root": {"path": "/", "pool": "local", "type": "disk"},
                    "eth0": {"name": "eth0", "nictype": "bridged", "parent": "br0", "type": "nic"},
                },
            }
        ],
    }


def test_bootstrap_btrfs_on_a_block_device_and_another_bridge():
    assert boot(PoolSpec("btrfs", source="/dev/sdc"), bridge="lxdbr1") == {
        "config": {"core.https_address": "10.0.0.1:8443", "images.auto_update_interval": "6"},
        "cluster": {"server_name": "lxd-cluster-0", "enabled": True},
        "storage_pools": [
            {"name": "local", "driver": "btrfs", "description": "lxd-cluster pool", "config": {"source": "/dev/sdc"}},
        ],
        "profiles": [
            {
                "name": "default",
                "description": "Default LXD profile (lxd-cluster)",
                "config": {},
                "devices": {
                    "root": {"path": "/", "pool": "local", "type": "disk"},
                    "eth0": {"name": "eth0", "nictype": "bridged", "parent": "lxdbr1", "type": "nic"},
                },
            }
        ],
    }


def test_bootstrap_loop_backed_zfs_passes_the_size():
    assert boot(PoolSpec("zfs", size="20GiB")) == {
        "config": {"core.https_address": "10.0.0.1:8443", "images.auto_update_interval": "6"},
        "cluster": {"server_name": "lxd-cluster-0", "enabled": True},
        "storage_pools": [
            {"name": "local", "driver": "zfs", "description": "lxd-cluster pool", "config": {"size": "20GiB"}},
        ],
        "profiles": [
            {
                "name": "default",
                "description": "Default LXD profile (lxd-cluster)",
                "config": {},
                "devices": {
                    "root": {"path": "/", "pool": "local", "type": "disk"},
                    "eth0": {"name": "eth0", "nictype": "bridged", "parent": "br0", "type": "nic"},
                },
            }
        ],
    }


def test_bootstrap_dir_pool_has_no_size_nor_source():
    # a dir pool lives in LXD's own directory: a loop size would be refused by LXD
    assert boot(PoolSpec("dir", size="20GiB")) == {
        "config": {"core.https_address": "10.0.0.1:8443", "images.auto_update_interval": "6"},
        "cluster": {"server_name": "lxd-cluster-0", "enabled": True},
        "storage_pools": [
            {"name": "local", "driver": "dir", "description": "lxd-cluster pool", "config": {}},
        ],
        "profiles": [
            {
                "name": "default",
                "description": "Default LXD profile (lxd-cluster)",
                "config": {},
                "devices": {
                    "root": {"path": "/", "pool": "local", "type": "disk"},
                    "eth0": {"name": "eth0", "nictype": "bridged", "parent": "br0", "type": "nic"},
                },
            }
        ],
    }


def test_bootstrap_with_maas_sets_api_config_and_subnets_on_eth0():
    assert boot(PoolSpec("zfs", source="/dev/vdb"), maas=MAAS) == {
        "config": {
            "core.https_address": "10.0.0.1:8443",
            "images.auto_update_interval": "6",
            "maas.api.url": "http://maas:5240/MAAS",
            "maas.api.key": "consumer:token:secret",
        },
        "cluster": {"server_name": "lxd-cluster-0", "enabled": True},
        "storage_pools": [
            {"name": "local", "driver": "zfs", "description": "lxd-cluster pool", "config": {"source": "/dev/vdb"}},
        ],
        "profiles": [
            {
                "name": "default",
                "description": "Default LXD profile (lxd-cluster)",
                "config": {},
                "devices": {
                    "root": {"path": "/", "pool": "local", "type": "disk"},
                    "eth0": {
                        "name": "eth0",
                        "nictype": "bridged",
                        "parent": "br0",
                        "type": "nic",
                        "maas.subnet.ipv4": "lab-v4",
                        "maas.subnet.ipv6": "lab-v6",
                    },
                },
            }
        ],
    }


@pytest.mark.parametrize("maas", [None, MaasSettings()])
def test_bootstrap_without_maas_has_no_maas_keys(maas):
    got = boot(PoolSpec("zfs", source="/dev/vdb"), maas=maas)
    assert got["config"] == {"core.https_address": "10.0.0.1:8443", "images.auto_update_interval": "6"}
    assert got["profiles"][0]["devices"]["eth0"] == {
        "name": "eth0",
        "nictype": "bridged",
        "parent": "br0",
        "type": "nic",
    }


def test_bootstrap_maas_subnet_ipv6_alone_goes_on_eth0():
    got = boot(PoolSpec("dir"), maas=MaasSettings(subnet_ipv6="lab-v6"))
    assert got["profiles"][0]["devices"]["eth0"] == {
        "name": "eth0",
        "nictype": "bridged",
        "parent": "br0",
        "type": "nic",
        "maas.subnet.ipv6": "lab-v6",
    }
    assert "maas.api.url" not in got["config"]


@pytest.mark.parametrize("flag, interval", [(True, "6"), (False, "0")])
def test_bootstrap_images_auto_update_interval(flag, interval):
    got = boot(PoolSpec("dir"), images_auto_update=flag)
    assert got["config"] == {"core.https_address": "10.0.0.1:8443", "images.auto_update_interval": interval}


def test_bootstrap_brackets_an_ipv6_address_and_uses_the_port():
    got = boot(PoolSpec("dir"), address="fd00::5", port=9443)
    assert got["config"] == {"core.https_address": "[fd00::5]:9443", "images.auto_update_interval": "6"}


@pytest.mark.parametrize(
    "address, expected",
    [
        ("10.0.0.1", "10.0.0.1:8443"),
        ("fd00::5", "[fd00::5]:8443"),
        ("::1", "[::1]:8443"),
        ("node1.maas", "node1.maas:8443"),
    ],
)
def test_https_address(address, expected):
    assert https_address(address, 8443) == expected


# -- join ----------------------------------------------------------------------------------------
def test_join_with_a_token_on_zfs_block_device():
    assert join(JoinCredential("eyJ0b2tlbiI6MX0="), PoolSpec("zfs", source="/dev/vdc")) == {
        "cluster": {
            "enabled": True,
            "server_name": "lxd-cluster-2",
            "server_address": "10.0.0.3:8443",
            "cluster_address": "10.0.0.1:8443",
            "cluster_certificate": PEM,
            "cluster_token": "eyJ0b2tlbiI6MX0=",
            "member_config": [{"entity": "storage-pool", "name": "local", "key": "source", "value": "/dev/vdc"}],
        }
    }


def test_join_loop_backed_zfs_passes_its_size_as_member_config():
    assert join(JoinCredential("t"), PoolSpec("zfs", size="5GiB")) == {
        "cluster": {
            "enabled": True,
            "server_name": "lxd-cluster-2",
            "server_address": "10.0.0.3:8443",
            "cluster_address": "10.0.0.1:8443",
            "cluster_certificate": PEM,
            "cluster_token": "t",
            "member_config": [{"entity": "storage-pool", "name": "local", "key": "size", "value": "5GiB"}],
        }
    }


def test_join_dir_has_no_member_config():
    assert join(JoinCredential("t"), PoolSpec("dir", size="20GiB")) == {
        "cluster": {
            "enabled": True,
            "server_name": "lxd-cluster-2",
            "server_address": "10.0.0.3:8443",
            "cluster_address": "10.0.0.1:8443",
            "cluster_certificate": PEM,
            "cluster_token": "t",
        }
    }


def test_join_brackets_an_ipv6_server_address():
    got = join(JoinCredential("t"), PoolSpec("dir"), address="fd00::3", port=9443, cluster_address="[fd00::1]:9443")
    assert got["cluster"]["server_address"] == "[fd00::3]:9443"
    assert got["cluster"]["cluster_address"] == "[fd00::1]:9443"


def test_a_join_preseed_carries_the_token_and_no_trust_password():
    cluster = join(JoinCredential("t"), PoolSpec("dir"))["cluster"]
    assert cluster["cluster_token"] == "t" and "cluster_password" not in cluster  # gone from LXD 6.3


# -- redaction and serialisation -------------------------------------------------------------------
@pytest.mark.parametrize(
    "credential, key",
    [
        (JoinCredential("eyJzZWNyZXQiOiJ0b3AifQ=="), "cluster_token"),
    ],
)
def test_redacted_hides_the_join_credential_without_touching_the_input(credential, key):
    original = join(credential, PoolSpec("zfs", source="/dev/vdc"))
    before = copy.deepcopy(original)
    out = redacted(original)
    assert out["cluster"][key] == REDACTED
    assert credential.value not in yaml.safe_dump(out)
    assert {k: v for k, v in out["cluster"].items() if k != key} == {
        k: v for k, v in before["cluster"].items() if k != key
    }
    assert original == before


def test_redacted_hides_the_maas_key_without_touching_the_input():
    original = boot(PoolSpec("zfs", source="/dev/vdb"), maas=MAAS)
    before = copy.deepcopy(original)
    out = redacted(original)
    assert out["config"]["maas.api.key"] == REDACTED
    assert out["config"]["maas.api.url"] == "http://maas:5240/MAAS"
    assert "consumer:token:secret" not in yaml.safe_dump(out)
    assert original == before


def test_redacted_leaves_a_preseed_without_credentials_equal():
    original = boot(PoolSpec("dir"))
    assert redacted(original) == original


def test_credential_and_maas_repr_never_show_the_secret():
    assert "topsecret" not in repr(JoinCredential("topsecret"))
    assert "topsecret" not in str(JoinCredential("topsecret"))
    assert "maas-key-value" not in repr(MaasSettings("http://m/MAAS", "maas-key-value"))


@pytest.mark.parametrize(
    "preseed",
    [
        boot(PoolSpec("zfs", source="/dev/vdb"), maas=MAAS, address="fd00::1"),
        join(JoinCredential("abc=="), PoolSpec("zfs", source="/dev/vdb")),
        join(JoinCredential("yes"), PoolSpec("dir")),  # "yes" must stay a string, not a bool
    ],
)
def test_preseed_survives_a_yaml_round_trip(preseed):
    assert yaml.safe_load(yaml.safe_dump(preseed)) == preseed
