"""LXD from snapd on real hosts: Ubuntu 22.04's preinstalled 5.0 snap, 24.04's lxd-installer shim,
a deb, mixed bases, holds, and a snap-channel change on a formed cluster (the coordinated upgrade).

Every unit has its own machine: a FakeLXD and a fake snapd state (swapped in before its hook).
"""

from __future__ import annotations

import dataclasses

import pytest
from charms.lxd_cluster.v0.lxd_cluster import fingerprint_of as certificate_fingerprint
from fake_lxd import FakeLXD
from ops import testing

import charm
from adoption import Inventory
from snap import normalise_channel
from upgrade import ClusterSnap, UnitSnap, downgrade, plan_order, progress

REL = 1
TARGET = "5.21/stable"


class SnapLXD(FakeLXD):
    """A FakeLXD whose version is what the machine's snap runs, as LXD reports it after a refresh."""

    host = None
    deb_version = ""

    def info(self):
        installed = self.host.state["installed"] if self.host else None
        self.version = installed["version"].split("-")[0] if installed else self.deb_version
        return super().info()


@dataclasses.dataclass
class Machine:
    lxd: FakeLXD
    snap: dict  # the fake snapd's state on this machine
    deb_version: str = ""  # a deb LXD's version (no snap)


class Model:
    """A few units on their own machines, the peer databags carried between them as Juju would."""

    def __init__(self, host, monkeypatch, pem: str, machines: dict[int, Machine], leader: int = 0):
        self.host, self.pem, self.machines, self.leader = host, pem, machines, leader
        self.app: dict[str, str] = {}
        self.bags: dict[int, dict[str, str]] = {uid: {} for uid in machines}
        self.status: dict[int, testing.StatusBase] = {}
        self.secrets: dict[int, list[testing.Secret]] = {uid: [] for uid in machines}  # each unit's own
        self.config: dict[str, object] = {}
        self._current = 0
        monkeypatch.setattr(charm, "LXD", lambda: self.machines[self._current].lxd)

    def run(self, uid: int, event: str = "update_status", other: testing.Relation | None = None) -> testing.State:
        """One hook on unit uid; with `other` (a non-peer relation), `event` is that relation's event."""
        self._current = uid
        machine = self.machines[uid]
        self.host.state = machine.snap
        machine.lxd.host, machine.lxd.deb_version = self.host, machine.deb_version
        relation = testing.PeerRelation(
            "cluster",
            id=REL,
            local_app_data=dict(self.app),
            local_unit_data=dict(self.bags[uid]),
            peers_data={u: dict(b) for u, b in self.bags.items() if u != uid},
        )
        address = testing.Address(f"10.0.0.{uid + 1}")
        network = testing.Network("cluster", bind_addresses=[testing.BindAddress([address])])
        state = testing.State(
            leader=uid == self.leader,
            relations=[relation, *([other] if other else [])],
            networks=[network],
            config=dict(self.config),
            planned_units=len(self.machines),
            secrets=list(self.secrets.get(uid, [])),
        )
        ctx = testing.Context(charm.LXDClusterCharm, unit_id=uid)
        out = ctx.run(getattr(ctx.on, event)(*([other] if other else [])), state)
        machine.snap = self.host.state
        for other in self.machines.values():  # cohort keys live in the store: every machine can use them
            other.snap["cohorts"] = dict(machine.snap["cohorts"])
        rel = out.get_relation(REL)
        self.bags[uid] = dict(rel.local_unit_data)
        self.secrets[uid] = [s for s in out.secrets if s.owner == "unit"]
        if uid == self.leader:
            self.app = dict(rel.local_app_data)
        self.status[uid] = out.unit_status
        return out

    def round(self, order: list[int] | None = None) -> None:
        for uid in order or list(self.machines):
            self.run(uid)

    def snap_calls(self, uid: int) -> list[list[str]]:
        return [c for c in self.machines[uid].snap["calls"] if c[0] in ("install", "refresh")]


def fresh_snap_state(host) -> dict:
    return host.state | {"calls": [], "api": []}


def snap_machine(host, pem: str, channel: str | None = None, version: str = "5.21.2") -> Machine:
    state = fresh_snap_state(host)
    if channel:
        revision, snap_version = state["store"][channel]
        state["installed"] = {
            "channel": channel,
            "revision": revision,
            "version": snap_version,
            "hold": "",
            "cohort": "",
        }
    return Machine(SnapLXD(pem, version), state)


@pytest.fixture
def snapd(host):
    """Ubuntu: snapd answers; no LXD binary on PATH unless a test puts the shim there."""
    (host.bin / "lxd").unlink()
    return host.start_snapd()


def leader_state(**kw) -> testing.State:
    relation = testing.PeerRelation("cluster", id=REL)
    network = testing.Network("cluster", bind_addresses=[testing.BindAddress([testing.Address("10.0.0.1")])])
    return testing.State(leader=True, relations=[relation], networks=[network], planned_units=1, **kw)


def ctx(uid: int = 0) -> testing.Context:
    return testing.Context(charm.LXDClusterCharm, unit_id=uid)


@pytest.fixture
def lxd(cluster_pem, monkeypatch) -> FakeLXD:
    fake = FakeLXD(cluster_pem)
    monkeypatch.setattr(charm, "LXD", lambda: fake)
    return fake


# -- one machine ---------------------------------------------------------------------------------
def test_ubuntu_22_04_preinstalled_5_0_snap_is_refreshed_to_snap_channel_with_a_cohort_then_held(lxd, snapd):
    snapd.preinstall("5.0/stable")
    out = ctx().run(ctx().on.install(), leader_state())
    assert snapd.calls[0] == ["refresh", "lxd", f"--channel={TARGET}", "--cohort=+"]
    assert snapd.installed["channel"] == TARGET and snapd.installed["hold"]
    assert lxd.preseeds  # then the cluster is bootstrapped on it
    assert out.unit_status.name == "active"
    assert out.get_relation(REL).local_unit_data["snap-tracking"] == TARGET


def test_an_initialised_snap_on_another_track_is_blocked_with_the_exact_fix_and_untouched(lxd, snapd):
    snapd.preinstall("5.0/stable", held=True)
    lxd.standalone = Inventory(pools=("default",), profiles=("default",))
    out = ctx().run(ctx().on.install(), leader_state())
    assert out.unit_status == testing.BlockedStatus(
        "LXD is initialised here and tracks 5.0/stable, not snap-channel 5.21/stable: run "
        "`snap refresh lxd --channel=5.21/stable --cohort=+` on this machine, or set snap-channel=5.0/stable"
    )
    assert snapd.changes() == [] and lxd.mutations() == []


def test_ubuntu_24_04_lxd_installer_shim_is_never_run_the_snap_is_installed_from_snap_channel(lxd, snapd):
    snapd.shim()
    out = ctx().run(ctx().on.install(), leader_state())
    assert snapd.calls[0] == ["install", "lxd", f"--channel={TARGET}", "--cohort=+"]
    assert [c for c in snapd.calls if c[0] == "install"] == [["install", "lxd", f"--channel={TARGET}", "--cohort=+"]]
    assert snapd.installed["hold"]
    assert out.unit_status.name == "active"


def test_an_already_installed_deb_is_used_as_it_is_even_where_snapd_runs(lxd, host):
    host.start_snapd()  # snapd answers "not installed"; lxd on PATH is a binary
    out = ctx().run(ctx().on.install(), leader_state())
    assert host.changes() == []
    assert lxd.preseeds and out.unit_status.name == "active"
    assert out.get_relation(REL).local_unit_data["lxd-source"] == "deb"


def test_snapd_absent_and_a_deb_lxd_is_todays_behaviour(lxd, host):
    out = ctx().run(ctx().on.install(), leader_state())
    assert host.calls == [] and lxd.preseeds and out.unit_status.name == "active"


def test_a_failed_install_blocks_with_snapds_words(lxd, snapd):
    snapd.fail("install", 'cannot install "lxd": persistent network error')
    out = ctx().run(ctx().on.install(), leader_state())
    assert out.unit_status == testing.BlockedStatus(
        'cannot install LXD from 5.21/stable: error: cannot install "lxd": persistent network error'
    )
    assert lxd.mutations() == []


def test_an_unheld_snap_is_held(lxd, snapd):
    snapd.preinstall(TARGET)
    ctx().run(ctx().on.update_status(), leader_state())
    assert snapd.installed["hold"] and ["hold"] in snapd.changes()
    assert [c for c in snapd.calls if c[0] in ("install", "refresh")] == []


# -- mixed bases -------------------------------------------------------------------------------
def test_mixed_bases_end_on_one_channel_and_revision_and_a_deb_is_named(snapd, monkeypatch, cluster_pem):
    """22.04 (5.0 snap), 24.04 (shim: nothing installed) and Debian (a 5.0.2 deb) in one application."""
    jammy = snap_machine(snapd, cluster_pem, "5.0/stable")
    noble = snap_machine(snapd, cluster_pem)
    debian = Machine(SnapLXD(cluster_pem), fresh_snap_state(snapd), deb_version="5.0.2")
    model = Model(snapd, monkeypatch, cluster_pem, {0: jammy, 1: noble, 2: debian})
    model.run(0, "install")
    model.run(0)  # as a member, the leader publishes the channel, its revision and a cohort key
    # the store moves on after the cluster formed: joiners still get the cluster's revision (its cohort)
    snapd.publish(TARGET, "33999", "5.21.4-aaaaaaa")
    noble.snap["store"][TARGET] = ["33999", "5.21.4-aaaaaaa"]
    snapd.deb()
    (snapd.bin / "lxd").unlink()
    model.run(1, "install")
    (snapd.bin / "lxd").write_bytes(b"\x7fELF")
    (snapd.bin / "lxd").chmod(0o755)
    model.run(2, "install")
    (snapd.bin / "lxd").unlink()

    assert model.snap_calls(0) == [["refresh", "lxd", f"--channel={TARGET}", "--cohort=+"]]
    cohort = model.app["snap-cohort"]
    assert model.snap_calls(1) == [["install", "lxd", f"--channel={TARGET}", f"--cohort={cohort}"]]
    assert jammy.snap["installed"]["revision"] == noble.snap["installed"]["revision"] == "33110"
    assert model.app["snap-channel"] == TARGET and model.app["snap-revision"] == "33110"
    assert model.status[2] == testing.BlockedStatus(
        "LXD 5.0.2 here but the cluster runs 5.21.3: install LXD 5.21.3 on this machine"
    )
    assert debian.snap["calls"] == [] and debian.lxd.mutations() == []


# -- the coordinated upgrade ---------------------------------------------------------------------
def formed(snapd, monkeypatch, pem, n: int = 3) -> Model:
    machines = {uid: snap_machine(snapd, pem, TARGET) for uid in range(n)}
    for m in machines.values():
        m.snap["installed"]["hold"] = "2315-01-01T00:00:00+00:00"
    model = Model(snapd, monkeypatch, pem, machines)
    fp = certificate_fingerprint(pem)
    names = [f"lxd-cluster-{u}" for u in range(n)]
    for uid, m in machines.items():
        m.lxd.be_member(names[uid], *[x for x in names if x != names[uid]])
        model.bags[uid] = {
            "server-name": names[uid],
            "address": f"10.0.0.{uid + 1}:8443",
            "member": fp,
            "lxd-version": "5.21.3",
            "lxd-source": "snap",
            "snap-tracking": TARGET,
            "snap-revision": "33110",
        }
    model.app = {
        "cluster-address": "10.0.0.1:8443",
        "certificate": pem,
        "fingerprint": fp,
        "lxd-version": "5.21.3",
        "bootstrap-unit": "lxd-cluster/0",
        "snap-channel": TARGET,
        "snap-revision": "33110",
        "snap-cohort": "cohort-0",
    }
    return model


def upgrading_machines_wait(model: Model, target: str) -> None:
    """An upgraded member's LXD serves nothing until every member runs the new version."""
    on_target = {u for u, m in model.machines.items() if m.snap["installed"]["channel"] == target}
    for uid, m in model.machines.items():
        m.lxd.ready = uid not in on_target or on_target == set(model.machines)


def test_a_channel_change_on_a_formed_cluster_refreshes_every_member_in_order_from_one_cohort(
    snapd, monkeypatch, cluster_pem
):
    model = formed(snapd, monkeypatch, cluster_pem)
    model.config = {"snap-channel": "6/stable"}
    model.run(1)  # a non-leader sees the change first: it waits for the leader's plan
    assert model.status[1] == testing.WaitingStatus(
        "snap-channel is 6/stable, the cluster runs 5.21/stable: waiting for the leader to start the upgrade"
    )
    assert model.snap_calls(1) == []

    model.run(0)  # the leader plans: non-leaders by number, itself last; one cohort key for all
    assert model.app["upgrade-channel"] == "6/stable"
    assert model.app["upgrade-order"] == "lxd-cluster/1 lxd-cluster/2 lxd-cluster/0"
    cohort = model.app["upgrade-cohort"]
    assert model.status[0] == testing.WaitingStatus(
        "upgrading: 0 of 3 members on 6/stable: this member refreshes after lxd-cluster/1"
    )
    assert model.snap_calls(0) == []

    # the store publishes a newer revision mid-upgrade: the cohort keeps everyone on the planned one
    for m in model.machines.values():
        m.snap["store"]["6/stable"] = ["35999", "6.2-bbbbbbb"]

    model.run(2)  # not its turn yet
    assert model.snap_calls(2) == []
    assert model.status[2] == testing.WaitingStatus(
        "upgrading: 0 of 3 members on 6/stable: this member refreshes after lxd-cluster/1"
    )

    model.run(1)
    assert model.snap_calls(1) == [["refresh", "lxd", "--channel=6/stable", f"--cohort={cohort}"]]
    upgrading_machines_wait(model, "6/stable")
    assert model.status[1] == testing.WaitingStatus(
        "upgrading: 1 of 3 members on 6/stable: this member runs revision 35000, its LXD is waiting for other "
        "cluster members to upgrade their versions (next: lxd-cluster/2)"
    )

    model.run(0)
    assert model.status[0].message == "upgrading: 1 of 3 members on 6/stable: this member refreshes after lxd-cluster/2"

    model.run(2)
    upgrading_machines_wait(model, "6/stable")
    assert model.status[2].message.startswith("upgrading: 2 of 3 members on 6/stable: this member runs revision 35000")

    model.run(0)  # the leader, last: refreshes, finishes the plan and republishes the version
    upgrading_machines_wait(model, "6/stable")
    assert model.snap_calls(0) == [["refresh", "lxd", "--channel=6/stable", f"--cohort={cohort}"]]
    assert {m.snap["installed"]["revision"] for m in model.machines.values()} == {"35000"}
    assert all(m.snap["installed"]["hold"] for m in model.machines.values())  # still held
    assert model.app["snap-channel"] == "6/stable" and "upgrade-channel" not in model.app
    assert model.app["lxd-version"] == "6.1"
    model.round([1, 2, 0])
    for uid in range(3):
        assert model.status[uid].name == "active", (uid, model.status[uid])


def test_a_member_that_cannot_refresh_says_why_and_every_other_member_names_it(snapd, monkeypatch, cluster_pem):
    model = formed(snapd, monkeypatch, cluster_pem)
    model.config = {"snap-channel": "6/stable"}
    model.run(0)
    model.machines[1].snap["fail"]["refresh"] = 'cannot refresh "lxd": not enough disk space'
    model.run(1)
    assert model.status[1] == testing.BlockedStatus(
        'cannot refresh LXD to 6/stable: error: cannot refresh "lxd": not enough disk space; the cluster\'s '
        "upgrade waits for this member: fix the cause here, the charm retries on every hook"
    )
    assert model.machines[1].snap["installed"]["channel"] == TARGET
    model.run(2)
    model.run(0)
    for uid in (0, 2):
        assert model.status[uid] == testing.WaitingStatus(
            "upgrading: 0 of 3 members on 6/stable: this member refreshes after lxd-cluster/1; lxd-cluster/1 "
            'cannot refresh: error: cannot refresh "lxd": not enough disk space'
        )
        assert model.snap_calls(uid) == []
    model.machines[1].snap["fail"] = {}  # fixed: the next hook refreshes and the upgrade goes on
    model.run(1)
    assert model.machines[1].snap["installed"]["channel"] == "6/stable"
    assert "upgrade-error" not in model.bags[1]


def test_a_deb_member_cannot_follow_and_is_named(snapd, monkeypatch, cluster_pem):
    model = formed(snapd, monkeypatch, cluster_pem)
    model.machines[2].snap["installed"] = None
    model.machines[2].deb_version = "5.21.3"
    (snapd.bin / "lxd").write_bytes(b"\x7fELF")
    (snapd.bin / "lxd").chmod(0o755)
    model.config = {"snap-channel": "6/stable"}
    model.round([0, 1, 2, 0])
    assert model.status[2] == testing.BlockedStatus(
        "LXD here is not the snap (no snapd, or a deb): it cannot follow snap-channel 6/stable, and the "
        "cluster's upgrade waits for it: replace this machine"
    )
    assert model.status[0].message.endswith("lxd-cluster/2 has no LXD snap (a deb cannot follow snap-channel)")


def test_changing_snap_channel_again_mid_upgrade_is_refused(snapd, monkeypatch, cluster_pem):
    model = formed(snapd, monkeypatch, cluster_pem)
    model.config = {"snap-channel": "6/stable"}
    model.run(0)
    model.config = {"snap-channel": "latest/stable"}
    model.run(1)
    assert model.status[1] == testing.BlockedStatus(
        "the upgrade to 6/stable is under way: set snap-channel=6/stable until every member runs it"
    )
    assert model.snap_calls(1) == []


def test_a_downgrade_is_refused_and_nothing_is_refreshed(snapd, monkeypatch, cluster_pem):
    model = formed(snapd, monkeypatch, cluster_pem)
    model.config = {"snap-channel": "5.0/stable"}
    model.round([0, 1, 2])
    assert model.status[0] == testing.BlockedStatus(
        "LXD cannot go back from 5.21/stable to 5.0/stable: set snap-channel=5.21/stable"
    )
    assert all(model.snap_calls(u) == [] for u in range(3)) and "upgrade-channel" not in model.app


def test_a_unit_that_is_no_member_waits_for_the_upgrade_before_joining(snapd, monkeypatch, cluster_pem):
    model = formed(snapd, monkeypatch, cluster_pem)
    model.machines[3] = snap_machine(snapd, cluster_pem)
    model.bags[3] = {}
    model.config = {"snap-channel": "6/stable"}
    model.run(0)
    model.run(3, "install")
    assert model.snap_calls(3) == [["install", "lxd", "--channel=6/stable", f"--cohort={model.app['upgrade-cohort']}"]]
    assert model.status[3] == testing.WaitingStatus(
        "waiting for the cluster's LXD upgrade to 6/stable to finish before joining"
    )
    assert model.machines[3].lxd.preseeds == []


# -- the pure parts ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "given, tracking, expected",
    [
        ("5.21/stable", "", "5.21/stable"),
        ("5.21", "", "5.21/stable"),
        ("stable", "", "latest/stable"),
        ("edge", "5.21/stable", "5.21/edge"),
        ("latest", "", "latest/stable"),
        ("5.0/stable/hotfix", "", "5.0/stable/hotfix"),
    ],
)
def test_channels_are_compared_as_snapd_tracks_them(given, tracking, expected):
    assert normalise_channel(given, tracking) == expected


@pytest.mark.parametrize(
    "current, target, refused",
    [
        ("5.21/stable", "5.0/stable", True),
        ("5.0/stable", "5.21/stable", False),
        ("latest/stable", "6/stable", True),
        ("5.21/stable", "latest/stable", False),
        ("5.21/stable", "5.21/candidate", False),
    ],
)
def test_downgrades_are_recognised(current, target, refused):
    assert downgrade(current, target) is refused


def test_the_order_is_non_leaders_by_number_then_the_leader():
    assert plan_order(["a/10", "a/2", "a/0", "a/1"], "a/1") == ["a/0", "a/2", "a/10", "a/1"]


def test_a_unit_added_after_the_plan_refreshes_last_and_a_departed_one_no_longer_counts():
    plan = ClusterSnap(upgrade_channel="6/stable", upgrade_order="a/1 a/2 a/0")
    units = {"a/0": UnitSnap("snap", TARGET), "a/2": UnitSnap("snap", "6/stable"), "a/5": UnitSnap("snap", TARGET)}
    state = progress(plan, units)
    assert state.done == ["a/2"] and state.pending == ["a/0", "a/5"] and state.next == "a/0"
    assert state.headline() == "upgrading: 1 of 3 members on 6/stable"


# -- Juju's install: no peer relation yet --------------------------------------------------------
def test_storage_attached_and_install_without_the_peer_relation_still_end_on_the_clusters_cohort_and_revision(
    lxd, snapd, cluster_pem
):
    """Juju runs storage-attached and install before the unit enters the peer relation's scope
    (worker/uniter/relation/resolver.go: scopes are synchronised only once the unit is installed;
    relation-ids cluster returns []). The snap comes from the store then; once the unit sees the
    cluster's plan (relation-created), it goes to the cluster's revision through the cluster's cohort."""
    state = snapd.state
    state["cohorts"]["cohort-formed"] = {TARGET: list(state["store"][TARGET])}  # made when the cluster formed
    snapd.state = state
    snapd.publish(TARGET, "33999", "5.21.4-aaaaaaa")  # the store moved on since
    network = testing.Network("cluster", bind_addresses=[testing.BindAddress([testing.Address("10.0.0.2")])])
    alone = testing.State(networks=[network], storages=[testing.Storage("local")], planned_units=2)
    for event in ("storage_attached", "install"):
        out = ctx(1).run(
            ctx(1).on.storage_attached(next(iter(alone.storages)))
            if event == "storage_attached"
            else ctx(1).on.install(),
            alone,
        )
        assert out.unit_status == testing.WaitingStatus("waiting for the cluster peer relation")
    assert snapd.installed["revision"] == "33999" and snapd.installed["hold"]

    fp = certificate_fingerprint(cluster_pem)
    plan = {"snap-channel": TARGET, "snap-revision": "33110", "snap-cohort": "cohort-formed"}
    app = {"cluster-address": "10.0.0.1:8443", "certificate": cluster_pem, "fingerprint": fp, **plan}
    relation = testing.PeerRelation("cluster", id=REL, local_app_data=app, peers_data={0: {"member": fp}})
    ctx(1).run(ctx(1).on.relation_created(relation), dataclasses.replace(alone, relations=[relation]))
    assert snapd.installed["revision"] == "33110" and snapd.installed["cohort"] == "cohort-formed"
    assert snapd.calls[-1] == ["refresh", "lxd", f"--channel={TARGET}", "--cohort=cohort-formed"]


# -- a unit Juju is removing during an upgrade ---------------------------------------------------
def test_an_upgrade_is_not_complete_while_a_member_juju_is_removing_may_still_run_the_old_lxd(
    snapd, monkeypatch, cluster_pem
):
    """`juju remove-unit lxd-cluster/2` before its turn: Juju drops its unit from the others' view at
    once (state/relationunit.go PrepareLeaveScope) while its LXD, on the old version, is still a member."""
    model = formed(snapd, monkeypatch, cluster_pem)
    model.config = {"snap-channel": "6/stable"}
    model.run(0)  # plan: lxd-cluster/1, lxd-cluster/2, the leader last
    model.run(1)
    upgrading_machines_wait(model, "6/stable")
    del model.machines[2], model.bags[2]  # its unit is gone from view; lxd-cluster-2 is still a member
    cohort = model.app["upgrade-cohort"]
    model.run(0)  # the leader is next now: it refreshes, and does not call the upgrade done
    assert model.snap_calls(0) == [["refresh", "lxd", "--channel=6/stable", f"--cohort={cohort}"]]
    assert model.app["upgrade-channel"] == "6/stable"
    assert model.status[0] == testing.WaitingStatus(
        "upgrading: 2 of 2 members on 6/stable: lxd-cluster/2 is leaving the cluster and may run the old LXD: "
        "the upgrade completes once it left"
    )
    model.machines[0].lxd.be_member("lxd-cluster-0", "lxd-cluster-1")  # it left the cluster
    model.run(0)
    assert "upgrade-channel" not in model.app and model.app["snap-channel"] == "6/stable"


def test_a_unit_juju_is_removing_takes_no_upgrade_turn_in_its_relation_broken_hooks(
    snapd, monkeypatch, cluster_pem, goal_state
):
    model = formed(snapd, monkeypatch, cluster_pem)
    model.config = {"snap-channel": "6/stable"}
    model.run(0)  # plan: lxd-cluster/1 first
    scraper = testing.Relation("metrics-endpoint", id=REL + 1, remote_app_name="prometheus")
    goal_state.set({"lxd-cluster/0": "active", "lxd-cluster/1": "dying", "lxd-cluster/2": "active"})
    model.run(1, "relation_broken", scraper)
    assert model.snap_calls(1) == []
    goal_state.set({"lxd-cluster/0": "active", "lxd-cluster/1": "active", "lxd-cluster/2": "active"})
    model.run(1, "relation_broken", scraper)  # the relation is removed, the unit stays: its turn
    assert model.snap_calls(1) == [["refresh", "lxd", "--channel=6/stable", f"--cohort={model.app['upgrade-cohort']}"]]
