"""An LXD already initialised and in use: the leader adopts it only with consent; a joiner holding
instances or images is refused (joining erases them)."""

from __future__ import annotations

import pytest
from charms.lxd_cluster.v0.lxd_cluster import fingerprint_of as certificate_fingerprint
from fake_lxd import FakeLXD
from ops import testing

import charm
from adoption import Inventory, describe, refuse_adoption, refuse_join

REL = 1
IN_USE = Inventory(instances=("web", "db"), images=("busybox",), pools=("default",), profiles=("default", "web"))


@pytest.fixture
def lxd(cluster_pem, monkeypatch) -> FakeLXD:
    fake = FakeLXD(cluster_pem)
    monkeypatch.setattr(charm, "LXD", lambda: fake)
    return fake


def state(leader=True, ip="10.0.0.1", app=None, config=None) -> testing.State:
    relation = testing.PeerRelation("cluster", id=REL, local_app_data=app or {})
    network = testing.Network("cluster", bind_addresses=[testing.BindAddress([testing.Address(ip)])])
    return testing.State(leader=leader, relations=[relation], networks=[network], config=config or {}, planned_units=3)


def run(uid: int, st: testing.State) -> testing.State:
    ctx = testing.Context(charm.LXDClusterCharm, unit_id=uid)
    return ctx.run(ctx.on.install(), st)


def test_without_consent_the_leader_says_what_it_found_and_changes_nothing(lxd):
    lxd.standalone = IN_USE
    out = run(0, state())
    assert out.unit_status == testing.BlockedStatus(
        "LXD here is already initialised and in use: 2 instances (web, db), 1 image (busybox), storage pools "
        "(default), profiles (default, web); set adopt-existing-lxd=true to make it the cluster's first member "
        "keeping them, or use a machine with a fresh LXD"
    )
    assert lxd.mutations() == [] and lxd.preseeds == []
    assert "cluster-address" not in out.get_relation(REL).local_app_data


def test_with_consent_clustering_is_enabled_on_the_running_daemon_and_the_cluster_published(lxd, cluster_pem):
    lxd.standalone = IN_USE
    out = run(0, state(config={"adopt-existing-lxd": True, "storage-driver": "dir"}))
    assert lxd.preseeds == []  # no bootstrap preseed: it would rewrite the profile the instances rely on
    assert lxd.mutations()[:2] == ["create_pool", "enable_clustering"]
    assert lxd.created_pools == [("local", "dir", {})]
    assert lxd.server_name == "lxd-cluster-0"
    app = out.get_relation(REL).local_app_data
    assert app["cluster-address"] == "10.0.0.1:8443" and app["fingerprint"] == certificate_fingerprint(cluster_pem)
    assert out.unit_status == testing.ActiveStatus(
        "adopted the existing LXD as lxd-cluster-0, the cluster's first member (kept: 2 instances (web, db), "
        "1 image (busybox), storage pools (default), profiles (default, web))"
    )


def test_an_existing_pool_named_local_is_kept(lxd):
    lxd.standalone = Inventory(pools=("local",), instances=("c1",))
    run(0, state(config={"adopt-existing-lxd": True}))
    assert lxd.created_pools == [] and "enable_clustering" in lxd.mutations()


def test_consent_never_applies_to_a_joiner_holding_instances_or_images(lxd, cluster_pem):
    lxd.standalone = Inventory(instances=("c1",), images=("busybox",), pools=("default",))
    app = {
        "cluster-address": "10.0.0.1:8443",
        "certificate": cluster_pem,
        "fingerprint": certificate_fingerprint(cluster_pem),
        "lxd-version": "5.21.2",
    }
    out = run(1, state(leader=False, ip="10.0.0.2", app=app, config={"adopt-existing-lxd": True}))
    assert out.unit_status == testing.BlockedStatus(
        "LXD here holds 1 instance (c1), 1 image (busybox): joining the cluster erases them; move them away "
        "(lxc move/lxc copy to another server) or delete them (lxc delete, lxc image delete), or remove this unit"
    )
    assert lxd.mutations() == []


def test_a_joiner_with_only_a_pool_and_profiles_is_not_refused(lxd, cluster_pem):
    lxd.standalone = Inventory(pools=("default",), profiles=("default",))
    app = {
        "cluster-address": "10.0.0.1:8443",
        "certificate": cluster_pem,
        "fingerprint": certificate_fingerprint(cluster_pem),
        "lxd-version": "5.21.2",
    }
    out = run(1, state(leader=False, ip="10.0.0.2", app=app))
    assert out.unit_status == testing.WaitingStatus("waiting for a join credential (joins go one at a time)")


def test_a_fresh_lxd_is_neither_adopted_nor_refused():
    fresh = Inventory()
    assert not fresh.initialised and refuse_adoption(fresh, consent=False) == "" and refuse_join(fresh) == ""
    assert describe(Inventory(instances=tuple("abcd"))) == "4 instances (a, b, c, ...)"
