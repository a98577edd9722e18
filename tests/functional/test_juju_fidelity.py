"""Issue 22's "done when", on real LXD daemons under the JujuSim that follows Juju 3.6's uniter
(tests/harness/juju.py): a departing leader runs relation-broken for its non-peer relations while it
still leads; a leadership change between joins meets Juju's secret label rules; the others see a
departing unit depart at `remove-unit` time, long before its LXD member leaves.
"""

from __future__ import annotations

import charms.lxd_cluster.v0.lxd_cluster as library
import ops
import pytest

from tests.functional.test_client_library import runner_request, tls_client
from tests.functional.test_reliability import one_cluster
from tests.harness.cluster import FormedCluster, charm_sim, form, membership, one_join_at_a_time
from tests.harness.juju import JujuSim

pytestmark = pytest.mark.functional


def test_removing_the_leaders_unit_keeps_a_related_client_trusted_over_tls(lab, tmp_path):
    lab.up(3)
    # no Juju storage `local`: each member's pool is a dir pool, so no storage-detaching leaves first
    sim = charm_sim(lab, {"storage-driver": "dir"}, storage_for_unit=lambda uid: None)
    sim.deploy(3)
    sim.settle()
    request, crt, key = runner_request(tmp_path)
    rid = sim.relate("lxd-cluster", "runner", request)
    sim.settle()
    provided = library.ClusterEndpoints.load(sim.provided[rid])
    assert provided.projects == ("runner",)
    server_pem = tmp_path / "cluster.crt"
    server_pem.write_text(sim.provided[rid]["certificate"])
    survivor = f"https://{lab.members[1].address}:8443"  # unit 1's member stays

    def lists_its_project() -> bool:
        client = tls_client(survivor, crt, key, server_pem, project="runner")
        return client.trusted and client.instances.all() == []

    assert lists_its_project()
    leader = sim.leader

    def still_trusted(s: JujuSim) -> None:
        record = s.log[-1]
        assert lists_its_project(), f"the client lost its trust after {record.name} on unit {record.uid}"

    sim.after_hook.append(still_trusted)  # after every hook of the departure, the new leader's too
    sim.remove_unit(leader)
    sim.settle()
    assert sim.leader != leader and not sim.units[leader].alive
    assert any(r.uid == sim.leader and r.name == "leader_elected" for r in sim.log)
    assert lists_its_project()


def test_the_issuer_hand_over_completes_after_a_leadership_change_between_joins(lab):
    lab.up(3)
    sim = charm_sim(lab, {"storage-driver": "dir"})
    sim.after_hook.append(one_join_at_a_time())
    sim.deploy(3)
    sim.run_until(lambda s: bool(membership(s, 1) or membership(s, 2)))
    sim.elect(2 if not membership(sim, 2) else 1)  # the new leader is not a member: a member issues
    sim.settle()
    assert not [r for r in sim.log if "secret label" in r.error], "Juju refused a secret label at commit"
    one_cluster(FormedCluster(lab, sim, 0, 0), 3)


def test_the_surviving_units_statuses_stay_true_during_a_scale_in(lab):
    cluster = form(lab, 4, driver="dir")
    sim = cluster.sim
    leaving = 3
    said: list[str] = []

    def survivors_tell_the_truth(s: JujuSim) -> None:
        if not s.units[leaving].alive:
            return
        for uid in (0, 1, 2):
            status: ops.StatusBase = s.units[uid].status
            said.append(status.message)
            assert "remove-node it" not in status.message, f"unit {uid} while lxd-cluster-3 leaves: {status.message}"

    sim.after_hook.append(survivors_tell_the_truth)
    sim.remove_unit(leaving)
    sim.settle()
    assert said  # the others ran hooks while lxd-cluster-3 was leaving
    for uid in (0, 1, 2):
        message = sim.units[uid].status.message
        assert sim.units[uid].status.name == "active" and "of 3 " in message, message
