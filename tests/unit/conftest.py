"""Unit tests: the charm's modules on their own, and the charm through ops.testing with a fake LXD."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def cluster_pem(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A real self-signed certificate, so fingerprints are computed as for LXD's own."""
    d: Path = tmp_path_factory.mktemp("cert")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-subj", "/CN=lxd-cluster-test", "-days", "1",
         "-keyout", str(d / "key.pem"), "-out", str(d / "cert.pem")],
        check=True, capture_output=True,
    )
    return (d / "cert.pem").read_text()
