"""The packed .charm, built once per session by scripts/pack.sh (charmcraft from PyPI)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
CHARMCRAFT = "4.5.0"  # the version the charm is packed with here; 3.5.x is checked beside it


def pack(out: Path, charmcraft: str) -> Path:
    done = subprocess.run(
        ["bash", str(ROOT / "scripts/pack.sh"), "--charmcraft", charmcraft, "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=1800,
    )
    if done.returncode != 0:
        pytest.fail(f"charmcraft {charmcraft} could not pack the charm:\n{done.stderr[-4000:]}")
    return Path(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="session")
def packed_charm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """LXD_CLUSTER_CHARM names a .charm to test instead (packed by scripts/pack.sh beforehand)."""
    if os.environ.get("LXD_CLUSTER_CHARM"):
        return Path(os.environ["LXD_CLUSTER_CHARM"]).resolve()
    if os.geteuid() != 0:
        pytest.fail("packing in destructive mode needs root (it apt-installs the build packages)")
    return pack(tmp_path_factory.mktemp("charm"), CHARMCRAFT)
