"""The cluster certificate from a CA over `tls-certificates`: asked for, checked, installed, renewed, given up.

The provider's databag is written as the interface documents it (tests.certs.TestCA); the requirer
side is charmlibs' TLSCertificatesRequiresV4 in the charm, its key in an app-owned Juju secret.
"""

from __future__ import annotations

import base64
import dataclasses
import json

import pytest
from charms.lxd_cluster.v0.lxd_cluster import ClusterEndpoints
from charms.lxd_cluster.v0.lxd_cluster import fingerprint_of as certificate_fingerprint
from cryptography import x509
from fake_lxd import FakeLXD, make_token
from ops import testing
from states import REL, announced, ctx, make_state, offer, published, queued

from cluster_certificate import signed_by
from models import Member
from tests.certs import TestCA, x509_pem

CERTS = REL + 5
CLIENT = REL + 6


@pytest.fixture
def lxd(lxd: FakeLXD) -> FakeLXD:
    """This unit is the leader's member of a two-member cluster, members listed by their addresses."""
    lxd.be_member("lxd-cluster-0", "lxd-cluster-1")
    lxd.member_rows = [
        Member(f"lxd-cluster-{i}", f"https://10.0.0.{i + 1}:8443", ("database",), "Online", "Fully operational")
        for i in range(2)
    ]
    return lxd


@pytest.fixture
def ca() -> TestCA:
    return TestCA()


def _state(cluster_pem: str, *relations: testing.Relation, peers: dict | None = None, **app: str) -> testing.State:
    state = make_state(
        leader=True, app=published(cluster_pem, **app), unit=announced(0), peers=peers or {1: announced(1)}
    )
    return dataclasses.replace(state, relations=[*state.relations, *relations])


def _certificates(remote: dict[str, str] | None = None, local: dict[str, str] | None = None) -> testing.Relation:
    return testing.Relation(
        "certificates", id=CERTS, remote_app_name="ca", remote_app_data=remote or {}, local_app_data=local or {}
    )


def _client(client_pem: str) -> testing.Relation:
    return testing.Relation(
        "lxd-cluster", id=CLIENT, remote_app_name="runner", remote_app_data={"certificate": client_pem}
    )


def _asked(cluster_pem: str, *relations: testing.Relation, peers: dict | None = None) -> testing.State:
    """The leader related to the CA: it made its key (an app secret) and put a CSR in its databag."""
    state = _state(cluster_pem, _certificates(), *relations, peers=peers)
    out = ctx().run(ctx().on.relation_created(state.get_relation(CERTS)), state)
    return out


def _answered(out: testing.State, ca: TestCA, **how) -> tuple[testing.State, str, str]:
    """The CA answers the leader's CSR (signed as `how` says) in its databag; the leader runs
    relation-changed with what the last hook left. Returns its output, the CSR and the certificate."""
    csr = _csr(out)
    cert = ca.sign(csr, **how)
    rel = dataclasses.replace(out.get_relation(CERTS), remote_app_data=ca.answer((csr, cert)))
    state = dataclasses.replace(out, relations=[r for r in out.relations if r.id != CERTS] + [rel])
    return ctx().run(ctx().on.relation_changed(rel, remote_unit=0), state), csr, cert


def _csr(out: testing.State) -> str:
    (csr,) = TestCA.csrs(dict(out.get_relation(CERTS).local_app_data))
    return csr


def _sans(csr_pem: str) -> list[str]:
    csr = x509.load_pem_x509_csr(csr_pem.encode())
    san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return san.get_values_for_type(x509.DNSName) + sorted(str(ip) for ip in san.get_values_for_type(x509.IPAddress))


def test_leader_asks_for_one_certificate_naming_every_unit_address(lxd, cluster_pem):
    out = _asked(cluster_pem)
    assert _sans(_csr(out)) == ["lxd-cluster", "10.0.0.1", "10.0.0.2"]  # members check each other by the name
    assert not any("PRIVATE KEY" in v for v in out.get_relation(CERTS).local_app_data.values())
    assert "update_cluster_certificate" not in lxd.mutations()  # nothing to install yet: the cluster serves on
    assert out.unit_status.name == "active" and "waiting for the cluster certificate from ca" in out.unit_status.message


def test_signed_certificate_is_installed_cluster_wide_and_published_with_its_ca(lxd, cluster_pem, ca):
    client_pem = x509_pem("runner")
    out = _asked(cluster_pem, _client(client_pem))
    out, csr, signed = _answered(out, ca)

    assert lxd.certificate == signed and "update_cluster_certificate" in lxd.mutations()
    assert lxd.certificate_key.startswith("-----BEGIN") and lxd.certificate_key not in json.dumps(
        [dict(r.local_app_data) for r in out.relations]
    )
    app = out.get_relation(REL).local_app_data  # joiners verify what they join against this
    assert (app["certificate"], app["fingerprint"], app["ca"]) == (signed, certificate_fingerprint(signed), ca.pem)
    info = ClusterEndpoints.load(dict(out.get_relation(CLIENT).local_app_data))  # clients, in the same hook
    assert (info.certificate, info.fingerprint, info.ca) == (signed, certificate_fingerprint(signed), ca.pem)
    assert info.trust_anchor == ca.pem and signed_by(info.certificate, info.trust_anchor)
    assert out.unit_status.name == "active", out.unit_status


@pytest.mark.parametrize(
    "bad, reason",
    [
        (dict(ips=("10.0.0.1",)), "its SANs miss member address 10.0.0.2"),
        (dict(days=(-30, -1)), "it expired on"),
        (dict(other_key=True), "its key is not the one the charm asked with"),
        (dict(dns=()), "it has no DNS SAN"),
    ],
    ids=["sans-miss-a-member", "expired", "key-mismatch", "no-dns-name"],
)
def test_unusable_certificate_blocks_and_changes_nothing(lxd, cluster_pem, ca, bad, reason):
    client_pem = x509_pem("runner")
    out = _asked(cluster_pem, _client(client_pem))
    out, csr, _ = _answered(out, ca, **bad)

    assert out.unit_status.name == "blocked", out.unit_status
    assert reason in out.unit_status.message and "have ca issue a new one" in out.unit_status.message
    assert lxd.certificate == cluster_pem and "update_cluster_certificate" not in lxd.mutations()
    app = out.get_relation(REL).local_app_data
    assert app["certificate"] == cluster_pem and "ca" not in app
    assert ClusterEndpoints.load(dict(out.get_relation(CLIENT).local_app_data)).trust_anchor == cluster_pem


def test_a_new_unit_address_asks_for_a_new_certificate_and_keeps_the_installed_one(lxd, cluster_pem, ca):
    out = _asked(cluster_pem)
    out, csr, signed = _answered(out, ca)
    assert lxd.certificate == signed

    # lxd-cluster/2 announces itself (10.0.0.3): the leader asks for a certificate that names it too
    peers = dataclasses.replace(out.get_relation(REL), peers_data={1: announced(1), 2: announced(2)})
    state = dataclasses.replace(out, relations=[r for r in out.relations if r.id != REL] + [peers])
    out = ctx().run(ctx().on.relation_changed(peers, remote_unit=2), state)
    assert _sans(_csr(out)) == ["lxd-cluster", "10.0.0.1", "10.0.0.2", "10.0.0.3"]
    assert lxd.certificate == signed  # the old answer stays installed until the CA answers the new CSR
    assert "waiting for the cluster certificate from ca" in out.unit_status.message


def test_a_renewed_certificate_replaces_the_installed_one(lxd, cluster_pem, ca):
    out = _asked(cluster_pem)
    out, csr, first = _answered(out, ca)
    assert lxd.certificate == first

    out, same_csr, second = _answered(out, ca, days=(-1, 60))  # the CA renews it for the same request
    assert same_csr == csr
    assert lxd.certificate == second != first
    assert out.get_relation(REL).local_app_data["fingerprint"] == certificate_fingerprint(second)


def test_a_certificate_near_its_expiry_is_renewed_by_a_new_request(lxd, cluster_pem, ca):
    """The library's renewal: past its renewal time (here 97 % of the validity period) a certificate is
    asked for again with a new CSR; the one installed serves until the CA answers."""
    out = _asked(cluster_pem)
    out, csr, ageing = _answered(out, ca, days=(-29.1, 0.9))
    assert lxd.certificate == ageing
    assert _csr(out) != csr and _sans(_csr(out)) == _sans(csr)
    assert "waiting for the cluster certificate from ca" in out.unit_status.message

    out, _, renewed = _answered(out, ca)
    assert lxd.certificate == renewed


def test_relation_broken_installs_a_new_self_signed_certificate_and_tells_clients_in_the_same_hook(
    lxd, cluster_pem, ca
):
    out = _asked(cluster_pem, _client(x509_pem("runner")))
    out, csr, signed = _answered(out, ca)
    assert lxd.certificate == signed

    out = ctx().run(ctx().on.relation_broken(out.get_relation(CERTS)), out)
    replaced = lxd.certificate
    assert replaced not in (signed, cluster_pem)
    cert = x509.load_pem_x509_certificate(replaced.encode())
    assert cert.issuer == cert.subject  # self-signed, naming every member's address
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sorted(str(ip) for ip in san.get_values_for_type(x509.IPAddress)) == ["10.0.0.1", "10.0.0.2"]
    assert san.get_values_for_type(x509.DNSName) == ["lxd-cluster"]
    app = out.get_relation(REL).local_app_data
    assert (app["certificate"], app["fingerprint"]) == (replaced, certificate_fingerprint(replaced))
    assert "ca" not in app
    info = ClusterEndpoints.load(dict(out.get_relation(CLIENT).local_app_data))
    assert (info.certificate, info.ca, info.trust_anchor) == (replaced, "", replaced)
    assert out.unit_status.name == "active", out.unit_status

    # and a later hook leaves the self-signed certificate alone
    calls = len(lxd.calls)
    ctx().run(ctx().on.update_status(), out)
    assert "update_cluster_certificate" not in lxd.calls[calls:]


def test_a_self_signed_cluster_without_the_relation_is_left_alone(lxd, cluster_pem):
    ctx().run(ctx().on.update_status(), _state(cluster_pem))
    assert "update_cluster_certificate" not in lxd.mutations()


def test_the_issuer_reissues_a_join_token_that_names_the_replaced_certificate(lxd, cluster_pem, ca):
    """A joiner checks the cluster certificate against its token: tokens issued before the change are
    re-issued in the hook that installs the new certificate."""
    old_token = make_token("lxd-cluster-2", cluster_pem)
    join = testing.Secret({"kind": "token", "value": old_token}, owner="app", label="join-lxd-cluster-2")
    peers = {1: announced(1), 2: announced(2)}
    state = _state(cluster_pem, _certificates(), peers=peers, **{"issuer": "lxd-cluster/0"})
    app = {**published(cluster_pem), "issuer": "lxd-cluster/0"}
    app.update(queued({"join-unit": "lxd-cluster/2", "join-secret": join.id, "join-id": "j1"}))
    rel = dataclasses.replace(state.get_relation(REL), local_app_data=app)
    state = dataclasses.replace(state, relations=[r for r in state.relations if r.id != REL] + [rel], secrets=[join])
    out = ctx().run(ctx().on.relation_created(state.get_relation(CERTS)), state)
    out, csr, signed = _answered(out, ca, ips=("10.0.0.1", "10.0.0.2"))

    assert lxd.certificate == signed
    secret = next(s for s in out.secrets if s.label == "join-lxd-cluster-2")
    token = json.loads(base64.b64decode(secret.latest_content["value"]))
    assert token["fingerprint"] == certificate_fingerprint(signed)
    assert offer(dict(out.get_relation(REL).local_app_data), "lxd-cluster/2")["join-secret"] == join.id


def test_a_member_that_serves_a_new_certificate_before_the_leader_publishes_it_waits(lxd, cluster_pem, other_pem):
    """The leader's PUT reaches every member at once; the others see the new certificate before its
    databag write commits: the same cluster (its address is a member), not another one."""
    lxd.server_name, lxd.certificate = "lxd-cluster-1", other_pem
    state = make_state(ip="10.0.0.2", app=published(cluster_pem), unit=announced(1), peers={0: announced(0)})
    out = ctx(1).run(ctx(1).on.update_status(), state)
    assert out.unit_status == testing.WaitingStatus(
        "the cluster certificate changed: waiting for the leader to publish it"
    )
