"""Each action's path through the charm with a fake LXD: its results, or its refusal changing nothing."""

from __future__ import annotations

import base64
import json

import pytest
import yaml
from charms.lxd_cluster.v0.lxd_cluster import fingerprint_of as certificate_fingerprint
from fake_lxd import EXPIRES_AT, FakeLXD
from ops import testing
from states import announced, ctx, make_state, published

from models import Instance, Member
from tests.certs import x509_pem


@pytest.fixture
def member(lxd: FakeLXD) -> FakeLXD:
    """This unit is a member of a four-member cluster."""
    lxd.be_member("lxd-cluster-0", "lxd-cluster-1", "lxd-cluster-2", "lxd-cluster-3")
    return lxd


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


@pytest.mark.parametrize(
    "params, words",
    [
        ({"name": "c1", "image": "nope"}, "no image 'nope'"),
        ({"name": "c1", "image": "busybox", "target": "lxd-cluster-9"}, "no cluster member named"),
        ({"name": "c1", "image": "busybox", "target": "@gpu"}, "no cluster group named 'gpu'"),
        ({"name": "taken", "image": "busybox"}, "exists already"),
    ],
)
def test_launch_refusals_create_nothing(member, cluster_pem, params, words):
    member.instance_rows = [Instance("taken", "lxd-cluster-0", "Running")]
    _, failure = run(leader_state(cluster_pem), "launch", **params)
    assert words in failure
    assert "launch" not in member.calls


def test_actions_on_a_unit_that_is_not_a_member_fail_clearly(lxd, cluster_pem):
    _, failure = run(make_state(), "cluster-list")
    assert "not a cluster member" in failure


def test_remove_node_moves_instances_when_asked_and_loses_none(member, cluster_pem):
    member.instance_rows = [
        Instance("a", "lxd-cluster-3", "Running"),
        Instance("b", "lxd-cluster-1", "Running"),
        Instance("c", "lxd-cluster-0", "Running"),
    ]
    _, failure = run(leader_state(cluster_pem), "remove-node", name="lxd-cluster-3")
    assert "still has instances: a" in failure and member.removed == []
    results, failure = run(leader_state(cluster_pem), "remove-node", name="lxd-cluster-3", evacuate=True)
    assert failure == ""
    assert member.moves == [("a", "lxd-cluster-2")]
    assert member.removed == [("lxd-cluster-3", False)]
    assert results["lost"] == "none" and results["instances-after"] == results["instances-before"] == 3


def test_remove_node_sees_and_moves_the_instances_of_every_project(member, cluster_pem):
    """A client's own project counts: the refusal names its instances as project/name, and evacuate
    moves each within its project; `web` exists in two projects, and both are kept."""
    member.instance_rows = [
        Instance("web", "lxd-cluster-3", "Running"),
        Instance("web", "lxd-cluster-3", "Running", project="runner"),
        Instance("b", "lxd-cluster-1", "Running", project="runner"),
    ]
    _, failure = run(leader_state(cluster_pem), "remove-node", name="lxd-cluster-3")
    assert "still has instances: runner/web, web;" in failure and member.removed == []
    results, failure = run(leader_state(cluster_pem), "remove-node", name="lxd-cluster-3", evacuate=True)
    assert failure == "" and member.removed == [("lxd-cluster-3", False)]
    assert results["moved"] == "web->lxd-cluster-0, runner/web->lxd-cluster-2"
    assert results["lost"] == "none" and results["instances-after"] == results["instances-before"] == 3
    assert {(i.project, i.name, i.status) for i in member.instance_rows if i.location != "lxd-cluster-3"} == {
        ("default", "web", "Running"),
        ("runner", "web", "Running"),
        ("runner", "b", "Running"),
    }


def test_force_remove_counts_the_lost_instances_of_every_project(member, cluster_pem):
    member.instance_rows = [
        Instance("gone", "lxd-cluster-3", "Running"),
        Instance("gone", "lxd-cluster-3", "Running", project="runner"),
        Instance("kept", "lxd-cluster-1", "Running", project="runner"),
    ]
    member.member_rows[3] = Member("lxd-cluster-3", "u", ("database",), "Offline", "No heartbeat")
    results, failure = run(leader_state(cluster_pem), "force-remove", name="lxd-cluster-3", confirm=True)
    assert failure == "" and results["lost-instances"] == "gone, runner/gone"


def test_cluster_list_counts_the_instances_of_every_project(member, cluster_pem):
    member.instance_rows = [
        Instance("a", "lxd-cluster-1", "Running"),
        Instance("a", "lxd-cluster-1", "Running", project="runner"),
        Instance("c", "lxd-cluster-2", "Stopped", project="ci"),
    ]
    results, _ = run(leader_state(cluster_pem), "cluster-list")
    counts = {r["name"]: r["instances"] for r in json.loads(results["members"])}
    assert counts == {"lxd-cluster-0": "0", "lxd-cluster-1": "2", "lxd-cluster-2": "1", "lxd-cluster-3": "0"}
    assert "| INSTANCES |" in results["table"]


def test_evacuate_names_the_instances_of_every_project_on_the_member(member, cluster_pem):
    member.instance_rows = [
        Instance("web", "lxd-cluster-2", "Stopped"),
        Instance("web", "lxd-cluster-2", "Stopped", project="runner"),
    ]
    results, _ = run(leader_state(cluster_pem), "evacuate", name="lxd-cluster-2")
    assert results["instances"] == "web (Stopped), runner/web (Stopped)"


def test_launch_takes_a_name_another_project_uses(member, cluster_pem):
    """launch creates in the default project: a client's `web` in its own project is another instance."""
    member.instance_rows = [Instance("web", "lxd-cluster-1", "Running", project="runner")]
    results, failure = run(leader_state(cluster_pem), "launch", name="web", image="busybox")
    assert failure == "" and results["name"] == "web"


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
    assert rows[0] == {
        "name": "lxd-cluster-0",
        "url": "https://lxd-cluster-0:8443",
        "database": "database",
        "state": "ONLINE",
        "instances": "0",
        "message": "Fully operational",
    }
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


def test_add_and_remove_trusted_client_actions(member, cluster_pem):
    member.project_names.add("ci")
    state = make_state(leader=True, app=published(cluster_pem))
    context = ctx()
    params = {"name": "laptop", "certificate": cluster_pem, "projects": ["ci"]}
    context.run(context.on.action("add-trusted-client", params=params), state)
    assert context.action_results == {
        "name": "laptop",
        "fingerprint": certificate_fingerprint(cluster_pem),
        "projects": "ci",
    }
    assert member.trusted["laptop"] == (certificate_fingerprint(cluster_pem), ("ci",))
    with pytest.raises(testing.ActionFailed, match="trusted already"):
        context.run(context.on.action("add-trusted-client", params={"name": "laptop", "projects": ["ci"]}), state)
    context.run(context.on.action("remove-trusted-client", params={"name": "laptop"}), state)
    assert "laptop" not in member.trusted
    with pytest.raises(testing.ActionFailed, match="no trusted client named 'laptop'"):
        context.run(context.on.action("remove-trusted-client", params={"name": "laptop"}), state)


def test_a_client_token_honours_projects_and_says_when_it_expires(member, cluster_pem):
    member.project_names.add("ci")
    results, failure = run(leader_state(cluster_pem), "add-trusted-client", name="ci-box", projects=["ci"])
    assert failure == ""
    assert member.client_tokens["ci-box"] == {"projects": ("ci",), "expires_at": EXPIRES_AT}
    assert member.config["core.remote_token_expiry"] == "1H"  # set before the token was issued
    assert json.loads(base64.b64decode(results["token"]))["client_name"] == "ci-box"
    assert results["token-expires-at"] == EXPIRES_AT and results["projects"] == "ci"
    assert "single use" in results["token-use"] and "juju show-task" in results["token-use"]


@pytest.mark.parametrize(
    "params, words",
    [
        ({"name": "x"}, "name the projects the client may use"),
        ({"name": "x", "projects": ["ci"], "admin": True}, "exclude each other"),
        ({"name": "x", "projects": ["nope"]}, "no LXD project named nope"),
        ({"name": "x", "projects": ["ci"], "certificate": "junk"}, "certificate is refused: not a PEM"),
    ],
)
def test_add_trusted_client_refusals_trust_nothing_and_issue_nothing(member, cluster_pem, params, words):
    member.project_names.add("ci")
    _, failure = run(leader_state(cluster_pem), "add-trusted-client", **params)
    assert words in failure
    assert not {"trust_client", "issue_client_token"} & set(member.calls) and member.trusted == {}


def test_an_expired_certificate_is_refused_before_lxd_sees_it(member, cluster_pem):
    pem = x509_pem(days=(-30, -2))
    _, failure = run(leader_state(cluster_pem), "add-trusted-client", name="old", certificate=pem, admin=True)
    assert failure.startswith("certificate is refused: the certificate expired on")
    assert member.calls == []


def test_admin_is_granted_only_when_asked_and_says_so(member, cluster_pem):
    results, _ = run(leader_state(cluster_pem), "add-trusted-client", name="ops", admin=True)
    assert member.client_tokens["ops"]["projects"] is None
    assert results["projects"] == "all (admin: root on every member)"


def test_client_tokens_are_issued_on_the_leader(member, cluster_pem):
    member.project_names.add("ci")
    _, failure = run(make_state(app=published(cluster_pem)), "add-trusted-client", name="x", projects=["ci"])
    assert "run this action on the leader" in failure and member.client_tokens == {}


def test_remove_trusted_client_revokes_an_unused_token(member, cluster_pem):
    member.project_names.add("ci")
    run(leader_state(cluster_pem), "add-trusted-client", name="ci-box", projects=["ci"])
    results, failure = run(leader_state(cluster_pem), "remove-trusted-client", name="ci-box")
    assert failure == "" and results == {"removed": "ci-box", "revoked-tokens": 1}
    assert member.pending == []


def test_a_revealed_join_token_expires_and_the_result_says_when(member, cluster_pem):
    params = {"server-name": "outside-1", "address": "10.0.0.9", "reveal": True}
    results, _ = run(leader_state(cluster_pem), "show-preseed", **params)
    assert member.config["cluster.join_token_expiry"] == "1H"
    assert results["token-expires-at"] == EXPIRES_AT
    assert "single use" in results["token-use"]


def test_where_lxd_cannot_expire_a_join_token_the_result_says_who_revokes_it(member, cluster_pem):
    member.extensions -= {"cluster_join_token_expiry"}
    params = {"server-name": "outside-1", "address": "10.0.0.9", "reveal": True}
    results, _ = run(leader_state(cluster_pem, config={"join-token-expiry": "30M"}), "show-preseed", **params)
    assert "cluster.join_token_expiry" not in member.config
    assert results["token-expires-at"].startswith("not enforced by this LXD (no cluster.join_token_expiry)")
    assert "older than 30M" in results["token-expires-at"]
