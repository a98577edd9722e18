"""lib/charms/lxd_cluster/v0: both sides through ops.testing and bad databags (the charm as
provider: test_clients.py)."""

from __future__ import annotations

import base64
import hashlib
import ssl

import ops
import pytest
from charms.lxd_cluster.v0.lxd_cluster import (
    ClientRequest,
    ClusterEndpoints,
    DataError,
    LXDClusterRequirer,
    check_client_certificate,
    fingerprint_of,
)
from charms.lxd_cluster.v0.lxd_cluster import fingerprint_of as certificate_fingerprint
from ops import testing

from tests.certs import x509_pem

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


# -- certificates: parsed as X.509, checked before anything is trusted ------------------------------
def test_base64_between_pem_markers_that_is_no_certificate_is_refused():
    """The old check hashed any base64 between the markers: this "verified"."""
    garbage = "-----BEGIN CERTIFICATE-----\n" + base64.b64encode(b"x" * 300).decode() + "\n-----END CERTIFICATE-----\n"
    with pytest.raises(DataError, match="not an X.509 certificate"):
        fingerprint_of(garbage)
    with pytest.raises(DataError, match="not an X.509 certificate"):
        ClientRequest.load({"certificate": garbage})


def test_the_fingerprint_is_the_sha256_of_the_der_as_lxd_prints_it(cluster_pem):
    assert fingerprint_of(cluster_pem) == hashlib.sha256(ssl.PEM_cert_to_DER_cert(cluster_pem)).hexdigest()


@pytest.mark.parametrize(
    "pem, words",
    [
        (lambda: x509_pem(days=(-10, -1)), "expired on"),
        (lambda: x509_pem(days=(1, 10)), "not valid before"),
        (lambda: x509_pem(key_usage={"key_encipherment": True}), "lacks digitalSignature"),
        (lambda: x509_pem(extended=("SERVER_AUTH",)), "does not include clientAuth"),
        (lambda: x509_pem() + x509_pem(), "exactly one certificate"),
        (lambda: x509_pem() + "-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\n", "private key"),
        (lambda: "MIIBcDCCARWgAwIBAgIU", "no BEGIN CERTIFICATE"),
    ],
    ids=["expired", "not-yet-valid", "key-usage", "extended-key-usage", "two", "private-key", "no-pem"],
)
def test_a_client_certificate_is_refused_with_the_reason(pem, words):
    with pytest.raises(DataError, match=words):
        check_client_certificate(pem())
    with pytest.raises(DataError, match=words):
        ClientRequest.load({"certificate": pem()})


@pytest.mark.parametrize(
    "pem",
    [
        lambda: x509_pem(),
        lambda: x509_pem(key_usage={"digital_signature": True}, extended=("CLIENT_AUTH", "SERVER_AUTH")),
        lambda: x509_pem(extended=("ANY_EXTENDED_KEY_USAGE",)),
    ],
    ids=["no-usages", "client-auth", "any"],
)
def test_a_usable_client_certificate_passes_with_its_fingerprint(pem):
    cert = pem()
    assert check_client_certificate(cert) == fingerprint_of(cert)


def test_the_projects_granted_travel_to_the_requirer_and_old_provider_data_still_loads(cluster_pem):
    data = ClusterEndpoints(
        ("https://10.0.0.1:8443",), cluster_pem, fingerprint_of(cluster_pem), "ab", projects=("runner",)
    ).dump()
    assert ClusterEndpoints.load(data).projects == ("runner",)
    del data["projects"]  # a LIBPATCH 1 provider
    assert ClusterEndpoints.load(data).projects == ()


def test_the_ca_travels_to_the_requirer_as_its_trust_anchor_and_old_provider_data_still_loads(cluster_pem):
    ca = x509_pem("Site CA")
    data = ClusterEndpoints(("https://10.0.0.1:8443",), cluster_pem, fingerprint_of(cluster_pem), "ab", ca=ca).dump()
    info = ClusterEndpoints.load(data)
    assert (info.ca, info.trust_anchor, info.fingerprint) == (ca, ca, fingerprint_of(cluster_pem))
    del data["ca"]  # a LIBPATCH 2 provider, or a self-signed cluster: the certificate is the anchor
    assert ClusterEndpoints.load(data).trust_anchor == cluster_pem
    with pytest.raises(DataError, match="not a PEM certificate"):
        ClusterEndpoints.load({**data, "ca": "-----BEGIN CERTIFICATE-----\nnope"})
