"""Every LXD and OS call of the charm: install, preseeds, members, tokens, devices.

No ops import here: the charm translates Juju events into these calls, and the functional tests
drive them against real LXD daemons. All failures surface as LXDError carrying LXD's own words.
pylxd is imported lazily, for writes: every read goes over the socket with the standard library
(lxd_socket.py), GET /1.0 and the member list cached for the hook.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import ssl
import time
import urllib.parse
from typing import TYPE_CHECKING, Any

import yaml

import devices
import lxd_socket
from command import LXDError, run_command
from lxd_paths import default_lxd_dir, lxd_command

if TYPE_CHECKING:
    from adoption import Inventory

from models import Instance, Member, PendingToken, ServerInfo, TrustedClient, version_tuple

logger = logging.getLogger(__name__)

# Host tool LXD needs for each storage driver (the snap bundles them; a deb LXD uses the host's).
DRIVER_PACKAGES = {"zfs": "zfsutils-linux", "btrfs": "btrfs-progs", "lvm": "lvm2", "dir": ""}
JOIN_TIMEOUT = 300  # seconds for one `lxd init --preseed`
OPERATION_TIMEOUT = 600  # seconds for one LXD operation (a launch, a move, an evacuation)
LEAVING_KEY = "user.lxd-cluster.leaving"  # member config: this member's unit is leaving (and what failed)
# Roles LXD assigns itself: 6.7+ keeps them on a role update and refuses one the member does not hold
# at that moment (lxd-6.9 lxd/api_cluster_member.go:800-852). 5.x's `database` is not among them: 5.x
# refuses an update that drops it from a voter (lxd-5.21.7 lxd/api_cluster.go:1750-1756).
AUTOMATIC_ROLES = ("database-voter", "database-standby", "database-leader")


def server_defaults(version: str) -> dict[str, str]:
    """Server keys the charm sets and their defaults in this LXD version: GET /1.0 leaves out a key
    whose value is its default (lxd/config/map.go Dump), so the default is the value it has then."""
    defaults = {
        "images.auto_update_interval": "6",  # lxd-5.0.2 .. lxd-6.9 lxd/cluster/config/config.go
        "cluster.join_token_expiry": "3H",  # lxd-5.0.2 config.go:261, lxd-5.21.7:384, lxd-6.9:394
    }
    # core.remote_token_expiry had no default (tokens never expired) until 5.21.5 and 6.7, then 15d
    # (lxd-5.0.2 config.go:274, lxd-5.21.4 none, lxd-5.21.5 and lxd-5.21.7:498, lxd-6.6 none, lxd-6.9:508)
    number = version_tuple(version)
    if (5, 21, 5) <= number < (6,) or number >= (6, 7):
        defaults["core.remote_token_expiry"] = "15d"
    return defaults


class ClientUnavailable(LXDError):
    """pylxd cannot be loaded here: a broken install, not a daemon that is still starting."""


def _pylxd() -> Any:
    """pylxd, imported on first use (it is heavy).

    A failed import is a ClientUnavailable with its cause, never a hook crash: e.g. an older
    distribution pyOpenSSL shadowing the venv's raises AttributeError deep inside the import.
    """
    try:
        import pylxd
        import pylxd.exceptions
    except Exception as e:  # noqa: BLE001 - any import failure means the same to the operator
        logger.error("importing pylxd failed", exc_info=True)
        raise ClientUnavailable(
            f"cannot load pylxd ({type(e).__name__}: {e}): the charm's Python packages do not load "
            "on this machine's python3 (traceback in juju debug-log)"
        ) from None
    return pylxd


def _token(body: dict[str, Any], name_key: str, name: str) -> str:
    """The token LXD's own client prints: base64 of JSON from a token operation's metadata."""
    meta = (body.get("metadata") or {}).get("metadata") or {}
    token = {name_key: meta.get("serverName", name), "fingerprint": meta.get("fingerprint", "")}
    token.update(addresses=meta.get("addresses", []), secret=meta.get("secret", ""))
    if meta.get("expiresAt"):
        token["expires_at"] = meta["expiresAt"]
    if not token["secret"] or not token["fingerprint"]:
        raise LXDError(f"LXD returned no token for {name}")
    return base64.b64encode(json.dumps(token, separators=(",", ":")).encode()).decode()


def _cache_key(path: str, params: dict[str, Any]) -> str:
    return path + repr(sorted(params.items()))


class LXD:
    """The local LXD daemon, reached through its unix socket in lxd_dir."""

    def __init__(self, lxd_dir: str | None = None):
        self.lxd_dir = lxd_dir or default_lxd_dir()
        self.socket = os.path.join(self.lxd_dir, "unix.socket")
        self._client: Any = None
        # GET /1.0 and the member list, read once per hook; any change through this object drops them
        self._cache: dict[str, dict[str, Any]] = {}

    # -- readiness (snap.py installs LXD) --------------------------------------------------
    def wait_ready(self, timeout: int = 60) -> None:
        self._run([lxd_command(), "waitready", f"--timeout={timeout}"], timeout=timeout + 10)

    # -- REST API --------------------------------------------------------------------------
    @property
    def client(self) -> Any:
        if self._client is None:
            pylxd = _pylxd()
            try:
                self._client = pylxd.Client(endpoint=self.socket)
            except Exception as e:  # pylxd raises several types while connecting
                raise LXDError(f"cannot reach LXD at {self.socket}: {e}") from None
        return self._client

    def _get(self, path: str, **params: Any) -> dict[str, Any]:
        """A cached GET of the server document or the member list."""
        key = _cache_key(path, params)
        if key not in self._cache:
            self._cache[key] = self._api("get", path, params=params)
        return self._cache[key]

    def _api(self, method: str, path: str, wait: bool = True, **kwargs: Any) -> dict[str, Any]:
        """Call the REST API and return the response document.

        Reads go through lxd_socket, without pylxd: a hook that only reads never imports it. An
        async operation is waited for (unless wait=False) and its failure raised with LXD's own words.
        """
        if method == "get":
            return lxd_socket.get(self.socket, path, kwargs.get("params"), LXDError)
        exceptions = _pylxd().exceptions
        node = self.client.api
        self._cache.clear()
        for part in filter(None, path.split("/")):
            node = node[part]
        try:
            body = getattr(node, method)(**kwargs).json()
            if body.get("type") == "async" and wait:
                body = self._wait(body["operation"])
        except exceptions.LXDAPIException as e:
            raise LXDError(str(e)) from None
        except (OSError, ValueError) as e:
            raise LXDError(f"LXD API {method.upper()} /1.0/{path} failed: {e}") from None
        return body

    def _wait(self, operation: str) -> dict[str, Any]:
        """Wait for an operation; one running on another member can answer `Running` early.
        `operation` is the path LXD returns, with its project as a query (/1.0/operations/ID?project=P):
        the query goes to the wait endpoint's own (appended to the ID, it turned the wait into an
        immediate GET of the operation, and the launch into 0.2 s polls)."""
        where = urllib.parse.urlsplit(operation)
        op_id, query = where.path.rsplit("/", 1)[-1], dict(urllib.parse.parse_qsl(where.query))
        deadline = time.monotonic() + OPERATION_TIMEOUT
        while True:
            body = self.client.api.operations[op_id].wait.get(params={**query, "timeout": 30}).json()
            status = body["metadata"].get("status")
            if status == "Success":
                return body
            if status not in ("Running", "Pending") or time.monotonic() > deadline:
                raise LXDError(body["metadata"].get("err") or f"operation {op_id}: {status}")
            time.sleep(0.2)

    def info(self) -> ServerInfo:
        meta = self._get("")["metadata"]
        env = meta.get("environment", {})
        drivers = env.get("storage_supported_drivers")
        return ServerInfo(
            version=str(env.get("server_version", "")),
            api_extensions=frozenset(meta.get("api_extensions", [])),
            storage_drivers=None if drivers is None else frozenset(d["Name"] for d in drivers),
            clustered=bool(env.get("server_clustered")),
            server_name=str(env.get("server_name", "")),
            certificate=str(env.get("certificate", "")),
            pid=int(env.get("server_pid") or 0),  # shared/api/server.go ServerPid, in 5.0.2, 5.21.7 and 6.9
        )

    def network_type(self, name: str) -> str | None:
        """Type of a host interface as the daemon sees it (bridge, physical, ...), None if absent."""
        try:
            return str(self._api("get", f"networks/{name}")["metadata"].get("type", ""))
        except LXDError as e:
            if "not found" in str(e).lower():
                return None
            raise

    def members(self, fresh: bool = False) -> list[Member]:
        """The member list (read once per hook; fresh: read again, e.g. while waiting for another member)."""
        if fresh:
            self._cache.pop(_cache_key("cluster/members", {"recursion": 1}), None)
        rows = self._get("cluster/members", recursion=1)["metadata"]
        return [
            Member(
                server_name=r["server_name"],
                url=r.get("url", ""),
                roles=tuple(r.get("roles") or ()),
                status=r.get("status", ""),
                message=r.get("message", ""),
                leaving=str((r.get("config") or {}).get(LEAVING_KEY, "")),
                database=bool(r.get("database")),
            )
            for r in rows
        ]

    def issue_join_token(self, server_name: str) -> str:
        """A single-use join token for server_name (re-issuing cancels an older one)."""
        body = self._api("post", "cluster/members", wait=False, json={"server_name": server_name})
        return _token(body, "server_name", server_name)

    def update_config(self, config: dict[str, str]) -> list[str]:
        """Set server config keys that differ; returns the keys changed (never their values)."""
        current = self._get("")["metadata"].get("config", {})
        defaults = server_defaults(self.info().version)
        changes = {k: v for k, v in config.items() if current.get(k, defaults.get(k, "")) != v}
        if changes:
            self._api("patch", "", json={"config": changes})
        return sorted(changes)

    def update_cluster_certificate(self, certificate: str, key: str) -> None:
        """Replace the cluster certificate on every member (`lxc cluster update-certificate`): the member
        reached forwards it to the others (lxd-5.0.2 lxd/api_cluster.go:2107-2184)."""
        self._api(
            "put", "cluster/certificate", json={"cluster_certificate": certificate, "cluster_certificate_key": key}
        )

    # -- members ---------------------------------------------------------------------------
    def remove_member(self, name: str, force: bool = False) -> None:
        """`lxc cluster remove [--force]`: force only deletes the database rows of a dead member."""
        self._api("delete", f"cluster/members/{name}", params={"force": 1} if force else {})

    def mark_leaving(self, name: str, value: str) -> None:
        """Set (or, with "", clear) LEAVING_KEY on a member: LXD's database, seen by every member at once.
        Only the roles an update may carry go back: not those LXD assigns itself (AUTOMATIC_ROLES)."""
        doc = self._api("get", f"cluster/members/{name}")["metadata"]
        keep = {k: doc[k] for k in ("failure_domain", "description", "groups") if k in doc}
        keep["roles"] = [role for role in doc.get("roles") or () if role not in AUTOMATIC_ROLES]
        keep["config"] = {k: v for k, v in {**(doc.get("config") or {}), LEAVING_KEY: value}.items() if v}
        self._api("put", f"cluster/members/{name}", json=keep)

    def set_member_state(self, name: str, action: str, force: bool = False) -> None:
        """evacuate or restore a member (`lxc cluster evacuate|restore`); force (only where LXD has
        clustering_evacuation_force) skips LXD's quorum check (lxd-6.9 lxd/api_cluster_member.go:1357)."""
        body: dict[str, Any] = {"action": action}
        if force:
            body["force"] = True
        self._api("post", f"cluster/members/{name}/state", json=body)

    def group_exists(self, name: str) -> bool:
        try:
            self._api("get", f"cluster/groups/{name}")
        except LXDError as e:
            if "not found" in str(e).lower():
                return False
            raise
        return True

    # -- trust store -----------------------------------------------------------------------
    def trusted_clients(self) -> dict[str, TrustedClient]:
        rows = self._api("get", "certificates", params={"recursion": 1})["metadata"] or []
        return {r["name"]: TrustedClient.of(r) for r in rows if r.get("type") == "client"}

    def trust_client(self, name: str, pem: str, projects: tuple[str, ...] | None) -> None:
        """Add a client certificate restricted to projects; None: unrestricted (full access)."""
        der = base64.b64encode(ssl.PEM_cert_to_DER_cert(pem)).decode()
        restricted = {"restricted": projects is not None, "projects": list(projects or ())}
        self._api("post", "certificates", json=dict(type="client", name=name, certificate=der, **restricted))

    def untrust_client(self, fingerprint: str) -> None:
        self._api("delete", f"certificates/{fingerprint}")

    def issue_client_token(self, name: str, projects: tuple[str, ...] | None) -> str:
        """A single-use token for `lxc remote add`, restricted to projects (None: full access)."""
        request = {"type": "client", "name": name, "token": True, "restricted": projects is not None}
        body = self._api("post", "certificates", wait=False, json={**request, "projects": list(projects or ())})
        return _token(body, "client_name", name)

    def pending_tokens(self) -> list[PendingToken]:  # unused tokens: running operations until used or revoked
        running = (self._api("get", "operations", params={"recursion": 1})["metadata"] or {}).get("running") or []
        return [PendingToken.of(op) for op in running if op.get("class") == "token"]

    def revoke_token(self, operation_id: str) -> None:
        self._api("delete", f"operations/{operation_id}")  # what `lxc config trust revoke-token` does

    def projects(self) -> set[str]:
        return {url.rsplit("/", 1)[-1].split("?")[0] for url in self._api("get", "projects")["metadata"] or []}

    def create_project(self, name: str, pool: str) -> None:
        """A project with LXD's restrictions on (no privileged instances, no host devices), root disk on pool."""
        self._api("post", "projects", json={"name": name, "config": {"restricted": "true"}})
        root = {"root": {"type": "disk", "path": "/", "pool": pool}}
        self._api("patch", "profiles/default", params={"project": name}, json={"devices": root})

    # -- instances -------------------------------------------------------------------------
    def instances(self, location: str | None = None) -> list[Instance]:
        """The instances of every project, each with its project: a client's own project holds instances
        as `default` does, and LXD refuses to remove a member holding any of any project ("Node still has
        the following containers": lxd-5.0.2 lxd/db/node.go:912-919; lxd-6.9 :915-920 says instances).
        `all-projects` has API extension instance_all_projects, in every LXD this charm runs on (4.0.9,
        5.0.2, 5.21.7, 6.9; lxd-5.0.2 lxd/instances_get.go:272, lxd-6.9 lxd/request/parse.go:16); an
        LXD without it ignores the parameter and lists the default project's."""
        params = {"recursion": 1, "all-projects": "true"}
        rows = self._api("get", "instances", params=params)["metadata"] or []
        found = [
            Instance(
                r["name"],
                r.get("location", ""),
                r.get("status", ""),
                r.get("type", "container"),
                project=r.get("project") or "default",
            )
            for r in rows
        ]
        return [i for i in found if location is None or i.location == location]

    def instance(self, name: str, project: str = "default") -> Instance:
        params = {"project": project}
        meta = self._api("get", f"instances/{name}", params=params)["metadata"]
        state = self._api("get", f"instances/{name}/state", params=params)["metadata"] or {}
        ipv4, ipv6 = [], []
        for nic, net in (state.get("network") or {}).items():
            if nic == "lo":
                continue
            for addr in net.get("addresses") or []:
                (ipv4 if addr.get("family") == "inet" else ipv6).append(addr["address"])
        where, status, kind = meta.get("location", ""), meta.get("status", ""), meta.get("type", "container")
        return Instance(name, where, status, kind, tuple(ipv4), tuple(ipv6), project)

    def image_exists(self, ref: str) -> bool:
        """An alias or a (partial) fingerprint of an image in the cluster's image store; the reference is
        one quoted path segment (the socket client sends the URL as given: a space would break it)."""
        quoted = urllib.parse.quote(ref, safe="")
        for path in (f"images/aliases/{quoted}", f"images/{quoted}"):
            try:
                self._api("get", path)
                return True
            except LXDError as e:
                if "not found" not in str(e).lower():
                    raise
        return False

    def launch(
        self,
        name: str,
        source: dict[str, str],
        target: str = "",
        profiles: tuple[str, ...] = ("default",),
        config: dict[str, str] | None = None,
    ) -> Instance:
        """Create and start an instance; without target LXD places it (fewest instances)."""
        document = {"name": name, "source": source, "profiles": list(profiles), "config": config or {}}
        self._api("post", "instances", json=document, params={"target": target} if target else {})
        self._api("put", f"instances/{name}/state", json={"action": "start", "timeout": 30})
        return self.instance(name)

    def set_instance_state(self, name: str, action: str, project: str = "default") -> None:
        """start or stop (forced) an instance of project, wherever it is."""
        request = {"action": action, "timeout": 30, "force": action == "stop"}
        self._api("put", f"instances/{name}/state", json=request, params={"project": project})

    def migrate(self, name: str, target: str, project: str = "default") -> None:
        """Move a stopped instance of project to member target (works on every driver and with bridged NICs).

        The server administrator may target a member even in a restricted project (lxd-5.0.2
        lxd/project/permissions.go:1474-1476; lxd-6.9 lxd/project/limits/permissions.go:1586-1588)."""
        params = {"target": target, "project": project}
        self._api("post", f"instances/{name}", json={"name": name, "migration": True}, params=params)

    # -- lxd init --------------------------------------------------------------------------
    def apply_preseed(self, preseed: dict[str, Any], timeout: int = JOIN_TIMEOUT) -> None:
        """`lxd init --preseed`, the document on stdin (never written to disk: it holds credentials)."""
        self._cache.clear()
        self._run([lxd_command(), "init", "--preseed"], stdin=yaml.safe_dump(preseed), timeout=timeout)

    # -- devices (src/devices.py; here so that tests replace LXD and devices at one seam) ------
    inspect_device = staticmethod(devices.inspect_device)
    wipe_device = staticmethod(devices.wipe_device)

    # -- processes -------------------------------------------------------------------------
    def _run(self, argv: list[str], stdin: str | None = None, timeout: int = 120) -> str:
        return run_command(argv, stdin=stdin, timeout=timeout, lxd_dir=self.lxd_dir)

    # -- an LXD in use before the charm (adoption.py decides) ---------------------------------
    def inventory(self) -> Inventory:
        """What a standalone LXD holds: instances, images, pools, profiles, managed networks."""
        from adoption import Inventory

        def names(path: str) -> list[dict[str, Any]]:
            return self._api("get", path, params={"recursion": 1})["metadata"] or []

        images = tuple(
            (i.get("aliases") or [{}])[0].get("name") or i.get("fingerprint", "")[:12] for i in names("images")
        )
        profiles = tuple(
            p["name"] for p in names("profiles") if p["name"] != "default" or p.get("devices") or p.get("config")
        )
        return Inventory(
            instances=tuple(i.ref for i in self.instances()),  # a joiner's project instances are erased too
            images=images,
            pools=tuple(p["name"] for p in names("storage-pools")),
            profiles=profiles,
            networks=tuple(n["name"] for n in names("networks") if n.get("managed")),
            https_address=str(self._get("")["metadata"].get("config", {}).get("core.https_address", "")),
        )

    def create_pool(self, name: str, driver: str, config: dict[str, str]) -> None:
        """A storage pool on a standalone LXD (before clustering is enabled, no per-member step)."""
        self._api("post", "storage-pools", json={"name": name, "driver": driver, "config": config})

    def enable_clustering(self, server_name: str, https_address: str) -> None:
        """`lxc config set core.https_address ...; lxc cluster enable NAME`: a standalone LXD becomes a
        one-member cluster and keeps its instances, images, pools and profiles."""
        self._api("patch", "", json={"config": {"core.https_address": https_address}})
        self._api("put", "cluster", json={"server_name": server_name, "enabled": True})
        self._cache.clear()
