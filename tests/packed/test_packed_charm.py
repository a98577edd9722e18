"""The artefact a user deploys: the .charm packed by charmcraft, its dispatch run as Juju runs it.

Packing: charmcraft 4.5 (and 3.5 beside it) from PyPI, destructive mode on this host
(scripts/pack.sh). Running: the packed `dispatch` on the system python3, with Debian's own
python3-openssl installed, Juju's hook tools emulated at the command level (hooktools.py), and a
real LXD daemon from the lab as the unit's LXD.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import ssl
import zipfile
from pathlib import Path

import pytest
import yaml

from tests.packed.conftest import pack
from tests.packed.packed_unit import PackedUnit, unpack

pytestmark = pytest.mark.packed
DISTRO_OPENSSL = Path("/usr/lib/python3/dist-packages/OpenSSL")


def names(charm: Path) -> set[str]:
    with zipfile.ZipFile(charm) as archive:
        return set(archive.namelist())


def mode(charm: Path, name: str) -> int:
    with zipfile.ZipFile(charm) as archive:
        return (archive.getinfo(name).external_attr >> 16) & 0o777


def assert_complete(charm: Path) -> None:
    """dispatch, an executable entrypoint, the venv with what the charm imports, no test tree."""
    inside = names(charm)
    for required in (
        "dispatch",
        "metadata.yaml",
        "config.yaml",
        "actions.yaml",
        "manifest.yaml",
        "src/charm.py",
        "src/workload.py",
        "lib/charms/lxd_cluster/v0/lxd_cluster.py",
    ):
        assert required in inside, required
    assert mode(charm, "dispatch") & 0o111 and mode(charm, "src/charm.py") & 0o111
    for package in ("ops", "pylxd", "yaml", "OpenSSL", "cryptography", "ws4py"):
        assert any(n.startswith(f"venv/{package}/") for n in inside), f"venv/{package} is missing"
    for kept_out in ("tests/", "docs/", "bench/", "demo/", "scripts/", ".ci/"):
        assert not any(n.startswith(kept_out) for n in inside), kept_out


def test_charmcraft_4_packs_a_complete_charm(packed_charm):
    assert packed_charm.name == "lxd-cluster_ubuntu@22.04-amd64.charm"
    assert_complete(packed_charm)
    with zipfile.ZipFile(packed_charm) as archive:
        manifest = yaml.safe_load(archive.read("manifest.yaml"))
        dispatch = archive.read("dispatch").decode()
    assert manifest["bases"] == [{"name": "ubuntu", "channel": "22.04", "architectures": ["amd64"]}]
    assert "PYTHONPATH=lib:venv" in dispatch and "./src/charm.py" in dispatch


def test_charmcraft_3_5_packs_the_same_project(tmp_path):
    """Users on charmcraft 3 (>= 3.3 writes the dispatch) get the same complete charm."""
    charm = pack(tmp_path, "3.5.3")
    assert_complete(charm)


def test_packed_hooks_bootstrap_a_real_lxd_member_and_answer_an_action(packed_charm, lab, tmp_path):
    assert DISTRO_OPENSSL.is_dir(), "install python3-openssl (scripts/setup.sh does): the clash must be present"
    member = lab.up(1, loop_devices=True)[0]
    unit = PackedUnit(
        unpack(packed_charm, tmp_path / "charm"),
        tmp_path / "juju",
        address=member.address,
        netns=member.netns,
        env={"LXD_DIR": str(member.lxd_dir)},
        storage={"local/0": member.loop},
        config={"storage-driver": "btrfs"},
    )

    # the order Juju gives a new leader unit with a storage attachment and a peer relation
    unit.hook("local-storage-attached", JUJU_STORAGE_ID="local/0")
    unit.hook("install")
    unit.peer_hook("relation-created")
    unit.hook("leader-elected")
    unit.hook("config-changed")
    unit.hook("start")
    unit.hook("update-status")

    state = unit.state
    assert state["unknown"] == [], "the charm called a hook tool or flag Juju does not have"
    assert state["refused"] == []
    used = {call[0] for call in state["calls"]}
    assert {
        "juju-log",
        "status-set",
        "config-get",
        "is-leader",
        "network-get",
        "relation-set",
        "relation-get",
        "storage-list",
        "storage-get",
        "application-version-set",
        "open-port",
    } <= used

    # what LXD shows: a one-member cluster on the unit's address, pool on its storage, profile on br0
    rows = json.loads(lab.lxc(member, "cluster", "list", "--format", "json").stdout)
    assert [(r["server_name"], r["status"], r["url"]) for r in rows] == [
        ("lxd-cluster-0", "Online", f"https://{member.address}:8443")
    ]
    pool = yaml.safe_load(lab.lxc(member, "storage", "show", "local", "--target", "lxd-cluster-0").stdout)
    assert pool["driver"] == "btrfs" and pool["config"]["source"] == member.loop
    profile = yaml.safe_load(lab.lxc(member, "profile", "show", "default").stdout)
    assert profile["devices"]["eth0"] == {"name": "eth0", "nictype": "bridged", "parent": "br0", "type": "nic"}
    assert profile["devices"]["root"]["pool"] == "local"

    # what the unit set
    version = lab.in_netns(member, ["lxd", "--version"]).stdout.strip()
    assert state["workload-version"] == version
    assert sorted(state["ports"]) == ["8443/tcp", "8444/tcp"]  # the cluster and metrics ports, for `juju expose`
    assert state["unit-status"] == [
        "active",
        "member lxd-cluster-0 of 1 (database-leader), fully operational; fewer than 3 members: no database redundancy",
    ]
    published = state["relations"]["0"]["data"]["lxd-cluster"]
    certificate = (member.lxd_dir / "cluster.crt").read_text()
    assert published["certificate"].strip() == certificate.strip()
    assert published["fingerprint"] == hashlib.sha256(ssl.PEM_cert_to_DER_cert(certificate)).hexdigest()
    assert published["cluster-address"] == f"{member.address}:8443"

    # an action, through action-get / action-set
    action = unit.action("cluster-list")
    assert action["failed"] is None
    table = action["results"]["table"]
    assert "lxd-cluster-0" in table and f"https://{member.address}:8443" in table and "ONLINE" in table
    assert [m["name"] for m in json.loads(action["results"]["members"])] == ["lxd-cluster-0"]
    assert unit.state["unknown"] == []

    # a failing action fails through action-fail with the reason, and changes nothing
    refused = unit.action("force-remove", {"name": "lxd-cluster-0", "confirm": True})
    assert refused["failed"] == "lxd-cluster-0 is online: use remove-node, which moves its instances first"
    assert len(json.loads(lab.lxc(member, "cluster", "list", "--format", "json").stdout)) == 1

    # the clash the venv's own pyOpenSSL prevents: without it the distribution's is imported when
    # pylxd is, and the hook still ends cleanly with the cause in the status (never a hook crash)
    broken_dir = tmp_path / "broken"
    shutil.copytree(unit.charm_dir, broken_dir, symlinks=True)
    shutil.rmtree(broken_dir / "venv/OpenSSL")
    broken = PackedUnit(
        broken_dir,
        tmp_path / "juju-broken",
        address=member.address,
        netns=member.netns,
        env={"LXD_DIR": str(member.lxd_dir)},
        storage={"local/0": member.loop},
        config={"storage-driver": "btrfs"},
    )
    broken.hook("update-status")  # it only reads LXD (the standard library's socket client): no pylxd
    assert broken.state["unit-status"][0] == "active", broken.state["unit-status"]
    assert not any("importing pylxd failed" in line for _, line in broken.state["log"])
    state = broken.state
    state["config"]["images-auto-update"] = False  # the leader writes images.auto_update_interval=0
    broken.write(state)
    broken.hook("config-changed")
    status, message = broken.state["unit-status"]
    assert status == "blocked" and message.startswith("cannot load pylxd (AttributeError:"), message
    assert any("importing pylxd failed" in line for _, line in broken.state["log"])
    assert lab.lxc(member, "config", "get", "images.auto_update_interval").stdout.strip() in ("", "6")
