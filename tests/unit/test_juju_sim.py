"""The Juju stand-in (tests/harness/juju.py) must not hide what Juju would show.

Each test drives a tiny charm through JujuSim and failed on the stand-in before issue 13: a
departing unit whose hook raised was marked gone; a new unit saw every peer's databag from its
first hook; a failed hook left no trace on the unit; a unit-owned secret was readable by every
unit; required action parameters were not enforced; two departing units' hooks did not
interleave (one ran to its end inside remove_unit).
"""

from __future__ import annotations

import ops
import pytest

from tests.harness.juju import HookFailed, JujuSim

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


class Toy(ops.CharmBase):
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

    @property
    def uid(self) -> int:
        return int(self.unit.name.split("/")[1])

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
    Toy.fail_departure = set()  # the operator fixed it: `juju resolve` / Juju's next retry succeeds
    sim.queue.clear()
    sim.remove_unit(2)
    sim.settle()
    assert not sim.units[2].alive and 2 not in sim.statuses()


def test_a_new_unit_sees_no_peer_databag_before_relation_joined(sim):
    sim.deploy(2)
    sim.settle()
    Toy.seen.clear()
    uid = sim.add_unit()
    sim.settle()
    first = next(s for s in Toy.seen if s[0] == uid)
    assert first[1] == "InstallEvent" and first[2] == {}  # nothing yet: relation-joined comes later
    joined = [s for s in Toy.seen if s[0] == uid and s[1] == "RelationChangedEvent"]
    assert joined and set(joined[-1][2]) == {"toy/0", "toy/1"}


def test_a_failed_hook_leaves_the_unit_in_error_until_a_hook_succeeds(sim):
    sim.deploy(1)
    sim.settle()
    Toy.fail_departure = {1}
    sim.max_attempts = 1
    sim.add_unit()
    sim.settle()
    sim.remove_unit(1)
    with pytest.raises(HookFailed):
        sim.settle()
    assert sim.units[1].error.startswith("hook failed: relation_departed")


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


class Relay(ops.CharmBase):
    """Unit 0 says go at once; unit k says go once unit k-1 has (a chain); with parallel, each at once."""

    parallel = False

    def __init__(self, framework: ops.Framework):
        super().__init__(framework)
        for event in (self.on.install, self.on.cluster_relation_changed, self.on.update_status):
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
    return JujuSim(
        Relay,
        env_for_unit=lambda uid: {},
        address_for_unit=lambda uid: f"10.9.0.{uid + 1}",
        app="relay",
        context_kw={"meta": {"name": "relay", "peers": {"cluster": {"interface": "relay"}}}},
    )


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
