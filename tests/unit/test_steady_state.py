"""Steady state (issue 17): update-status on a member makes at most two REST calls, and a hook that
only reads them never imports pylxd. The real workload.LXD talks to a stand-in daemon on a unix
socket that records every request (lxd_standin.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import ops
import pytest
from lxd_standin import serve
from ops import testing
from states import announced, ctx, make_state, published

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def daemon(tmp_path, cluster_pem, monkeypatch):
    import charm
    import workload

    requests: list[str] = []
    # the token lifetimes the leader set in an earlier hook (the options' 1H)
    server = serve(
        tmp_path, cluster_pem, requests, **{"cluster.join_token_expiry": "1H", "core.remote_token_expiry": "1H"}
    )
    monkeypatch.setattr(charm, "LXD", lambda: workload.LXD(str(tmp_path)))
    yield requests
    server.shutdown()
    server.server_close()


def settled(
    pem: str, event: str = "update_status", unit: dict | None = None, leader: bool = False, **config: str
) -> ops.StatusBase:
    """Runs `event` on member lxd-cluster-1 of a cluster that applied bridged:br0 and published its dir pool."""
    app = published(pem, network="bridged:br0", **{"pool-driver": "dir", "pool-size": "20GiB", "lxd-version": "5.21.7"})
    checked = {"network-checked": "bridged:br0"} if unit is None else unit
    state = make_state(
        leader=leader,
        ip="10.0.0.2",
        app=app,
        unit=announced(1, **checked),
        peers={0: announced(0), 2: announced(2)},
        config={"storage-driver": "dir", **config},
    )
    out = ctx(1).run(getattr(ctx(1).on, event)(), state)
    return out.unit_status


def test_update_status_on_a_member_makes_two_rest_calls(daemon, cluster_pem):
    status = settled(cluster_pem)
    assert status == testing.ActiveStatus("member lxd-cluster-1 of 3 (database), fully operational")
    assert daemon == ["GET /1.0", "GET /1.0/cluster/members?recursion=1"]


def test_update_status_on_the_leader_only_reads(daemon, cluster_pem):
    """Token lifetimes (LXD enforces them: 5.21 has cluster_join_token_expiry and remote_token_expiry) and
    client trust are checked, every read over the socket: no pylxd connect (a second GET /1.0) and no write."""
    status = settled(cluster_pem, leader=True)
    assert status == testing.ActiveStatus("member lxd-cluster-1 of 3 (database), fully operational")
    assert daemon == ["GET /1.0", "GET /1.0/cluster/members?recursion=1", "GET /1.0/certificates?recursion=1"]


def test_every_other_hook_checks_the_host_again(daemon, cluster_pem):
    settled(cluster_pem, event="config_changed")
    assert "GET /1.0/networks/br0" in daemon and "GET /1.0/storage-pools/local" in daemon


@pytest.mark.parametrize(
    "unit, config",
    [
        ({}, {}),  # this unit never checked the network
        ({"network-checked": "bridged:br1"}, {}),  # it checked another choice
        ({"network-checked": "bridged:br0", "network-missing": "no bridge br0"}, {}),  # its check failed
        ({"network-checked": "bridged:br0"}, {"storage-size": "50GiB"}),  # pool option unlike the cluster's
    ],
)
def test_update_status_checks_the_host_until_settled(daemon, cluster_pem, unit, config):
    settled(cluster_pem, unit=unit, **config)
    assert "GET /1.0/networks/br0" in daemon


def test_reading_the_server_and_its_members_does_not_import_pylxd(tmp_path, cluster_pem):
    requests: list[str] = []
    server = serve(tmp_path, cluster_pem, requests)
    code = (
        "import sys, workload\n"
        f"lxd = workload.LXD({str(tmp_path)!r})\n"
        "assert lxd.info().clustered and len(lxd.members()) == 3\n"
        "print('pylxd' in sys.modules)\n"
    )
    env = {"PYTHONPATH": f"{ROOT / 'src'}:{ROOT / 'lib'}", "PATH": "/usr/bin:/bin"}
    try:
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    finally:
        server.shutdown()
        server.server_close()
    assert out.stdout.strip() == "False"
    assert requests == ["GET /1.0", "GET /1.0/cluster/members?recursion=1"]
