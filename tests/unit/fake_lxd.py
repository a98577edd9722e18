"""A small plain fake of workload.LXD: the state a real daemon would have, and what was asked of it."""

from __future__ import annotations

import base64
import dataclasses
import json
from typing import Any

from charms.lxd_cluster.v0.lxd_cluster import fingerprint_of as certificate_fingerprint

from adoption import Inventory
from models import DeviceState, Instance, Member, PendingToken, ServerInfo, TrustedClient
from workload import LXDError, server_defaults

MUTATIONS = (
    "create_pool",
    "enable_clustering",
    "apply_preseed",
    "update_config",
    "issue_join_token",
    "wipe_device",
    "remove_member",
    "set_member_state",
    "launch",
    "migrate",
    "set_instance_state",
    "mark_leaving",
    "trust_client",
    "untrust_client",
    "issue_client_token",
    "revoke_token",
    "create_project",
    "update_cluster_certificate",
)
# What LXD stamps on a token it issues while its lifetime key is set (the fake's clock is fixed).
EXPIRES_AT = "2030-01-01T01:00:00Z"
TOKEN_EXPIRY_KEYS = {"join": "cluster.join_token_expiry", "client": "core.remote_token_expiry"}


def make_token(
    server_name: str,
    certificate: str,
    secret: str = "s3cret",
    addresses: tuple[str, ...] = ("10.0.0.1:8443",),
    expires: str = "",
) -> str:
    """A join token as LXD makes one: base64 of JSON naming the joiner and the cluster certificate."""
    doc = {
        "server_name": server_name,
        "fingerprint": certificate_fingerprint(certificate),
        "addresses": list(addresses),
        "secret": secret,
    }
    if expires:
        doc["expires_at"] = expires
    return base64.b64encode(json.dumps(doc).encode()).decode()


class FakeLXD:
    def __init__(self, certificate: str, version: str = "5.21.2"):
        self.certificate = certificate
        self.version = version
        self.socket = "/var/lib/lxd/unix.socket"  # workload.LXD.socket: where the Nagios plugin asks
        self.ready = True
        self.clustered = False
        self.server_name = ""
        self.extensions = {
            "clustering_join_token",
            "maas_network",
            "certificate_token",
            "cluster_join_token_expiry",
            "remote_token_expiry",
        }
        self.storage_drivers: set[str] | None = {"zfs", "btrfs", "lvm", "dir"}
        self.networks = {"br0": "bridge", "eth0": "physical"}
        self.devices: dict[str, DeviceState] = {}
        self.config: dict[str, str] = {}
        self.member_rows: list[Member] = []
        self.instance_rows: list[Instance] = []
        self.images = {"busybox"}
        self.groups = {"default"}
        self.preseeds: list[dict[str, Any]] = []
        self.tokens: dict[str, str] = {}
        self.wiped: list[str] = []
        self.removed: list[tuple[str, bool]] = []
        self.moves: list[tuple[str, str]] = []  # every migration, (instance ref, member); a rollback is a move back
        self.unstartable: set[tuple[str, str]] = set()  # (instance ref, member) where it cannot start
        self.unmovable: dict[str, str] = {}  # instance ref -> LXD's words when a migration is refused
        self.on_migrate: list = []  # callables run before each migration (another unit acting meanwhile)
        self.calls: list[str] = []
        self.fail_next_preseed = ""
        self._serial = 0
        self.trusted: dict[str, tuple[str, tuple[str, ...] | None]] = {}  # name -> (fingerprint, projects|None)
        self.project_names = {"default"}
        self.pending: list[PendingToken] = []  # unused tokens (running operations in LXD)
        self.client_tokens: dict[str, dict[str, Any]] = {}  # name -> what the token grants, its expiry
        self.metrics_certs: dict[str, dict[str, str]] = {}  # fingerprint -> certificate row (type metrics)
        self.warnings: list[dict[str, Any]] = []
        self.lxd_dir = "/nonexistent-lxd-dir"
        self.pid = 0  # the daemon's server_pid (0: unknown, the host network is read from /proc/self)
        self.standalone = Inventory()  # what the daemon holds before it is clustered (fresh: nothing)
        self.created_pools: list[tuple[str, str, dict[str, str]]] = []
        self.profile_devices: dict[str, dict[str, str]] = {}  # the default profile's devices
        self.managed: dict[str, dict[str, Any]] = {}  # managed networks: name -> {type, config, status, pending}
        self.pool: dict[str, Any] = {}  # the pool `local` once made: driver, config (this member's)

    # what the charm calls ----------------------------------------------------------------------
    def wait_ready(self, timeout: int = 60) -> None:
        if not self.ready:
            raise LXDError("Daemon still not running after 30s timeout")

    def info(self) -> ServerInfo:
        if not self.ready:
            raise LXDError("connection refused")
        return ServerInfo(
            self.version,
            frozenset(self.extensions),
            None if self.storage_drivers is None else frozenset(self.storage_drivers),
            self.clustered,
            self.server_name or "none",
            self.certificate,
            self.pid,
        )

    def network_type(self, name: str) -> str | None:
        return self.networks.get(name)

    def members(self, fresh: bool = False) -> list[Member]:  # no cache here: every read is fresh
        if not self.ready:
            raise LXDError("connection refused")
        # LXD sets `database` with every database role it lists (lxd-5.21.7 lxd/db/node.go:146-159)
        database = ("database", "database-voter", "database-standby", "database-leader")
        return [
            dataclasses.replace(m, database=m.database or bool(set(m.roles) & set(database))) for m in self.member_rows
        ]

    def issue_join_token(self, server_name: str) -> str:
        """As LXD: base64 of JSON with the cluster fingerprint; re-issuing replaces the old token."""
        self.calls.append("issue_join_token")
        if not self.clustered:
            raise LXDError("This server is not clustered")
        expires = EXPIRES_AT if self.config.get(TOKEN_EXPIRY_KEYS["join"]) else ""
        token = make_token(
            server_name, self.certificate, secret=f"s3cret-{server_name}-{self._serial}", expires=expires
        )
        self._serial += 1
        self.tokens[server_name] = token
        # as LXD: a new token for the same name cancels the old one
        self.pending = [t for t in self.pending if (t.kind, t.name) != ("join", server_name)]
        self.pending.append(PendingToken(f"op-{self._serial}", "join", server_name, "2030-01-01T00:00:00Z"))
        return token

    def update_config(self, config: dict[str, str]) -> list[str]:
        # LXD does not list a key set to its default value
        changed = sorted(
            k for k, v in config.items() if self.config.get(k, server_defaults(self.version).get(k, "")) != v
        )
        if "maas.api.key" in changed and len(config["maas.api.key"].split(":")) != 3:
            # LXD sets up its MAAS client when the key changes, and gomaasapi refuses a key that is not
            # consumer:token:secret, quoting it (lxd-5.21.7:lxd/api_1.0.go:1021 -> maas/controller.go:76
            # -> juju/gomaasapi client.go NewAuthenticatedClient); seen on the lab's 5.0.2 as well
            raise LXDError(
                f"invalid API key {json.dumps(config['maas.api.key'])}; "
                'expected "<consumer secret>:<token key>:<token secret>"'
            )
        if changed:
            self.calls.append("update_config")
            self.config.update(config)
        return changed

    def apply_preseed(self, preseed: dict[str, Any], timeout: int = 300) -> None:
        self.calls.append("apply_preseed")
        self.preseeds.append(preseed)
        if self.clustered:
            raise LXDError("This LXD server is already clustered")
        if self.fail_next_preseed:
            message, self.fail_next_preseed = self.fail_next_preseed, ""
            raise LXDError(message)
        self.clustered = True
        self.server_name = preseed["cluster"]["server_name"]
        for pool in preseed.get("storage_pools") or ():  # a bootstrap makes the pool and the profile
            self.pool = {"driver": pool["driver"], "config": dict(pool["config"])}
        for profile in preseed.get("profiles") or ():
            self.profile_devices = dict(profile["devices"])
        for row in preseed["cluster"].get("member_config") or ():  # a joiner: its own keys
            if row["entity"] == "storage-pool":
                self.pool.setdefault("config", {})[row["key"]] = row["value"]
        self.member_rows.append(
            Member(
                self.server_name,
                "https://"
                + (preseed["cluster"].get("server_address") or preseed.get("config", {}).get("core.https_address", "")),
                ("database",),
                "Online",
                "Fully operational",
            )
        )

    def inspect_device(self, path: str) -> DeviceState:
        return self.devices.get(path, DeviceState(path, exists=False))

    def wipe_device(self, path: str) -> None:
        self.calls.append("wipe_device")
        self.wiped.append(path)
        self.devices[path] = DeviceState(path, exists=True, is_block=True)

    def remove_member(self, name: str, force: bool = False) -> None:
        self.calls.append("remove_member")
        # as LXD: instances of every project count, named without their project (lxd-5.0.2 lxd/db/node.go:912-919)
        if not force and any(i.location == name for i in self.instance_rows):
            names = ", ".join(i.name for i in self.instance_rows if i.location == name)
            raise LXDError(f"Node still has the following containers: {names}")
        self.removed.append((name, force))
        self.member_rows = [m for m in self.member_rows if m.server_name != name]
        if force:
            self.instance_rows = [i for i in self.instance_rows if i.location != name]

    def set_member_state(self, name: str, action: str, force: bool = False) -> None:
        self.calls.append("set_member_state")
        status = "Evacuated" if action == "evacuate" else "Online"
        self.member_rows = [
            m if m.server_name != name else Member(m.server_name, m.url, m.roles, status, m.message)
            for m in self.member_rows
        ]

    def group_exists(self, name: str) -> bool:
        return name in self.groups

    def instances(self, location: str | None = None) -> list[Instance]:
        """Of every project, as workload.LXD.instances lists them."""
        return [i for i in self.instance_rows if location is None or i.location == location]

    def instance(self, name: str, project: str = "default") -> Instance:
        found = [i for i in self.instance_rows if (i.project, i.name) == (project, name)]
        if not found:
            raise LXDError("Instance not found")  # as LXD, asked in the wrong project
        return found[0]

    def _replace(self, name: str, project: str, **changes: str) -> None:
        self.instance_rows = [
            dataclasses.replace(i, **changes) if (i.project, i.name) == (project, name) else i
            for i in self.instance_rows
        ]

    def image_exists(self, ref: str) -> bool:
        return ref in self.images

    def launch(self, name, source, target="", profiles=("default",), config=None) -> Instance:
        self.calls.append("launch")
        location = target or min(m.server_name for m in self.member_rows)
        instance = Instance(name, location, "Running", "container", ("10.1.0.5",), ())
        self.instance_rows.append(instance)
        return instance

    def migrate(self, name: str, target: str, project: str = "default") -> None:
        self.calls.append("migrate")
        for hook in self.on_migrate:
            hook(self, name, target)
        instance = self.instance(name, project)
        if instance.ref in self.unmovable:
            raise LXDError(self.unmovable[instance.ref])
        if instance.status == "Running":
            raise LXDError("Instance must be stopped to be moved statelessly")
        self.moves.append((instance.ref, target))
        self._replace(name, project, location=target)

    def set_instance_state(self, name: str, action: str, project: str = "default") -> None:
        self.calls.append("set_instance_state")
        instance = self.instance(name, project)
        if action == "start" and (instance.ref, instance.location) in self.unstartable:
            raise LXDError('Failed to start device "eth1": Parent device "onlyhere" doesn\'t exist')
        self._replace(name, project, status="Running" if action == "start" else "Stopped")

    def mark_leaving(self, name: str, value: str) -> None:
        self.calls.append("mark_leaving")
        self.member_rows = [
            dataclasses.replace(m, leaving=value) if m.server_name == name else m for m in self.member_rows
        ]

    def update_cluster_certificate(self, certificate: str, key: str) -> None:
        # every member serves the new pair at once; 5.0.2 checks only that both are PEM
        # (lxd-5.0.2 lxd/api_cluster.go:2121-2129), 5.21.7 that they match (lxd/api_cluster.go:2385)
        self.calls.append("update_cluster_certificate")
        self.certificate, self.certificate_key = certificate, key

    def trusted_clients(self) -> dict[str, TrustedClient]:
        return {
            name: TrustedClient(fp, projects is not None, tuple(sorted(projects or ())))
            for name, (fp, projects) in self.trusted.items()
        }

    def trust_client(self, name: str, pem: str, projects: tuple[str, ...] | None) -> None:
        self.calls.append("trust_client")
        if projects is not None and set(projects) - self.project_names:
            raise LXDError("Project not found")  # LXD's words for a restriction to a missing project
        self.trusted[name] = (certificate_fingerprint(pem), None if projects is None else tuple(projects))

    def untrust_client(self, fingerprint: str) -> None:
        self.calls.append("untrust_client")
        self.trusted = {n: v for n, v in self.trusted.items() if v[0] != fingerprint}

    def issue_client_token(self, name: str, projects: tuple[str, ...] | None) -> str:
        """As LXD 5.0.2: the request (restriction included) is kept with the token; no check of the projects."""
        self.calls.append("issue_client_token")
        self._serial += 1
        expires = EXPIRES_AT if self.config.get(TOKEN_EXPIRY_KEYS["client"]) else ""
        self.client_tokens[name] = {"projects": projects, "expires_at": expires}
        self.pending.append(PendingToken(f"op-{self._serial}", "client", name, "2030-01-01T00:00:00Z"))
        doc = {"client_name": name, "fingerprint": certificate_fingerprint(self.certificate), "secret": "client-s3cret"}
        if expires:
            doc["expires_at"] = expires
        return base64.b64encode(json.dumps(doc).encode()).decode()

    def pending_tokens(self) -> list[PendingToken]:
        return list(self.pending)

    def revoke_token(self, operation_id: str) -> None:
        self.calls.append("revoke_token")
        if not any(t.operation_id == operation_id for t in self.pending):
            raise LXDError("Operation not found")
        self.pending = [t for t in self.pending if t.operation_id != operation_id]

    def projects(self) -> set[str]:
        return set(self.project_names)

    def create_project(self, name: str, pool: str) -> None:
        self.calls.append("create_project")
        if name in self.project_names:
            raise LXDError(f"Error inserting {name} into database: The project already exists")
        self.project_names.add(name)

    def inventory(self) -> Inventory:
        if not self.ready:
            raise LXDError("connection refused")
        return self.standalone

    def create_pool(self, name: str, driver: str, config: dict[str, str]) -> None:
        self.calls.append("create_pool")
        self.created_pools.append((name, driver, config))

    def enable_clustering(self, server_name: str, https_address: str) -> None:
        self.calls.append("enable_clustering")
        self.clustered, self.server_name = True, server_name
        self.member_rows.append(
            Member(server_name, f"https://{https_address}", ("database",), "Online", "Fully operational")
        )

    # helpers for tests ---------------------------------------------------------------------------
    def be_member(self, name: str, *others: str) -> None:
        self.clustered, self.server_name = True, name
        self.member_rows = [
            Member(n, f"https://{n}:8443", ("database",), "Online", "Fully operational") for n in (name, *others)
        ]
        self.config["core.metrics_address"] = f"{name}:8444"  # a charm-formed member serves its metrics
        self.profile_devices = {"eth0": {"name": "eth0", "nictype": "bridged", "parent": "br0", "type": "nic"}}
        self.pool = self.pool or {"driver": "zfs", "config": {"size": "20GiB"}}

    def _api(self, method: str, path: str, wait: bool = True, **kwargs: Any) -> dict[str, Any]:
        """The REST helper, for what metrics.py and debug_bundle.py read and write directly."""
        self.calls.append(f"api:{method}:{path}")
        if path == "certificates" and method == "get":
            rows = [{"name": n, "fingerprint": fp, "type": "client"} for n, (fp, _) in self.trusted.items()]
            return {"metadata": rows + [dict(r) for r in self.metrics_certs.values()]}
        if path == "certificates" and method == "post":
            body = kwargs["json"]
            pem = "-----BEGIN CERTIFICATE-----\n" + body["certificate"] + "\n-----END CERTIFICATE-----\n"
            fingerprint = certificate_fingerprint(pem)
            self.metrics_certs[fingerprint] = {"name": body["name"], "fingerprint": fingerprint, "type": body["type"]}
            return {"metadata": {}}
        if path.startswith("certificates/") and method == "delete":
            self.metrics_certs.pop(path.split("/", 1)[1], None)
            return {"metadata": {}}
        if path == "" and method == "get":
            return {"metadata": {"config": dict(self.config), "environment": {"server_version": self.version}}}
        if path == "warnings":
            return {"metadata": list(self.warnings)}
        if path == "storage-pools":
            return {"metadata": [{"name": "local", "driver": "dir", "config": {"source": "/var/lib/lxd/x"}}]}
        if path.startswith("storage-pools/") and path.endswith("/resources"):
            return {"metadata": {"space": {"used": 1, "total": 10}}}
        if path.startswith("storage-pools/"):
            if not self.pool:
                raise LXDError("Storage pool not found")
            return {"metadata": {**self.pool, "space": {"used": 1, "total": 10}}}
        if path == "profiles/default" and method == "get":
            return {"metadata": {"name": "default", "config": {}, "devices": dict(self.profile_devices)}}
        if path == "profiles/default" and method == "put":
            self.profile_devices = dict(kwargs["json"]["devices"])
            return {"metadata": {}}
        return self._network_api(method, path, **kwargs)

    def _network_api(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        name = path.split("/", 1)[1] if "/" in path else ""
        if path.startswith("networks/") and method == "get":
            if name not in self.managed:
                raise LXDError("Network not found")
            return {"metadata": {"name": name, "managed": True, "used_by": [], **self.managed[name]}}
        if path.startswith("networks/") and method == "delete":
            del self.managed[name]
            return {"metadata": {}}
        if path.startswith("networks/") and method == "patch":
            self.managed[name]["config"].update(kwargs["json"]["config"])
            return {"metadata": {}}
        if path == "networks" and method == "post":
            body, target = kwargs["json"], (kwargs.get("params") or {}).get("target")
            row = self.managed.setdefault(body["name"], {"type": body["type"], "config": {}, "pending": {}})
            if target:
                row["pending"][target], row["status"] = dict(body["config"]), "Pending"
            else:
                row["config"], row["status"] = dict(body["config"]), "Created"
            return {"metadata": {}}
        raise AssertionError(f"the fake LXD does not know {method.upper()} /1.0/{path}")

    def mutations(self) -> list[str]:
        return [c for c in self.calls if c in MUTATIONS]
