"""The packed .charm of each platform, built once per session by scripts/pack.sh (charmcraft from PyPI).

Each platform's venv is built with, and its hooks run on, the CPython its machines have (3.10 for
ubuntu@22.04, 3.12 for ubuntu@24.04) where this host has it; where it has not, the pack and the
hooks fall back to the host's python3 and a warning in the test summary says so.
"""

from __future__ import annotations

import os
import subprocess
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.packed.platforms import HOST_PYTHON, PLATFORMS, hook_python, platform_python

ROOT = Path(__file__).parents[2]
CHARMCRAFT = "4.5.0"  # the version the charm is packed with here; 3.5.x is checked beside it


@dataclass(frozen=True)
class PackedPlatform:
    platform: str  # ubuntu@22.04
    charm: Path
    python: Path  # what its hooks run as python3 here, the Python its venv was built with
    native: bool  # python is the platform's own CPython (False: the host's python3 stands in)


def pack(out: Path, charmcraft: str, platform: str = "ubuntu@22.04") -> Path:
    done = subprocess.run(
        ["bash", str(ROOT / "scripts/pack.sh"), "--charmcraft", charmcraft, "--platform", f"{platform}:amd64"]
        + ["--out", str(out)],
        capture_output=True,
        text=True,
        timeout=1800,
    )
    if done.returncode != 0:
        pytest.fail(f"charmcraft {charmcraft} could not pack the charm for {platform}:\n{done.stderr[-4000:]}")
    return Path(done.stdout.strip().splitlines()[-1])


def given_charm(platform: str) -> Path | None:
    """LXD_CLUSTER_CHARM names a .charm, or a directory of them, to test instead of packing."""
    given = os.environ.get("LXD_CLUSTER_CHARM")
    if not given:
        return None
    path, name = Path(given).resolve(), f"lxd-cluster_{platform}-amd64.charm"
    for candidate in (path / name, path):
        if candidate.is_file() and candidate.name == name:
            return candidate
    return None


@pytest.fixture(scope="session")
def packs(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], PackedPlatform]:
    """packs(platform): that platform's .charm, packed on first use (destructive mode: root)."""
    made: dict[str, PackedPlatform] = {}

    def packed(platform: str) -> PackedPlatform:
        if platform not in made:
            native = platform_python(platform) is not None
            if not native:
                warnings.warn(
                    f"no CPython for {platform} here: its venv is built and its hooks run with {HOST_PYTHON}",
                    stacklevel=1,
                )
            charm = given_charm(platform)
            if charm is None:
                if os.geteuid() != 0:
                    pytest.fail("packing in destructive mode needs root (it apt-installs the build packages)")
                charm = pack(tmp_path_factory.mktemp(f"charm-{platform}"), CHARMCRAFT, platform)
            made[platform] = PackedPlatform(platform, charm, hook_python(platform), native)
        return made[platform]

    return packed


@pytest.fixture(scope="session", params=PLATFORMS)
def packed_platform(request: pytest.FixtureRequest, packs) -> PackedPlatform:
    """Each platform in turn (test ids carry it: `-k 24.04`), packed once per session."""
    return packs(request.param)


@pytest.fixture(scope="session")
def packed_charm(packs) -> Path:
    """The ubuntu@22.04 .charm (PackedUnit runs it on that platform's Python by default)."""
    return packs("ubuntu@22.04").charm
