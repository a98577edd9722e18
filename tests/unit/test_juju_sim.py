"""The Juju stand-in (tests/harness/juju.py) must not hide what Juju would show.

Each test drives a tiny charm through JujuSim and failed on the stand-in before issue 13: a
departing unit whose hook raised was marked gone; a new unit saw every peer's databag from its
first hook; a failed hook left no trace on the unit; a unit-owned secret was readable by every
unit; required action parameters were not enforced; two departing units' hooks did not
interleave (one ran to its end inside remove_unit). The tests after the Probe charm each failed on
the stand-in before issue 22 (git show 60f62c6:tests/harness/juju.py): one per Juju 3.6 rule it
follows (docs/reliability.md lists them with the Juju source line).
"""

from __future__ import annotations

import json
import os
import subprocess
import time

import ops
import ops.hookcmds
import pytest

from tests.harness.juju import HookFailed, JujuRefused, JujuSim

META = {
    "name": "toy",
    "peers": {"cluster": {"interface": "toy_peers"}},
    "storage": {"local": {"type": "block", "multiple": {"range": "0-1"}}},
}
ACTIONS = {
    "greet": {
        "params": {"name": {"type": "string"}, "loud": {"type": "boolean", "default": False}},
        "required": ["name"],
        "additionalProperties": False,
    }
}


class Numbered(ops.CharmBase):
    @property
    def uid(self) -> int:
        return int(self.unit.name.split("/")[1])


class Toy(Numbered):
    """Writes its id into its databag, records what it sees, fails where a test asks it to."""

    seen: list[tuple[int, str, dict]] = []  # (unit id, hook, peer databags it could read)
    fail_departure: set[int] = set()
    read: dict[int, str] = {}  # unit id -> secret content it could read (or the error)
    grant = True

    def __init__(self, framework: ops.Framework):
        super().__init__(framework)
        for event in (self.on.install, self.on.config_changed, self.on.cluster_relation_changed):
            framework.observe(event, self._look)
        framework.observe(self.on.cluster_relation_departed, self._departed)
        framework.observe(self.on.leader_elected, self._share)
        framework.observe(self.on.greet_action, self._greet)

    def _look(self, event: ops.EventBase) -> None:
        relation = self.model.get_relation("cluster")
        if relation is None:
            return
        relation.data[self.unit]["id"] = str(self.uid)
        peers = {u.name: dict(relation.data[u]) for u in relation.units}
        Toy.seen.append((self.uid, type(event).__name__, peers))
        secret_id = relation.data[self.app].get("secret") or next(
            (d.get("secret") for d in peers.values() if d.get("secret")), None
        )
        if secret_id and self.uid != 0:
            try:
                Toy.read[self.uid] = self.model.get_secret(id=secret_id).get_content(refresh=True)["word"]
            except (ops.SecretNotFoundError, ops.ModelError) as e:
                Toy.read[self.uid] = f"denied: {type(e).__name__}"

    def _share(self, _: ops.EventBase) -> None:
        relation = self.model.get_relation("cluster")
        if relation is None:
            return
        secret = self.unit.add_secret({"word": "swordfish"}, label="mine")
        if Toy.grant:
            secret.grant(relation)
        relation.data[self.unit]["secret"] = secret.get_info().id

    def _departed(self, event: ops.RelationDepartedEvent) -> None:
        if event.departing_unit == self.unit and self.uid in Toy.fail_departure:
            raise RuntimeError("cannot leave")

    def _greet(self, event: ops.ActionEvent) -> None:
        event.set_results({"hello": event.params["name"]})


def peer_sim(charm_type: type, app: str) -> JujuSim:
    """A JujuSim of a toy charm whose only relation is its peer relation `cluster`."""
    return JujuSim(
        charm_type,
        env_for_unit=lambda uid: {},
        address_for_unit=lambda uid: f"10.9.0.{uid + 1}",
        app=app,
        context_kw={"meta": {"name": app, "peers": {"cluster": {"interface": app}}}},
    )


@pytest.fixture
def sim():
    Toy.seen, Toy.fail_departure, Toy.read, Toy.grant = [], set(), {}, True
    return JujuSim(
        Toy,
        env_for_unit=lambda uid: {},
        address_for_unit=lambda uid: f"10.9.0.{uid + 1}",
        app="toy",
        context_kw={"meta": META, "actions": ACTIONS},
    )


def test_a_departing_unit_whose_hook_raises_stays_in_error_and_is_retried(sim):
    sim.deploy(3)
    sim.settle()
    Toy.fail_departure = {2}
    sim.remove_unit(2)
    with pytest.raises(HookFailed):
        sim.settle()
    unit = sim.units[2]
    assert unit.alive and unit.dying and "cannot leave" in unit.error
    failures = [r for r in sim.log if r.uid == 2 and r.name.startswith("relation_departed") and r.error]
    assert len(failures) >= sim.max_attempts  # Juju retried it; it did not go
    assert 2 in sim.statuses()
    Toy.fail_departure = set()  # the operator fixed it: Juju's next retry (or `juju resolve`) succeeds
    sim.settle()  # the failed hook is still queued: it is retried first
    assert not sim.units[2].alive and 2 not in sim.statuses()


def test_a_new_unit_sees_no_peer_databag_before_relation_joined(sim):
    sim.deploy(2)
    sim.settle()
    Toy.seen.clear()
    uid = sim.add_unit()
    sim.settle()
    first = next(s for s in Toy.seen if s[0] == uid)
    assert first[2] == {}  # nothing yet: relation-joined comes later
    joined = [s for s in Toy.seen if s[0] == uid and s[1] == "RelationChangedEvent"]
    assert joined and set(joined[-1][2]) == {"toy/0", "toy/1"}


def test_a_unit_owned_secret_is_readable_only_when_granted(sim):
    Toy.grant = False
    sim.deploy(2)
    sim.settle()
    assert Toy.read[1].startswith("denied")
    Toy.read.clear()
    Toy.grant = True
    sim.elect(0)  # the owner shares a new secret, granted over the peer relation this time
    sim.settle()
    assert Toy.read[1] == "swordfish"


def test_required_action_parameters_are_enforced_before_the_charm_runs(sim):
    sim.deploy(1)
    sim.settle()
    missing = sim.run_action(0, "greet")
    assert '"name" property is missing and required' in missing.failure and missing.results == {}
    extra = sim.run_action(0, "greet", name="x", colour="red")
    assert 'additional property "colour" is not allowed' in extra.failure
    wrong = sim.run_action(0, "greet", name="x", loud="yes")
    assert "loud : must be of type boolean" in wrong.failure
    assert sim.run_action(0, "greet", name="x").results == {"hello": "x"}


def test_a_required_parameter_with_a_default_is_satisfied_as_in_juju(sim):
    ACTIONS["greet"]["required"] = ["name", "loud"]  # loud has a default: Juju inserts it, then validates
    try:
        sim.deploy(1)
        sim.settle()
        assert sim.run_action(0, "greet", name="x").ok
    finally:
        ACTIONS["greet"]["required"] = ["name"]


def test_two_departing_units_hooks_interleave_and_neither_is_planned(sim):
    sim.deploy(4)
    sim.settle()
    sim.log.clear()
    sim.remove_units(2, 3)
    planned = {uid: sim._state_for(sim.units[uid]).planned_units for uid in (0, 2)}
    assert planned == {0: 2, 2: 2}  # goal state: both are dying from the start
    sim.settle()
    order = [r.uid for r in sim.log if r.name.startswith("relation_departed") and r.uid in (2, 3)]
    assert order[:4] == [2, 3, 2, 3]
    assert sorted(sim.statuses()) == [0, 1]


class Leaver(Numbered):
    """Each departing unit marks itself in a store every unit sees at once (LXD's database, in the charm),
    then needs every other departing unit marked: the marks tell which units stay. It waits for them a
    bounded time (polling), then fails its hook: the fallback that never guesses."""

    members: set[int] = set()
    marks: set[int] = set()

    def __init__(self, framework: ops.Framework):
        super().__init__(framework)
        framework.observe(self.on.install, self._installed)
        framework.observe(self.on.cluster_relation_departed, self._departed)

    def _installed(self, _: ops.EventBase) -> None:
        Leaver.members.add(self.uid)

    def _departed(self, event: ops.RelationDepartedEvent) -> None:
        if event.departing_unit != self.unit:
            return
        Leaver.marks.add(self.uid)
        for _ in range(5):
            if len(Leaver.members - Leaver.marks) <= self.app.planned_units():
                return
            time.sleep(0.01)
        raise RuntimeError("another departing unit has not marked itself")


@pytest.fixture
def leavers():
    Leaver.members, Leaver.marks = set(), set()
    sim = peer_sim(Leaver, "leaver")
    sim.deploy(4)
    sim.settle()
    sim.log.clear()
    return sim


def test_one_after_another_the_first_departing_unit_waits_in_vain_and_its_hook_fails(leavers):
    """The sequential order: unit 3's hook cannot run while unit 2's waits, so unit 2's wait ends
    unanswered and its hook fails (Juju retries it; then unit 3 has marked itself)."""
    leavers.remove_units(2, 3)
    leavers.settle()
    errors = [(r.uid, r.name) for r in leavers.log if r.error]
    assert errors and errors[0][0] == 2
    assert sorted(leavers.statuses()) == [0, 1]


def test_interleaved_the_other_units_hook_runs_while_one_waits(leavers):
    """Juju runs both units' hooks at the same time: unit 3 marks itself while unit 2 waits; no hook fails."""
    with leavers.interleaved():
        leavers.remove_units(2, 3)
        leavers.settle()
    assert [r for r in leavers.log if r.error] == []
    assert sorted(leavers.statuses()) == [0, 1]
    first = next(i for i, r in enumerate(leavers.log) if r.uid == 2 and r.name.startswith("relation_departed"))
    inside = [r.uid for r in leavers.log[:first]]
    assert 3 in inside  # unit 3's hook ran (and was recorded) before unit 2's, which it ran inside of


class Relay(ops.CharmBase):
    """Unit 0 says go at once (from relation-created: no peer relation before); unit k says go once unit
    k-1 has (a chain); with parallel, each at once."""

    parallel = False

    def __init__(self, framework: ops.Framework):
        super().__init__(framework)
        for event in (self.on.cluster_relation_created, self.on.cluster_relation_changed, self.on.update_status):
            framework.observe(event, self._relay)

    def _relay(self, _: ops.EventBase) -> None:
        relation = self.model.get_relation("cluster")
        if relation is None:
            return
        uid = int(self.unit.name.rsplit("/", 1)[1])
        before = [u for u in relation.units if int(u.name.rsplit("/", 1)[1]) == uid - 1]
        if self.parallel or uid == 0 or (before and relation.data[before[0]].get("go")):
            relation.data[self.unit]["go"] = "yes"


def relay_sim(parallel: bool) -> JujuSim:
    Relay.parallel = parallel
    return peer_sim(Relay, "relay")


@pytest.mark.parametrize("n", [2, 4, 6])
def test_rounds_are_the_length_of_a_chain_of_hooks_each_waiting_for_the_previous_ones_write(n):
    sim = relay_sim(parallel=False)
    sim.deploy(n)
    sim.settle()
    assert all(sim.units[u].unit_data.get("go") for u in range(n))
    assert sim.rounds() == n  # unit k's write waits for unit k-1's: one round each


def test_writes_that_need_nothing_from_each_other_take_one_round_however_many_units():
    sim = relay_sim(parallel=True)
    sim.deploy(6)
    sim.settle()
    assert sim.rounds() == 1
    assert sim.floor() == sim.hooks_run()  # nothing written after a peer had read the databag: no extra hook


def test_a_hook_the_model_queued_still_waits_for_the_write_it_reads():
    """Unit 1's relation-changed for unit 0 was queued at deploy, but it reads unit 0's write: depth 2."""
    sim = relay_sim(parallel=False)
    sim.deploy(2)
    sim.settle()
    writer = next(r for r in sim.log if r.uid == 1 and r.wrote)
    assert writer.depth == 2


# -- issue 22: Juju 3.6's uniter, one test per rule ------------------------------------------------
PROBE_META = {
    "name": "probe",
    "peers": {"cluster": {"interface": "probe_peers"}},
    "requires": {"db": {"interface": "db"}},
    "storage": {"local": {"type": "block", "multiple": {"range": "0-1"}}},
}
PROBE_CONFIG = {"options": {"colour": {"type": "string", "default": "red"}}}
PROBE_ACTIONS = {"goal": {}, "read": {"params": {"id": {"type": "string"}}}}


class Probe(Numbered):
    """Records every event it gets (unit, event, relation, remote unit, departing unit, whether the
    peer relation exists); `Probe.act(charm, event)`, when set, does what a test asks."""

    events: list[dict] = []
    act = None

    def __init__(self, framework: ops.Framework):
        super().__init__(framework)
        for name, source in self.on.events().items():
            if not name.endswith("_action") and not name.startswith("collect_"):
                framework.observe(source, self._record)
        framework.observe(self.on.goal_action, self._goal)
        framework.observe(self.on.read_action, self._read)

    def _record(self, event: ops.EventBase) -> None:
        unit = getattr(event, "unit", None)
        departing = getattr(event, "departing_unit", None)
        relation = getattr(event, "relation", None)
        Probe.events.append(
            {
                "uid": self.uid,
                "event": type(event).__name__,
                "relation": relation.name if relation is not None else None,
                "unit": unit.name if unit is not None else None,
                "departing": departing.name if departing is not None else None,
                "peers": self.model.get_relation("cluster") is not None,
            }
        )
        if Probe.act is not None:
            Probe.act(self, event)

    def _goal(self, event: ops.ActionEvent) -> None:
        raw = subprocess.run(["goal-state", "--format=json"], capture_output=True, text=True, check=True).stdout
        parsed = ops.hookcmds.goal_state()  # ops parses what the tool prints
        event.set_results(
            {
                "raw": raw,
                "dying": [n for n, g in parsed.units.items() if g.status == "dying"],
                "planned": self.app.planned_units(),
            }
        )

    def _read(self, event: ops.ActionEvent) -> None:
        try:
            event.set_results({"content": self.model.get_secret(id=event.params["id"]).get_content()})
        except ops.SecretNotFoundError as e:
            event.fail(f"not found: {e}")


@pytest.fixture
def probe():
    Probe.events, Probe.act = [], None

    def make(storage: bool = False) -> JujuSim:
        return JujuSim(
            Probe,
            env_for_unit=lambda uid: {},
            address_for_unit=lambda uid: f"10.9.0.{uid + 1}",
            storage_for_unit=(lambda uid: f"/dev/loop{40 + uid}") if storage else (lambda uid: None),
            app="probe",
            context_kw={"meta": PROBE_META, "config": PROBE_CONFIG, "actions": PROBE_ACTIONS},
        )

    return make


def events_of(uid: int, since: int = 0) -> list[dict]:
    return [e for e in Probe.events[since:] if e["uid"] == uid]


def test_a_dying_unit_detaches_storage_then_breaks_non_peer_relations_then_departs_peers_then_stops(probe):
    sim = probe(storage=True)
    sim.deploy(3)
    sim.relate("db", "pg")
    sim.settle()
    mark = len(Probe.events)
    sim.remove_unit(2)
    sim.settle()
    order = [(e["event"], e["relation"]) for e in events_of(2, mark)]
    assert order == [
        ("StorageDetachingEvent", None),
        ("RelationDepartedEvent", "db"),
        ("RelationBrokenEvent", "db"),
        ("RelationDepartedEvent", "cluster"),
        ("RelationDepartedEvent", "cluster"),
        ("StopEvent", None),
        ("RemoveEvent", None),
    ]
    assert all(e["departing"] == "probe/2" for e in events_of(2, mark) if e["event"] == "RelationDepartedEvent")
    assert not sim.units[2].alive


def test_the_others_see_a_removed_unit_depart_at_remove_time_not_after_its_hooks(probe):
    sim = probe()
    sim.deploy(3)
    sim.settle()

    def stuck(charm, event):
        if charm.uid == 2 and isinstance(event, ops.StopEvent):
            raise RuntimeError("cannot stop")

    Probe.act = stuck
    mark = len(Probe.events)
    sim.remove_unit(2)
    with pytest.raises(HookFailed):
        sim.settle()
    assert sim.units[2].alive and "cannot stop" in sim.units[2].error  # its hooks did not all succeed
    for uid in (0, 1):
        departed = [e for e in events_of(uid, mark) if e["event"] == "RelationDepartedEvent"]
        assert [e["departing"] for e in departed] == ["probe/2"]
    state = sim._state_for(sim.units[0])
    assert set(state.get_relation(1).peers_data) == {1}  # unit 0's relation no longer lists probe/2


def test_a_dying_unit_runs_only_its_departure_hooks_and_actions(probe):
    sim = probe()
    sim.deploy(2)
    sim.settle()
    mark = len(Probe.events)
    sim.remove_unit(1)
    sim.set_config(colour="blue")
    sim.update_status()
    assert sim.run_action(1, "goal").ok  # actions still run on a dying unit
    sim.settle()
    ran = {e["event"] for e in events_of(1, mark)}
    assert ran == {"RelationDepartedEvent", "StopEvent", "RemoveEvent"}
    assert "ConfigChangedEvent" in {e["event"] for e in events_of(0, mark)}


def test_a_failed_hook_leaves_the_unit_in_error_until_that_hook_succeeds(probe):
    """Juju retries the failed hook (5 s backoff to 5 min, forever; max_attempts per settle() here) and
    runs no other hook of that unit meanwhile; actions still run; only that hook's success clears it."""
    sim = probe()
    sim.deploy(1)
    sim.settle()
    broken = {"on": True}

    def fail_config(charm, event):
        if isinstance(event, ops.ConfigChangedEvent) and broken["on"]:
            raise RuntimeError("bad colour")

    Probe.act = fail_config
    mark = len(Probe.events)
    sim.set_config(colour="blue")
    sim.update_status()
    with pytest.raises(HookFailed):
        sim.settle()
    assert [e["event"] for e in events_of(0, mark)] == ["ConfigChangedEvent"] * sim.max_attempts
    assert sim.units[0].error.startswith("hook failed: config_changed")
    assert sim.run_action(0, "goal").ok and sim.units[0].error  # an action runs, the error stays
    broken["on"] = False
    sim.settle()
    after = [e["event"] for e in events_of(0, mark + sim.max_attempts)]
    assert after[0] == "ConfigChangedEvent" and "UpdateStatusEvent" in after  # the retry first, then the rest
    assert sim.units[0].error == ""


def test_the_peer_relation_does_not_exist_in_storage_attached_or_install(probe):
    sim = probe(storage=True)
    sim.deploy(1)
    sim.settle()
    seen = {e["event"]: e["peers"] for e in events_of(0)}
    assert seen["StorageAttachedEvent"] is False and seen["InstallEvent"] is False
    assert seen["RelationCreatedEvent"] is True and seen["StartEvent"] is True


def publish_a_plan(charm: Probe, event: ops.EventBase) -> None:
    """The leader writes the app databag once, when elected."""
    if isinstance(event, ops.LeaderElectedEvent):
        charm.model.get_relation("cluster").data[charm.app]["plan"] = "v1"


def test_the_leader_gets_relation_changed_for_its_own_app_databag_writes(probe):
    Probe.act = publish_a_plan
    sim = probe()
    sim.deploy(1)
    sim.settle()
    assert any(e["event"] == "RelationChangedEvent" and e["relation"] == "cluster" for e in events_of(0))


def test_an_app_relation_changed_has_no_remote_unit(probe):
    Probe.act = publish_a_plan
    sim = probe()
    sim.deploy(2)
    rid = sim.relate("db", "pg")
    sim.settle()
    mark = len(Probe.events)
    sim.set_remote_data(rid, {"dsn": "x"})  # the remote app's databag: an app change as well
    sim.settle()
    app_changes = [e for e in events_of(1) if e["event"] == "RelationChangedEvent" and e["unit"] is None]
    assert {e["relation"] for e in app_changes} == {"cluster", "db"}
    assert [e["unit"] for e in events_of(0, mark) if e["event"] == "RelationChangedEvent"] == [None]


@pytest.mark.parametrize("how", ["plain", "peek", "refresh"])
def test_any_first_read_of_a_secret_tracks_it_and_new_revisions_fire_secret_changed(probe, how):
    def share(charm, event):
        relation = charm.model.get_relation("cluster")
        if isinstance(event, ops.LeaderElectedEvent):
            secret = charm.app.add_secret({"word": "one"})
            relation.data[charm.app]["secret"] = secret.get_info().id
        elif isinstance(event, ops.ConfigChangedEvent) and charm.unit.is_leader() and relation:
            secret_id = relation.data[charm.app].get("secret")
            if secret_id and charm.config["colour"] == "blue":
                charm.model.get_secret(id=secret_id).set_content({"word": "two"})
        elif isinstance(event, ops.RelationChangedEvent) and charm.uid == 1 and event.unit is None:
            secret = charm.model.get_secret(id=relation.data[charm.app]["secret"])
            read = {
                "plain": secret.get_content,
                "peek": secret.peek_content,
                "refresh": lambda: secret.get_content(refresh=True),
            }
            read[how]()

    Probe.act = share
    sim = probe()
    sim.deploy(2)
    sim.settle()
    mark = len(Probe.events)
    sim.set_config(colour="blue")  # the leader adds a revision
    sim.settle()
    assert "SecretChangedEvent" in {e["event"] for e in events_of(1, mark)}


def test_every_unit_finds_an_app_owned_secret_by_its_label(probe):
    found = {}

    def share(charm, event):
        if isinstance(event, ops.LeaderElectedEvent):
            charm.app.add_secret({"word": "swordfish"}, label="shared")
        elif isinstance(event, ops.StartEvent):
            try:
                found[charm.uid] = charm.model.get_secret(label="shared").get_content()["word"]
            except ops.SecretNotFoundError:
                found[charm.uid] = "not found"

    Probe.act = share
    sim = probe()
    sim.deploy(3)
    sim.settle()
    assert found == {0: "swordfish", 1: "swordfish", 2: "swordfish"}


def test_a_label_clash_between_unit_and_app_owned_secrets_fails_the_hook_at_commit(probe):
    def clash(charm, event):
        if isinstance(event, ops.LeaderElectedEvent):
            charm.app.add_secret({"word": "app"}, label="join")
        elif isinstance(event, ops.StartEvent) and charm.uid == 1:
            charm.model.get_relation("cluster").data[charm.unit]["asked"] = "yes"
            charm.unit.add_secret({"word": "unit"}, label="join")

    Probe.act = clash
    sim = probe()
    sim.deploy(2)
    with pytest.raises(HookFailed, match='secret label "join" .* already exists'):
        sim.settle()
    unit = sim.units[1]
    assert unit.error.startswith("hook failed: start") and 'secret label "join"' in unit.error
    assert "asked" not in unit.unit_data  # nothing of the hook was committed
    assert not [sid for sid, (owner, _) in sim.unit_secrets.items() if owner == 1]


def test_a_removed_units_own_secrets_are_deleted(probe):
    def offer(charm, event):
        if isinstance(event, ops.RelationCreatedEvent) and charm.uid == 1 and event.relation.name == "cluster":
            secret = charm.unit.add_secret({"word": "mine"})
            secret.grant(event.relation)
            event.relation.data[charm.unit]["secret"] = secret.get_info().id

    Probe.act = offer
    sim = probe()
    sim.deploy(2)
    sim.settle()
    secret_id = sim.units[1].unit_data["secret"]
    assert sim.run_action(0, "read", id=secret_id).results["content"] == {"word": "mine"}
    sim.remove_unit(1)
    sim.settle()
    assert secret_id not in sim.unit_secrets
    assert sim.run_action(0, "read", id=secret_id).failure.startswith("not found")


def test_goal_state_lists_every_non_dead_unit_with_its_status_or_dying(probe):
    def keep_status(charm, event):
        charm.unit.status = ops.ActiveStatus("fine")
        if charm.uid == 2 and isinstance(event, ops.StopEvent):
            raise RuntimeError("cannot stop")

    Probe.act = keep_status
    sim = probe()
    sim.deploy(4)
    sim.relate("db", "pg")
    sim.settle()
    sim.vanish(3)  # dead: not listed
    sim.remove_unit(2)  # dying, held in error at its stop hook
    with pytest.raises(HookFailed):
        sim.settle()
    outcome = sim.run_action(0, "goal")
    goal = json.loads(outcome.results["raw"])
    assert set(goal) == {"units", "relations"}
    assert {name: g["status"] for name, g in goal["units"].items()} == {
        "probe/0": "active",
        "probe/1": "active",
        "probe/2": "dying",
    }
    assert all(g["since"].endswith("Z") for g in goal["units"].values())
    assert set(goal["relations"]) == {"db"}  # the peer relation is left out
    assert goal["relations"]["db"]["pg"]["status"] == "joined" and "pg/0" in goal["relations"]["db"]
    assert outcome.results["dying"] == ["probe/2"] and outcome.results["planned"] == 2


def test_a_failed_hooks_relation_secret_and_port_writes_are_discarded_its_status_set_stays(probe):
    def half_way(charm, event):
        if isinstance(event, ops.ConfigChangedEvent) and charm.config["colour"] == "blue":
            charm.unit.status = ops.MaintenanceStatus("half way")
            charm.model.get_relation("cluster").data[charm.unit]["colour"] = "blue"
            charm.unit.add_secret({"word": "lost"}, label="lost")
            charm.unit.open_port("tcp", 8080)
            raise RuntimeError("crash")

    Probe.act = half_way
    sim = probe()
    sim.deploy(1)
    sim.settle()
    sim.set_config(colour="blue")
    with pytest.raises(HookFailed):
        sim.settle()
    unit = sim.units[0]
    assert "colour" not in unit.unit_data and not sim.unit_secrets and not unit.state.opened_ports
    assert (unit.status.name, unit.status.message) == ("maintenance", "half way")


def test_unrelate_runs_relation_departed_then_broken_on_each_unit(probe):
    sim = probe()
    sim.deploy(2)
    rid = sim.relate("db", "pg")
    sim.settle()
    mark = len(Probe.events)
    sim.unrelate(rid)
    sim.settle()
    for uid in (0, 1):
        db = [e["event"] for e in events_of(uid, mark) if e["relation"] == "db"]
        assert db == ["RelationDepartedEvent", "RelationBrokenEvent"]
    assert rid not in sim.remote


# -- Juju version profiles (issue 24 part 3): JujuSim(juju_version=) plays 2.9, 3.6 or 4.0 ------------------
VERSIONED_META = {"name": "versioned", "peers": {"cluster": {"interface": "versioned"}}}
VERSIONED_ACTIONS = {
    "greet": {"params": {"name": {"type": "string"}, "loud": {"type": "boolean"}}, "required": ["name"]},
}
PROFILE_IDS = ["juju29", "juju36", "juju40"]
VERSIONS = {"juju29": "2.9", "juju36": "3.6", "juju40": "4.0"}


class Versioned(ops.CharmBase):
    """Records what Juju gives it: JUJU_VERSION, whether secret-add runs, the upgrade target variables."""

    seen: dict[str, object] = {}

    def __init__(self, framework: ops.Framework):
        super().__init__(framework)
        framework.observe(self.on.install, self._install)
        framework.observe(self.on.pre_series_upgrade, self._upgrade)
        framework.observe(self.on.greet_action, self._greet)

    def _install(self, _: ops.EventBase) -> None:
        Versioned.seen["version"] = os.environ.get("JUJU_VERSION")
        Versioned.seen["ops-version"] = str(self.model.juju_version)
        try:
            self.unit.add_secret({"word": "swordfish"}, label="probe")
            Versioned.seen["secret"] = "added"
        except FileNotFoundError as e:
            Versioned.seen["secret"] = f"missing: {e.filename}"

    def _upgrade(self, _: ops.EventBase) -> None:
        Versioned.seen["target"] = {k: v for k, v in os.environ.items() if k.startswith("JUJU_TARGET_")}

    def _greet(self, event: ops.ActionEvent) -> None:
        event.set_results({"hello": event.params["name"], "loud": event.params.get("loud")})


def toy_sim(charm_type: type, app: str, **context_kw: object) -> JujuSim:
    """A JujuSim of a toy charm with a peer relation (juju_version= picks the Juju it plays)."""
    version = str(context_kw.pop("juju_version", "3.6"))
    context_kw.setdefault("meta", {"name": app, "peers": {"cluster": {"interface": app}}})
    return JujuSim(
        charm_type,
        env_for_unit=lambda uid: {},
        address_for_unit=lambda uid: f"10.9.0.{uid + 1}",
        app=app,
        juju_version=version,
        context_kw=context_kw,
    )


def versioned(profile: str, config: dict | None = None) -> JujuSim:
    Versioned.seen = {}
    return toy_sim(
        Versioned,
        "versioned",
        juju_version=VERSIONS[profile],
        meta=VERSIONED_META,
        actions=VERSIONED_ACTIONS,
        config=config or {"options": {}},
    )


@pytest.mark.parametrize(
    "profile, version, secret",
    [("juju29", "2.9.52", "missing: secret-add"), ("juju36", "3.6.14", "added"), ("juju40", "4.0.1", "added")],
    ids=PROFILE_IDS,
)
def test_juju_version_and_secret_tools_per_profile(profile, version, secret):
    """JUJU_VERSION is the profile's (ops reads it too); on 2.9 secret-add is not there, and the call
    fails as ops fails on a missing executable (FileNotFoundError, not a ModelError)."""
    sim = versioned(profile)
    sim.deploy(1)
    sim.settle()
    assert Versioned.seen == {"version": version, "ops-version": version, "secret": secret}
    assert sim.missing_tool_calls == ([(0, "secret-add")] if profile == "juju29" else [])


@pytest.mark.parametrize("profile", PROFILE_IDS)
def test_a_type_secret_option_is_refused_at_deploy_by_juju29_only(profile):
    sim = versioned(profile, {"options": {"api-key": {"type": "secret"}, "name": {"type": "string"}}})
    if profile == "juju29":
        with pytest.raises(JujuRefused, match='invalid config: option "api-key" has unknown type "secret"'):
            sim.deploy(1)
        assert not sim.units and not sim.queue  # nothing deployed
    else:
        sim.deploy(1)
        sim.settle()
        assert sim.statuses()[0].name == "unknown"


@pytest.mark.parametrize(
    "profile, mine, other",
    [
        ("juju29", "juju run-action --wait versioned/0 greet name=ada loud=y", "juju run versioned/0 greet name=ada"),
        ("juju36", "juju run versioned/0 greet name=ada loud=y", "juju run-action --wait versioned/0 greet name=ada"),
        ("juju40", "juju run versioned/0 greet name=ada loud=y", "juju run-action --wait versioned/0 greet name=ada"),
    ],
    ids=PROFILE_IDS,
)
def test_actions_run_with_each_versions_own_command(profile, mine, other):
    """2.9 runs an action with `run-action` (and shows results only with --wait), 3.x/4.x with `run`;
    both clients read `loud=y` as YAML 1.1 (gopkg.in/yaml.v2: a boolean)."""
    sim = versioned(profile)
    sim.deploy(1)
    sim.settle()
    assert sim.cli(mine).results == {"hello": "ada", "loud": True}
    with pytest.raises(JujuRefused, match="not the action command"):
        sim.cli(other)
    if profile == "juju29":
        with pytest.raises(JujuRefused, match="--wait"):
            sim.cli("juju run-action versioned/0 greet name=ada")


@pytest.mark.parametrize("profile", PROFILE_IDS)
def test_action_values_are_yaml_unless_string_args(profile):
    """`name=1000` is the integer 1000 (refused by the string schema); --string-args keeps it a string."""
    sim = versioned(profile)
    sim.deploy(1)
    sim.settle()
    command = "juju run-action --wait" if profile == "juju29" else "juju run"
    assert "must be of type string" in sim.cli(f"{command} versioned/0 greet name=1000").failure
    assert sim.cli(f"{command} versioned/0 greet --string-args name=1000").results["hello"] == "1000"
    assert sim.cli(f"{command} versioned/0 greet name='10:30'").results["hello"] == "10:30"  # no base 60


@pytest.mark.parametrize(
    "profile, works, refused",
    [("juju29", ["relate", "add-relation"], "integrate"), ("juju36", ["integrate", "relate"], "add-relation"),
     ("juju40", ["integrate", "relate"], "add-relation")],
    ids=PROFILE_IDS,
)  # fmt: skip
def test_each_versions_relation_command(profile, works, refused):
    sim = versioned(profile)
    for command in works:
        rid = sim.cli(f"juju {command} versioned:cluster web")
        assert sim.remote[rid][1] == "web"
    with pytest.raises(JujuRefused, match=f'"{refused}" is not a juju command'):
        sim.cli(f"juju {refused} versioned:cluster web")


@pytest.mark.parametrize(
    "profile, accepted, refused",
    [("juju29", "--series jammy", "--base ubuntu@22.04"), ("juju36", "--base ubuntu@22.04", None),
     ("juju40", "--base ubuntu@22.04", "--series jammy")],
    ids=PROFILE_IDS,
)  # fmt: skip
def test_deploy_names_the_os_by_series_or_base_as_each_version_takes_it(profile, accepted, refused):
    sim = versioned(profile)
    if refused:
        with pytest.raises(JujuRefused, match=f"provided but not defined: {refused.split()[0]}"):
            sim.cli(f"juju deploy versioned -n 2 {refused}")
        assert not sim.units
    assert sim.cli(f"juju deploy versioned -n 2 {accepted}") == [0, 1]


@pytest.mark.parametrize(
    "profile, target",
    [("juju29", {"JUJU_TARGET_SERIES": "noble"}),
     ("juju36", {"JUJU_TARGET_BASE": "ubuntu@24.04", "JUJU_TARGET_SERIES": "noble"}), ("juju40", None)],
    ids=PROFILE_IDS,
)  # fmt: skip
def test_upgrade_target_variables_per_version_juju40_has_no_target_series(profile, target):
    sim = versioned(profile)
    sim.deploy(1)
    sim.settle()
    if target is None:
        with pytest.raises(JujuRefused, match="removed upgrade-machine"):
            sim.upgrade_machine(0, "ubuntu@24.04")
        assert "target" not in Versioned.seen
        return
    sim.upgrade_machine(0, "ubuntu@24.04")
    sim.settle()
    assert Versioned.seen["target"] == target


@pytest.mark.parametrize("profile, extra_ok", [("juju29", True), ("juju36", True), ("juju40", False)], ids=PROFILE_IDS)
def test_juju40_refuses_an_undeclared_action_parameter_by_default(profile, extra_ok, monkeypatch):
    """greet's schema does not set additionalProperties: 4.0 defaults it to false, 2.9 and 3.6 to true
    (and hand the charm the extra parameter, which scenario's own check would refuse: skipped here)."""
    monkeypatch.setenv("SCENARIO_SKIP_CONSISTENCY_CHECKS", "1")
    sim = versioned(profile)
    sim.deploy(1)
    sim.settle()
    outcome = sim.run_action(0, "greet", name="ada", mood="happy")
    assert outcome.ok is extra_ok
    if not extra_ok:
        assert outcome.failure == 'validation failed: (root) : additional property "mood" is not allowed'


class Keeper(ops.CharmBase):
    """Leaves a file in its charm directory at install; reads it back in every later hook."""

    found: list[tuple[str, str]] = []

    def __init__(self, framework: ops.Framework):
        super().__init__(framework)
        framework.observe(self.on.install, self._install)
        framework.observe(self.on.start, self._start)

    def _install(self, _: ops.EventBase) -> None:
        (self.charm_dir / "machine-note").write_text(self.unit.name)

    def _start(self, _: ops.EventBase) -> None:
        note = self.charm_dir / "machine-note"
        Keeper.found.append((self.unit.name, note.read_text() if note.exists() else ""))


def test_a_units_charm_directory_persists_across_its_hooks_and_is_its_own():
    """JUJU_CHARM_DIR is a directory on the unit's machine: a file one hook leaves there the unit's
    next hook finds (a unit key kept there survives), and no other unit sees it."""
    Keeper.found = []
    sim = toy_sim(Keeper, "keeper")
    sim.deploy(2)
    sim.settle()
    assert sorted(Keeper.found) == [("keeper/0", "keeper/0"), ("keeper/1", "keeper/1")]


def test_every_hook_gets_the_models_proxy_and_empty_ones_are_exported_as_empty(probe):
    seen: list[dict[str, str | None]] = []
    names = ("JUJU_CHARM_HTTP_PROXY", "JUJU_CHARM_HTTPS_PROXY", "JUJU_CHARM_FTP_PROXY", "JUJU_CHARM_NO_PROXY")

    def record(charm, event):
        seen.append({name: os.environ.get(name) for name in names})

    Probe.act = record
    sim = probe()
    sim.deploy(1)
    sim.settle()
    assert seen and seen[-1] == dict.fromkeys(names, "")  # exported, empty
    sim.set_model_proxy(juju_https_proxy="http://squid:3128", juju_no_proxy="localhost")
    sim.update_status()
    sim.settle()
    assert seen[-1] == {
        **dict.fromkeys(names, ""),
        "JUJU_CHARM_HTTPS_PROXY": "http://squid:3128",
        "JUJU_CHARM_NO_PROXY": "localhost",
    }
    assert "JUJU_CHARM_HTTPS_PROXY" not in os.environ or os.environ["JUJU_CHARM_HTTPS_PROXY"] != "http://squid:3128"


class Sleepy(ops.CharmBase):
    """Spends 50 ms of its own in config-changed."""

    def __init__(self, framework: ops.Framework):
        super().__init__(framework)
        framework.observe(self.on.config_changed, self._work)

    def _work(self, _: ops.EventBase) -> None:
        time.sleep(0.05)


def test_a_hooks_dispatch_time_is_the_charms_part_of_its_seconds():
    """HookRecord.dispatch (the bench's formation figure) is ops' dispatch of the hook: the charm's own time
    is in it, the driver's work around the hook (state copies, consistency checks) is not."""
    sim = peer_sim(Sleepy, "sleepy")
    sim.deploy(1)
    sim.settle()
    changed = next(r for r in sim.log if r.name == "config_changed")
    assert 0.05 <= changed.dispatch < changed.seconds
    others = [r for r in sim.log if r.name != "config_changed"]
    assert others and all(0 < r.dispatch < min(r.seconds, 0.05) for r in others)
