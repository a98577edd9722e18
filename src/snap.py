"""Where this machine's LXD comes from, decided by snapd itself, and the snapd calls on the lxd snap.

What is installed is snapd's answer (charmlibs.snap `list_one`), not `which lxd`: Ubuntu 22.04
images carry the lxd snap on 5.0/stable, 24.04 images may carry `lxd-installer`, a shell script at
/usr/sbin/lxd that installs the snap from its own channel the first time anything runs `lxd`.
Installs and refreshes go through the `snap` command because they need a cohort (`--cohort=+`,
or a key the leader created) and charmlibs.snap 2.x has no cohort support; holds and the system's
proxy options use the library.
No ops import here; failures are SnapError carrying snapd's own words.
"""

from __future__ import annotations

import dataclasses
import logging

from charmlibs import snap as snapd

from lxd_paths import non_snap_source
from workload import LXDError, run_command

logger = logging.getLogger(__name__)

SNAP = "lxd"
INSTALL_TIMEOUT = 900
RISKS = ("stable", "candidate", "beta", "edge")


class SnapError(Exception):
    """A snapd operation failed; str() is snapd's own message."""


@dataclasses.dataclass(frozen=True)
class LXDPackage:
    """What provides `lxd` here.

    source: snap (the lxd snap is installed), deb (an LXD binary that is no snap, used as is),
    shim (lxd-installer's script and no snap yet: it must never run), none (nothing yet).
    """

    source: str
    snapd: bool  # snapd answers on this machine
    tracking: str = ""  # the snap's channel, e.g. 5.21/stable
    revision: str = ""
    version: str = ""  # snapd's version string, e.g. 5.21.3-c5ae129
    held: bool = False  # automatic refreshes are held

    @property
    def is_snap(self) -> bool:
        return self.source == "snap"


def normalise_channel(channel: str, tracking: str = "") -> str:
    """A channel as snapd tracks it: `stable` -> latest/stable, `5.21` -> 5.21/stable.

    A bare risk keeps the track the snap is on (snapd's rule), else latest.
    """
    parts = [p for p in channel.strip().split("/") if p]
    if not parts:
        return tracking or "latest/stable"
    if parts[0] in RISKS:
        track = tracking.split("/", 1)[0] if tracking else "latest"
        return "/".join([track, *parts])
    if len(parts) == 1:
        return f"{parts[0]}/stable"
    return "/".join(parts)


def track_of(channel: str) -> str:
    return normalise_channel(channel).split("/", 1)[0]


class LXDSnap:
    """The lxd snap as snapd sees it (asked once per hook, and again after the charm changed it)."""

    def __init__(self) -> None:
        self._package: LXDPackage | None = None

    def package(self) -> LXDPackage:
        if self._package is None:
            self._package = self._ask()
        return self._package

    def _ask(self) -> LXDPackage:
        try:
            info = snapd.list_one(SNAP)
        except snapd.NotInstalledError:
            return LXDPackage(non_snap_source(), snapd=True)
        except (snapd.SocketNotFoundError, snapd.ConnectionError):
            return LXDPackage(non_snap_source(), snapd=False)
        except snapd.Error as e:
            raise SnapError(f"snapd: {e}") from None
        return LXDPackage(
            "snap",
            snapd=True,
            tracking=info.tracking,
            revision=info.revision,
            version=info.version,
            held=info.hold is not None,
        )

    def install(self, channel: str, cohort: str = "+") -> None:
        """`snap install lxd --channel=C --cohort=K`: every member from the same snapshot of the channel."""
        self._package = None
        self._snap("install", SNAP, f"--channel={channel}", f"--cohort={cohort}")

    def refresh(self, channel: str, cohort: str = "+") -> None:
        """`snap refresh lxd --channel=C --cohort=K`: snapd restarts LXD on the new revision."""
        self._package = None
        self._snap("refresh", SNAP, f"--channel={channel}", f"--cohort={cohort}")

    def create_cohort(self) -> str:
        """A cohort key (`snap create-cohort lxd`): refreshes with it get one revision, whenever they run."""
        out = self._snap("create-cohort", SNAP)
        for line in out.splitlines():
            key, _, value = line.strip().partition(":")
            if key == "cohort-key" and value.strip():
                return value.strip()
        raise SnapError(f"snap create-cohort {SNAP} printed no cohort key")

    def hold(self) -> None:
        """Hold automatic refreshes of lxd for good: the charm refreshes it, member by member."""
        self._package = None
        try:
            snapd.hold(SNAP)
        except snapd.Error as e:
            raise SnapError(f"snapd: {e}") from None

    def system_proxy(self) -> dict[str, str]:
        """snapd's proxy.* system options that are set, as {"proxy.http": URL, ...}."""
        try:
            proxy = snapd.get("system", keys=None).get("proxy") or {}
        except snapd.Error as e:
            raise SnapError(f"snapd: {e}") from None
        return {f"proxy.{k}": str(v) for k, v in proxy.items() if v not in ("", None)}

    def set_system(self, changes: dict[str, str]) -> None:
        """Set system options over snapd's API (a URL with a password never goes on a command line);
        an empty value unsets the option."""
        try:
            snapd.set("system", {k: v or None for k, v in changes.items()})  # None unsets
        except snapd.Error as e:
            raise SnapError(f"snapd: {e}") from None

    @staticmethod
    def _snap(*args: str) -> str:
        argv = ["snap", *args]
        logger.info("running %s", " ".join(argv))
        try:
            return run_command(argv, timeout=INSTALL_TIMEOUT)
        except LXDError as e:  # the same runner as every other command; snapd's words, as SnapError
            raise SnapError(str(e)) from None
