"""Least privilege on real LXD daemons: restricted tokens and relation clients, tokens that expire,
certificates checked before LXD sees them."""

from __future__ import annotations

import base64
import json
import time

import pylxd
import pytest
import yaml
from pylxd.exceptions import LXDAPIException

from tests.functional.test_client_library import client_certificate
from tests.harness.cluster import form

pytestmark = pytest.mark.functional


def tls_client(endpoint, crt, key, server_pem, project=None) -> pylxd.Client:
    return pylxd.Client(endpoint=endpoint, cert=(str(crt), str(key)), verify=str(server_pem), project=project)


def server_certificate(cluster, tmp_path):
    pem = tmp_path / "cluster.crt"
    pem.write_text(cluster.sim.units[0].state.get_relation(1).local_app_data["certificate"])
    return pem


def trust_list(cluster) -> list[dict]:
    return json.loads(cluster.lxc(0, "config", "trust", "list", "--format", "json").stdout)


def test_a_project_restricted_token_lists_its_project_and_gets_403_on_another(lab, tmp_path):
    cluster = form(lab, 1, driver="dir")
    sim, endpoint = cluster.sim, f"https://{cluster.member(0).address}:8443"
    cluster.lxc(0, "project", "create", "ci")

    refused = sim.run_action(0, "add-trusted-client", name="ci-box")  # no projects, no admin=true
    assert "name the projects the client may use" in refused.failure
    outcome = sim.run_action(0, "add-trusted-client", name="ci-box", projects=["ci"])
    assert outcome.ok, outcome.failure
    assert outcome.results["projects"] == "ci"
    assert outcome.results["token-expires-at"].startswith(time.strftime("%Y-"))  # LXD stamped an expiry

    crt, key = client_certificate(tmp_path, "ci-box")
    server = server_certificate(cluster, tmp_path)
    client = tls_client(endpoint, crt, key, server)
    client.authenticate(outcome.results["token"])  # what `lxc remote add ci-box <token>` does
    assert client.trusted
    row = next(r for r in trust_list(cluster) if r["name"] == "ci-box")
    assert row["restricted"] is True and row["projects"] == ["ci"]

    assert tls_client(endpoint, crt, key, server, project="ci").instances.all() == []
    with pytest.raises(LXDAPIException) as forbidden:
        client.instances.all()  # the default project
    assert forbidden.value.response.status_code == 403

    # single use: a second certificate cannot use the same token
    crt2, key2 = client_certificate(tmp_path, "thief")
    with pytest.raises(LXDAPIException):
        tls_client(endpoint, crt2, key2, server).authenticate(outcome.results["token"])


def test_an_expired_token_is_refused_by_lxd(lab, tmp_path):
    cluster = form(lab, 1, driver="dir", config={"client-token-expiry": "3S", "join-token-expiry": "3S"})
    sim = cluster.sim
    assert cluster.lxc(0, "config", "get", "core.remote_token_expiry").stdout.strip() == "3S"
    assert cluster.lxc(0, "config", "get", "cluster.join_token_expiry").stdout.strip() == "3S"

    client_token = sim.run_action(0, "add-trusted-client", name="late", projects=["default"])
    assert client_token.ok, client_token.failure
    stranger = lab.add_member()  # a host outside Juju, with a revealed join token
    params = {"server-name": "outside", "address": stranger.address, "reveal": True}
    join = sim.run_action(0, "show-preseed", **params)
    assert join.ok, join.failure
    assert (
        json.loads(base64.b64decode(client_token.results["token"]))["expires_at"]
        == client_token.results["token-expires-at"]
    )
    time.sleep(4)

    crt, key = client_certificate(tmp_path, "late")
    client = tls_client(f"https://{cluster.member(0).address}:8443", crt, key, server_certificate(cluster, tmp_path))
    with pytest.raises(LXDAPIException, match="Token has expired"):
        client.authenticate(client_token.results["token"])
    assert "late" not in [r["name"] for r in trust_list(cluster)]

    preseed = join.results["preseed"]
    joined = lab.in_netns(stranger, ["lxd", "init", "--preseed"], check=False, input=preseed, timeout=120)
    assert joined.returncode != 0 and "expired" in (joined.stderr + joined.stdout).lower(), joined
    assert [m["server_name"] for m in yaml.safe_load(cluster.lxc(0, "cluster", "list", "--format", "yaml").stdout)] == [
        "lxd-cluster-0"
    ]


def test_certificates_that_are_no_client_certificate_are_refused_before_lxd_sees_them(lab, tmp_path):
    from tests.certs import x509_pem

    cluster = form(lab, 1, driver="dir")
    sim = cluster.sim
    before = trust_list(cluster)
    # base64 between PEM markers: the old check fingerprinted it and handed it to LXD
    garbage = "-----BEGIN CERTIFICATE-----\n" + base64.b64encode(b"x" * 300).decode() + "\n-----END CERTIFICATE-----"
    expired = x509_pem("old", days=(-30, -2))
    server_only = x509_pem("web", extended=("SERVER_AUTH",))
    for pem, words in ((garbage, "not an X.509 certificate"), (expired, "expired on"), (server_only, "clientAuth")):
        outcome = sim.run_action(0, "add-trusted-client", name="x", certificate=pem, admin=True)
        assert outcome.failure.startswith("certificate is refused: ") and words in outcome.failure, outcome.failure
        rid = sim.relate("lxd-cluster", "runner", {"certificate": pem})
        sim.settle()
        error = sim.provided[rid]["error"]
        assert words in error and not error.startswith("LXD:"), error  # our words: LXD never saw it
        sim.unrelate(rid)
        sim.settle()
    assert trust_list(cluster) == before
    assert sim.statuses()[0].name == "active"
