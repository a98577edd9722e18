"""Issue 25 part 2 on the real host: with production-tuning on, the charm raises the kernel's values
to LXD's production values (read back from /proc/sys) and writes its sysctl.d and limits.d files.

This is the machine's own kernel: every value and file is saved first and put back in a finally
(values by writing /proc/sys, files removed or rewritten as they were); the charm only raises."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.harness.cluster import charm_sim

pytestmark = pytest.mark.functional

PROC_SYS = Path("/proc/sys")


def read(key: str) -> str:
    return PROC_SYS.joinpath(*key.split(".")).read_text().strip()


def write(key: str, value: str) -> None:
    PROC_SYS.joinpath(*key.split(".")).write_text(value + "\n")


def test_production_tuning_raises_the_kernels_values_and_the_machine_is_restored(lab):
    from charmlibs.sysctl import SYSCTL_DIRECTORY, SYSCTL_FILENAME

    from tuning import LIMITS_DIR, SYSCTLS

    own = SYSCTL_DIRECTORY / "90-juju-lxd-cluster"
    limits = LIMITS_DIR / "60-juju-lxd-cluster.conf"
    files = (own, SYSCTL_FILENAME, limits)
    saved = {key: read(key) for key in SYSCTLS}
    saved_files = {path: path.read_bytes() if path.exists() else None for path in files}
    limits_dir_existed = LIMITS_DIR.exists()
    try:
        lab.up(1)
        sim = charm_sim(lab, {"storage-driver": "dir", "production-tuning": True})
        sim.deploy(1)
        sim.settle()
        assert sim.statuses()[0].name == "active", sim.statuses()
        for key, value in SYSCTLS.items():
            assert int(read(key)) == max(value, int(saved[key])), key  # raised, never lowered
        raised = [key for key, value in SYSCTLS.items() if int(saved[key]) < value]
        assert all(f"{key}={SYSCTLS[key]}" in own.read_text() for key in raised)
        assert "*\tsoft\tnofile\t1048576" in limits.read_text()
        assert "root\thard\tmemlock\tunlimited" in limits.read_text()

        sim.set_config(**{"production-tuning": False})
        sim.settle()
        assert not own.exists() and not limits.exists()  # its files go; the values stay until a reboot
        assert all(int(read(key)) >= value for key, value in SYSCTLS.items())
    finally:
        for key, value in saved.items():
            if read(key) != value:
                write(key, value)
        for path, content in saved_files.items():
            if content is None:
                path.unlink(missing_ok=True)
            else:
                path.write_bytes(content)
        if not limits_dir_existed and LIMITS_DIR.exists() and not any(LIMITS_DIR.iterdir()):
            LIMITS_DIR.rmdir()
    assert {key: read(key) for key in SYSCTLS} == saved
    assert {path: path.read_bytes() if path.exists() else None for path in files} == saved_files
