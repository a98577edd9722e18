"""Least privilege for clients: the projects a client may use, and how long the tokens the charm issues live."""

from __future__ import annotations

import base64
import datetime
import json
import logging

from config import CharmConfig, expiry_seconds
from models import ServerInfo
from preseed import POOL_NAME
from workload import LXD

logger = logging.getLogger(__name__)

# token kind -> (the server key of its lifetime, the API extension that has that key)
TOKEN_KEYS = {
    "join": ("cluster.join_token_expiry", "cluster_join_token_expiry"),
    "client": ("core.remote_token_expiry", "remote_token_expiry"),
}


class AccessError(ValueError):
    """A client cannot get what it asks for; the message says why and what to do."""


def grant_for(projects: tuple[str, ...], app: str, access: str) -> tuple[str, ...] | None:
    """The projects a related application gets (None: all of them, i.e. admin)."""
    if projects:
        return tuple(sorted(set(projects)))
    if access == "admin":
        return None
    if access == "refuse":
        raise AccessError(
            "name the LXD projects this application needs (LXDClusterRequirer(projects=[...])); "
            "the cluster's operator allows none by default (client-access=refuse)"
        )
    if app == "default":  # its own project would be LXD's default project, where everything else lives
        raise AccessError("an application named default cannot have a project of its own: name its projects")
    return (app,)


def ensure_projects(lxd: LXD, projects: tuple[str, ...], create: str = "") -> None:
    """Every project exists; `create` is made if missing (restricted, root disk on the cluster's pool)."""
    missing = sorted(set(projects) - lxd.projects())
    if create in missing:
        lxd.create_project(create, POOL_NAME)
        logger.info("created LXD project %s (restricted)", create)
        missing.remove(create)
    if missing:
        raise AccessError(f"no LXD project named {', '.join(missing)}: create it first (lxc project create NAME)")


def lifetime(config: CharmConfig, kind: str) -> str:
    return config.join_token_expiry if kind == "join" else config.client_token_expiry


def secure_tokens(lxd: LXD, config: CharmConfig, info: ServerInfo, now: datetime.datetime | None = None) -> None:
    """Set token lifetimes where LXD has the keys; where it has not, revoke older unused tokens here."""
    changed = lxd.update_config(
        {key: lifetime(config, kind) for kind, (key, ext) in TOKEN_KEYS.items() if info.supports(ext)}
    )
    if changed:
        logger.info("token lifetimes set: %s", ", ".join(changed))
    unenforced = [kind for kind, (_, ext) in TOKEN_KEYS.items() if not info.supports(ext)]
    if not unenforced:
        return
    now = now or datetime.datetime.now(datetime.timezone.utc)
    for token in lxd.pending_tokens():
        if token.kind in unenforced and token_age(token.created_at, now) > expiry_seconds(lifetime(config, token.kind)):
            lxd.revoke_token(token.operation_id)
            logger.info("revoked an unused %s token for %s: older than its lifetime", token.kind, token.name)


def token_terms(token: str, config: CharmConfig, info: ServerInfo, kind: str) -> dict[str, str]:
    """What an action result says about a token it reveals: when it stops working."""
    try:
        expires = str(json.loads(base64.b64decode(token)).get("expires_at", ""))
    except (ValueError, TypeError, AttributeError):
        expires = ""
    key, extension = TOKEN_KEYS[kind]
    revoke = "remove-trusted-client name=NAME" if kind == "client" else "show-preseed reveal=true for the same name"
    terms = {"token-use": f"single use; kept by the controller (juju show-task): revoke it unused with {revoke}"}
    if expires and info.supports(extension):
        terms["token-expires-at"] = expires
    else:
        terms["token-expires-at"] = (
            f"not enforced by this LXD (no {key}): the leader revokes it once older than "
            f"{lifetime(config, kind)}, on its next hook (update-status runs every 5 minutes)"
        )
    return terms


def token_age(created_at: str, now: datetime.datetime) -> float:
    """Seconds since an RFC 3339 time as LXD writes it (nanoseconds cut to microseconds)."""
    stamp, _, fraction = created_at.rstrip("Z").partition(".")
    try:
        then = datetime.datetime.fromisoformat(stamp + (f".{fraction[:6]}" if fraction else "")).replace(
            tzinfo=datetime.timezone.utc
        )
    except ValueError:
        return float("inf")  # an unreadable age: treat it as old
    return (now - then).total_seconds()
