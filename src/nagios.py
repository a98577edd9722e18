"""Nagios checks for the `nrpe-external-master` relation, through charmhelpers' NRPE helper.

The nrpe subordinate charm (the relation's provider, on the same machine) runs the NRPE server;
this charm installs its plugin (check_lxd_cluster.py, with lxd_socket.py beside it) under
/usr/local/lib/nagios/plugins/lxd-cluster/, lets the `nagios` user run its three command lines as
root (LXD's socket is root:lxd 0660) and hands three checks to charmhelpers.contrib.charmsupport.nrpe:
lxd_api, lxd_member_online, lxd_database_voters. charmhelpers writes one
/etc/nagios/nrpe.d/check_<name>.cfg per check (`command[check_<name>]=<plugin> <args>`), restarts
nagios-nrpe-server (not in update-status), and sets this unit's `monitors` (YAML:
monitors.remote.nrpe.<name>.command) and `primary` on every nrpe-external-master relation, which
the nrpe charm reads to tell Nagios what to run. charmhelpers talks to Juju through the hook tools
(config-get, relation-ids, relation-get, relation-set --file, juju-log), as ops does; under ops its
Config never saves (.juju-persistent-config: only charmhelpers' own Hooks runs its atexit list), and
ops never writes this relation's databag, so the two never overwrite each other. It needs the
`nagios_context` and `nagios_servicegroups` options (config.yaml) and refuses to import on a host
whose os-release it does not know (Debian's "Debian GNU/Linux"): there no check is published and
the unit says so. No ops import here.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

NRPE_RELATION = "nrpe-external-master"
SRC = Path(__file__).resolve().parent
PLUGIN_FILES = ("check_lxd_cluster.py", "lxd_socket.py")
PLUGIN_DIR = Path("/usr/local/lib/nagios/plugins/lxd-cluster")  # charmhelpers looks under .../plugins
SUDOERS = Path("/etc/sudoers.d/lxd-cluster-nrpe")
# shortname -> (description, plugin argument)
CHECKS = {
    "lxd_api": ("LXD API answers on its unix socket", "api"),
    "lxd_member_online": ("this LXD cluster member is ONLINE", "member"),
    "lxd_database_voters": ("the LXD cluster keeps enough database voters online", "voters"),
}


def install_plugin(socket_path: str, plugin_dir: Path = PLUGIN_DIR, sudoers: Path = SUDOERS) -> Path:
    """Copy the plugin (root-owned, not writable by others: sudo runs it as root) and allow nagios
    to run exactly its three command lines through `sudo -n`; returns the plugin's path."""
    plugin_dir.mkdir(parents=True, exist_ok=True)
    for name in PLUGIN_FILES:
        target = plugin_dir / name
        shutil.copyfile(SRC / name, target)
        target.chmod(0o755)
    plugin = plugin_dir / PLUGIN_FILES[0]
    if sudoers.parent.is_dir():  # sudo reads every file there; one that does not parse breaks sudo
        commands = ", ".join(f"{plugin} {check} --socket {socket_path}" for _, check in CHECKS.values())
        rule = f"nagios ALL=(root) NOPASSWD: {commands}\n"
        tmp = sudoers.with_name(f".{sudoers.name}.new")
        tmp.write_text(f"# lxd-cluster charm: the NRPE plugin reads LXD's root-only socket\n{rule}")
        tmp.chmod(0o440)
        os.replace(tmp, sudoers)
    return plugin


def publish_checks(socket_path: str, plugin_dir: Path = PLUGIN_DIR, sudoers: Path = SUDOERS) -> str:
    """Install the plugin and publish the checks; returns "" or why no check could be published."""
    try:
        # charmhelpers 1.2.1 imports distutils (core/hookenv.py), which Python 3.12 (Ubuntu 24.04)
        # no longer has (PEP 632): importing setuptools first puts its copy in distutils' place
        import setuptools  # noqa: F401
        from charmhelpers.contrib.charmsupport import nrpe
    except RuntimeError as e:  # charmhelpers.osplatform: an os-release it does not know
        return f"no Nagios checks: charmhelpers' NRPE helper refuses this host ({e})"
    plugin = install_plugin(socket_path, plugin_dir, sudoers)
    # charmhelpers finds a command under /usr/lib/nagios/plugins or /usr/local/lib/nagios/plugins
    # only (Check._locate_cmd): name it relative to the latter
    command = os.path.relpath(plugin, plugin_dir.parent)
    checks = nrpe.NRPE()
    for shortname, (description, check) in CHECKS.items():
        checks.add_check(
            shortname=shortname,
            description=f"{description} {{{checks.hostname}}}",
            check_cmd=f"{command} {check} --socket {socket_path}",
        )
    checks.write()
    return ""
