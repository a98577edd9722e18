"""The charm as provider of the lxd-cluster relation: it trusts each client's certificate and says where
the cluster is."""

from __future__ import annotations

import dataclasses

import pytest
from charms.lxd_cluster.v0.lxd_cluster import ClusterEndpoints
from fake_lxd import FakeLXD
from ops import testing
from states import REL, announced, ctx, make_state, published

from workload import certificate_fingerprint


@pytest.fixture
def lxd(lxd: FakeLXD) -> FakeLXD:
    """This unit is a member of a two-member cluster."""
    lxd.be_member("lxd-cluster-0", "lxd-cluster-1")
    return lxd


def _with(state: testing.State, relation: testing.Relation) -> testing.State:
    return dataclasses.replace(state, relations=[*state.relations, relation])


def test_charm_trusts_a_related_certificate_and_publishes_the_endpoints(lxd, cluster_pem):
    client = testing.Relation(
        "lxd-cluster",
        id=REL + 1,
        remote_app_name="runner",
        remote_app_data={"certificate": cluster_pem, "projects": '["ci"]'},
    )
    state = _with(make_state(leader=True, app=published(cluster_pem), peers={1: announced(1)}), client)
    out = ctx().run(ctx().on.relation_changed(client, remote_unit=0), state)
    name = f"juju-runner-{client.id}"
    assert lxd.trusted == {name: (certificate_fingerprint(cluster_pem), ("ci",))}
    info = ClusterEndpoints.load(dict(out.get_relation(client.id).local_app_data))
    assert info.endpoints == ("https://lxd-cluster-0:8443", "https://lxd-cluster-1:8443")
    assert info.client_fingerprint == certificate_fingerprint(cluster_pem)

    out = ctx().run(ctx().on.relation_broken(client), state)
    assert lxd.trusted == {}


def test_charm_refuses_garbage_with_a_reason_and_trusts_nothing(lxd, cluster_pem):
    client = testing.Relation(
        "lxd-cluster",
        id=REL + 1,
        remote_app_name="runner",
        remote_app_data={"certificate": "-----BEGIN CERTIFICATE-----\nnope"},
    )
    state = _with(make_state(leader=True, app=published(cluster_pem)), client)
    out = ctx().run(ctx().on.relation_changed(client, remote_unit=0), state)
    assert "not a PEM certificate" in out.get_relation(client.id).local_app_data["error"]
    assert lxd.trusted == {}
    assert out.unit_status.name == "active"  # one bad client does not block the cluster
