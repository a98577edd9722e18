"""The artefact a user deploys: the .charm packed by charmcraft, its dispatch run as Juju runs it.

Packing: charmcraft 4.5 (and 3.5 beside it) from PyPI, destructive mode on this host
(scripts/pack.sh), for ubuntu@22.04 and ubuntu@24.04, each venv built with that platform's CPython
(3.10, 3.12) where this host has it. Running: the packed `dispatch` on that same Python as python3,
as the platform's machine runs it (nothing from the host's dist-packages: the venv is complete by
itself), Juju's hook tools emulated at the command level (hooktools.py), and a real LXD daemon
from the lab as the unit's LXD.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import ssl
import subprocess
import zipfile
from pathlib import Path

import pytest
import yaml

from tests.packed.conftest import pack
from tests.packed.packed_unit import PackedUnit, unpack
from tests.packed.platforms import PLATFORMS, platform_python
from tests.packed.ubuntu_host import UbuntuHost

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
        "LICENSE",
        "actions.yaml",
        "manifest.yaml",
        "src/main.py",
        "src/charm.py",
        "src/workload.py",
        "lib/charms/lxd_cluster/v0/lxd_cluster.py",
    ):
        assert required in inside, required
    assert mode(charm, "dispatch") & 0o111 and mode(charm, "src/main.py") & 0o111
    for package in ("ops", "pylxd", "yaml", "OpenSSL", "cryptography", "ws4py"):
        assert any(n.startswith(f"venv/{package}/") for n in inside), f"venv/{package} is missing"
    for kept_out in ("tests/", "docs/", "bench/", "demo/", "scripts/", ".ci/"):
        assert not any(n.startswith(kept_out) for n in inside), kept_out


def test_charmcraft_4_packs_a_complete_charm(packed_platform):
    charm, channel = packed_platform.charm, packed_platform.platform.removeprefix("ubuntu@")
    assert charm.name == f"lxd-cluster_ubuntu@{channel}-amd64.charm"
    assert_complete(charm)
    with zipfile.ZipFile(charm) as archive:
        manifest = yaml.safe_load(archive.read("manifest.yaml"))
        dispatch = archive.read("dispatch").decode()
    assert manifest["bases"] == [{"name": "ubuntu", "channel": channel, "architectures": ["amd64"]}]
    assert "PYTHONPATH=lib:venv" in dispatch and "./src/main.py" in dispatch


def python_version(python: Path) -> tuple[int, int]:
    out = subprocess.run([python, "-c", "import sys; print(*sys.version_info[:2])"], capture_output=True, text=True)
    major, minor = out.stdout.split()
    return int(major), int(minor)


def loads_on(tag: str, minor: int) -> bool:
    """A wheel tag (py3-none-any, cp310-cp310-manylinux..., cp39-abi3-manylinux...) CPython 3.minor loads."""
    interpreter, abi, _ = tag.split("-", 2)
    stable_from = re.fullmatch(r"cp3(\d+)", interpreter)
    if abi == "none":
        return interpreter.startswith("py")
    if abi == "abi3":
        return stable_from is not None and int(stable_from[1]) <= minor
    return abi == interpreter == f"cp3{minor}"


def test_the_venv_holds_wheels_for_the_python_its_hooks_run_on(packed_platform):
    """cp310 wheels in the 22.04 charm, cp312 in the 24.04 one (where this host has those Pythons)."""
    major, minor = python_version(packed_platform.python)
    if packed_platform.native:
        assert (major, minor) == {"ubuntu@22.04": (3, 10), "ubuntu@24.04": (3, 12)}[packed_platform.platform]
    inside = names(packed_platform.charm)
    # site-packages' own layout at venv/ (PYTHONPATH=lib:venv), not a whole virtualenv
    assert "venv/ops/__init__.py" in inside and "venv/yaml/__init__.py" in inside
    assert not any(n.startswith(("venv/lib/", "venv/bin/", "venv/pyvenv.cfg")) for n in inside)
    # every compiled module is for this CPython or its stable ABI
    extensions = sorted(n for n in inside if n.startswith("venv/") and n.endswith(".so"))
    own, stable = f".cpython-{major}{minor}-x86_64-linux-gnu.so", ".abi3.so"
    assert extensions and all(n.endswith((own, stable)) for n in extensions), extensions
    for module in ("venv/pydantic_core/_pydantic_core", "venv/_cffi_backend", "venv/yaml/_yaml"):
        assert module + own in extensions, f"{module} is not built for CPython {major}.{minor}: {extensions}"
    # and every wheel installed says so: pure, cpXY-cpXY for this Python, or an abi3 wheel it can load
    with zipfile.ZipFile(packed_platform.charm) as archive:
        tags = {
            n.split("/")[1]: re.findall(r"^Tag: (\S+)$", archive.read(n).decode(), re.M)
            for n in inside
            if re.fullmatch(r"venv/[^/]+\.dist-info/WHEEL", n)
        }
    for wheel, wheel_tags in tags.items():
        assert all(loads_on(tag, minor) for tag in wheel_tags), f"{wheel} {wheel_tags}: not for CPython 3.{minor}"
    assert any(f"cp{major}{minor}-cp{major}{minor}" in t for ts in tags.values() for t in ts)


@pytest.mark.parametrize("platform", PLATFORMS)
def test_each_venv_imports_whole_on_its_python_and_not_on_the_other_platforms(packs, platform, tmp_path):
    """The wheel check above is real: the compiled wheels a platform's venv holds fail on the other Python."""
    other = next(p for p in PLATFORMS if p != platform)
    own_python, other_python = platform_python(platform), platform_python(other)
    if own_python is None or other_python is None:
        pytest.skip(f"needs CPython for both {platform} and {other} on this host")
    with zipfile.ZipFile(packs(platform).charm) as archive:
        archive.extractall(tmp_path, [n for n in archive.namelist() if n.startswith("venv/")])
    probe = f"import sys; sys.path[:0] = [{str(tmp_path / 'venv')!r}]; import pydantic_core, _cffi_backend, yaml._yaml"
    # on its own Python the whole venv imports by itself, cosl's pydantic (COS relations) included
    whole = probe + ", ops, pylxd, OpenSSL, cosl, charmlibs.snap; from cosl import JujuTopology"
    imported = subprocess.run([own_python, "-I", "-c", whole], capture_output=True, text=True)
    assert imported.returncode == 0, imported.stderr
    refused = subprocess.run([other_python, "-I", "-c", probe], capture_output=True, text=True)
    assert refused.returncode != 0
    assert re.match(
        r"(ImportError|ModuleNotFoundError): .*pydantic_core\._pydantic_core", refused.stderr.splitlines()[-1]
    )


def test_charmcraft_3_5_packs_the_same_project(tmp_path):
    """Users on charmcraft 3 (>= 3.3 writes the dispatch) get the same complete charm."""
    charm = pack(tmp_path, "3.5.3")
    assert_complete(charm)


def python_with_distro_openssl(python: Path, into: Path) -> Path:
    """`python` as a machine with python3-openssl has it: the distribution's older pyOpenSSL on
    sys.path after the hook's PYTHONPATH (a virtualenv's site-packages standing in for dist-packages)."""
    subprocess.run([python, "-m", "venv", "--without-pip", into], check=True)
    site = next(into.glob("lib/python3.*/site-packages"))
    (site / "OpenSSL").symlink_to(DISTRO_OPENSSL)
    return into / "bin/python3"


def member_unit(charm_dir: Path, root: Path, member, python: Path, **kw) -> PackedUnit:
    """A packed unit whose LXD is a lab member: the hooks run in its namespace with its LXD_DIR."""
    env = {"LXD_DIR": str(member.lxd_dir)}
    return PackedUnit(charm_dir, root, address=member.address, netns=member.netns, env=env, python=python, **kw)


def test_packed_hooks_bootstrap_a_real_lxd_member_and_answer_an_action(packed_platform, lab, tmp_path):
    assert DISTRO_OPENSSL.is_dir(), "install python3-openssl (scripts/setup.sh does): the clash must be present"
    member = lab.up(1, loop_devices=True)[0]
    unit = member_unit(
        unpack(packed_platform.charm, tmp_path / "charm"),
        tmp_path / "juju",
        member,
        packed_platform.python,
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

    # the clash the venv's own pyOpenSSL prevents: without it a machine's python3-openssl is imported
    # when pylxd is, and the hook still ends cleanly with the cause in the status (never a hook crash)
    broken_dir = tmp_path / "broken"
    shutil.copytree(unit.charm_dir, broken_dir, symlinks=True)
    shutil.rmtree(broken_dir / "venv/OpenSSL")
    broken = member_unit(
        broken_dir,
        tmp_path / "juju-broken",
        member,
        python_with_distro_openssl(packed_platform.python, tmp_path / "machine-python"),
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


def test_packed_nrpe_relation_installs_checks_that_run_on_the_member(packed_platform, lab, tmp_path):
    """charmhelpers inside the packed venv, on the platform's Python, in a real nrpe-external-master
    hook of an LXD member: the nrpe.d commands it writes run the installed plugin, which answers OK."""
    member = lab.up(1)[0]
    unit = member_unit(
        unpack(packed_platform.charm, tmp_path / "charm"),
        tmp_path / "juju",
        member,
        packed_platform.python,
        config={"storage-driver": "dir"},
    )
    ubuntu = UbuntuHost(tmp_path / "ubuntu")
    unit.wrap = ubuntu.wrap()
    shutil.copy(ubuntu.bin / "service", unit.tools / "service")  # first on the hook's PATH
    for event in ("install", "leader-elected", "config-changed"):
        unit.hook(event)
    state = unit.state
    state["relations"]["5"] = {
        "endpoint": "nrpe-external-master",
        "remote-app": "nrpe",
        "units": ["nrpe/0"],
        "data": {"nrpe/0": {"nagios_hostname": "juju-lxd-cluster-0", "nagios_host_context": "juju"}},
    }
    unit.write(state)
    relation = {"JUJU_RELATION": "nrpe-external-master", "JUJU_RELATION_ID": "nrpe-external-master:5"}
    unit.hook("nrpe-external-master-relation-changed", JUJU_REMOTE_UNIT="nrpe/0", JUJU_REMOTE_APP="nrpe", **relation)

    state = unit.state
    assert state["unknown"] == [] and state["refused"] == []
    assert state["unit-status"][0] == "active" and "Nagios" not in state["unit-status"][1]
    monitors = yaml.safe_load(state["relations"]["5"]["data"]["lxd-cluster/0"]["monitors"])
    assert set(monitors["monitors"]["remote"]["nrpe"]) == {"lxd_api", "lxd_member_online", "lxd_database_voters"}
    assert ubuntu.services.read_text() == "nagios-nrpe-server restart\n"
    # what the NRPE server would run, as root (the sudo rule's effect), on this member's socket
    runs = {
        name: subprocess.run(ubuntu.nrpe_command(f"check_{name}"), capture_output=True, text=True)
        for name in ("lxd_api", "lxd_member_online", "lxd_database_voters")
    }
    assert runs["lxd_api"].returncode == 0 and "answers (member lxd-cluster-0)" in runs["lxd_api"].stdout
    assert runs["lxd_member_online"].returncode == 0, runs["lxd_member_online"].stdout
    # one member: a single voter, so the voters check warns (losing it loses the database)
    assert runs["lxd_database_voters"].returncode == 1, runs["lxd_database_voters"].stdout
    assert "fewer than 3" in runs["lxd_database_voters"].stdout
