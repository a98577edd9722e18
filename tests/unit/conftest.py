"""Unit tests: the charm's modules on their own, and the charm through ops.testing with a fake LXD.

The charm makes its LXD in one place, `charm.LXD()`, and hands it to every module: the `lxd`
fixture replaces that one seam with a FakeLXD, so every test of the charm talks to the fake.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import pytest

from tests.certs import self_signed_pem

ROOT = Path(__file__).parents[2]
for _path in (ROOT / "lib", ROOT / "src"):  # the charm's own import path, as the Juju agent sets it
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))


@pytest.fixture(scope="session")
def cluster_pem(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A real self-signed certificate, so fingerprints are computed as for LXD's own."""
    return self_signed_pem(tmp_path_factory.mktemp("cert"), "lxd-cluster-test")


@pytest.fixture(scope="session")
def other_pem(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The certificate of some other cluster (or of an impostor)."""
    return self_signed_pem(tmp_path_factory.mktemp("other"), "someone-else")


@pytest.fixture
def lxd(cluster_pem: str, monkeypatch: pytest.MonkeyPatch):
    """The fake LXD every charm of this test talks to: a fresh, unclustered daemon to start with."""
    from fake_lxd import FakeLXD

    import charm

    fake = FakeLXD(cluster_pem)
    monkeypatch.setattr(charm, "LXD", lambda: fake)
    return fake


@pytest.fixture(autouse=True)
def host(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch, cluster_pem: str):
    """This machine as snap.py sees it: by default no snapd and a deb LXD, as on Debian 12.

    PATH holds only the fake `snap` and `sysctl` (and a fake `lxd` once a test puts one there),
    charmlibs.snap talks to the fake snapd's socket once a test starts it, and production tuning
    writes into the fake host's /proc/sys, sysctl.d and limits.d. cluster_pem is made first (openssl).
    """
    from charmlibs.snap import _client
    from charmlibs.sysctl import _sysctl
    from fake_snap import FakeHost

    import tuning

    fake = FakeHost(tmp_path_factory.mktemp("host"))
    for tool in ("git", "openssl"):  # what tests themselves run; never an lxd
        if found := shutil.which(tool):
            (fake.bin / tool).symlink_to(found)
    monkeypatch.setenv("PATH", str(fake.bin))
    monkeypatch.setattr(_client, "_SOCKET_PATH", str(fake.socket))  # the library has no setting for it
    monkeypatch.setattr(_sysctl, "SYSCTL_DIRECTORY", fake.sysctl_d)  # nor this one
    monkeypatch.setattr(_sysctl, "SYSCTL_FILENAME", fake.sysctl_d / "95-juju-sysctl.conf")
    monkeypatch.setattr(tuning, "PROC_SYS", fake.proc_sys)
    monkeypatch.setattr(tuning, "LIMITS_DIR", fake.limits_d)
    fake.deb()
    yield fake
    fake.stop()


class GoalStateTool:
    """Juju's `goal-state` hook tool on the hook's PATH, answering what a test says Juju plans.

    Its JSON is Juju's: {"units": {name: {"status", "since"}}, "relations": {endpoint: {...}}}
    (worker/uniter/runner/jujuc/goal-state.go formattedGoalState; `since` as common.FormatTime
    with ISO: "2006-01-02 15:04:05Z"). A unit's status is its workload status, or "dying" once Juju
    removes it (apiserver/facades/agent/uniter/uniter.go:2358-2391, goalStateUnits). By default it lists no
    unit: a test that cares names them.
    """

    SINCE = "2026-01-01 00:00:00Z"

    def __init__(self, bin_dir: Path):
        self.answer = bin_dir.parent / "goal-state.json"
        self.calls = bin_dir.parent / "goal-state.calls"
        tool = bin_dir / "goal-state"
        # ops sends `goal-state --format=json` (ops/hookcmds/_other.py); anything else is refused
        tool.write_text(
            f'#!/bin/sh\necho "$*" >> {self.calls}\n'
            '[ "$*" = "--format=json" ] || { echo "goal-state: unexpected arguments: $*" >&2; exit 2; }\n'
            f"exec /bin/cat {self.answer}\n"
        )
        tool.chmod(0o755)
        self.set({})

    def set(self, units: dict[str, str]) -> None:
        """units: unit name -> workload status (active, waiting, ...) or "dying"."""
        body = {"units": {n: {"status": s, "since": self.SINCE} for n, s in units.items()}, "relations": {}}
        self.answer.write_text(json.dumps(body))

    def asked(self) -> int:
        return len(self.calls.read_text().splitlines()) if self.calls.exists() else 0


@pytest.fixture(autouse=True)
def goal_state(host, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> GoalStateTool:
    """Every hook of a unit test can run goal-state, as every Juju hook can (after `host` set PATH)."""
    tools = tmp_path_factory.mktemp("juju") / "bin"
    tools.mkdir()
    monkeypatch.setenv("PATH", f"{tools}{os.pathsep}{os.environ.get('PATH', '')}")
    return GoalStateTool(tools)
