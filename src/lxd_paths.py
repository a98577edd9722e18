"""Where this machine's LXD lives: the snap's or a deb's daemon directory, and which `lxd` to run.

Ubuntu 22.04 images carry the lxd snap; 24.04 images may carry lxd-installer, a shell script at
/usr/sbin/lxd that installs the snap the first time it runs; Debian's `lxd` package is a real
binary with its daemon in /var/lib/lxd. A machine may have snapd and a deb LXD at once: the LXD
that is there is the one used. No ops import here.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

SNAP_LXD_DIR = "/var/snap/lxd/common/lxd"
DEB_LXD_DIR = "/var/lib/lxd"
SNAP_LXD_BIN = "/snap/bin/lxd"  # called by path: /usr/sbin (a shim's place) comes first on Juju's PATH


def is_binary(path: str) -> bool:
    """An executable LXD binary (ELF), not a shell script such as lxd-installer's shim."""
    try:
        with open(os.path.realpath(path), "rb") as f:
            return f.read(4) == b"\x7fELF"
    except OSError:
        return False


def non_snap_source() -> str:
    """What `lxd` on PATH is when it is not the snap's: deb (a real binary), shim, or none."""
    found = shutil.which("lxd")
    if found is None or os.path.realpath(found) == os.path.realpath(SNAP_LXD_BIN):
        return "none"
    return "deb" if is_binary(found) else "shim"


def lxd_command() -> str:
    """The snap's lxd by path when it is installed: on Ubuntu 24.04 /usr/sbin/lxd may be lxd-installer's
    shim, and /usr/sbin comes before /snap/bin on the hook's PATH."""
    return SNAP_LXD_BIN if os.path.exists(SNAP_LXD_BIN) else "lxd"


def default_lxd_dir() -> str:
    """LXD_DIR if set (LXD's own convention); else the snap's directory when the lxd snap is installed
    or is to be (snapd here and no deb LXD); else the deb's."""
    if os.environ.get("LXD_DIR"):
        return os.environ["LXD_DIR"]
    if Path(SNAP_LXD_DIR).exists():
        return SNAP_LXD_DIR
    if non_snap_source() == "deb" or not shutil.which("snap"):
        return DEB_LXD_DIR
    return SNAP_LXD_DIR
