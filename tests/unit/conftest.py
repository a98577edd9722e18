"""Unit tests: the charm's modules on their own, and the charm through ops.testing with a fake LXD.

The charm makes its LXD in one place, `charm.LXD()`, and hands it to every module: the `lxd`
fixture replaces that one seam with a FakeLXD, so every test of the charm talks to the fake.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from tests.certs import self_signed_pem

ROOT = Path(__file__).parents[2]
for _path in (ROOT / "lib", ROOT / "src"):  # the charm's own import path, as the Juju agent sets it
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))


@pytest.fixture(scope="session")
def cluster_pem(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A real self-signed certificate, so fingerprints are computed as for LXD's own."""
    return self_signed_pem(tmp_path_factory.mktemp("cert"), "lxd-cluster-test")


@pytest.fixture(scope="session")
def other_pem(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The certificate of some other cluster (or of an impostor)."""
    return self_signed_pem(tmp_path_factory.mktemp("other"), "someone-else")


@pytest.fixture
def lxd(cluster_pem: str, monkeypatch: pytest.MonkeyPatch):
    """The fake LXD every charm of this test talks to: a fresh, unclustered daemon to start with."""
    from fake_lxd import FakeLXD

    import charm

    fake = FakeLXD(cluster_pem)
    monkeypatch.setattr(charm, "LXD", lambda: fake)
    return fake


@pytest.fixture(autouse=True)
def host(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch, cluster_pem: str):
    """This machine as snap.py sees it: by default no snapd and a deb LXD, as on Debian 12.

    PATH holds only the fake `snap` (and a fake `lxd` once a test puts one there), and charmlibs.snap
    talks to the fake snapd's socket once a test starts it. cluster_pem is made first (openssl).
    """
    from charmlibs.snap import _client
    from fake_snap import FakeHost

    fake = FakeHost(tmp_path_factory.mktemp("host"))
    for tool in ("git", "openssl"):  # what tests themselves run; never an lxd
        if found := shutil.which(tool):
            (fake.bin / tool).symlink_to(found)
    monkeypatch.setenv("PATH", str(fake.bin))
    monkeypatch.setattr(_client, "_SOCKET_PATH", str(fake.socket))  # the library has no setting for it
    fake.deb()
    yield fake
    fake.stop()
