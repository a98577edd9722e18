"""The Nagios plugin (src/check_lxd_cluster.py) against real LXD daemons in the lab.

The plugin runs as the NRPE server runs it: a separate python3 process, `api|member|voters
--socket <the member's unix socket>`, judged by its exit code (0 OK, 1 WARNING, 2 CRITICAL,
3 UNKNOWN) and its one status line. A formed cluster: every check OK on every member. A member's
host dies: the survivors' member check says WARNING naming it once LXD marks it offline, their
voters check WARNING (2 of 3 voters: one more loss loses quorum), the dead member's api check
CRITICAL; a second voter dies: the voters check on the last one is CRITICAL. A stopped daemon:
the api check CRITICAL. Without access to the socket (not root, no sudo rule): UNKNOWN.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.harness.cluster import form

pytestmark = pytest.mark.functional

PLUGIN = Path(__file__).parents[2] / "src/check_lxd_cluster.py"


def check(member, name: str, user: str | None = None) -> tuple[int, str]:
    argv = [sys.executable, str(PLUGIN), name, "--socket", str(member.socket)]
    if user:  # as the NRPE server's unprivileged user would run it
        argv = ["setpriv", f"--reuid={user}", "--regid=nogroup", "--clear-groups", *argv]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    lines = done.stdout.splitlines()
    assert len(lines) == 1, (done.stdout, done.stderr)  # a plugin says one status line
    return done.returncode, lines[0]


def wait_for(member, name: str, code: int, seconds: float = 60) -> str:
    deadline = time.monotonic() + seconds
    while True:
        got, line = check(member, name)
        if got == code or time.monotonic() > deadline:
            assert got == code, line
            return line
        time.sleep(2)


def test_nrpe_checks_are_ok_on_every_member_of_a_formed_cluster(lab):
    cluster = form(lab, 3, driver="dir")
    for uid in range(3):
        member = cluster.member(uid)
        assert check(member, "api") == (0, f"OK: LXD {lab_version(member)} answers (member lxd-cluster-{uid})")
        assert check(member, "member") == (0, f"OK: member lxd-cluster-{uid} is ONLINE, 3 of 3 members online")
        code, line = check(member, "voters")
        assert code == 0 and line.startswith("OK: 3 of 3 database voters online"), line


def lab_version(member) -> str:
    return subprocess.run(["lxd", "--version"], capture_output=True, text=True, check=True).stdout.strip()


def test_nrpe_checks_on_dead_members_warn_then_go_critical(lab):
    cluster = form(lab, 3, driver="dir")
    survivor, dead, second = cluster.member(0), cluster.member(2), cluster.member(1)
    lab.kill(dead)
    code, line = check(dead, "api")
    assert code == 2 and line.startswith("CRITICAL: LXD API does not answer"), line
    assert check(dead, "member")[0] == 3  # UNKNOWN: nothing to ask; the api check is the alarm
    # LXD marks the dead member offline after its heartbeats stop (12-20 s here)
    line = wait_for(survivor, "member", 1)
    assert line.startswith("WARNING: member lxd-cluster-0 is ONLINE; not online: lxd-cluster-2"), line
    code, line = check(survivor, "voters")
    assert code == 1 and line.startswith("WARNING: 2 of 3 database voters online: one more loss loses quorum"), line
    assert "lxd-cluster-2" in line
    assert check(survivor, "api")[0] == 0

    lab.kill(second)  # quorum lost: the survivor cannot tell its database state any more
    line = wait_for(survivor, "voters", 2, seconds=90)
    assert line.startswith("CRITICAL:"), line
    print("quorum lost:", line)


def test_nrpe_api_check_is_critical_on_a_stopped_daemon_and_unknown_without_access(lab):
    (member,) = lab.up(1)
    assert check(member, "api") == (0, f"OK: LXD {lab_version(member)} answers (not clustered)")
    code, line = check(member, "api", user="nobody")  # no sudo rule on this host: it cannot ask
    assert code == 3 and line.startswith("UNKNOWN: cannot open the LXD socket as uid 65534 nor through sudo"), line
    lab.stop(member)
    code, line = check(member, "api")
    assert code == 2 and line.startswith("CRITICAL: LXD API does not answer"), line
