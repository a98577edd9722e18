"""Which daemon directory and which `lxd` the charm uses, decided from what is on this machine: real
files in a temporary PATH and a temporary snap directory (nothing is faked inside lxd_paths)."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

import lxd_paths


def tool(directory: Path, name: str, content: bytes) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_bytes(content)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


ELF = b"\x7fELF\x02\x01\x01" + bytes(64)  # the start of a real binary
SHIM = b"#!/bin/sh\nexec snap install lxd\n"  # lxd-installer's kind of /usr/sbin/lxd


@pytest.fixture
def host(tmp_path, monkeypatch):
    """An empty PATH and no snap directory; the test puts on it what the machine has."""
    monkeypatch.delenv("LXD_DIR", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    monkeypatch.setattr(lxd_paths, "SNAP_LXD_DIR", str(tmp_path / "var/snap/lxd/common/lxd"))
    monkeypatch.setattr(lxd_paths, "SNAP_LXD_BIN", str(tmp_path / "snap/bin/lxd"))
    return tmp_path


def test_lxd_dir_from_the_environment_wins(host, monkeypatch):
    monkeypatch.setenv("LXD_DIR", "/srv/lxd")
    assert lxd_paths.default_lxd_dir() == "/srv/lxd"


def test_an_installed_snap_is_used(host):
    (host / "var/snap/lxd/common/lxd").mkdir(parents=True)
    tool(host / "bin", "lxd", ELF)  # even beside a deb LXD
    assert lxd_paths.default_lxd_dir() == lxd_paths.SNAP_LXD_DIR


def test_a_deb_lxd_beside_snapd_is_the_one_used(host):
    tool(host / "bin", "snap", b"#!/bin/sh\n")
    tool(host / "bin", "lxd", ELF)
    assert lxd_paths.non_snap_source() == "deb"
    assert lxd_paths.default_lxd_dir() == lxd_paths.DEB_LXD_DIR


def test_snapd_and_only_a_shim_means_the_snap_to_come(host):
    tool(host / "bin", "snap", b"#!/bin/sh\n")
    tool(host / "bin", "lxd", SHIM)
    assert lxd_paths.non_snap_source() == "shim"
    assert lxd_paths.default_lxd_dir() == lxd_paths.SNAP_LXD_DIR


def test_no_snapd_means_the_deb_directory(host):
    assert lxd_paths.non_snap_source() == "none"
    assert lxd_paths.default_lxd_dir() == lxd_paths.DEB_LXD_DIR


def test_the_snap_binary_on_path_is_not_a_deb(host, monkeypatch):
    snap_bin = tool(host / "snap/bin", "lxd", ELF)
    monkeypatch.setenv("PATH", str(snap_bin.parent))
    assert lxd_paths.non_snap_source() == "none"
    assert lxd_paths.lxd_command() == str(snap_bin)


def test_without_the_snap_lxd_is_run_from_path(host):
    assert lxd_paths.lxd_command() == "lxd"
