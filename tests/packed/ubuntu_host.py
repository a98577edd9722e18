"""This Debian host made to look, to one process tree, like Ubuntu 22.04 with the nrpe charm installed.

charmhelpers (the NRPE helper src/nagios.py uses) refuses to import where /etc/os-release's NAME is
"Debian GNU/Linux" (charmhelpers/osplatform.py), reads /etc/lsb-release (core/host_factory/ubuntu.py,
lsb_release), needs the `nagios` user and /etc/nagios/nrpe.d that the nrpe charm's package
(nagios-nrpe-server) makes, and finds plugins under /usr/local/lib/nagios/plugins only. A private
mount namespace (`unshare -m`) binds a copy of /etc with those and an empty directory on
/usr/local/lib; the host itself is not touched, and what the process wrote stays in both copies
for the test to read. `service` is a recording stand-in for the service manager (no systemd
here, so charmhelpers calls `service NAME restart`), to be put first on the process's PATH.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

OS_RELEASE = 'NAME="Ubuntu"\nID=ubuntu\nID_LIKE=debian\nVERSION_ID="22.04"\nVERSION_CODENAME=jammy\n'
LSB_RELEASE = "DISTRIB_ID=Ubuntu\nDISTRIB_RELEASE=22.04\nDISTRIB_CODENAME=jammy\nDISTRIB_DESCRIPTION=Ubuntu 22.04\n"
PLUGIN = "/usr/local/lib/nagios/plugins/lxd-cluster/check_lxd_cluster.py"  # where src/nagios.py installs it


class UbuntuHost:
    def __init__(self, root: Path):
        if os.geteuid() != 0 or not shutil.which("unshare", path="/usr/bin:/bin"):
            pytest.fail("an Ubuntu-like /etc is bind-mounted in a private mount namespace: run as root")
        root.mkdir(parents=True)
        self.etc = root / "etc"
        self.usr_local_lib = root / "usr-local-lib"
        self.usr_local_lib.mkdir()
        shutil.copytree("/etc", self.etc, symlinks=True)
        for name, text in (("os-release", OS_RELEASE), ("lsb-release", LSB_RELEASE)):
            (self.etc / name).unlink(missing_ok=True)
            (self.etc / name).write_text(text)
        with open(self.etc / "passwd", "a") as f:
            f.write("nagios:x:4242:4242::/var/lib/nagios:/usr/sbin/nologin\n")
        with open(self.etc / "group", "a") as f:
            f.write("nagios:x:4242:\n")
        (self.etc / "nagios/nrpe.d").mkdir(parents=True)
        (self.etc / "sudoers.d").mkdir(exist_ok=True)
        self.services = root / "service-calls"
        self.bin = root / "bin"
        self.bin.mkdir()
        (self.bin / "service").write_text(f'#!/bin/sh\necho "$@" >> {self.services}\n')
        (self.bin / "service").chmod(0o755)

    def wrap(self) -> list[str]:
        """The argv prefix that runs a command in the Ubuntu-like namespace."""
        script = f'mount --bind "{self.etc}" /etc && mount --bind "{self.usr_local_lib}" /usr/local/lib && exec "$@"'
        return ["unshare", "-m", "sh", "-c", script, "sh"]

    def nrpe_command(self, name: str) -> list[str]:
        """The command line NRPE runs for command[name], with the plugin where it is on this host."""
        rows = (self.etc / f"nagios/nrpe.d/{name}.cfg").read_text().splitlines()
        line = next(row for row in rows if row.startswith("command["))
        argv = line.split("=", 1)[1].split()
        return [str(self.usr_local_lib / argv[0].removeprefix("/usr/local/lib/")), *argv[1:]]
