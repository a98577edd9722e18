"""Instances in every project (issue 23.2, L9) on real LXD daemons: a client's container in its own
project, made as the client makes it, leaves a departing member with the default project's."""

from __future__ import annotations

import json

import pytest
from charms.lxd_cluster.v0.lxd_cluster import ClusterEndpoints

from tests.functional.test_client_library import client_certificate, tls_client
from tests.harness.cluster import FormedCluster, form

pytestmark = pytest.mark.functional

LEAVING = "lxd-cluster-3"


def all_instances(cluster: FormedCluster, via: int = 0) -> dict[tuple[str, str], dict]:
    out = cluster.lxc(via, "list", "--all-projects", "--format", "json").stdout
    return {(i["project"], i["name"]): i for i in json.loads(out)}


def web_in_two_projects(cluster: FormedCluster, tmp_path) -> dict[tuple[str, str], dict]:
    """A related client `runner` gets its own restricted project (client-access=own-project) and, over
    TLS with its own certificate, uploads busybox there and starts `web` without a target: LXD places
    it on the emptiest member, LEAVING. The default project holds one container on each other
    member and its own `web` on LEAVING."""
    sim, lab = cluster.sim, cluster.lab
    lab.import_image(cluster.member(0))
    for uid in range(3):
        assert sim.run_action(0, "launch", name=f"d{uid}", image="busybox", target=f"lxd-cluster-{uid}").ok
    crt, key = client_certificate(tmp_path, "runner")
    rid = sim.relate("lxd-cluster", "runner", {"certificate": crt.read_text()})
    sim.settle()
    provided = sim.provided[rid]
    assert ClusterEndpoints.load(provided).projects == ("runner",), provided
    server_pem = tmp_path / "cluster.crt"
    server_pem.write_text(provided["certificate"])
    client = tls_client(json.loads(provided["endpoints"])[0], crt, key, server_pem, project="runner")
    image = client.images.create(lab.image_tarball().read_bytes())
    client.instances.create({"name": "web", "source": {"type": "image", "fingerprint": image.fingerprint}}, wait=True)
    client.instances.get("web").start(wait=True)
    assert sim.run_action(0, "launch", name="web", image="busybox", target=LEAVING).ok
    before = all_instances(cluster)
    assert {k for k, i in before.items() if i["location"] == LEAVING} == {("default", "web"), ("runner", "web")}
    assert all(i["status"] == "Running" for i in before.values())
    listed = json.loads(sim.run_action(0, "cluster-list").results["members"])
    assert {r["name"]: r["instances"] for r in listed}[LEAVING] == "2"  # both projects counted
    return before


def assert_none_lost(cluster: FormedCluster, before: dict) -> None:
    after = all_instances(cluster)
    assert sorted(after) == sorted(before)  # same (project, name) pairs: nothing lost, nothing renamed
    assert {i["location"] for i in after.values()} <= {"lxd-cluster-0", "lxd-cluster-1", "lxd-cluster-2"}
    assert all(i["status"] == "Running" for i in after.values()), after
    members = json.loads(cluster.lxc(0, "cluster", "list", "--format", "json").stdout)
    assert LEAVING not in [m["server_name"] for m in members]


def test_scale_in_moves_a_clients_project_instance_and_the_default_ones_and_loses_none(lab, tmp_path):
    cluster = form(lab, 4, driver="dir")
    before = web_in_two_projects(cluster, tmp_path)
    cluster.sim.remove_unit(3)
    cluster.sim.settle()
    assert_none_lost(cluster, before)
    assert not cluster.sim.units[3].alive  # its departure hooks succeeded: Juju removed it


def test_remove_node_names_and_evacuates_every_projects_instances(lab, tmp_path):
    cluster = form(lab, 4, driver="dir")
    before = web_in_two_projects(cluster, tmp_path)
    refused = cluster.sim.run_action(0, "remove-node", name=LEAVING)
    assert "still has instances: runner/web, web;" in refused.failure, refused.failure
    removed = cluster.sim.run_action(0, "remove-node", name=LEAVING, evacuate=True)
    assert removed.ok, removed.failure
    assert removed.results["lost"] == "none"
    assert removed.results["instances-before"] == removed.results["instances-after"] == 5
    moved = dict(pair.split("->") for pair in removed.results["moved"].split(", "))
    after = all_instances(cluster)
    assert moved == {"web": after[("default", "web")]["location"], "runner/web": after[("runner", "web")]["location"]}
    assert_none_lost(cluster, before)
