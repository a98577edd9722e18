"""nrpe-external-master through charmhelpers' NRPE helper, against what the nrpe charm reads.

The provider is the nrpe subordinate charm (canonical/charm-nrpe, hooks/nrpe_helpers.py at 16a49f3). It reads,
from each unit on nrpe-external-master (PrincipalRelation.get_monitors), the `monitors` YAML and
merges `monitors.remote.nrpe.<name>` into what it sends Nagios (Monitors.add_monitors), each
entry's `command` being the NRPE command Nagios runs (check_nrpe!<command>); it takes the unit
whose `primary` is "true" (case-insensitive) as the principal (PrincipalRelation.nagios_hostname),
and publishes `nagios_hostname` and `nagios_host_context` back (PrincipalRelation.provide_data).
The NRPE server on the machine runs `command[<command>]=...` from /etc/nagios/nrpe.d/*.cfg.

publish_checks runs here for real: charmhelpers unmodified, in a child process whose hook tools
are the command-level emulator (tests/packed/hooktools.py), on this host made to look like Ubuntu
with the nrpe charm installed (tests/packed/ubuntu_host.py: a private mount namespace).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.packed.hooktools import TOOLS, model_state
from tests.packed.ubuntu_host import PLUGIN, UbuntuHost

ROOT = Path(__file__).parents[2]
HOOKTOOLS = ROOT / "tests/packed/hooktools.py"
SOCKET = "/var/snap/lxd/common/lxd/unix.socket"
UNIT = "lxd-cluster/0"
# the child reports the plugin directory (in the namespace's /usr/local/lib) and publish's answer
CHILD = """
import json, os, sys
from pathlib import Path
from charmhelpers.contrib.charmsupport import nrpe
import nagios
nrpe.NRPE.nagios_logdir = sys.argv[1]  # /var/log/nagios of the nrpe charm package
problem = nagios.publish_checks(sys.argv[2])
plugins = nagios.PLUGIN_DIR
print(json.dumps({
    "problem": problem,
    "plugins": {p.name: oct(p.stat().st_mode & 0o777) for p in sorted(plugins.iterdir())} if plugins.is_dir() else {},
}))
"""


class Principal(UbuntuHost):
    """The Ubuntu-like host with the emulated hook tools and this unit's state: related to nrpe/0."""

    def __init__(self, root: Path):
        super().__init__(root)
        self.root = root
        self.tools = root / "tools"
        self.tools.mkdir()
        for tool in TOOLS:
            (self.tools / tool).symlink_to(HOOKTOOLS)
        self.state_file = root / "state.json"
        self.write(
            model_state(
                leader=True,
                config={"nagios_context": "juju", "nagios_servicegroups": ""},
                relations={
                    "7": {
                        "endpoint": "nrpe-external-master",
                        "remote-app": "nrpe",
                        "units": ["nrpe/0"],
                        # what the nrpe charm publishes (PrincipalRelation.provide_data)
                        "data": {"nrpe/0": {"nagios_hostname": "site-lxd-cluster-0", "nagios_host_context": "site"}},
                    }
                },
            )
        )

    @property
    def state(self) -> dict:
        return json.loads(self.state_file.read_text())

    def write(self, state: dict) -> None:
        self.state_file.write_text(json.dumps(state))

    def publish(self, hook: str = "nrpe-external-master-relation-changed") -> dict:
        env = {
            "PATH": f"{self.tools}:{self.bin}:/usr/sbin:/usr/bin:/sbin:/bin",
            "PYTHONPATH": f"{ROOT / 'src'}:{ROOT / 'lib'}",
            "HOOKTOOLS_STATE": str(self.state_file),
            "JUJU_UNIT_NAME": UNIT,
            "JUJU_CHARM_DIR": str(ROOT),  # charmhelpers' Config keeps its path; under ops it never saves
            "JUJU_HOOK_NAME": hook,  # Juju sets it for every hook; charmhelpers' hook_name() reads it
            "JUJU_MODEL_UUID": "00000000-0000-4000-8000-000000000000",
        }
        logdir = self.root / "nagios-log"
        child = self.root / "child.py"
        child.write_text(CHILD)
        argv = [*self.wrap(), sys.executable, str(child), str(logdir), SOCKET]
        done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture
def ubuntu(tmp_path: Path) -> Principal:
    return Principal(tmp_path / "ubuntu")


def test_nrpe_checks_reach_the_relation_as_the_nrpe_charm_reads_them(ubuntu):
    out = ubuntu.publish()
    assert out["problem"] == ""
    state = ubuntu.state
    assert state["unknown"] == [] and state["refused"] == []  # every hook tool call is one Juju has
    mine = state["relations"]["7"]["data"][UNIT]
    monitors = yaml.safe_load(mine["monitors"])
    # nrpe_helpers.py Monitors.add_monitors merges monitors.remote.nrpe.<name> (a `command` each)
    assert monitors["monitors"]["remote"]["nrpe"] == {
        "lxd_api": {"command": "check_lxd_api"},
        "lxd_member_online": {"command": "check_lxd_member_online"},
        "lxd_database_voters": {"command": "check_lxd_database_voters"},
    }
    assert mine["primary"].lower() == "true"  # PrincipalRelation.nagios_hostname: this unit is the principal


def test_nrpe_server_config_runs_the_shipped_plugin_on_lxds_socket(ubuntu):
    out = ubuntu.publish()
    plugin = PLUGIN
    for shortname, check in (("lxd_api", "api"), ("lxd_member_online", "member"), ("lxd_database_voters", "voters")):
        cfg = (ubuntu.etc / f"nagios/nrpe.d/check_{shortname}.cfg").read_text()
        # the NRPE server runs command[<the command Nagios asks for>]
        assert f"command[check_{shortname}]={plugin} {check} --socket {SOCKET}\n" in cfg
    # the plugin and the socket helper it imports, root's and not writable by others (sudo runs it)
    assert out["plugins"] == {"check_lxd_cluster.py": "0o755", "lxd_socket.py": "0o755"}
    sudoers = ubuntu.etc / "sudoers.d/lxd-cluster-nrpe"
    commands = ", ".join(f"{plugin} {check} --socket {SOCKET}" for check in ("api", "member", "voters"))
    assert f"nagios ALL=(root) NOPASSWD: {commands}\n" in sudoers.read_text()  # these command lines only
    assert oct(sudoers.stat().st_mode & 0o777) == "0o440"  # sudo ignores a file others can write


def test_nrpe_server_restarts_on_a_change_but_not_every_update_status(ubuntu):
    ubuntu.publish()
    assert ubuntu.services.read_text().split("\n")[0] == "nagios-nrpe-server restart"
    ubuntu.services.unlink()
    ubuntu.publish(hook="update-status")
    assert not ubuntu.services.exists()  # charmhelpers: restarting every 5 minutes makes Nagios flap


def test_nrpe_keeps_checks_another_writer_published_and_rewrites_its_own(ubuntu):
    state = ubuntu.state
    old = {"monitors": {"remote": {"nrpe": {"other": {"command": "check_other"}, "lxd_api": {"command": "stale"}}}}}
    state["relations"]["7"]["data"][UNIT] = {"monitors": yaml.safe_dump(old)}
    ubuntu.write(state)
    ubuntu.publish()
    nrpe = yaml.safe_load(ubuntu.state["relations"]["7"]["data"][UNIT]["monitors"])["monitors"]["remote"]["nrpe"]
    assert nrpe["other"] == {"command": "check_other"} and nrpe["lxd_api"] == {"command": "check_lxd_api"}


def test_nrpe_on_a_host_charmhelpers_refuses_says_so_and_writes_nothing(tmp_path):
    """This Debian host as it is: charmhelpers.osplatform refuses NAME="Debian GNU/Linux"."""
    os_release = Path("/etc/os-release").read_text()
    if 'NAME="Debian GNU/Linux"' not in os_release:
        pytest.fail("this test needs a Debian host (the test machines are Debian 12)")
    code = (
        "import json, sys; from pathlib import Path; import nagios; "
        "print(json.dumps(nagios.publish_checks('/x', Path(sys.argv[1]) / 'p', Path(sys.argv[1]) / 's')))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)],
        env={**os.environ, "PYTHONPATH": f"{ROOT / 'src'}"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == (
        "no Nagios checks: charmhelpers' NRPE helper refuses this host "
        "(This module is not supported on Debian GNU/Linux.)"
    )
    assert list(tmp_path.iterdir()) == []


def test_nrpe_relation_on_a_host_charmhelpers_refuses_shows_in_status_and_the_cluster_serves(lxd, cluster_pem):
    """The charm wired: a member related to nrpe on this Debian host keeps serving and says why no checks."""
    import dataclasses

    from ops import testing
    from states import REL, announced, ctx, make_state, published

    lxd.be_member("lxd-cluster-0", "lxd-cluster-1", "lxd-cluster-2")
    nrpe = testing.SubordinateRelation("nrpe-external-master", id=REL + 5, remote_app_name="nrpe")
    state = make_state(leader=True, app=published(cluster_pem), peers={1: announced(1), 2: announced(2)})
    state = dataclasses.replace(state, relations=[*state.relations, nrpe])
    out = ctx().run(ctx().on.relation_changed(nrpe), state)
    assert out.unit_status.name == "active"
    assert out.unit_status.message.endswith(
        "; no Nagios checks: charmhelpers' NRPE helper refuses this host "
        "(This module is not supported on Debian GNU/Linux.)"
    )
    alone = dataclasses.replace(out, relations=[r for r in out.relations if r.id != nrpe.id])
    assert "Nagios" not in ctx().run(ctx().on.update_status(), alone).unit_status.message
