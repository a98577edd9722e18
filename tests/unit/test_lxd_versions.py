"""Contract tests for the LXD users get: 5.21 LTS and 6.x, beside Debian's 5.0.2 (issue 23, L1-L8).

The charm and the real workload.LXD talk to the stand-in daemon (lxd_standin.py) answering as the
profile's LXD source does; nothing here ran against a real 5.21 or 6.x daemon (README says so).
Test ids carry the profile: lxd_5_0, lxd_5_21, lxd_6.
"""

from __future__ import annotations

import dataclasses
import http.server
import json
import socket
import threading

import pytest
from lxd_standin import StandIn, start
from ops import testing
from states import announced, ctx, make_state, published

import charm
import cluster_network
import workload
from upgrade import lxd_waiting
from workload import LXDError

PROFILES = {"lxd_5_0": "5.0.2", "lxd_5_21": "5.21", "lxd_6": "6"}
ALL = pytest.mark.parametrize("profile", list(PROFILES), ids=list(PROFILES))
CHECKED = {"network-checked": "bridged:br0"}
MAAS_KEY = "consumer:token:the-maas-api-key"
LIFETIMES = {"cluster.join_token_expiry": "1H", "core.remote_token_expiry": "1H"}  # join/client-token-expiry defaults


@pytest.fixture
def daemon(tmp_path, cluster_pem, monkeypatch):
    """make(profile) -> a StandIn the charm's LXD() talks to (the real workload.LXD)."""
    servers = []

    def make(profile: str, **kw) -> StandIn:
        lxd = StandIn(cluster_pem, PROFILES.get(profile, profile), **kw)
        lxd.config.update(LIFETIMES)  # the leader set the options' token lifetimes in an earlier hook
        servers.append(start(tmp_path, lxd))
        monkeypatch.setattr(charm, "LXD", lambda: workload.LXD(str(tmp_path)))
        return lxd

    yield make
    for server in servers:
        server.shutdown()
        server.server_close()


def member(lxd: StandIn, pem: str, leader: bool = True, config=None, peers=None, relations=(), secrets=(), **kw):
    """Member lxd-cluster-1 (Juju unit 1) of the stand-in's cluster, the network applied and checked by all."""
    app = published(pem, network="bridged:br0", **{"pool-driver": "dir", "lxd-version": lxd.profile.version})
    state = make_state(
        leader=leader,
        ip="10.0.0.2",
        app=app,
        unit=announced(1, **CHECKED),
        peers=peers or {0: announced(0, **CHECKED), 2: announced(2, **CHECKED)},
        config={"storage-driver": "dir", **(config or {})},
        secrets=secrets,
        **kw,
    )
    return dataclasses.replace(state, relations=[*state.relations, *relations])


def writes(lxd: StandIn, what: str) -> list:
    return [body for request, body in lxd.bodies if request == what]


# -- L1/L1b: MAAS where LXD has it, refused where it has not -------------------------------------
def test_maas_options_reach_lxd_5_21(daemon, cluster_pem):
    lxd = daemon("lxd_5_21")
    key = testing.Secret({"key": MAAS_KEY}, owner=None)
    config = {"maas-api-url": "http://maas:5240/MAAS", "maas-api-key": key.id}
    out = ctx(1).run(ctx(1).on.config_changed(), member(lxd, cluster_pem, config=config, secrets=[key]))
    assert lxd.config["maas.api.url"] == "http://maas:5240/MAAS" and lxd.config["maas.api.key"] == MAAS_KEY
    assert out.unit_status == testing.ActiveStatus("member lxd-cluster-1 of 3 (database), fully operational")


def test_maas_options_on_lxd_6_are_refused_never_sent_and_the_leader_still_issues(daemon, cluster_pem):
    """L1: a cluster upgraded to 6.8+ with MAAS set: Blocked naming the fix; no maas key is sent (LXD would
    quote the key back in its refusal); the leader's other work goes on: the waiting unit gets its token."""
    lxd = daemon("lxd_6")
    key = testing.Secret({"key": MAAS_KEY}, owner=None)
    config = {"maas-api-url": "http://maas:5240/MAAS", "maas-api-key": key.id}
    waiting = {3: {**announced(3), "lxd-version": "6.9"}}
    peers = {0: announced(0, **CHECKED), 2: announced(2, **CHECKED), **waiting}
    state = member(lxd, cluster_pem, config=config, secrets=[key], peers=peers, planned_units=4)
    out = ctx(1).run(ctx(1).on.config_changed(), state)
    assert out.unit_status == testing.BlockedStatus(
        "LXD 6.9 has no MAAS integration (API extension maas_network, removed in LXD 6.8): unset maas-api-url, "
        "maas-api-key (juju config lxd-cluster --reset maas-api-url,maas-api-key)"
    )
    assert not any("maas" in json.dumps(body) for _, body in lxd.bodies)
    assert writes(lxd, "POST /1.0/cluster/members") == [{"server_name": "lxd-cluster-3"}]
    assert MAAS_KEY not in json.dumps([out.unit_status.message, lxd.requests])


@pytest.mark.parametrize("profile", ["lxd_5_0", "lxd_6"])
def test_an_unknown_key_is_refused_quoting_its_value_lxd_5_0_and_lxd_6(daemon, profile):
    """The stand-in's claim (lxd/config/errors.go): why no MAAS key may reach a 6.8+ LXD, and why LXD's
    config-error text must be redacted wherever it is shown."""
    daemon(profile)
    config = {"maas.api.key": MAAS_KEY, "maas.api.url": "http://m"} if profile == "lxd_6" else {"loki.api.url": "x"}
    with pytest.raises(LXDError) as refused:
        charm.LXD().update_config(config)
    expected = {
        "lxd_6": f'Cannot set "maas.api.key" to "{MAAS_KEY}": Unknown key (and 1 more errors)',
        "lxd_5_0": "cannot set 'loki.api.url' to 'x': unknown key",
    }
    assert str(refused.value) == expected[profile]


def test_maas_subnet_on_lxd_6_never_reaches_the_default_profile(daemon, cluster_pem):
    """L1b: 6.8+ refuses eth0's maas.subnet.* (the stand-in's claim, lxd-6.9 devices.go:75); the charm never asks."""
    lxd = daemon("lxd_6")
    out = ctx(1).run(ctx(1).on.config_changed(), member(lxd, cluster_pem, config={"maas-subnet-ipv4": "lab"}))
    assert out.unit_status.name == "blocked" and "unset maas-subnet-ipv4" in out.unit_status.message
    assert writes(lxd, "PUT /1.0/profiles/default") == [] and "maas.subnet.ipv4" not in lxd.eth0
    with pytest.raises(LXDError, match='Device validation failed for "eth0": Invalid device option "maas.subnet.ipv4"'):
        cluster_network.set_default_nic(charm.LXD(), {**lxd.eth0, "maas.subnet.ipv4": "lab"})


def test_maas_subnet_on_lxd_5_21_goes_on_eth0(daemon, cluster_pem):
    lxd = daemon("lxd_5_21")
    out = ctx(1).run(ctx(1).on.config_changed(), member(lxd, cluster_pem, config={"maas-subnet-ipv4": "lab"}))
    assert lxd.eth0["maas.subnet.ipv4"] == "lab" and out.unit_status.name == "active"


# -- L2: database roles from LXD's `database` field ------------------------------------------------
@ALL
def test_cluster_list_and_status_show_voters_standbys_and_the_leader(daemon, cluster_pem, profile):
    """6.7+ lists a voter as database-voter and the leader only as database-leader (lxd-6.9 db/node.go:150-161)."""
    lxd = daemon(profile, members=3, standbys=2)
    peers = {i: announced(i, **CHECKED) for i in (0, 2, 3, 4)}
    state = member(lxd, cluster_pem, peers=peers, planned_units=5)
    unit = ctx(1)
    unit.run(unit.on.action("cluster-list"), state)
    rows = json.loads(unit.action_results["members"])  # type: ignore[index]
    assert [r["database"] for r in rows] == [
        "database-leader",
        "database",
        "database",
        "database-standby",
        "database-standby",
    ]
    out = ctx(1).run(ctx(1).on.update_status(), state)
    assert out.unit_status == testing.ActiveStatus("member lxd-cluster-1 of 5 (database), fully operational")


# -- L3: evacuate and LXD 6.9's quorum check ---------------------------------------------------------
def one_voter_down(profile: str, daemon) -> StandIn:
    lxd = daemon(profile)
    lxd.members["lxd-cluster-2"].update(status="Offline", message="No heartbeat since 30s")
    return lxd


def test_evacuate_refused_for_quorum_on_lxd_6_says_lxds_words_and_force(daemon, cluster_pem):
    lxd = one_voter_down("lxd_6", daemon)
    with pytest.raises(testing.ActionFailed) as failed:
        ctx(1).run(ctx(1).on.action("evacuate", params={"name": "lxd-cluster-1"}), member(lxd, cluster_pem))
    assert "LXD refused: Insufficient online voters to maintain quorum" in failed.value.message
    assert "run again with force=true" in failed.value.message
    assert writes(lxd, "POST /1.0/cluster/members/lxd-cluster-1/state") == [{"action": "evacuate"}]
    assert lxd.members["lxd-cluster-1"]["status"] == "Online"

    unit = ctx(1)
    unit.run(unit.on.action("evacuate", params={"name": "lxd-cluster-1", "force": True}), member(lxd, cluster_pem))
    assert writes(lxd, "POST /1.0/cluster/members/lxd-cluster-1/state")[-1] == {"action": "evacuate", "force": True}
    assert unit.action_results["state"] == "EVACUATED"  # type: ignore[index]


@pytest.mark.parametrize("profile", ["lxd_5_0", "lxd_5_21"])
def test_evacuate_on_lxd_5_21_and_lxd_5_0_goes_ahead_and_is_never_sent_force(daemon, cluster_pem, profile):
    lxd = one_voter_down(profile, daemon)
    params = {"name": "lxd-cluster-1", "force": True}
    ctx(1).run(ctx(1).on.action("evacuate", params=params), member(lxd, cluster_pem))
    assert writes(lxd, "POST /1.0/cluster/members/lxd-cluster-1/state") == [{"action": "evacuate"}]
    assert lxd.members["lxd-cluster-1"]["status"] == "Evacuated"


# -- L4: Loki checked synchronously from 5.21 --------------------------------------------------------
class _Loki(http.server.BaseHTTPRequestHandler):
    answer = (503, "Ingester not ready: waiting for 15s after being ready")

    def do_GET(self) -> None:  # noqa: N802
        code, text = self.answer if self.path == "/ready" else (404, "404 page not found")
        self.send_response(code)
        self.send_header("Content-Length", str(len(text)))
        self.end_headers()
        self.wfile.write(text.encode())

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def loki():
    """A Loki on loopback answering /ready with `answer` (set per test)."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), type("Loki", (_Loki,), {}))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def logging_to(url: str) -> testing.Relation:
    return testing.Relation(
        "logging", id=2, remote_units_data={0: {"endpoint": json.dumps({"url": url + "/loki/api/v1/push"})}}
    )


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize(
    "profile, words", [("lxd_5_21", "failed to connect to Loki"), ("lxd_6", "failed connecting to Loki")]
)
def test_an_unreachable_loki_is_named_and_stops_nothing_else_lxd_5_21_and_lxd_6(daemon, cluster_pem, profile, words):
    lxd = daemon(profile)
    url = f"http://127.0.0.1:{closed_port()}"
    out = ctx(1).run(ctx(1).on.config_changed(), member(lxd, cluster_pem, relations=[logging_to(url)]))
    assert out.unit_status == testing.ActiveStatus(
        f"member lxd-cluster-1 of 3 (database), fully operational; logs not sent to Loki at {url}: {words}"
    )
    assert "loki.api.url" not in lxd.config
    patched = lxd.requests.index("PATCH /1.0")
    assert "GET /1.0/networks/br0" in lxd.requests[patched:]  # the rest of the reconcile ran after it


@pytest.mark.parametrize("profile", ["lxd_5_21", "lxd_6"])
def test_a_loki_not_ready_yet_is_named_with_its_answer_then_taken_when_ready(daemon, cluster_pem, loki, profile):
    lxd = daemon(profile)
    url = f"http://127.0.0.1:{loki.server_address[1]}"
    state = member(lxd, cluster_pem, relations=[logging_to(url)])
    out = ctx(1).run(ctx(1).on.config_changed(), state)
    assert out.unit_status.message.endswith(
        f"; logs not sent to Loki at {url}: Loki is not ready, server returned HTTP status 503 Service "
        "Unavailable (503): Ingester not ready: waiting for 15s after being ready"
    )
    loki.RequestHandlerClass.answer = (200, "ready")
    out = ctx(1).run(ctx(1).on.update_status(), state)
    assert lxd.config["loki.api.url"] == url
    assert out.unit_status == testing.ActiveStatus("member lxd-cluster-1 of 3 (database), fully operational")


def test_lxd_5_0_has_no_loki_and_is_never_sent_the_key(daemon, cluster_pem):
    lxd = daemon("lxd_5_0")
    out = ctx(1).run(ctx(1).on.config_changed(), member(lxd, cluster_pem, relations=[logging_to("http://127.0.0.1:9")]))
    assert writes(lxd, "PATCH /1.0") == [] and out.unit_status.name == "active"


# -- L5: a role update carries only the roles an update may carry ----------------------------------
def test_marking_the_raft_leader_leaving_survives_a_leadership_change_lxd_6(daemon):
    """6.7+ refuses an automatic role the member no longer holds (lxd-6.9 api_cluster_member.go:852): the
    charm sends only custom roles, which LXD keeps beside its own."""
    lxd = daemon("lxd_6")
    lxd.leader = "lxd-cluster-1"
    lxd.members["lxd-cluster-1"]["custom_roles"] = ["ovn-chassis"]
    lxd.new_leader_after_get = "lxd-cluster-0"
    charm.LXD().mark_leaving("lxd-cluster-1", "leaving")
    assert writes(lxd, "PUT /1.0/cluster/members/lxd-cluster-1")[0]["roles"] == ["ovn-chassis"]
    assert lxd.member("lxd-cluster-1")["roles"] == ["ovn-chassis", "database-voter"]
    assert lxd.member("lxd-cluster-1")["config"] == {workload.LEAVING_KEY: "leaving"}
    # what it sent before (the roles as read) is what LXD refuses
    code, refusal = lxd.put_member(
        "lxd-cluster-1", {"roles": ["ovn-chassis", "database-leader"], "groups": ["default"]}
    )
    assert (
        code == 400 and refusal["error"] == 'The automatically assigned "database-leader" role cannot be added manually'
    )


@pytest.mark.parametrize("profile", ["lxd_5_0", "lxd_5_21"])
def test_marking_a_voter_leaving_keeps_its_database_role_lxd_5_21_and_lxd_5_0(daemon, profile):
    """5.x refuses an update that drops `database` from a voter (lxd-5.21.7 api_cluster.go:1750)."""
    lxd = daemon(profile)
    for name in ("lxd-cluster-0", "lxd-cluster-2"):  # the raft leader and a voter
        charm.LXD().mark_leaving(name, "leaving")
        assert writes(lxd, f"PUT /1.0/cluster/members/{name}")[0]["roles"] == ["database"]
        assert lxd.member(name)["config"] == {workload.LEAVING_KEY: "leaving"}


# -- L6: token lifetimes at LXD's default are not set again on every hook ---------------------------
@ALL
def test_token_lifetimes_at_lxds_default_are_set_at_most_once(daemon, cluster_pem, profile):
    lxd = daemon(profile)
    for key in LIFETIMES:  # never set: LXD's defaults
        del lxd.config[key]
    state = member(lxd, cluster_pem, config={"join-token-expiry": "3H", "client-token-expiry": "15d"})
    ctx(1).run(ctx(1).on.update_status(), state)
    ctx(1).run(ctx(1).on.update_status(), state)
    # 3H is every version's default; 15d is 5.21.5+ and 6.7+'s (5.0.2: none, so it is set, once)
    expected = [{"config": {"core.remote_token_expiry": "15d"}}] if profile == "lxd_5_0" else []
    assert writes(lxd, "PATCH /1.0") == expected


# -- L7: join tokens only ------------------------------------------------------------------------------
@ALL
def test_a_waiting_unit_gets_a_join_token_and_no_trust_password_is_set(daemon, cluster_pem, profile):
    lxd = daemon(profile)
    peers = {
        0: announced(0, **CHECKED),
        2: announced(2, **CHECKED),
        3: {**announced(3), "lxd-version": lxd.profile.version},
    }
    out = ctx(1).run(ctx(1).on.update_status(), member(lxd, cluster_pem, peers=peers, planned_units=4))
    secret = next(s for s in out.secrets if s.label == "join-lxd-cluster-3")
    assert secret.latest_content["kind"] == "token"
    assert writes(lxd, "POST /1.0/cluster/members") == [{"server_name": "lxd-cluster-3"}]
    assert "trust_password" not in json.dumps(lxd.bodies)


# -- L8: the upgrade status quotes what LXD logs ------------------------------------------------------
@pytest.mark.parametrize(
    "version, words",
    [
        ("5.0.2", "Wait for other cluster nodes to upgrade their versions"),  # lxd-5.0.2 daemon.go:1171
        ("5.21.7-cfee9f2", "Wait for other cluster members to align their versions"),  # lxd-5.21.7 daemon.go:1566
        ("6.9-85f8970", "Wait for other cluster members to align their versions"),  # lxd-6.9 daemon.go:1610
        ("5.21.3-c5ae129", "Wait for other cluster nodes to upgrade their versions"),  # reworded in 5.21.4
    ],
    ids=["lxd_5_0", "lxd_5_21", "lxd_6", "lxd_5_21_3"],
)
def test_the_upgrade_wait_is_lxds_own_log_line(version, words):
    assert lxd_waiting(version) == f"{words}, cluster not started yet"
    assert lxd_waiting("unknown") == ""
