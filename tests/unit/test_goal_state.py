"""goal-state: a unit Juju is removing, and what the others say meanwhile.

Juju's first step on a dying unit is relation-departed and relation-broken for every non-peer
relation, while that unit may still be the leader (worker/uniter/relation/resolver.go: a dying unit
breaks every relation; leadership/resolver.go resigns only locally). Such a relation-broken is not the
client, the scraper or Loki leaving: the application keeps them. goal-state says which units are dying.
"""

from __future__ import annotations

import dataclasses
import json

import pytest
from fake_lxd import FakeLXD
from ops import testing
from states import REL, announced, ctx, make_state, offers, published

import charm

ME = "lxd-cluster/0"


@pytest.fixture
def lxd(lxd: FakeLXD) -> FakeLXD:
    """This unit is lxd-cluster-0 of a three-member cluster, and the leader."""
    lxd.be_member("lxd-cluster-0", "lxd-cluster-1", "lxd-cluster-2")
    lxd.extensions.add("loki")
    return lxd


def client(pem: str) -> testing.Relation:
    return testing.Relation(
        "lxd-cluster", id=REL + 1, remote_app_name="runner", remote_app_data={"certificate": pem, "projects": '["ci"]'}
    )


def scraper() -> testing.Relation:
    return testing.Relation("metrics-endpoint", id=REL + 2, remote_app_name="prometheus")


def loki() -> testing.Relation:
    endpoint = json.dumps({"url": "http://10.1.2.3:3100/loki/api/v1/push"})
    return testing.Relation(
        "logging", id=REL + 3, remote_app_name="loki", remote_units_data={0: {"endpoint": endpoint}}
    )


def related(pem: str, *relations: testing.Relation, peers=None) -> testing.State:
    state = make_state(leader=True, app=published(pem), peers=peers or {1: announced(1), 2: announced(2)})
    return dataclasses.replace(state, relations=[*state.relations, *relations])


def served(lxd: FakeLXD, pem: str) -> testing.State:
    """The leader has trusted the client and the scraper, and pointed LXD at Loki."""
    lxd.project_names.add("ci")
    state = related(pem, client(pem), scraper(), loki())
    out = ctx().run(ctx().on.update_status(), state)
    assert f"juju-runner-{REL + 1}" in lxd.trusted and lxd.metrics_certs
    assert lxd.config["loki.api.url"] == "http://10.1.2.3:3100"
    return out


@pytest.mark.parametrize("endpoint", ["lxd-cluster", "metrics-endpoint", "logging"])
def test_a_leader_being_removed_untrusts_and_unsets_nothing_when_its_relations_break(
    lxd, cluster_pem, goal_state, endpoint
):
    out = served(lxd, cluster_pem)
    trusted, metrics, url = dict(lxd.trusted), dict(lxd.metrics_certs), lxd.config["loki.api.url"]
    goal_state.set({ME: "dying", "lxd-cluster/1": "active", "lxd-cluster/2": "active"})
    relation = next(r for r in out.relations if r.endpoint == endpoint)
    # ops leaves the broken relation out of model.relations, as in Juju's relation-broken hook
    after = ctx().run(ctx().on.relation_broken(relation), out)
    assert lxd.trusted == trusted and lxd.metrics_certs == metrics and lxd.config["loki.api.url"] == url
    assert after.unit_status == charm.LEAVING


def test_a_client_relation_removed_while_the_leader_stays_is_untrusted(lxd, cluster_pem, goal_state):
    out = served(lxd, cluster_pem)
    goal_state.set({ME: "active", "lxd-cluster/1": "active", "lxd-cluster/2": "active"})
    relation = next(r for r in out.relations if r.endpoint == "lxd-cluster")
    ctx().run(ctx().on.relation_broken(relation), out)
    assert f"juju-runner-{REL + 1}" not in lxd.trusted
    assert lxd.metrics_certs  # the scraper's relation stays


def test_a_unit_being_removed_issues_no_join_credential(lxd, cluster_pem, goal_state):
    """The leader issues for a unit that announced itself, except in a hook it runs while Juju removes it."""
    joiner = announced(3)
    state = related(cluster_pem, scraper(), peers={1: announced(1), 2: announced(2), 3: joiner})
    lxd.be_member("lxd-cluster-0", "lxd-cluster-1", "lxd-cluster-2")
    goal_state.set({ME: "active", "lxd-cluster/1": "active", "lxd-cluster/2": "active", "lxd-cluster/3": "waiting"})
    staying = ctx().run(ctx().on.relation_broken(scraper()), state)
    assert "lxd-cluster-3" in lxd.tokens
    lxd.tokens.clear()
    assert [o["join-unit"] for o in offers(staying.get_relation(REL).local_app_data)] == ["lxd-cluster/3"]

    goal_state.set({ME: "dying", "lxd-cluster/1": "active", "lxd-cluster/2": "active", "lxd-cluster/3": "waiting"})
    leaving = ctx().run(ctx().on.relation_broken(scraper()), state)
    assert offers(leaving.get_relation(REL).local_app_data) == []
    assert not [s for s in leaving.secrets if (s.label or "").startswith("join-")]
    assert "lxd-cluster-3" not in lxd.tokens


def test_a_member_whose_unit_juju_is_removing_is_leaving_not_an_orphan(lxd, cluster_pem, goal_state):
    """Juju drops the removed unit from the others' view at once (PrepareLeaveScope), while its LXD
    is still a member: the others say it is leaving, not "remove-node it"."""
    goal_state.set({ME: "active", "lxd-cluster/1": "active", "lxd-cluster/2": "dying"})
    state = make_state(leader=False, app=published(cluster_pem), peers={1: announced(1)})
    out = ctx().run(ctx().on.update_status(), state)
    assert out.unit_status.name == "active"
    assert "leaving: lxd-cluster-2" in out.unit_status.message
    assert "remove-node" not in out.unit_status.message and "force-remove" not in out.unit_status.message


def test_a_member_with_no_unit_in_juju_is_still_an_orphan_to_remove_node(lxd, cluster_pem, goal_state):
    goal_state.set({ME: "active", "lxd-cluster/1": "active"})  # lxd-cluster/2 was removed with --force
    state = make_state(leader=False, app=published(cluster_pem), peers={1: announced(1)})
    out = ctx().run(ctx().on.update_status(), state)
    assert "member lxd-cluster-2 is online but has no unit: remove-node it (evacuate=true)" in out.unit_status.message


def test_a_member_joined_before_its_unit_is_seen_here_is_neither_orphan_nor_stale(lxd, cluster_pem, goal_state):
    goal_state.set({ME: "active", "lxd-cluster/1": "active", "lxd-cluster/2": "waiting"})
    state = make_state(leader=False, app=published(cluster_pem), peers={1: announced(1)})
    out = ctx().run(ctx().on.update_status(), state)
    assert out.unit_status.message.startswith("member lxd-cluster-0 of 3")
    assert "no unit" not in out.unit_status.message and "leaving" not in out.unit_status.message


def test_goal_state_is_asked_only_when_a_member_has_no_unit_in_view(lxd, cluster_pem, goal_state):
    state = make_state(leader=False, app=published(cluster_pem), peers={1: announced(1), 2: announced(2)})
    ctx().run(ctx().on.update_status(), state)
    assert goal_state.asked() == 0


def test_goal_state_reads_jujus_json_and_names_the_units_being_removed(goal_state):
    from goal_state import goal_state as read

    goal_state.set({ME: "active", "lxd-cluster/1": "dying", "lxd-cluster/2": "maintenance"})
    juju = read()
    assert juju.units == {ME: "active", "lxd-cluster/1": "dying", "lxd-cluster/2": "maintenance"}
    assert juju.dying == {"lxd-cluster/1"}


def test_an_offline_member_whose_unit_juju_is_removing_is_stale_and_needs_force_remove(lxd, cluster_pem, goal_state):
    """Its machine is dead: no departure hook of its unit can run, the member cannot leave by itself."""
    lxd.member_rows = [
        dataclasses.replace(m, status="Offline") if m.server_name == "lxd-cluster-2" else m for m in lxd.member_rows
    ]
    goal_state.set({ME: "active", "lxd-cluster/1": "active", "lxd-cluster/2": "dying"})
    state = make_state(leader=False, app=published(cluster_pem), peers={1: announced(1)})
    out = ctx().run(ctx().on.update_status(), state)
    assert "stale member lxd-cluster-2 has no unit: run force-remove" in out.unit_status.message
    assert "leaving" not in out.unit_status.message
