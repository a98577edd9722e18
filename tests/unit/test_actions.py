"""Every action's parameter checks, and each action's path through the charm with a fake LXD."""

from __future__ import annotations

import json

import pytest
import yaml
from fake_lxd import FakeLXD
from ops import testing
from test_charm import announced, ctx, make_state, published

import charm
from action_checks import ActionError, check_removal, parse_launch
from departure import pick_target
from models import Instance, Member


@pytest.mark.parametrize("params, words", [
    ({"name": "9lives", "image": "busybox"}, "not a valid instance name"),
    ({"name": "ends-", "image": "busybox"}, "not a valid instance name"),
    ({"name": "a" * 64, "image": "busybox"}, "not a valid instance name"),
    ({"name": "has_underscore", "image": "busybox"}, "not a valid instance name"),
    ({"name": "ok", "image": ""}, "image is required"),
    ({"name": "ok", "image": "nowhere:jammy"}, "unknown image remote"),
    ({"name": "ok", "image": "busybox", "profiles": "default"}, "profiles"),
    ({"name": "ok", "image": "busybox", "config": {"limits.cpu": 2}}, "config"),
])
def test_bad_launch_parameters_are_refused(params, words):
    with pytest.raises(ActionError, match=words):
        parse_launch(params)


def test_launch_sources_alias_fingerprint_and_remote():
    assert parse_launch({"name": "a", "image": "busybox"}).source == {"type": "image", "alias": "busybox"}
    fp = "a1b2c3d4e5f6"
    assert parse_launch({"name": "a", "image": fp}).source == {"type": "image", "fingerprint": fp}
    remote = parse_launch({"name": "a", "image": "ubuntu:24.04"})
    assert remote.remote and remote.source["alias"] == "24.04" and remote.source["protocol"] == "simplestreams"


def test_removal_rules():
    members = ["m0", "m1", "m2", "m3"]
    check_removal("m3", members, [], {})
    with pytest.raises(ActionError, match="no cluster member named 'm9'"):
        check_removal("m9", members, [], {})
    with pytest.raises(ActionError, match="would leave 2"):
        check_removal("m2", members[:3], [], {})
    check_removal("m2", members[:3], [], {"allow-below-minimum": True})
    with pytest.raises(ActionError, match="still has instances: a, b"):
        check_removal("m3", members, ["b", "a"], {})
    check_removal("m3", members, ["a"], {"evacuate": True})


def test_pick_target_is_the_emptiest_member():
    assert pick_target({"m1": 2, "m2": 0, "m3": 0}) == "m2"
    with pytest.raises(ActionError):
        pick_target({})


# -- through the charm --------------------------------------------------------------------------
@pytest.fixture
def member(cluster_pem, monkeypatch) -> FakeLXD:
    fake = FakeLXD(cluster_pem)
    fake.be_member("lxd-cluster-0", "lxd-cluster-1", "lxd-cluster-2", "lxd-cluster-3")
    monkeypatch.setattr(charm, "LXD", lambda: fake)
    return fake


def leader_state(pem: str, **kw) -> testing.State:
    peers = {u: announced(u) for u in (1, 2, 3)}
    return make_state(leader=True, app=published(pem), peers=peers, **kw)


def run(state: testing.State, action: str, uid: int = 0, **params):
    context = ctx(uid)
    try:
        context.run(context.on.action(action, params=params), state)
    except testing.ActionFailed as e:
        return None, e.message
    return context.action_results, ""


def test_launch_returns_where_the_instance_runs(member, cluster_pem):
    results, failure = run(leader_state(cluster_pem), "launch", name="c1", image="busybox", target="lxd-cluster-2")
    assert failure == ""
    assert results == {"name": "c1", "location": "lxd-cluster-2", "status": "Running", "ipv4": "10.1.0.5", "ipv6": ""}


@pytest.mark.parametrize("params, words", [
    ({"name": "c1", "image": "nope"}, "no image 'nope'"),
    ({"name": "c1", "image": "busybox", "target": "lxd-cluster-9"}, "no cluster member named"),
    ({"name": "c1", "image": "busybox", "target": "@gpu"}, "no cluster group named 'gpu'"),
    ({"name": "taken", "image": "busybox"}, "exists already"),
])
def test_launch_refusals_create_nothing(member, cluster_pem, params, words):
    member.instance_rows = [Instance("taken", "lxd-cluster-0", "Running")]
    _, failure = run(leader_state(cluster_pem), "launch", **params)
    assert words in failure
    assert "launch" not in member.calls


def test_actions_on_a_unit_that_is_not_a_member_fail_clearly(cluster_pem, monkeypatch):
    fake = FakeLXD(cluster_pem)
    monkeypatch.setattr(charm, "LXD", lambda: fake)
    _, failure = run(make_state(), "cluster-list")
    assert "not a cluster member" in failure


def test_remove_node_moves_instances_when_asked_and_loses_none(member, cluster_pem):
    member.instance_rows = [Instance("a", "lxd-cluster-3", "Running"), Instance("b", "lxd-cluster-1", "Running"),
                            Instance("c", "lxd-cluster-0", "Running")]
    _, failure = run(leader_state(cluster_pem), "remove-node", name="lxd-cluster-3")
    assert "still has instances: a" in failure and member.removed == []
    results, failure = run(leader_state(cluster_pem), "remove-node", name="lxd-cluster-3", evacuate=True)
    assert failure == ""
    assert member.moves == [("a", "lxd-cluster-2")]
    assert member.removed == [("lxd-cluster-3", False)]
    assert results["lost"] == "none" and results["instances-after"] == results["instances-before"] == 3


def test_remove_node_is_for_the_leader_and_not_its_own_member(member, cluster_pem):
    _, failure = run(make_state(app=published(cluster_pem)), "remove-node", name="lxd-cluster-3")
    assert "leader" in failure
    _, failure = run(leader_state(cluster_pem), "remove-node", name="lxd-cluster-0")
    assert "juju remove-unit" in failure
    assert member.removed == []


def test_removed_member_is_recorded_so_its_unit_never_rejoins(member, cluster_pem):
    context = ctx()
    out = context.run(context.on.action("remove-node", params={"name": "lxd-cluster-3"}), leader_state(cluster_pem))
    assert out.get_relation(1).local_app_data["removed"] == "lxd-cluster-3"


def test_force_remove_needs_confirmation_and_a_dead_member(member, cluster_pem):
    member.instance_rows = [Instance("gone", "lxd-cluster-3", "Running")]
    _, failure = run(leader_state(cluster_pem), "force-remove", name="lxd-cluster-3")
    assert "confirm=true" in failure
    _, failure = run(leader_state(cluster_pem), "force-remove", name="lxd-cluster-3", confirm=True)
    assert "is online: use remove-node" in failure
    member.member_rows[3] = Member("lxd-cluster-3", "u", ("database",), "Offline", "No heartbeat")
    results, failure = run(leader_state(cluster_pem), "force-remove", name="lxd-cluster-3", confirm=True)
    assert failure == "" and member.removed == [("lxd-cluster-3", True)]
    assert results["lost-instances"] == "gone" and "wipe" in results["next-step"]


def test_cluster_list_gives_the_table_and_json(member, cluster_pem):
    results, _ = run(leader_state(cluster_pem), "cluster-list", uid=0)
    rows = json.loads(results["members"])
    assert [r["name"] for r in rows] == [f"lxd-cluster-{i}" for i in range(4)]
    assert rows[0] == {"name": "lxd-cluster-0", "url": "https://lxd-cluster-0:8443", "database": "database",
                       "state": "ONLINE", "message": "Fully operational"}
    assert "| lxd-cluster-3 |" in results["table"]


def test_show_preseed_redacts_unless_revealed(member, cluster_pem):
    params = {"server-name": "outside-1", "address": "10.0.0.9", "storage-source": "/dev/vdb"}
    results, failure = run(leader_state(cluster_pem), "show-preseed", **params)
    assert failure == "" and member.tokens == {}
    shown = yaml.safe_load(results["preseed"])["cluster"]
    assert shown["cluster_token"] == "<redacted>" and shown["server_address"] == "10.0.0.9:8443"
    assert shown["member_config"][0]["value"] == "/dev/vdb"
    results, _ = run(leader_state(cluster_pem), "show-preseed", reveal=True, **params)
    assert yaml.safe_load(results["preseed"])["cluster"]["cluster_token"] == member.tokens["outside-1"]
    _, failure = run(leader_state(cluster_pem), "show-preseed", **{**params, "server-name": "lxd-cluster-1"})
    assert "member already" in failure


def test_evacuate_and_restore(member, cluster_pem):
    results, _ = run(leader_state(cluster_pem), "evacuate", name="lxd-cluster-2")
    assert results["state"] == "EVACUATED"
    results, _ = run(leader_state(cluster_pem), "restore", name="lxd-cluster-2")
    assert results["state"] == "ONLINE"
    _, failure = run(leader_state(cluster_pem), "evacuate", name="nope")
    assert "no cluster member named 'nope'" in failure
