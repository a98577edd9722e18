"""The Python a packed charm's hooks run with here: its platform's CPython, as that machine has it.

scripts/platform_python.py finds CPython 3.10 (ubuntu@22.04) and 3.12 (ubuntu@24.04) on this host;
scripts/pack.sh builds each platform's venv with it. Where this host lacks it, both fall back to
the host's python3 (the .charm then fits this host only).
"""

from __future__ import annotations

import functools
from pathlib import Path

import yaml

from scripts.platform_python import PLATFORM_PYTHON, find

PLATFORMS = tuple(PLATFORM_PYTHON)  # charmcraft.yaml's platforms, each on amd64
HOST_PYTHON = Path("/usr/bin/python3")  # what scripts/pack.sh falls back to


@functools.cache
def platform_python(platform: str) -> Path | None:
    """The platform's own CPython on this host, or None."""
    return find(platform)


def hook_python(platform: str) -> Path:
    return platform_python(platform) or HOST_PYTHON


def platform_of(charm_dir: Path) -> str | None:
    """ubuntu@22.04 for an unpacked .charm built for it (its manifest.yaml); None for a source tree."""
    manifest = charm_dir / "manifest.yaml"
    if not manifest.exists():
        return None
    base = yaml.safe_load(manifest.read_text())["bases"][0]
    return f"{base['name']}@{base['channel']}"


def machine_python(charm_dir: Path) -> Path:
    """What a machine of the charm's platform runs its hooks with; the host's for a source tree."""
    platform = platform_of(charm_dir)
    return hook_python(platform) if platform in PLATFORM_PYTHON else HOST_PYTHON
