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
from states import REL, announced, ctx, make_state, published

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
    on = getattr(ctx(1).on, event)
    hook = on(state.get_relation(REL), remote_unit=0) if event.startswith("relation_") else on()
    return ctx(1).run(hook, state).unit_status


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


@pytest.mark.parametrize("leader", [False, True])
def test_a_peers_hook_on_a_settled_member_asks_lxd_only_what_its_status_needs(daemon, cluster_pem, leader):
    """A peer's databag changed (Juju runs this hook on every member for every write): it brings no news
    of this host, its pool or the trust store (issue 26: N members, O(N²) such hooks)."""
    status = settled(cluster_pem, event="relation_changed", leader=leader)
    assert status == testing.ActiveStatus("member lxd-cluster-1 of 3 (database), fully operational")
    assert daemon == ["GET /1.0", "GET /1.0/cluster/members?recursion=1"]


@pytest.mark.parametrize("event", ["config_changed", "start", "upgrade_charm", "leader_elected"])
def test_every_hook_that_may_bring_news_of_the_host_checks_it_again(daemon, cluster_pem, event):
    settled(cluster_pem, event=event)
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


# -- hook-tool calls of a whole-process hook (issue 26) ------------------------------------------------
@pytest.fixture
def member_process(tmp_path, cluster_pem):
    """Unit lxd-cluster/1, a settled member (not the leader) of three, dispatched as a whole process
    with Juju's hook tools emulated by tests/packed/hooktools.py and its LXD a stand-in daemon."""
    from tests.packed.packed_unit import PackedUnit, source_charm

    requests: list[str] = []
    lxd_dir = tmp_path / "lxd"
    lxd_dir.mkdir()
    server = serve(
        lxd_dir, cluster_pem, requests, **{"cluster.join_token_expiry": "1H", "core.remote_token_expiry": "1H"}
    )
    charm_dir = source_charm(tmp_path / "charm")
    unit = PackedUnit(
        charm_dir,
        tmp_path / "juju",
        unit="lxd-cluster/1",
        leader=False,
        address="10.0.0.2",
        config={"storage-driver": "dir"},
        python=Path(sys.executable),
    )
    secrets, bags = {}, {}
    for uid in range(3):
        sid = f"secret:member{uid}"
        secrets[sid] = {
            "label": "membership",
            "owner": "unit",
            "owner-unit": f"lxd-cluster/{uid}",
            "owner-app": "lxd-cluster",
            "revisions": [{"member": "yes"}],
            "grants": ["lxd-cluster"],
        }
        mine = {"network-checked": "bridged:br0", "network-interface": "eth0"} if uid == 1 else {}
        bags[f"lxd-cluster/{uid}"] = announced(
            uid, **{"member-secret": sid, "lxd-version": "5.21.7", "lxd-source": "deb", **mine}
        )
    app = published(
        cluster_pem, network="bridged:br0", **{"pool-driver": "dir", "pool-size": "20GiB", "lxd-version": "5.21.7"}
    )
    state = unit.state
    state["relations"]["0"].update(units=["lxd-cluster/0", "lxd-cluster/2"], data={**bags, "lxd-cluster": app})
    state.update(secrets=secrets, ports=["8443/tcp", "8444/tcp"])
    unit.write(state)

    def run(event: str, *flags: str) -> tuple[list[list[str]], str]:
        state = unit.state
        state.update(calls=[], log=[])
        unit.write(state)
        peer = {}  # a peer's hook: unit 0 changed its databag
        if event.startswith("cluster-relation-"):
            peer = dict(JUJU_RELATION="cluster", JUJU_RELATION_ID="cluster:0", JUJU_REMOTE_APP="lxd-cluster")
            peer.update(JUJU_REMOTE_UNIT="lxd-cluster/0")
        paths = f"{charm_dir / 'lib'}:{charm_dir / 'src'}"
        env = unit.env(f"hooks/{event}", LXD_DIR=str(lxd_dir), PYTHONPATH=paths, **peer)
        argv = [sys.executable, *flags, str(charm_dir / "src/main.py")]
        out = subprocess.run(argv, env=env, cwd=charm_dir, capture_output=True, text=True)
        after = unit.state
        assert out.returncode == 0 and not after["unknown"] + after["refused"], (out.stderr, after["log"][-5:])
        assert after["unit-status-history"][-1] == ["active", "member lxd-cluster-1 of 3 (database), fully operational"]
        return after["calls"], out.stderr

    def dispatch(event: str) -> list[list[str]]:
        """Runs one hook; returns the hook-tool calls it made."""
        return run(event)[0]

    def imports(event: str) -> set[str]:
        """Runs one hook; returns the top-level packages it imported."""
        lines = run(event, "-X", "importtime")[1].splitlines()
        return {line.rsplit("|", 1)[-1].strip().split(".")[0] for line in lines if line.startswith("import time:")}

    dispatch.imports = imports  # type: ignore[attr-defined]
    yield dispatch
    server.shutdown()
    server.server_close()


def test_a_settled_members_update_status_makes_at_most_nine_hook_tool_calls(member_process):
    """The first hook after joining tells Juju the membership (secret) and the ports; a settled member's
    update-status asks Juju only what it reads and says only its status."""
    first = [call[0] for call in member_process("update-status")]
    assert {"secret-get", "opened-ports"} <= set(first)
    settled = [call[0] for call in member_process("update-status")]
    assert settled == [
        "config-get",
        "relation-ids",
        "relation-list",
        "relation-get",  # its own databag
        "is-leader",
        "relation-get",  # the application's
        "status-set",
    ]
    assert len(settled) <= 9


def test_config_changed_asks_juju_for_the_binding_again(member_process):
    """A changed machine address comes with config-changed (Juju's uniter resolver runs it on a new
    addresses hash): that hook reads the binding and checks the host again."""
    member_process("update-status")
    calls = [call[0] for call in member_process("config-changed")]
    assert "network-get" in calls


def test_a_settled_members_update_status_imports_no_certificate_or_rest_library(member_process):
    """cryptography (certificates), pylxd (writes) and cosl/pydantic (observability relations) are
    imported only by the hooks that use them; -X importtime lists every module a process imports."""
    member_process("update-status")
    imported = member_process.imports("update-status")
    assert "ops" in imported and "workload" in imported  # the listing is real
    assert not imported & {"cryptography", "pylxd", "requests", "cosl", "pydantic"}


def test_a_peers_hook_imports_no_certificate_library_where_no_ca_is_related(member_process):
    """The tls-certificates library (pydantic, cryptography: ~0.1 s a hook) is made only where a CA is
    related or in that relation's own hooks; the peers' hooks, O(N²) of them, never pay for it."""
    member_process("update-status")
    imported = member_process.imports("cluster-relation-changed")
    assert "ops" in imported and "workload" in imported
    assert not imported & {"cryptography", "pydantic", "pylxd", "cosl"}
