"""This unit's sealing key pair (sealing.py) on its own machine: the private key in a 0600 file in
the charm's directory, never in relation data; the public key is what the unit publishes.

A file that is gone or unreadable is replaced by a new key: the unit publishes the new public key
and the issuer seals its next credential to that one (one sealed to the old key then fails to open,
and the unit asks for a fresh one).
"""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path

from sealing import new_private_key

logger = logging.getLogger(__name__)
KEY_FILE = ".lxd-cluster-seal.key"  # beside ops's own .unit-state.db: kept across charm upgrades


def key_path(charm_dir: Path) -> Path:
    return charm_dir / KEY_FILE


def private_key(charm_dir: Path) -> bytes:
    """The unit's private key, made (and stored 0600) when there is none or it is unreadable."""
    path = key_path(charm_dir)
    with contextlib.suppress(OSError):
        raw = path.read_bytes()
        if len(raw) == 32:
            return raw
    raw = new_private_key()
    write_private(path, raw)
    logger.info("made a new sealing key for join credentials (%s)", path)
    return raw


def write_private(path: Path, data: bytes) -> None:
    """path holds data, readable by its owner alone (0600), never partly written or briefly open to others."""
    partial = path.with_name(f"{path.name}.{os.getpid()}")
    with contextlib.suppress(FileNotFoundError):
        partial.unlink()
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    os.replace(partial, path)
