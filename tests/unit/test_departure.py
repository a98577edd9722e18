"""Scale-in: a departing member moves its instances to the emptiest online members, then leaves."""

from __future__ import annotations

import dataclasses

import pytest
from ops import testing
from states import REL, announced, ctx, make_state, published

from action_checks import ActionError
from departure import pick_target
from models import Instance


# -- juju remove-unit ------------------------------------------------------------------------------
def test_departing_unit_moves_its_instances_then_leaves(lxd, cluster_pem):
    lxd.be_member("lxd-cluster-2", "lxd-cluster-0", "lxd-cluster-1")
    lxd.instance_rows = [Instance("a", "lxd-cluster-2", "Running"), Instance("b", "lxd-cluster-0", "Running")]
    state = make_state(ip="10.0.0.3", app=published(cluster_pem), peers={0: announced(0), 1: announced(1)})
    ctx(2).run(ctx(2).on.relation_departed(state.get_relation(REL), remote_unit=0, departing_unit=2), state)
    assert lxd.moves == [("a", "lxd-cluster-1")]  # the emptiest other member
    assert lxd.removed == [("lxd-cluster-2", False)]


def test_departing_unit_moves_the_instances_of_every_project_within_their_projects(lxd, cluster_pem):
    """A client's own project (client-access=own-project) holds instances as `default` does; the same
    name in two projects is two instances. Both move, stay in their projects, and run again if they ran."""
    lxd.be_member("lxd-cluster-2", "lxd-cluster-0", "lxd-cluster-1")
    lxd.instance_rows = [
        Instance("web", "lxd-cluster-2", "Running"),
        Instance("web", "lxd-cluster-2", "Running", project="runner"),
        Instance("db", "lxd-cluster-2", "Stopped", project="runner"),
        Instance("b", "lxd-cluster-0", "Running"),
    ]
    _, error = departing(lxd)
    assert error is None
    assert lxd.removed == [("lxd-cluster-2", False)]
    assert [ref for ref, _ in lxd.moves] == ["web", "runner/web", "runner/db"]
    after = {(i.project, i.name): (i.location, i.status) for i in lxd.instance_rows}
    assert after == {
        ("default", "web"): ("lxd-cluster-1", "Running"),
        ("runner", "web"): ("lxd-cluster-0", "Running"),
        ("runner", "db"): ("lxd-cluster-1", "Stopped"),
        ("default", "b"): ("lxd-cluster-0", "Running"),
    }


def test_a_project_instance_that_cannot_start_elsewhere_goes_back_in_its_project_and_is_named_so(lxd):
    lxd.be_member("lxd-cluster-2", "lxd-cluster-0", "lxd-cluster-1")
    lxd.instance_rows = [
        Instance("web", "lxd-cluster-2", "Running"),
        Instance("web", "lxd-cluster-2", "Running", project="runner"),
    ]
    lxd.unstartable = {("runner/web", "lxd-cluster-0"), ("runner/web", "lxd-cluster-1")}
    _, error = departing(lxd)
    assert "runner/web cannot start on lxd-cluster-1" in str(error) and lxd.removed == []
    assert lxd.instance(name="web", project="runner") == Instance(
        "web", "lxd-cluster-2", "Running", project="runner"
    )  # moved back, running again, in its project
    assert lxd.instance("web").location == "lxd-cluster-0"  # the default project's `web` moved on
    mine = next(m for m in lxd.member_rows if m.server_name == "lxd-cluster-2")
    assert mine.leaving.startswith("leaving runner/web@")  # the failure is recorded by project/name
    calls = len(lxd.calls)
    _, error = departing(lxd)  # Juju's retry soon after: that instance is not stopped again
    assert "runner/web could not move" in str(error)
    assert [c for c in lxd.calls[calls:] if c in ("set_instance_state", "migrate")] == []


# -- placement -------------------------------------------------------------------------------------
def test_pick_target_is_the_emptiest_member():
    assert pick_target({"m1": 2, "m2": 0, "m3": 0}) == "m2"
    with pytest.raises(ActionError):
        pick_target({})


# -- a departure that cannot complete fails the hook and strands nothing -----------------------------
def departing(lxd, uid=2, peers=(0, 1), planned=None):
    """Run the departing unit's own relation-departed; returns (output state or None, error or None)."""
    state = make_state(ip=f"10.0.0.{uid + 1}", peers={p: announced(p) for p in peers}, planned_units=planned or 2)
    state = dataclasses.replace(state, leader=False)
    event = ctx(uid).on.relation_departed(state.get_relation(REL), remote_unit=peers[0], departing_unit=uid)
    try:
        return ctx(uid).run(event, state), None
    except testing.errors.UncaughtCharmError as e:
        return None, e.__cause__


def test_an_instance_that_cannot_start_elsewhere_fails_the_hook_and_runs_again_where_it_was(lxd):
    lxd.be_member("lxd-cluster-2", "lxd-cluster-0", "lxd-cluster-1")
    lxd.instance_rows = [Instance("pinned", "lxd-cluster-2", "Running")]
    lxd.unstartable = {("pinned", "lxd-cluster-0"), ("pinned", "lxd-cluster-1")}
    out, error = departing(lxd)
    assert type(error).__name__ == "DepartureFailed"  # the hook fails: Juju holds the removal and retries
    assert "pinned cannot start on lxd-cluster-0" in str(error) and "juju resolve lxd-cluster/2" in str(error)
    assert lxd.instance_rows == [Instance("pinned", "lxd-cluster-2", "Running")]  # moved back, running
    assert lxd.moves == [("pinned", "lxd-cluster-0"), ("pinned", "lxd-cluster-2")]
    assert lxd.removed == [] and "lxd-cluster-2" in [m.server_name for m in lxd.member_rows]


def test_a_refused_migration_fails_the_hook_and_restarts_the_instance_in_place(lxd):
    lxd.be_member("lxd-cluster-2", "lxd-cluster-0", "lxd-cluster-1")
    lxd.instance_rows = [Instance("big", "lxd-cluster-2", "Running")]
    lxd.unmovable = {"big": "Failed creating instance record: no space left on device"}
    _, error = departing(lxd)
    assert "big cannot move to lxd-cluster-0: Failed creating instance record" in str(error)
    assert lxd.instance_rows == [Instance("big", "lxd-cluster-2", "Running")] and lxd.removed == []


def test_a_retry_soon_after_a_failed_move_does_not_stop_the_instance_again(lxd):
    lxd.be_member("lxd-cluster-2", "lxd-cluster-0", "lxd-cluster-1")
    lxd.instance_rows = [Instance("pinned", "lxd-cluster-2", "Running")]
    lxd.unstartable = {("pinned", "lxd-cluster-0"), ("pinned", "lxd-cluster-1")}
    departing(lxd)
    calls = len(lxd.calls)
    _, error = departing(lxd)  # Juju's retry a few seconds later
    assert "could not move" in str(error) and "not stopped again before" in str(error)
    assert [c for c in lxd.calls[calls:] if c in ("set_instance_state", "migrate")] == []


def test_the_hook_succeeds_once_the_instance_can_move(lxd):
    lxd.be_member("lxd-cluster-2", "lxd-cluster-0", "lxd-cluster-1")
    lxd.instance_rows = [Instance("pinned", "lxd-cluster-2", "Running")]
    lxd.unmovable = {"pinned": "no room"}
    departing(lxd)
    lxd.unmovable = {}
    lxd.member_rows = [
        dataclasses.replace(m, leaving="leaving") if m.server_name == "lxd-cluster-2" else m for m in lxd.member_rows
    ]  # the failure record aged out (or the operator cleared it)
    out, error = departing(lxd)
    assert error is None and lxd.removed == [("lxd-cluster-2", False)]
    assert out.get_relation(REL).local_unit_data["left"] == "yes"


def test_a_departing_member_never_receives_instances(lxd):
    lxd.be_member("lxd-cluster-3", "lxd-cluster-0", "lxd-cluster-1", "lxd-cluster-2")
    lxd.mark_leaving("lxd-cluster-0", "leaving")  # another unit is on its way out
    lxd.instance_rows = [Instance(f"c{i}", "lxd-cluster-3", "Running") for i in range(4)]
    _, error = departing(lxd, uid=3, peers=(0, 1, 2), planned=2)
    assert error is None
    assert {target for _, target in lxd.moves} == {"lxd-cluster-1", "lxd-cluster-2"}


def test_a_unit_that_cannot_tell_which_other_unit_leaves_fails_and_retries(lxd, monkeypatch):
    """Juju plans 2 units to stay, yet 3 unmarked members have units: another departing unit
    has not marked its member yet, not even after the bounded wait. Moving now could put instances on it."""
    import departure

    waits: list[float] = []
    monkeypatch.setattr(departure, "PEER_MARK_WAIT", 0.05)
    monkeypatch.setattr(departure.time, "sleep", lambda seconds: waits.append(seconds))
    lxd.be_member("lxd-cluster-3", "lxd-cluster-0", "lxd-cluster-1", "lxd-cluster-2")
    lxd.instance_rows = [Instance("c1", "lxd-cluster-3", "Running")]
    _, error = departing(lxd, uid=3, peers=(0, 1, 2), planned=2)
    assert "but Juju plans 2: another unit is leaving" in str(error)
    assert lxd.moves == [] and lxd.removed == []
    assert next(m for m in lxd.member_rows if m.server_name == "lxd-cluster-3").leaving  # marked for the others
    assert waits  # it waited before it gave up


def test_a_unit_waits_in_its_hook_for_the_other_departing_unit_to_mark_itself(lxd, monkeypatch):
    """`juju remove-unit 2 3`: unit 3's hook finds unit 2's member not marked yet; unit 2's hook, running
    at the same time, marks it a moment later. Unit 3 waits for that, then moves to the one that stays."""
    import departure

    def the_other_hook_marks_its_member(seconds: float) -> None:
        lxd.mark_leaving("lxd-cluster-2", "leaving")

    monkeypatch.setattr(departure.time, "sleep", the_other_hook_marks_its_member)
    lxd.be_member("lxd-cluster-3", "lxd-cluster-0", "lxd-cluster-1", "lxd-cluster-2")
    lxd.instance_rows = [Instance("c1", "lxd-cluster-3", "Running"), Instance("c0", "lxd-cluster-1", "Running")]
    _, error = departing(lxd, uid=3, peers=(0, 1, 2), planned=2)
    assert error is None
    assert lxd.moves == [("c1", "lxd-cluster-0")] and lxd.removed == [("lxd-cluster-3", False)]


def test_a_second_departure_hook_after_leaving_does_nothing(lxd):
    lxd.be_member("lxd-cluster-2", "lxd-cluster-0", "lxd-cluster-1")
    lxd.ready = False  # LXD restarts as a standalone server right after the removal
    state = make_state(ip="10.0.0.3", unit={"left": "yes"}, peers={0: announced(0)})
    ctx(2).run(ctx(2).on.relation_departed(state.get_relation(REL), remote_unit=0, departing_unit=2), state)
    assert lxd.mutations() == []


def test_storage_detaching_while_a_member_moves_the_instances_and_leaves_first(lxd):
    lxd.be_member("lxd-cluster-2", "lxd-cluster-0", "lxd-cluster-1")
    lxd.instance_rows = [Instance("a", "lxd-cluster-2", "Running")]
    storage = testing.Storage("local", index=0)
    state = make_state(ip="10.0.0.3", peers={0: announced(0), 1: announced(1)}, storages=[storage], planned_units=2)
    ctx(2).run(ctx(2).on.storage_detaching(storage), state)
    assert lxd.moves == [("a", "lxd-cluster-0")] and lxd.removed == [("lxd-cluster-2", False)]


def test_storage_detaching_that_cannot_leave_fails_the_hook(lxd):
    lxd.be_member("lxd-cluster-2", "lxd-cluster-0", "lxd-cluster-1")
    lxd.instance_rows = [Instance("a", "lxd-cluster-2", "Running")]
    lxd.unmovable = {"a": "no room"}
    storage = testing.Storage("local", index=0)
    state = make_state(ip="10.0.0.3", peers={0: announced(0), 1: announced(1)}, storages=[storage], planned_units=2)
    with pytest.raises(testing.errors.UncaughtCharmError, match="cannot leave the cluster"):
        ctx(2).run(ctx(2).on.storage_detaching(storage), state)
    assert lxd.removed == []


def test_remove_node_never_moves_onto_a_leaving_member(lxd):
    from departure import move_off

    lxd.be_member("lxd-cluster-0", "lxd-cluster-1", "lxd-cluster-2", "lxd-cluster-3")
    lxd.mark_leaving("lxd-cluster-2", "leaving")
    lxd.instance_rows = [Instance("x", "lxd-cluster-3", "Stopped"), Instance("y", "lxd-cluster-1", "Running")]
    assert move_off(lxd, "lxd-cluster-3", lxd.instances(location="lxd-cluster-3"), print) == {"x": "lxd-cluster-0"}
