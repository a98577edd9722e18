"""Host devices: identity by device number, never by path prefix; a bad path never raises."""

from __future__ import annotations

import os

import pytest

import devices


def fake_sysfs(tmp_path, tree: dict[str, dict]) -> os.PathLike:
    """/sys/dev/block: MAJ:MIN directories, partitions as subdirectories, holders as links' targets."""
    root = tmp_path / "dev-block"
    root.mkdir()
    for number, spec in tree.items():
        node = root / number
        node.mkdir()
        (node / "dev").write_text(number + "\n")
        for part, part_number in spec.get("partitions", {}).items():
            (node / part).mkdir()
            (node / part / "partition").write_text("1\n")
            (node / part / "dev").write_text(part_number + "\n")
        (node / "holders").mkdir()
        for holder, holder_number in spec.get("holders", {}).items():
            (node / "holders" / holder).mkdir()
            (node / "holders" / holder / "dev").write_text(holder_number + "\n")
    return root


@pytest.mark.parametrize(
    "device, mounted_device, mounted",
    [
        ("/dev/loop41", "/dev/loop410", False),  # issue 13, item 5
        ("/dev/dm-1", "/dev/dm-10", False),
        ("/dev/sda", "/dev/sdaa", False),
        ("/dev/nvme0n1", "/dev/nvme0n10", False),
        ("/dev/sda", "/dev/sda1", True),  # a partition of it is mounted
        ("/dev/sda", "/dev/dm-3", True),  # something stacked on a partition of it is mounted
        ("/dev/loop41", "/dev/loop41", True),
    ],
)
def test_in_use_is_decided_by_device_number_not_by_path_prefix(tmp_path, monkeypatch, device, mounted_device, mounted):
    numbers = {
        "/dev/loop41": "7:41",
        "/dev/loop410": "7:410",
        "/dev/dm-1": "253:1",
        "/dev/dm-10": "253:10",
        "/dev/sda": "8:0",
        "/dev/sda1": "8:1",
        "/dev/sdaa": "65:160",
        "/dev/nvme0n1": "259:0",
        "/dev/nvme0n10": "259:9",
        "/dev/dm-3": "253:3",
    }
    tree = {n: {} for n in numbers.values()}
    tree["8:0"] = {"partitions": {"sda1": "8:1"}}
    tree["8:1"] = {"holders": {"dm-3": "253:3"}}
    sysfs = fake_sysfs(tmp_path, tree)
    to_dev = lambda text: os.makedev(*map(int, text.split(":")))  # noqa: E731
    monkeypatch.setattr(devices, "device_number", lambda path: to_dev(numbers[path]) if path in numbers else None)
    mounts = tmp_path / "mounts"
    mounts.write_text(f"{mounted_device} /mnt ext4 rw 0 0\nproc /proc proc rw 0 0\n")
    in_use = devices.devices_in_use(mounts, tmp_path / "no-swaps")
    assert bool(devices.related_devices(to_dev(numbers[device]), sysfs) & in_use) is mounted


@pytest.mark.parametrize(
    "path, error",
    [
        ("/etc/hostname/vdb", "Not a directory"),
        ("/dev/" + "x" * 4096, "File name too long"),
        ("/dev/vd\x00b", "embedded null byte"),
    ],
)
def test_a_path_that_cannot_be_looked_at_says_why_instead_of_raising(path, error):
    state = devices.inspect_device(path)
    assert not state.exists and error in state.error


def test_a_missing_path_does_not_exist_without_an_error():
    state = devices.inspect_device("/dev/lxd-cluster-test-none")
    assert not state.exists and state.error == ""


def test_a_regular_file_is_not_a_block_device(tmp_path):
    (tmp_path / "f").write_text("x")
    state = devices.inspect_device(str(tmp_path / "f"))
    assert state.exists and not state.is_block
