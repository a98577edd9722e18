"""Host block devices: what a device holds and whether it is in use, by device number; erasing one.

No ops import. A device is identified by its major:minor number (`st_rdev`), never by its path:
/dev/loop41 is not /dev/loop410, and /dev/disk/by-id/... is the same disk as /dev/vdb. "In use"
means the device itself, one of its partitions or a device stacked on it (dm, md: its holders)
is mounted or a swap area.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from command import run_command
from models import DeviceState

SYS_DEV_BLOCK = Path("/sys/dev/block")
MOUNTS = Path("/proc/self/mounts")
SWAPS = Path("/proc/swaps")


def device_number(path: str) -> int | None:
    """st_rdev of a block device node, None for anything else (or anything unreadable)."""
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    return st.st_rdev if stat.S_ISBLK(st.st_mode) else None


def _sys_dir(rdev: int) -> Path:
    return SYS_DEV_BLOCK / f"{os.major(rdev)}:{os.minor(rdev)}"


def _read_dev(path: Path) -> int | None:
    try:
        major, minor = path.read_text().strip().split(":")
        return os.makedev(int(major), int(minor))
    except (OSError, ValueError):
        return None


def related_devices(rdev: int, sys_dev_block: Path = SYS_DEV_BLOCK) -> set[int]:
    """The device, its partitions, and whatever is stacked on any of them (holders), by number."""
    seen: set[int] = set()
    todo = [rdev]
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        node = sys_dev_block / f"{os.major(current)}:{os.minor(current)}"
        try:
            children = list(node.iterdir())
        except OSError:
            continue
        for child in children:  # partitions are subdirectories with a `partition` file
            if (child / "partition").exists():
                part = _read_dev(child / "dev")
                if part is not None:
                    todo.append(part)
        try:
            holders = list((node / "holders").iterdir())
        except OSError:
            holders = []
        for holder in holders:
            dev = _read_dev(holder / "dev")
            if dev is not None:
                todo.append(dev)
    return seen


def devices_in_use(mounts: Path = MOUNTS, swaps: Path = SWAPS) -> set[int]:
    """Device numbers of every mounted block device and every swap device."""
    sources: list[str] = []
    for table, column in ((mounts, 0), (swaps, 0)):
        try:
            lines = table.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > column and fields[column].startswith("/dev/"):
                sources.append(fields[column].replace("\\040", " "))
    return {rdev for rdev in map(device_number, sources) if rdev is not None}


def inspect_device(path: str) -> DeviceState:
    """What is at path: a block device? in use? holding a filesystem, partition table or pool?

    Never raises for a bad path: a path that cannot be looked at says why in `error`.
    """
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return DeviceState(path, exists=False)
    except (OSError, ValueError) as e:  # ENOTDIR, ENAMETOOLONG, ELOOP, EACCES, an embedded NUL
        return DeviceState(path, exists=False, error=getattr(e, "strerror", None) or str(e))
    if not stat.S_ISBLK(st.st_mode):
        return DeviceState(path, exists=True)
    mounted = bool(related_devices(st.st_rdev) & devices_in_use())
    out = run_command(["wipefs", "--parsable", os.path.realpath(path)], timeout=60)
    signatures = tuple(sorted({row.split(",")[3] for row in out.splitlines() if row.count(",") >= 3}))
    return DeviceState(path, exists=True, is_block=True, mounted=mounted, signatures=signatures)


def wipe_device(path: str) -> None:
    run_command(["wipefs", "--all", "--force", os.path.realpath(path)], timeout=120)
