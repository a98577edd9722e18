"""A CA-signed cluster certificate over `tls-certificates`, on real LXD: a test CA plays the provider.

The CA reads the CSR from the charm's databag and answers in its own, as the interface documents
it (tests.certs.TestCA); clients verify the members with plain TLS (requests, verify=<CA file>):
pylxd pins a fingerprint instead of verifying a chain.
"""

from __future__ import annotations

import json
import ssl
from pathlib import Path

import charms.lxd_cluster.v0.lxd_cluster as library
import pytest
import requests

from tests.certs import TestCA, self_signed_pem
from tests.harness.cluster import FormedCluster, add_units, form

pytestmark = pytest.mark.functional


def answer_requests(cluster: FormedCluster, rid: int, ca: TestCA, issued: dict[str, str]) -> None:
    """The CA answers every CSR the charm asks with (keeping the answers it gave), then Juju settles."""
    for csr in TestCA.csrs(cluster.sim.provided[rid]):
        issued.setdefault(csr, ca.sign(csr))
    asked = set(TestCA.csrs(cluster.sim.provided[rid]))
    cluster.sim.set_remote_data(rid, ca.answer(*((c, cert) for c, cert in issued.items() if c in asked)))
    cluster.sim.settle()


def served_fingerprint(endpoint: str) -> str:
    """The SHA-256 of the certificate a member serves, read off the TLS handshake."""
    host, port = endpoint.removeprefix("https://").rsplit(":", 1)
    pem = ssl.get_server_certificate((host, int(port)), timeout=10)
    return library.fingerprint_of(pem)


def reaches(endpoint: str, client: tuple[Path, Path], trust: Path) -> str:
    """GET /1.0 with the client certificate, the server verified against `trust` only: LXD's `auth`."""
    response = requests.get(f"{endpoint}/1.0", cert=(str(client[0]), str(client[1])), verify=str(trust), timeout=10)
    response.raise_for_status()
    return response.json()["metadata"]["auth"]


def test_ca_signed_cluster_certificate_serves_clients_joiners_renewal_and_goes_back_to_self_signed(lab, tmp_path):
    cluster = form(lab, 2, driver="dir")
    sim = cluster.sim
    client_dir = tmp_path / "runner"
    client_dir.mkdir()
    self_signed_pem(client_dir, "runner")
    client = (client_dir / "cert.pem", client_dir / "key.pem")
    crid = sim.relate("lxd-cluster", "runner", {"certificate": client[0].read_text()})
    sim.settle()
    self_signed = library.ClusterEndpoints.load(sim.provided[crid])
    assert self_signed.ca == ""

    # the CA answers the leader's CSR: every member serves the signed certificate
    ca, issued = TestCA(), {}
    ca_file = tmp_path / "ca.pem"
    ca_file.write_text(ca.pem)
    rid = sim.relate("certificates", "ca")
    sim.settle()
    assert TestCA.csrs(sim.provided[rid]), sim.statuses()
    answer_requests(cluster, rid, ca, issued)
    info = library.ClusterEndpoints.load(sim.provided[crid])
    assert info.ca == ca.pem and info.trust_anchor == ca.pem and info.fingerprint != self_signed.fingerprint
    assert len(info.endpoints) == 2
    for endpoint in info.endpoints:  # a client that trusts only the CA reaches every member
        assert served_fingerprint(endpoint) == info.fingerprint
        assert reaches(endpoint, client, ca_file) == "trusted"
    assert all(s.name == "active" for s in sim.statuses().values()), sim.statuses()

    # a member that joins after the replacement: it verifies the new certificate, and the CA's next
    # certificate names it too
    (new,) = add_units(cluster, 1, loop_devices=False)
    answer_requests(cluster, rid, ca, issued)
    info = library.ClusterEndpoints.load(sim.provided[crid])
    assert f"https://{cluster.member(new).address}:8443" in info.endpoints and len(info.endpoints) == 3
    listed = json.loads(cluster.lxc(0, "cluster", "list", "--format", "json").stdout)
    assert sorted(m["status"] for m in listed) == ["Online"] * 3, listed
    for endpoint in info.endpoints:
        assert served_fingerprint(endpoint) == info.fingerprint
        assert reaches(endpoint, client, ca_file) == "trusted"

    # renewal: the CA issues a second certificate for the same request; the cluster stays formed
    (csr,) = TestCA.csrs(sim.provided[rid])
    issued[csr] = ca.sign(csr, days=(-1, 60))
    answer_requests(cluster, rid, ca, issued)
    renewed = library.ClusterEndpoints.load(sim.provided[crid])
    assert renewed.fingerprint != info.fingerprint and renewed.fingerprint == library.fingerprint_of(issued[csr])
    listed = json.loads(cluster.lxc(1, "cluster", "list", "--format", "json").stdout)
    assert sorted(m["status"] for m in listed) == ["Online"] * 3, listed
    for endpoint in renewed.endpoints:
        assert served_fingerprint(endpoint) == renewed.fingerprint
        assert reaches(endpoint, client, ca_file) == "trusted"

    # relation-broken: a new self-signed certificate, and the client is told it with the switch
    sim.unrelate(rid)
    sim.settle()
    back = library.ClusterEndpoints.load(sim.provided[crid])
    assert back.ca == "" and back.fingerprint not in (renewed.fingerprint, self_signed.fingerprint)
    trust = tmp_path / "cluster.pem"
    trust.write_text(back.trust_anchor)
    for endpoint in back.endpoints:
        assert served_fingerprint(endpoint) == back.fingerprint  # what the client was told is what is served
        assert reaches(endpoint, client, trust) == "trusted"
        with pytest.raises(requests.exceptions.SSLError):  # the CA no longer vouches for it
            reaches(endpoint, client, ca_file)
    listed = json.loads(cluster.lxc(2, "cluster", "list", "--format", "json").stdout)
    assert sorted(m["status"] for m in listed) == ["Online"] * 3, listed
    assert all(s.name == "active" for s in sim.statuses().values()), sim.statuses()
