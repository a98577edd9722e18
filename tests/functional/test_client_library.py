"""The client library end to end: a requirer's certificate trusted through the relation, real TLS."""

from __future__ import annotations

import re
from pathlib import Path

import charms.lxd_cluster.v0.lxd_cluster as library
import ops
import pylxd
import pytest
import yaml
from ops import testing
from pylxd.exceptions import LXDAPIException

from tests.certs import self_signed_pem
from tests.harness.cluster import form

pytestmark = pytest.mark.functional

REQUIRER_META = {"name": "runner", "requires": {"lxd-cluster": {"interface": "lxd_cluster", "limit": 1}}}


def docstring_example() -> type[ops.CharmBase]:
    """The requirer charm exactly as the library's docstring shows it."""
    code = re.search(r"```python\n(.*?)```", library.__doc__, re.S).group(1)
    namespace: dict = {}
    exec(compile(code, "lxd_cluster docstring example", "exec"), namespace)
    return namespace["RunnerCharm"]


def client_certificate(tmp: Path, name: str) -> tuple[Path, Path]:
    """A client's own self-signed certificate and key, as `lxc remote add` would make them."""
    directory = tmp / name
    directory.mkdir()
    self_signed_pem(directory, name)
    return directory / "cert.pem", directory / "key.pem"


def runner_request(tmp: Path) -> tuple[dict[str, str], Path, Path]:
    """What the docstring example's requirer, as application `runner` with its own certificate, writes
    in its app databag on relation-joined: (that databag, its certificate file, its key file)."""
    crt, key = client_certificate(tmp, "runner")
    runner = type("Runner", (docstring_example(),), {"client_certificate": lambda self: crt.read_text()})
    ctx = testing.Context(runner, meta=REQUIRER_META)
    relation = testing.Relation("lxd-cluster", remote_app_name="lxd-cluster")
    out = ctx.run(ctx.on.relation_joined(relation, remote_unit=0), testing.State(leader=True, relations=[relation]))
    return dict(out.get_relation(relation.id).local_app_data), crt, key


def tls_client(endpoint: str, crt: Path, key: Path, server_pem: Path, project: str | None = None) -> pylxd.Client:
    return pylxd.Client(endpoint=endpoint, cert=(str(crt), str(key)), verify=str(server_pem), project=project)


def test_related_client_is_trusted_over_tls_and_refused_after_broken(lab, tmp_path):
    cluster = form(lab, 3, driver="dir")
    sim = cluster.sim
    lab.import_image(cluster.member(0))
    assert sim.run_action(0, "launch", name="web", image="busybox").ok
    crt, key = client_certificate(tmp_path, "runner")

    # the requirer, from the docstring example, publishes its certificate
    runner_type = docstring_example()
    runner = type("Runner", (runner_type,), {"client_certificate": lambda self: crt.read_text()})
    ctx = testing.Context(runner, meta=REQUIRER_META)
    relation = testing.Relation("lxd-cluster", remote_app_name="lxd-cluster")
    out = ctx.run(ctx.on.relation_joined(relation, remote_unit=0), testing.State(leader=True, relations=[relation]))
    request = dict(out.get_relation(relation.id).local_app_data)
    assert request["certificate"] == crt.read_text()

    rid = sim.relate("lxd-cluster", "runner", request)
    sim.settle()
    provided = sim.provided[rid]
    assert "endpoints" in provided, (provided, sim.statuses())
    assert sorted(library.json.loads(provided["endpoints"])) == [
        f"https://{cluster.member(u).address}:8443" for u in range(3)
    ]

    # the requirer sees the cluster, exactly as the example reports it
    relation = testing.Relation(
        "lxd-cluster", id=relation.id, remote_app_name="lxd-cluster", remote_app_data=provided, local_app_data=request
    )
    out = ctx.run(ctx.on.relation_changed(relation, remote_unit=0), testing.State(leader=True, relations=[relation]))
    assert out.unit_status.name == "active"
    endpoint = out.unit_status.message.removeprefix("LXD cluster at ")
    assert endpoint in provided["endpoints"]

    # it asked for no projects: it got its own (restricted) project, named after it, and nothing more
    assert library.ClusterEndpoints.load(provided).projects == ("runner",)
    project = yaml.safe_load(cluster.lxc(0, "project", "show", "runner").stdout)
    assert project["config"]["restricted"] == "true", project

    # real TLS: the client's certificate lists its project's instances; the server is verified by the published PEM
    server_pem = tmp_path / "cluster.crt"
    server_pem.write_text(provided["certificate"])
    client = tls_client(endpoint, crt, key, server_pem)
    assert client.trusted
    for other in library.json.loads(provided["endpoints"]):  # every member answers the same
        assert tls_client(other, crt, key, server_pem, project="runner").instances.all() == []
    with pytest.raises(LXDAPIException) as forbidden:  # "web" is in the default project: not its own
        client.instances.all()
    assert forbidden.value.response.status_code == 403

    # a certificate that was never related is refused
    stranger_crt, stranger_key = client_certificate(tmp_path, "stranger")
    # and the server check is real: pinned to another certificate (pylxd pins the fingerprint), it fails
    with pytest.raises(Exception, match="Fingerprints did not match"):
        tls_client(endpoint, crt, key, stranger_crt)
    stranger = tls_client(endpoint, stranger_crt, stranger_key, server_pem)
    assert not stranger.trusted
    with pytest.raises(LXDAPIException):
        stranger.instances.all()

    # relation broken: the certificate leaves the trust store and the same client is refused (403)
    sim.unrelate(rid)
    sim.settle()  # each unit runs relation-departed, then relation-broken
    again = tls_client(endpoint, crt, key, server_pem, project="runner")
    assert not again.trusted
    with pytest.raises(LXDAPIException) as refused:
        again.instances.all()
    assert refused.value.response.status_code == 403


def test_garbage_certificate_is_refused_with_a_reason_and_nothing_trusted(lab):
    cluster = form(lab, 1, driver="dir")
    rid = cluster.sim.relate("lxd-cluster", "runner", {"certificate": "-----BEGIN CERTIFICATE-----\nnot a cert"})
    cluster.sim.settle()
    assert "not a PEM certificate" in cluster.sim.provided[rid]["error"]
    listed = cluster.lxc(0, "config", "trust", "list", "--format", "csv").stdout
    assert "juju-runner" not in listed
