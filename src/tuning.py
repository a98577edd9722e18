"""Production tuning of the host: the kernel limits and file limits LXD's guide asks for.

The values are LXD's "Server settings for a LXD production setup" (doc/reference/server_settings.md,
the same at lxd-5.21.7 and lxd-6.9: the suggested sysctl values, lines 36-139 at lxd-6.9, and the
/etc/security/limits.conf table, lines 8-23; net.core.bpf_jit_limit is left out: it matters only on
kernels older than 5.15 built with CONFIG_BPF_JIT_ALWAYS_ON, and 22.04 and 24.04 run newer ones).
A value the host already has higher is left alone (the charm only raises). sysctls go through
charmlibs-sysctl, which keeps one file per charm (/etc/sysctl.d/90-juju-<app>) and merges every
charm's into 95-juju-sysctl.conf: a key another charm on the machine set to another value is a
conflict the library refuses (Config._validate compares with the merged file); the charm keeps the
other charm's value and says so. No ops import.
"""

from __future__ import annotations

import logging
from pathlib import Path

from charmlibs import sysctl

logger = logging.getLogger(__name__)

PROC_SYS = Path("/proc/sys")
LIMITS_DIR = Path("/etc/security/limits.d")
SYSCTLS = {
    "fs.aio-max-nr": 524288,
    "fs.inotify.max_queued_events": 1048576,
    "fs.inotify.max_user_instances": 1048576,
    "fs.inotify.max_user_watches": 1048576,
    "kernel.dmesg_restrict": 1,
    "kernel.keys.maxbytes": 2000000,
    "kernel.keys.maxkeys": 2000,
    "net.ipv4.neigh.default.gc_thresh3": 8192,
    "net.ipv6.neigh.default.gc_thresh3": 8192,
    "vm.max_map_count": 262144,
}
LIMITS = [  # domain, type, item, value
    (domain, kind, item, value)
    for item, value in (("nofile", "1048576"), ("memlock", "unlimited"))
    for domain in ("*", "root")
    for kind in ("soft", "hard")
]


class TuningError(Exception):
    """The host refused a value; the message says which and what to do."""


def current(key: str) -> int | None:
    """The kernel's value of a sysctl, None where this kernel has no such key."""
    try:
        return int(PROC_SYS.joinpath(*key.split(".")).read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _settings_in(path: Path) -> dict[str, str]:
    """The KEY=VALUE lines of a sysctl.d file."""
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return {}
    pairs = (line.partition("=") for line in lines if "=" in line and not line.startswith(("#", ";")))
    return {key.strip(): value.strip() for key, _, value in pairs}


class HostTuning:
    """The tuning this charm applies to its machine, named after the application."""

    def __init__(self, app: str):
        self.app = app
        self.limits_file = LIMITS_DIR / f"60-juju-{app}.conf"

    def wanted(self, owned: set[str]) -> dict[str, str]:
        """The guide's values this host has lower, and those the charm set before that are still in
        force (its file keeps them across reboots); a key the kernel lacks is skipped, and so is
        one raised further since: the charm never lowers a value."""
        wanted = {}
        for key, value in SYSCTLS.items():
            now = current(key)
            if now is not None and (now < value or (now == value and key in owned)):
                wanted[key] = str(value)
        return wanted

    def apply(self) -> list[str]:
        """Raise what is low and write the limits file; returns the keys another charm holds at its
        own value (reported, not fought over)."""
        config = sysctl.Config(self.app)
        on_file = _settings_in(config.charm_filepath)
        wanted = self.wanted(set(on_file))
        low = [k for k, v in wanted.items() if current(k) != int(v)]
        held: list[str] = []
        if not low and on_file == wanted:  # in force and on file (a settled unit's hooks): nothing to run
            self._write_limits()
            return held
        try:
            try:
                config.configure(wanted)
            except sysctl.ValidationError:
                # after the refusal the library's mapping is the other charms' merged file alone
                held = sorted(k for k in wanted if k in config and config[k] != wanted[k])
                config.configure({k: v for k, v in wanted.items() if k not in held})
        except sysctl.Error as e:  # the kernel refused a key (a container without the right), or no sysctl
            raise TuningError(f"sysctl: {e.message}: production-tuning=false leaves the kernel as it is") from None
        if raised := [k for k in low if k not in held]:
            logger.info("raised %s to LXD's production values", ", ".join(raised))
        self._write_limits()
        return held

    def _write_limits(self) -> None:
        text = "# lxd-cluster: LXD's production limits (doc/reference/server_settings.md)\n" + "".join(
            f"{domain}\t{kind}\t{item}\t{value}\n" for domain, kind, item, value in LIMITS
        )
        if not self.limits_file.exists() or self.limits_file.read_text() != text:
            self.limits_file.parent.mkdir(parents=True, exist_ok=True)
            self.limits_file.write_text(text)
            logger.info("wrote %s", self.limits_file)

    def remove(self) -> None:
        """production-tuning off: the charm's files go (values in force stay until the next boot)."""
        config = sysctl.Config(self.app)
        if config.charm_filepath.exists():
            config.remove()
            logger.info("removed %s", config.charm_filepath)
        if self.limits_file.exists():
            self.limits_file.unlink()
            logger.info("removed %s", self.limits_file)
