"""The charm as provider of the lxd-cluster relation: it trusts each client's certificate and says where
the cluster is."""

from __future__ import annotations

import dataclasses

import pytest
from charms.lxd_cluster.v0.lxd_cluster import ClusterEndpoints
from charms.lxd_cluster.v0.lxd_cluster import fingerprint_of as certificate_fingerprint
from fake_lxd import FakeLXD
from ops import testing
from states import REL, announced, ctx, make_state, published

from tests.certs import x509_pem


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
    lxd.project_names.add("ci")
    out = ctx().run(ctx().on.relation_changed(client, remote_unit=0), state)
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


def relate(lxd: FakeLXD, pem: str, config: dict | None = None, **request: str) -> tuple[testing.State, int]:
    """Run relation-changed on the leader for a requirer `runner` asking `request`; the output state and
    the relation id."""
    client = testing.Relation("lxd-cluster", id=REL + 1, remote_app_name="runner", remote_app_data=request)
    state = _with(make_state(leader=True, app=published(pem), config=config), client)
    return ctx().run(ctx().on.relation_changed(client, remote_unit=0), state), client.id


def test_a_client_naming_no_projects_gets_its_own_project_created_and_nothing_more(lxd, cluster_pem):
    out, rid = relate(lxd, cluster_pem, certificate=cluster_pem)
    assert "runner" in lxd.project_names and lxd.calls.count("create_project") == 1
    assert lxd.trusted == {f"juju-runner-{rid}": (certificate_fingerprint(cluster_pem), ("runner",))}
    assert ClusterEndpoints.load(dict(out.get_relation(rid).local_app_data)).projects == ("runner",)


def test_a_client_naming_projects_gets_exactly_those_and_no_project_is_created(lxd, cluster_pem):
    lxd.project_names |= {"ci", "web"}
    out, rid = relate(lxd, cluster_pem, certificate=cluster_pem, projects='["web", "ci"]')
    assert lxd.trusted[f"juju-runner-{rid}"][1] == ("ci", "web")
    assert "create_project" not in lxd.calls
    assert ClusterEndpoints.load(dict(out.get_relation(rid).local_app_data)).projects == ("ci", "web")


def test_a_client_naming_a_missing_project_is_told_and_nothing_is_trusted_or_created(lxd, cluster_pem):
    out, rid = relate(lxd, cluster_pem, certificate=cluster_pem, projects='["ci"]')
    assert out.get_relation(rid).local_app_data["error"].startswith("no LXD project named ci: create it")
    assert lxd.trusted == {} and "create_project" not in lxd.calls


def test_admin_only_when_the_operator_chose_it(lxd, cluster_pem):
    out, rid = relate(lxd, cluster_pem, {"client-access": "admin"}, certificate=cluster_pem)
    assert lxd.trusted == {f"juju-runner-{rid}": (certificate_fingerprint(cluster_pem), None)}
    assert ClusterEndpoints.load(dict(out.get_relation(rid).local_app_data)).projects == ()


def test_refuse_trusts_nothing_and_takes_back_a_trust_the_client_had(lxd, cluster_pem):
    lxd.trusted[f"juju-runner-{REL + 1}"] = (certificate_fingerprint(cluster_pem), ("runner",))
    out, rid = relate(lxd, cluster_pem, {"client-access": "refuse"}, certificate=cluster_pem)
    assert "name the LXD projects this application needs" in out.get_relation(rid).local_app_data["error"]
    assert lxd.trusted == {}


def test_an_unrestricted_client_of_an_older_charm_is_restricted_on_the_next_hook(lxd, cluster_pem):
    lxd.trusted[f"juju-runner-{REL + 1}"] = (certificate_fingerprint(cluster_pem), None)  # admin by default before
    _, rid = relate(lxd, cluster_pem, certificate=cluster_pem)
    assert lxd.trusted == {f"juju-runner-{rid}": (certificate_fingerprint(cluster_pem), ("runner",))}


def test_an_expired_client_certificate_is_refused_with_the_reason(lxd, cluster_pem):
    out, rid = relate(lxd, cluster_pem, certificate=x509_pem(days=(-30, -2)))
    assert "the certificate expired on" in out.get_relation(rid).local_app_data["error"]
    assert lxd.trusted == {} and not {"trust_client", "create_project"} & set(lxd.calls)
