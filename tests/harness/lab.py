"""N real LXD daemons on one host, one network namespace each, nothing routed out.

Each member gets a namespace `<prefix>-mI` with `lo`, a veth `lab0` at NET.(10+I)/24 whose
other end sits on the host bridge `<prefix>0` (NET.1/24), an unmanaged bridge `br0` for
instance NICs, and **no default route**: LXD's start-up lookups of image servers fail at once
and nothing leaves the machine. The daemon runs in a private mount namespace with a fresh
sysfs (so it sees its own /sys/class/net) and the host's cgroup tree moved back on top.
Teardown ends only what this lab started: our daemons by PID, then what is left inside our
own namespaces.

    python3 -m tests.harness.lab up 3 [--loop]     # prints the members
    python3 -m tests.harness.lab status
    python3 -m tests.harness.lab down
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import signal
import subprocess
import tarfile
import tempfile
import time
from pathlib import Path

PORT = 8443
_INNER = """#!/bin/sh
set -e
D="$1"; shift
mkdir -p "$D/.cg"
mount --rbind /sys/fs/cgroup "$D/.cg"
mount -t sysfs sysfs /sys
mount --move "$D/.cg" /sys/fs/cgroup
rmdir "$D/.cg" 2>/dev/null || true
exec "$@"
"""
_CLEAN_ENV = ("REQUESTS_CA_BUNDLE", "SSL_CERT_FILE", "SSL_CERT_DIR", "CURL_CA_BUNDLE")


class LabUnavailable(RuntimeError):
    """This machine cannot run the lab (not root, or a tool is missing); the message says which."""


class LabError(RuntimeError):
    pass


def require_root_and_lxd() -> None:
    if os.geteuid() != 0:
        raise LabUnavailable("not root (the lab needs network namespaces and loop devices)")
    missing = [
        t
        for t in ("lxd", "lxc", "nsenter", "unshare", "ip", "losetup", "wipefs", "mkfs.btrfs")
        if shutil.which(t) is None
    ]
    if not Path("/bin/busybox").exists():
        missing.append("busybox (busybox-static)")
    if missing:
        raise LabUnavailable(f"missing: {', '.join(missing)}")


@dataclasses.dataclass
class Member:
    index: int
    name: str
    netns: str
    lxd_dir: Path
    address: str
    loop: str | None = None
    image: Path | None = None  # backing file of the loop device
    pid: int | None = None

    @property
    def socket(self) -> Path:
        return self.lxd_dir / "unix.socket"


def _run(argv: list[str], check: bool = True, **kw) -> subprocess.CompletedProcess:
    out = subprocess.run(argv, capture_output=True, text=True, **kw)
    if check and out.returncode != 0:
        raise LabError(f"{' '.join(argv)}: {(out.stderr or out.stdout).strip()}")
    return out


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _wait_gone(pids: list[int], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not any(_alive(p) for p in pids):
            return True
        time.sleep(0.1)
    return not any(_alive(p) for p in pids)


def _netns_pids(netns: str) -> list[int]:
    out = _run(["ip", "netns", "pids", netns], check=False)
    return [int(p) for p in out.stdout.split()]


class Lab:
    def __init__(
        self, root: Path | None = None, net: str = "10.250.0", bridge: str | None = None, prefix: str = "lxdlab"
    ):
        self.prefix = prefix
        self.net = net
        self.bridge = bridge or f"{prefix}0"
        self.root = Path(root) if root else Path(tempfile.gettempdir()) / prefix
        self.members: list[Member] = []
        self._bridge_up = False

    # -- context manager -----------------------------------------------------------------------
    def __enter__(self) -> Lab:
        return self

    def __exit__(self, *exc: object) -> None:
        self.down()

    # -- environment ---------------------------------------------------------------------------
    def env(self, member: Member) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in _CLEAN_ENV}
        env["LXD_DIR"] = str(member.lxd_dir)
        env["LXD_CONF"] = str(self.root / "lxc-client")
        return env

    def in_netns(self, member: Member, argv: list[str], check: bool = True, **kw) -> subprocess.CompletedProcess:
        return _run(["nsenter", f"--net=/run/netns/{member.netns}", *argv], check=check, env=self.env(member), **kw)

    def lxc(self, member: Member, *args: str, input: str | None = None, check: bool = True):
        return self.in_netns(member, ["lxc", *args], check=check, input=input, timeout=600)

    # -- bring-up --------------------------------------------------------------------------------
    def up(self, n: int, loop_devices: bool = False, loop_size: str = "2G") -> list[Member]:
        require_root_and_lxd()
        if self.members:
            raise LabError("this lab is up already")
        stale = [ns for ns in _run(["ip", "netns", "list"]).stdout.split() if ns.startswith(f"{self.prefix}-m")]
        if stale or (self.root / "lab.json").exists():
            raise LabError(
                f"a lab with prefix {self.prefix} is still up ({', '.join(stale) or self.root}): "
                f"remove it with python3 -m tests.harness.lab down --prefix {self.prefix}"
            )
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "inner.sh").write_text(_INNER)
        (self.root / "inner.sh").chmod(0o755)
        _run(["ip", "link", "add", self.bridge, "type", "bridge"])
        self._bridge_up = True
        self._save()
        _run(["ip", "addr", "add", f"{self.net}.1/24", "dev", self.bridge])
        _run(["ip", "link", "set", self.bridge, "up"])
        for _ in range(n):
            self.add_member(loop_devices, loop_size)
        return self.members

    def add_member(self, loop_devices: bool = False, loop_size: str = "2G") -> Member:
        i = max((m.index for m in self.members), default=0) + 1
        m = Member(i, f"m{i}", f"{self.prefix}-m{i}", self.root / f"m{i}", f"{self.net}.{10 + i}")
        self.members.append(m)
        self._save()
        ns = m.netns
        _run(["ip", "netns", "add", ns])
        _run(["ip", "-n", ns, "link", "set", "lo", "up"])
        _run(["ip", "link", "add", ns, "type", "veth", "peer", "name", "lab0", "netns", ns])
        _run(["ip", "link", "set", ns, "master", self.bridge, "up"])
        _run(["ip", "-n", ns, "addr", "add", f"{m.address}/24", "dev", "lab0"])
        _run(["ip", "-n", ns, "link", "set", "lab0", "up"])
        _run(["ip", "-n", ns, "link", "add", "br0", "type", "bridge"])
        _run(["ip", "-n", ns, "link", "set", "br0", "up"])
        if "default" in _run(["ip", "-n", ns, "route"]).stdout:
            raise LabError(f"{ns} has a default route: refusing to start LXD there")
        m.lxd_dir.mkdir(parents=True, exist_ok=True)
        if loop_devices:
            m.image = self.root / f"m{i}.img"
            _run(["truncate", "-s", loop_size, str(m.image)])
            m.loop = _run(["losetup", "-f", "--show", str(m.image)]).stdout.strip()
            _run(["wipefs", "-q", "-a", m.loop])
        self.start(m)
        return m

    def start(self, m: Member) -> None:
        """Start (or restart) the member's daemon and wait until it answers."""
        with open(m.lxd_dir / "daemon.out", "ab") as out:
            proc = subprocess.Popen(
                [
                    "setsid",
                    "nsenter",
                    f"--net=/run/netns/{m.netns}",
                    "unshare",
                    "--mount",
                    "--propagation",
                    "private",
                    str(self.root / "inner.sh"),
                    str(m.lxd_dir),
                    "lxd",
                    "--group",
                    "root",
                    "--logfile",
                    str(m.lxd_dir / "lxd.log"),
                ],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=out,
                env=self.env(m),
            )
        m.pid = proc.pid  # setsid/nsenter/unshare/inner.sh all exec: this is lxd's own PID
        self._save()
        ready = _run(["lxd", "waitready", "--timeout", "60"], check=False, env=self.env(m))
        if ready.returncode != 0:
            raise LabError(f"{m.name} not ready: see {m.lxd_dir / 'lxd.log'}")
        comm = Path(f"/proc/{m.pid}/comm").read_text().strip()
        if comm != "lxd":
            raise LabError(f"pid {m.pid} of {m.name} is {comm}, not lxd")
        proc.returncode = 0  # reaped by _reap; keeps Popen from warning

    def kill(self, m: Member, sig: int = signal.SIGKILL) -> None:
        """The host dies: kill our daemon (by PID) and what runs in its namespace."""
        if m.pid and _alive(m.pid):
            os.kill(m.pid, sig)
            _wait_gone([m.pid], 10)
        for pid in _netns_pids(m.netns):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        _reap()

    def stop(self, m: Member) -> None:
        if m.pid and _alive(m.pid):
            os.kill(m.pid, signal.SIGTERM)
            if not _wait_gone([m.pid], 15):
                os.kill(m.pid, signal.SIGKILL)
                _wait_gone([m.pid], 5)
        _reap()

    # -- images ----------------------------------------------------------------------------------
    def image_tarball(self) -> Path:
        """A busybox unified image (metadata.yaml + rootfs), built once per lab."""
        path = self.root / "busybox.tar.gz"
        if path.exists():
            return path
        work = Path(tempfile.mkdtemp(dir=self.root))
        rootfs = work / "rootfs"
        for d in ("bin", "sbin", "etc", "proc", "sys", "dev", "tmp", "root", "run", "var"):
            (rootfs / d).mkdir(parents=True)
        shutil.copy2("/bin/busybox", rootfs / "bin/busybox")
        applets = _run([str(rootfs / "bin/busybox"), "--list"]).stdout.split()
        for applet in applets:
            if applet != "busybox":
                (rootfs / "bin" / applet).symlink_to("busybox")
        (rootfs / "sbin/init").symlink_to("../bin/busybox")
        (rootfs / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
        (rootfs / "etc/group").write_text("root:x:0:\n")
        (work / "metadata.yaml").write_text(
            f"architecture: x86_64\ncreation_date: {int(time.time())}\n"
            "properties:\n  description: busybox-static\n  os: busybox\n  release: '1'\n"
        )
        with tarfile.open(path, "w:gz") as tar:
            tar.add(work / "metadata.yaml", arcname="metadata.yaml")
            tar.add(rootfs, arcname="rootfs")
        shutil.rmtree(work)
        return path

    def import_image(self, m: Member, alias: str = "busybox") -> None:
        self.lxc(m, "image", "import", str(self.image_tarball()), "--alias", alias)

    # -- teardown --------------------------------------------------------------------------------
    def down(self) -> dict[str, list[str]]:
        """Remove everything this lab made; never raises; returns what is left (empty: nothing)."""
        if not self.members:
            self._load()
        pids = [m.pid for m in self.members if m.pid and _alive(m.pid)]
        for pid in pids:
            os.kill(pid, signal.SIGTERM)
        if pids and not _wait_gone(pids, 4):  # a member that lost quorum can hang
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            _wait_gone(pids, 5)
        # leftovers inside our namespaces (container monitors of killed daemons)
        for sig, wait in ((signal.SIGTERM, 1.0), (signal.SIGKILL, 2.0)):
            left = []
            for m in self.members:
                for pid in _netns_pids(m.netns):
                    try:
                        os.kill(pid, sig)
                        left.append(pid)
                    except ProcessLookupError:
                        pass
            _wait_gone(left, wait)
        _reap()
        for m in self.members:
            _run(["ip", "link", "del", m.netns], check=False)  # host end of the veth pair
            _run(["ip", "netns", "del", m.netns], check=False)
        _run(["ip", "link", "del", self.bridge], check=False)
        for m in self.members:
            if m.image is None:
                continue
            for _ in range(50):  # the pool mount goes with the daemon's mount namespace
                if not _run(["losetup", "-j", str(m.image)], check=False).stdout.strip():
                    break
                for dev in _run(["losetup", "-j", str(m.image)], check=False).stdout.splitlines():
                    _run(["losetup", "-d", dev.split(":", 1)[0]], check=False)
                time.sleep(0.2)
        _remove_lxc_cgroups()
        self.members = []
        shutil.rmtree(self.root, ignore_errors=True)
        return leftovers(self.prefix, self.root)

    # -- state file (for `down` from another process) --------------------------------------------
    def _save(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        doc = {
            "prefix": self.prefix,
            "net": self.net,
            "bridge": self.bridge,
            "members": [
                {**dataclasses.asdict(m), "lxd_dir": str(m.lxd_dir), "image": str(m.image) if m.image else None}
                for m in self.members
            ],
        }
        (self.root / "lab.json").write_text(json.dumps(doc, indent=1))

    def _load(self) -> None:
        path = self.root / "lab.json"
        if not path.exists():
            return
        doc = json.loads(path.read_text())
        self.members = [
            Member(**{**m, "lxd_dir": Path(m["lxd_dir"]), "image": Path(m["image"]) if m["image"] else None})
            for m in doc["members"]
        ]


def _reap() -> None:
    """Collect our exited children (the daemons we Popen'ed) so they leave no zombies."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def _lxd_running() -> bool:
    """Any lxd daemon on this machine (another lab's, or the demo's), once ours are gone."""
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and (proc / "comm").read_text().strip() == "lxd":
                return True
        except OSError:
            continue
    return False


def _remove_lxc_cgroups() -> None:
    """liblxc leaves empty lxc.pivot / lxc.payload.* / lxc.monitor.* cgroups: remove depth-first.

    Only while no other lxd runs here: another lab's container that is starting has empty
    lxc.* cgroups too, and removing them makes its `lxd forkstart` fail. Left-overs are empty and
    harmless; the next teardown on a quiet machine removes them.
    """
    if _lxd_running():
        return
    base = Path("/sys/fs/cgroup")
    for _ in range(25):
        found = [d for d in base.glob("*/lxc.*") if d.is_dir()] + [d for d in base.glob("lxc.*") if d.is_dir()]
        if not found:
            return
        for d in found:
            try:
                subs = [p for p in d.rglob("*") if p.is_dir()]
            except FileNotFoundError:  # gone meanwhile (another lab on this machine tears down too)
                continue
            for sub in sorted(subs, key=lambda p: -len(p.parts)):
                try:
                    sub.rmdir()
                except OSError:
                    pass
            try:
                d.rmdir()
            except OSError:
                pass
        time.sleep(0.2)


def leftovers(prefix: str = "lxdlab", root: Path | None = None) -> dict[str, list[str]]:
    """What a lab with this prefix left behind: namespaces, links, loop devices, lxd processes."""
    root = root or Path(tempfile.gettempdir()) / prefix
    netns = [ns for ns in _run(["ip", "netns", "list"], check=False).stdout.split() if ns.startswith(f"{prefix}-")]
    links = [  # its bridge <prefix>0 and its veths <prefix>-mI, not another lab's whose prefix starts with ours
        line.split()[0]
        for line in _run(["ip", "-br", "link"], check=False).stdout.splitlines()
        if line.split("@")[0].split()[0] == f"{prefix}0" or line.startswith(f"{prefix}-m")
    ]
    loops = [line for line in _run(["losetup", "-a"], check=False).stdout.splitlines() if str(root) in line]
    procs = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if cmd.startswith("lxd ") and f"{root}/" in cmd:
                procs.append(f"{proc.name}: {cmd.strip()}")
    return {"netns": netns, "links": links, "loops": loops, "lxd": procs}


def main() -> None:
    parser = argparse.ArgumentParser(description="real LXD daemons in network namespaces")
    parser.add_argument("command", choices=["up", "down", "status"])
    parser.add_argument("n", nargs="?", type=int, default=3)
    parser.add_argument("--loop", action="store_true", help="a loop device per member")
    parser.add_argument("--prefix", default="lxdlab")
    args = parser.parse_args()
    lab = Lab(prefix=args.prefix)
    if args.command == "up":
        for m in lab.up(args.n, loop_devices=args.loop):
            print(
                f"{m.name} netns={m.netns} LXD_DIR={m.lxd_dir} address={m.address}:{PORT} "
                f"pid={m.pid} loop={m.loop or '-'}"
            )
    elif args.command == "down":
        print(json.dumps(lab.down()))
    else:
        lab._load()
        for m in lab.members:
            print(f"{m.name} pid={m.pid} alive={bool(m.pid and _alive(m.pid))} address={m.address}")
        print(json.dumps(leftovers(args.prefix, lab.root)))


if __name__ == "__main__":
    main()
