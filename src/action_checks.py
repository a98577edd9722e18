"""Pure parsing and checks of action parameters: each bad value raises ActionError naming the fix."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence

from models import MIN_MEMBERS

# LXD instance names: a letter first, letters, digits and hyphens, at most 63, no trailing hyphen.
_INSTANCE_NAME = re.compile(r"^[A-Za-z](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")
_FINGERPRINT = re.compile(r"^[0-9a-f]{12,64}$")
# Image servers a `remote:alias` image may name (the remotes lxc knows by default).
REMOTES = {
    "ubuntu": ("https://cloud-images.ubuntu.com/releases", "simplestreams"),
    "ubuntu-daily": ("https://cloud-images.ubuntu.com/daily", "simplestreams"),
    "ubuntu-minimal": ("https://cloud-images.ubuntu.com/minimal/releases", "simplestreams"),
    "images": ("https://images.lxd.canonical.com", "simplestreams"),
}


class ActionError(ValueError):
    """The action cannot run as asked; nothing was changed."""


@dataclasses.dataclass(frozen=True)
class LaunchRequest:
    name: str
    image: str
    source: dict[str, str]
    remote: bool
    target: str = ""
    profiles: tuple[str, ...] = ("default",)
    config: dict[str, str] = dataclasses.field(default_factory=dict)


def parse_launch(params: Mapping[str, object]) -> LaunchRequest:
    name = str(params.get("name", "")).strip()
    if not _INSTANCE_NAME.match(name):
        raise ActionError(
            f"name {name!r} is not a valid instance name: start with a letter, then letters, "
            "digits and hyphens, at most 63 characters"
        )
    image = str(params.get("image", "")).strip()
    if not image:
        raise ActionError("image is required: an alias (busybox), a fingerprint, or remote:alias")
    remote, _, alias = image.rpartition(":")
    if remote:
        if remote not in REMOTES:
            raise ActionError(f"unknown image remote {remote!r}: use one of {', '.join(REMOTES)}")
        server, protocol = REMOTES[remote]
        source = {"type": "image", "mode": "pull", "server": server, "protocol": protocol, "alias": alias}
    elif _FINGERPRINT.match(image):
        source = {"type": "image", "fingerprint": image}
    else:
        source = {"type": "image", "alias": image}
    profiles = params.get("profiles", ["default"])
    if (
        not isinstance(profiles, Sequence)
        or isinstance(profiles, str)
        or not all(isinstance(p, str) and p for p in profiles)
    ):
        raise ActionError("profiles must be a list of profile names, e.g. [default]")
    config = params.get("config", {})
    if not isinstance(config, Mapping) or not all(isinstance(v, str) for v in config.values()):
        raise ActionError('config must map instance keys to string values, e.g. {"limits.cpu": "1"}')
    return LaunchRequest(
        name=name,
        image=image,
        source=source,
        remote=bool(remote),
        target=str(params.get("target", "") or "").strip(),
        profiles=tuple(profiles),
        config=dict(config),
    )


def check_known_member(name: str, members: Sequence[str]) -> None:
    if name not in members:
        raise ActionError(f"no cluster member named {name!r}: members are {', '.join(sorted(members))}")


def check_removal(name: str, members: Sequence[str], instances: Sequence[str], params: Mapping) -> None:
    """remove-node: keep three members unless told otherwise; never lose an instance silently."""
    check_known_member(name, members)
    left = len(members) - 1
    if left < MIN_MEMBERS and not params.get("allow-below-minimum", False):
        raise ActionError(
            f"removing {name} would leave {left} member(s); keep at least {MIN_MEMBERS} for database "
            "redundancy, or run again with allow-below-minimum=true"
        )
    if instances and not params.get("evacuate", False):
        raise ActionError(
            f"{name} still has instances: {', '.join(sorted(instances))}; run again with "
            "evacuate=true to move them to other members first"
        )
