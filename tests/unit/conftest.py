"""Unit tests: the charm's modules on their own, and the charm through ops.testing with a fake LXD.

The charm makes its LXD in one place, `charm.LXD()`, and hands it to every module: the `lxd`
fixture replaces that one seam with a FakeLXD, so every test of the charm talks to the fake.
"""

from __future__ import annotations

import datetime
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
for _path in (ROOT / "lib", ROOT / "src"):  # the charm's own import path, as the Juju agent sets it
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))


def self_signed_pem(directory: Path, cn: str) -> str:
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-subj",
            f"/CN={cn}",
            "-days",
            "1",
            "-keyout",
            str(directory / "key.pem"),
            "-out",
            str(directory / "cert.pem"),
        ],
        check=True,
        capture_output=True,
    )
    return (directory / "cert.pem").read_text()


def x509_pem(
    cn: str = "client",
    days: tuple[float, float] = (-1, 1),
    key_usage: dict[str, bool] | None = None,
    extended: tuple[str, ...] | None = None,
) -> str:
    """A self-signed certificate valid from days[0] to days[1] around now, with the usages given."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now + datetime.timedelta(days=days[0]))
        .not_valid_after(now + datetime.timedelta(days=days[1]))
    )
    if key_usage is not None:
        flags = dict.fromkeys(
            (
                "digital_signature",
                "content_commitment",
                "key_encipherment",
                "data_encipherment",
                "key_agreement",
                "key_cert_sign",
                "crl_sign",
                "encipher_only",
                "decipher_only",
            ),
            False,
        )
        builder = builder.add_extension(x509.KeyUsage(**{**flags, **key_usage}), critical=True)
    if extended is not None:
        oids = [getattr(ExtendedKeyUsageOID, e) for e in extended]
        builder = builder.add_extension(x509.ExtendedKeyUsage(oids), critical=False)
    cert = builder.sign(key, hashes.SHA256())
    return cert.public_bytes(serialization.Encoding.PEM).decode()


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
