"""The CPython a platform's machines run hooks with, found on this host.

An ubuntu@22.04 machine runs the charm's hooks with CPython 3.10 and an ubuntu@24.04 machine with
3.12 (their /usr/bin/python3): the charm's venv must be built with, and tested on, that Python.
Looked for in pyenv's versions (`pyenv root`/versions/3.X.*, the newest release first), then as
python3.X on PATH (Ubuntu itself, deadsnakes).

    python3 scripts/platform_python.py ubuntu@22.04:amd64

prints the interpreter's path, or says on stderr that there is none and exits 1.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

PLATFORM_PYTHON = {"ubuntu@22.04": (3, 10), "ubuntu@24.04": (3, 12)}


def version_for(platform: str) -> tuple[int, int]:
    """ubuntu@22.04 or ubuntu@22.04:amd64 -> (3, 10)."""
    base = platform.split(":")[0]
    if base not in PLATFORM_PYTHON:
        raise ValueError(f"no known Python for platform {platform!r} (known: {', '.join(PLATFORM_PYTHON)})")
    return PLATFORM_PYTHON[base]


def _pyenv_root() -> Path | None:
    if pyenv := shutil.which("pyenv"):
        done = subprocess.run([pyenv, "root"], capture_output=True, text=True)
        if done.returncode == 0 and done.stdout.strip():
            return Path(done.stdout.strip())
    root = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv")
    return root if root.is_dir() else None


def _release(path: Path) -> tuple[int, ...]:
    return tuple(int(part) if part.isdigit() else -1 for part in path.parent.parent.name.split("."))


def _real_interpreter(candidate: str | Path, want: tuple[int, int]) -> Path | None:
    """The interpreter itself (a pyenv shim resolves to one) if it is CPython `want` and can make a venv."""
    probe = (
        "import sys, platform, venv, ensurepip; "
        f"print(sys.executable if sys.version_info[:2] == {want} and platform.python_implementation() == 'CPython' "
        "else '')"
    )
    try:
        done = subprocess.run([str(candidate), "-c", probe], capture_output=True, text=True, timeout=60)
    except OSError:
        return None
    found = done.stdout.strip()
    return Path(found) if done.returncode == 0 and found else None


def find(platform: str) -> Path | None:
    """The platform's CPython on this host, or None."""
    major, minor = want = version_for(platform)
    candidates: list[str | Path] = []
    if root := _pyenv_root():
        candidates += sorted(
            root.glob(f"versions/{major}.{minor}.*/bin/python{major}.{minor}"), key=_release, reverse=True
        )
    if on_path := shutil.which(f"python{major}.{minor}"):
        candidates.append(on_path)
    for candidate in candidates:
        if found := _real_interpreter(candidate, want):
            return found
    return None


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        major, minor = version_for(argv[0])
    except ValueError as e:
        print(e, file=sys.stderr)
        return 2
    found = find(argv[0])
    if found is None:
        print(
            f"no CPython {major}.{minor} (the Python of {argv[0].split(':')[0]}) on this host: "
            f"looked in pyenv's versions and for python{major}.{minor} on PATH",
            file=sys.stderr,
        )
        return 1
    print(found)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
