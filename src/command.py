"""The charm's one command runner, and LXDError, which every failed LXD or OS operation raises.

The floor of the LXD layer: workload.py (LXD) and devices.py (block devices) both run commands
here, and import nothing from each other for it. No ops import.
"""

from __future__ import annotations

import os
import subprocess


class LXDError(Exception):
    """An LXD or OS operation failed; str() is LXD's own message."""


def run_command(argv: list[str], stdin: str | None = None, timeout: int = 120, lxd_dir: str | None = None) -> str:
    """Run a command (with LXD_DIR set when given); its last line of error output becomes an LXDError."""
    env = dict(os.environ)
    if lxd_dir:
        env["LXD_DIR"] = lxd_dir
    try:
        proc = subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        raise LXDError(f"{' '.join(argv[:3])} did not finish within {timeout}s") from None
    except OSError as e:
        raise LXDError(f"{argv[0]}: {e.strerror}") from None
    if proc.returncode != 0:
        message = (proc.stderr or proc.stdout).strip().splitlines()
        raise LXDError(message[-1] if message else f"{argv[0]} exited {proc.returncode}")
    return proc.stdout
