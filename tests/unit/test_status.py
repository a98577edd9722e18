"""The unit's status: one honest message per member, and what needs the operator's attention."""

from __future__ import annotations

from ops import testing
from states import announced, ctx, make_state, published

from models import Member


# -- a member's message ----------------------------------------------------------------------------
def test_three_healthy_members(lxd, cluster_pem):
    lxd.be_member("lxd-cluster-0", "lxd-cluster-1", "lxd-cluster-2")
    out = ctx().run(
        ctx().on.update_status(),
        make_state(leader=True, app=published(cluster_pem), peers={1: announced(1), 2: announced(2)}),
    )
    assert out.unit_status == testing.ActiveStatus("member lxd-cluster-0 of 3 (database), fully operational")


def test_a_standby_member_says_so(lxd, cluster_pem):
    lxd.be_member("lxd-cluster-3", "lxd-cluster-0", "lxd-cluster-1", "lxd-cluster-2")
    lxd.member_rows[0] = Member("lxd-cluster-3", "u", ("database-standby",), "Online", "Fully operational")
    out = ctx(3).run(
        ctx(3).on.update_status(),
        make_state(ip="10.0.0.4", app=published(cluster_pem), peers={i: announced(i) for i in range(3)}),
    )
    assert out.unit_status == testing.ActiveStatus("member lxd-cluster-3 of 4 (database-standby), fully operational")


def test_an_offline_member_is_named(lxd, cluster_pem):
    lxd.be_member("lxd-cluster-0", "lxd-cluster-1", "lxd-cluster-2")
    lxd.member_rows[1] = Member("lxd-cluster-1", "u", ("database",), "Offline", "No heartbeat since 30s")
    out = ctx().run(
        ctx().on.update_status(),
        make_state(leader=True, app=published(cluster_pem), peers={1: announced(1), 2: announced(2)}),
    )
    assert out.unit_status == testing.ActiveStatus(
        "member lxd-cluster-0 of 3 (database), fully operational; not online: lxd-cluster-1"
    )


def test_status_names_offline_and_stale_members(lxd, cluster_pem):
    lxd.be_member("lxd-cluster-0", "lxd-cluster-1", "lxd-cluster-2")
    lxd.member_rows[2] = Member("lxd-cluster-2", "u", ("database",), "Offline", "No heartbeat")
    out = ctx().run(
        ctx().on.update_status(), make_state(leader=True, app=published(cluster_pem), peers={1: announced(1)})
    )
    assert out.unit_status.message == (
        "member lxd-cluster-0 of 3 (database), fully operational; not online: lxd-cluster-2; "
        "stale member lxd-cluster-2 has no unit: run force-remove"
    )


def test_evacuated_member_is_in_maintenance(lxd, cluster_pem):
    lxd.be_member("lxd-cluster-0", "lxd-cluster-1", "lxd-cluster-2")
    lxd.set_member_state("lxd-cluster-0", "evacuate")
    out = ctx().run(
        ctx().on.update_status(),
        make_state(leader=True, app=published(cluster_pem), peers={1: announced(1), 2: announced(2)}),
    )
    assert out.unit_status.name == "maintenance"


# -- fewer than three members ----------------------------------------------------------------------
def test_two_members_of_two_planned_warn_about_redundancy(lxd, cluster_pem):
    lxd.be_member("lxd-cluster-0", "lxd-cluster-1")
    out = ctx().run(
        ctx().on.update_status(),
        make_state(leader=True, app=published(cluster_pem), peers={1: announced(1)}, planned_units=2),
    )
    assert out.unit_status == testing.ActiveStatus(
        "member lxd-cluster-0 of 2 (database), fully operational; fewer than 3 members: no database redundancy"
    )


def test_two_members_while_a_third_is_planned_do_not_warn(lxd, cluster_pem):
    lxd.be_member("lxd-cluster-0", "lxd-cluster-1")
    out = ctx().run(
        ctx().on.update_status(),
        make_state(leader=True, app=published(cluster_pem), peers={1: announced(1), 2: announced(2)}, planned_units=3),
    )
    assert "fewer than 3" not in out.unit_status.message


def test_an_online_member_without_a_unit_is_reported(lxd, cluster_pem):
    """Issue 13, item 1: a member whose unit was removed although it never left still serves."""
    lxd.be_member("lxd-cluster-0", "lxd-cluster-1", "lxd-cluster-2")
    out = ctx().run(
        ctx().on.update_status(), make_state(leader=True, app=published(cluster_pem), peers={1: announced(1)})
    )
    assert "member lxd-cluster-2 is online but has no unit: remove-node it" in out.unit_status.message


def test_a_member_marked_leaving_is_named(lxd, cluster_pem):
    lxd.be_member("lxd-cluster-0", "lxd-cluster-1", "lxd-cluster-2")
    lxd.mark_leaving("lxd-cluster-2", "leaving")
    peers = {1: announced(1), 2: announced(2)}
    out = ctx().run(ctx().on.update_status(), make_state(leader=True, app=published(cluster_pem), peers=peers))
    assert out.unit_status.message.endswith("; leaving: lxd-cluster-2")
