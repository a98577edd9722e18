"""lib/charms/lxd_cluster/v0: both sides through ops.testing and bad databags (the charm as
provider: test_clients.py)."""

from __future__ import annotations

import ops
import pytest
from charms.lxd_cluster.v0.lxd_cluster import (
    ClientRequest,
    ClusterEndpoints,
    DataError,
    LXDClusterRequirer,
)
from ops import testing

from workload import certificate_fingerprint

META = {"name": "runner", "requires": {"lxd-cluster": {"interface": "lxd_cluster", "limit": 1}}}


class Runner(ops.CharmBase):
    PEM = ""

    def __init__(self, framework):
        super().__init__(framework)
        self.lxd = LXDClusterRequirer(self, certificate=self.PEM, projects=["ci"])
        framework.observe(self.lxd.on.cluster_available, self._available)
        framework.observe(self.lxd.on.cluster_gone, self._gone)

    def _available(self, event):
        self.unit.status = ops.ActiveStatus(",".join(event.info.endpoints))

    def _gone(self, event):
        self.unit.status = ops.BlockedStatus("gone")


@pytest.fixture
def runner(cluster_pem):
    Runner.PEM = cluster_pem  # any valid certificate serves as the client's here
    return testing.Context(Runner, meta=META)


def provider_data(pem: str, client_pem: str) -> dict[str, str]:
    return ClusterEndpoints(
        ("https://10.0.0.1:8443", "https://10.0.0.2:8443"),
        pem,
        certificate_fingerprint(pem),
        certificate_fingerprint(client_pem),
    ).dump()


def test_requirer_leader_publishes_its_certificate_and_projects(runner, cluster_pem):
    relation = testing.Relation("lxd-cluster")
    state = testing.State(leader=True, relations=[relation])
    out = runner.run(runner.on.relation_joined(relation, remote_unit=0), state)
    data = out.get_relation(relation.id).local_app_data
    assert data == {"certificate": cluster_pem, "projects": '["ci"]'}


def test_requirer_announces_the_cluster_once_its_own_certificate_is_trusted(runner, cluster_pem):
    relation = testing.Relation("lxd-cluster", remote_app_data=provider_data(cluster_pem, cluster_pem))
    out = runner.run(runner.on.relation_changed(relation, remote_unit=0), testing.State(relations=[relation]))
    assert out.unit_status == testing.ActiveStatus("https://10.0.0.1:8443,https://10.0.0.2:8443")


@pytest.mark.parametrize(
    "data",
    [
        {},
        {"endpoints": '["https://x:8443"]'},
        {"endpoints": "not json", "certificate": "x", "fingerprint": "y"},
        {"error": "not a PEM certificate"},
    ],
)
def test_requirer_ignores_incomplete_or_refused_provider_data(runner, data):
    relation = testing.Relation("lxd-cluster", remote_app_data=data)
    out = runner.run(runner.on.relation_changed(relation, remote_unit=0), testing.State(relations=[relation]))
    assert out.unit_status == testing.UnknownStatus()


def test_requirer_rejects_a_certificate_that_does_not_match_the_fingerprint(cluster_pem):
    data = provider_data(cluster_pem, cluster_pem)
    data["fingerprint"] = "00" * 32
    with pytest.raises(DataError, match="does not match"):
        ClusterEndpoints.load(data)


def test_requirer_is_told_when_the_cluster_goes(runner):
    relation = testing.Relation("lxd-cluster")
    out = runner.run(runner.on.relation_broken(relation), testing.State(relations=[relation]))
    assert out.unit_status == testing.BlockedStatus("gone")


@pytest.mark.parametrize(
    "data, words",
    [
        ({}, "no certificate"),
        ({"certificate": "-----BEGIN CERTIFICATE-----\ngarbage\n-----END CERTIFICATE-----\n"}, "not a PEM"),
        ({"certificate": "PEM", "projects": "ci"}, "not a JSON list"),
    ],
)
def test_client_request_validation(data, words):
    with pytest.raises(DataError, match=words):
        ClientRequest.load(data)
