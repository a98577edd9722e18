"""A stand-in LXD daemon on a unix socket, for tests of the real workload.LXD: it records every
request and answers as LXD 5.0.2, 5.21 or 6.x does, each answer following the LXD source line cited
beside it (github.com/canonical/lxd at lxd-5.0.2, lxd-5.21.7, lxd-6.9).

It holds a clustered member's state: GET /1.0 (extensions, server config without the keys at their
default, version), the member list (roles, the `database` field), one member (GET/PUT), member
state (evacuate/restore, 6.9's quorum check), PATCH /1.0 (unknown keys refused with the value
quoted; loki.api.url checked against Loki's /ready), the default profile (6.8+ refuses eth0's
maas.subnet.*), join tokens, operations and their wait, br0, instances (`web` in the default
project and another `web` in project `runner`, listed per project or for all projects; moves and
state changes are operations that succeed), and 404 for anything else.
"""

from __future__ import annotations

import dataclasses
import http.client
import http.server
import json
import socketserver
import threading
import urllib.parse
import uuid
from pathlib import Path
from typing import Any

# The extensions the charm asks about, per version (shared/version/api.go at each tag).
_COMMON = ("clustering_join_token", "cluster_join_token_expiry", "remote_token_expiry")  # all three tags


@dataclasses.dataclass(frozen=True)
class Profile:
    version: str
    extensions: tuple[str, ...]
    voter_role: str  # what a raft voter lists
    leader_lists_voter: bool  # does the leader list the voter role beside database-leader?
    defaults: dict[str, str]  # server keys at their default are left out of GET /1.0 (config/map.go Dump)
    unknown_key: str  # the error text of an unknown server key, with %s for the name and the value
    maas: bool  # maas.* server keys and eth0 maas.subnet.* exist
    loki_unreachable: str  # LXD's words when Loki's /ready cannot be reached ("" without the loki extension)
    role_check: str  # "database": 5.x refuses dropping/adding `database`; "automatic": 6.7+ validateClusterMemberRoles
    evacuation_quorum: bool  # 6.9 checks raft quorum before evacuating unless force is set


PROFILES = {
    "5.0.2": Profile(
        version="5.0.2",
        # lxd-5.0.2 shared/version/api.go: maas_network and the token extensions, no loki
        extensions=(*_COMMON, "maas_network"),
        voter_role="database",  # lxd-5.0.2 lxd/db/node.go:130-132 (ClusterRoleDatabase)
        leader_lists_voter=True,  # lxd-5.0.2 lxd/db/node.go:125-132: database-leader, then database
        # lxd-5.0.2 lxd/cluster/config/config.go:261 join_token_expiry 3H; :274 remote_token_expiry no default
        defaults={"images.auto_update_interval": "6", "cluster.join_token_expiry": "3H"},
        unknown_key="cannot set '%s' to '%s': unknown key",  # lxd-5.0.2 lxd/config/errors.go, map.go:223
        maas=True,
        loki_unreachable="",  # no loki extension: loki.api.url is an unknown key
        role_check="database",  # lxd-5.0.2 lxd/api_cluster.go:1618-1622
        evacuation_quorum=False,
    ),
    "5.21": Profile(
        version="5.21.7",
        # lxd-5.21.7 shared/version/api.go: + clustering_evacuation_mode, loki
        extensions=(*_COMMON, "maas_network", "clustering_evacuation_mode", "loki"),
        voter_role="database",  # lxd-5.21.7 lxd/db/node.go:152-155
        leader_lists_voter=True,  # lxd-5.21.7 lxd/db/node.go:146-155
        # lxd-5.21.7 lxd/cluster/config/config.go:384 (3H), :498 (15d)
        defaults={
            "images.auto_update_interval": "6",
            "cluster.join_token_expiry": "3H",
            "core.remote_token_expiry": "15d",
        },
        unknown_key='Cannot set "%s" to "%s": Unknown key',  # lxd-5.21.7 lxd/config/errors.go:17-19, map.go:240
        maas=True,
        loki_unreachable="failed to connect to Loki",  # lxd-5.21.7 lxd/loki/loki.go:173
        role_check="database",  # lxd-5.21.7 lxd/api_cluster.go:1750-1756
        evacuation_quorum=False,
    ),
    "6": Profile(
        version="6.9",
        # lxd-6.9 shared/version/api.go: maas_network gone (6.8); + clustering_control_plane,
        # clustering_evacuation_force
        extensions=(
            *_COMMON,
            "clustering_evacuation_mode",
            "loki",
            "clustering_control_plane",
            "clustering_evacuation_force",
        ),
        voter_role="database-voter",  # lxd-6.9 lxd/db/node.go:41 (ClusterRoleDatabaseVoter)
        leader_lists_voter=False,  # lxd-6.9 lxd/db/node.go:150-161: the leader shows only database-leader
        # lxd-6.9 lxd/cluster/config/config.go:394 (3H), :508 (15d)
        defaults={
            "images.auto_update_interval": "6",
            "cluster.join_token_expiry": "3H",
            "core.remote_token_expiry": "15d",
        },
        unknown_key='Cannot set "%s" to "%s": Unknown key',  # lxd-6.9 lxd/config/errors.go:17, map.go:207
        maas=False,  # lxd-6.9 lxd/patches.go:125 config_remove_maas_keys; commits e6d23c492c, 37c443d52b
        loki_unreachable="failed connecting to Loki",  # lxd-6.9 lxd/loki/loki.go:185
        role_check="automatic",  # lxd-6.9 lxd/api_cluster_member.go:800-852
        evacuation_quorum=True,  # lxd-6.9 lxd/api_cluster_member.go:1357-1362, 1608-1672
    ),
}

# Server keys each profile knows, of those the charm or the tests set (lxd/cluster/config/config.go and
# lxd/node/config.go at each tag); user.* keys are free (lxd/config/map.go set)
_KEYS = {"images.auto_update_interval", "cluster.join_token_expiry", "core.remote_token_expiry"}
_KEYS |= {"core.https_address", "core.metrics_address"}
# cluster-wide in every profile (lxd/cluster/config/config.go: lxd-5.0.2:271-273, lxd-5.21.7:471-489, lxd-6.9:481-499)
_KEYS |= {"core.proxy_http", "core.proxy_https", "core.proxy_ignore_hosts"}
_MAAS_KEYS = {"maas.api.url", "maas.api.key"}  # lxd-5.21.7 config.go:673,681; gone in 6.8
_NIC_KEYS = {"name", "nictype", "parent", "type", "network", "hwaddr", "mtu", "host_name"}
_MAAS_NIC_KEYS = {"maas.subnet.ipv4", "maas.subnet.ipv6"}  # lxd-5.21.7 nic_bridged; gone in 6.8 (37c443d52b)


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


class StandIn:
    """The daemon's state; tests arrange it (members, config) and read what was asked of it."""

    def __init__(self, pem: str, profile: str = "5.21", members: int = 3, standbys: int = 0):
        self.profile = PROFILES[profile]
        self.pem = pem
        self.requests: list[str] = []  # "METHOD /path?query"
        self.bodies: list[tuple[str, Any]] = []  # ("METHOD /path", JSON body) of every write
        self.config: dict[str, str] = {"core.https_address": "10.0.0.2:8443", "core.metrics_address": "10.0.0.2:8444"}
        self.leader = "lxd-cluster-0"  # the raft leader
        self.members: dict[str, dict[str, Any]] = {}
        for i in range(members + standbys):
            name = f"lxd-cluster-{i}"
            self.members[name] = {
                "raft": "voter" if i < members else "standby",
                "status": "Online",
                "message": "Fully operational",
                "custom_roles": [],
                "config": {},
                "url": f"https://10.0.0.{i + 1}:8443",
            }
        self.eth0: dict[str, str] = {"name": "eth0", "nictype": "bridged", "parent": "br0", "type": "nic"}
        self.new_leader_after_get = ""  # a raft leadership change right after the next GET of one member
        self.operations: dict[str, dict[str, Any]] = {}
        self.instances = [
            {"name": "web", "project": p, "location": f"lxd-cluster-{i}", "status": "Running", "type": "container"}
            for i, p in ((1, "default"), (2, "runner"))
        ]

    # -- what LXD answers ------------------------------------------------------------------
    def server(self) -> dict[str, Any]:
        profile = self.profile
        shown = {k: v for k, v in self.config.items() if profile.defaults.get(k) != v}  # lxd/config/map.go Dump
        return {
            "api_extensions": list(profile.extensions),
            "config": shown,
            "environment": {
                "server_version": profile.version,
                "server_clustered": True,
                "server_name": "lxd-cluster-1",
                "certificate": self.pem,
                "storage_supported_drivers": [{"Name": "dir"}],  # untagged field: `Name` (shared/api/server.go)
            },
        }

    def member(self, name: str) -> dict[str, Any]:
        """api.ClusterMember as NodeInfo.ToAPI makes it (lxd-5.0.2 lxd/db/node.go:110-145, lxd-5.21.7
        lxd/db/node.go:131-160, lxd-6.9 lxd/db/node.go:130-165): custom roles first, then the automatic ones,
        `database` true for the leader, a voter and a standby alike."""
        row, profile = self.members[name], self.profile
        roles = list(row["custom_roles"])
        leader = name == self.leader
        if leader:
            roles.append("database-leader")
        if row["raft"] == "voter" and (not leader or profile.leader_lists_voter):
            roles.append(profile.voter_role)
        if row["raft"] == "standby":
            roles.append("database-standby")
        return {
            "server_name": name,
            "url": row["url"],
            "roles": roles,
            "database": leader or row["raft"] in ("voter", "standby"),
            "status": row["status"],
            "message": row["message"],
            "config": dict(row["config"]),
            "groups": ["default"],
            "failure_domain": "default",
            "description": "",
        }

    # -- writes ------------------------------------------------------------------------------
    def patch_server(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """PATCH /1.0: every key checked, errors sorted by name, the first shown with the number of the
        others (lxd/config/errors.go ErrorList), nothing applied on an error (lxd-6.9 api_1.0.go:975-995)."""
        changes = {k: str(v) for k, v in (body.get("config") or {}).items()}
        known = _KEYS | (_MAAS_KEYS if self.profile.maas else set())
        known |= {"loki.api.url"} if "loki" in self.profile.extensions else set()
        errors = sorted(k for k in changes if k not in known and not k.startswith("user."))
        if errors:
            message = self.profile.unknown_key % (errors[0], changes[errors[0]])
            if len(errors) > 1:
                message += f" (and {len(errors) - 1} more errors)"
            return 400, _error(400, message)
        if changes.get("loki.api.url") and changes["loki.api.url"] != self.config.get("loki.api.url"):
            # LXD builds its Loki client and asks <url>/ready before it keeps the key; on failure the change
            # is reverted and the error is a SmartError, 500 (lxd-5.21.7 api_1.0.go:851-854, 1051-1059,
            # daemon.go:1081, loki/loki.go:109,162-186; lxd-6.9 api_1.0.go:1276, loki.go:120,174-196)
            if failure := self._loki_ready(changes["loki.api.url"]):
                return 500, _error(500, failure)
        for key, value in changes.items():
            if value:
                self.config[key] = value
            else:
                self.config.pop(key, None)
        return 200, _sync({})

    def _loki_ready(self, url: str) -> str:
        parsed = urllib.parse.urlparse(url)
        assert parsed.hostname and parsed.hostname.startswith("127."), f"tests reach loopback only, not {url}"
        connection = http.client.HTTPConnection(parsed.hostname, parsed.port or 80, timeout=10)  # loki.go timeout
        try:
            connection.request("GET", parsed.path.rstrip("/") + "/ready")
            response = connection.getresponse()
            line = (response.read().decode(errors="replace").splitlines() or [""])[0]
        except OSError:
            return self.profile.loki_unreachable
        finally:
            connection.close()
        if response.status // 100 != 2:  # Go's resp.Status is "503 Service Unavailable"
            status = f"{response.status} {response.reason}"
            return f"Loki is not ready, server returned HTTP status {status} ({response.status}): {line}"
        return ""

    def put_member(self, name: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        row, current = self.members[name], self.member(name)["roles"]
        wanted = list(body.get("roles") or [])
        automatic = ("database-voter", "database-standby", "database-leader")
        if self.profile.role_check == "database":
            # lxd-5.21.7 lxd/api_cluster.go:1750-1756 (lxd-5.0.2 :1618-1622)
            if "database" in current and "database" not in wanted:
                return 400, _error(400, 'The "database" role cannot be dropped at this time')
            if "database" not in current and "database" in wanted:
                return 400, _error(400, 'The "database" role cannot be added at this time')
            # automatic roles are not stored (lxd-5.21.7 lxd/db/node.go:632-640)
            custom = [r for r in wanted if r not in ("database", *automatic)]
        else:
            # lxd-6.9 lxd/api_cluster_member.go:800-852: automatic roles are kept, none may be added
            for role in wanted:
                if role in automatic and role not in current:
                    return 400, _error(400, f'The automatically assigned "{role}" role cannot be added manually')
                if role not in (*automatic, "ovn-chassis", "control-plane"):  # lxd-6.9 lxd/db/node.go:60-72
                    return 400, _error(400, f'Invalid cluster role "{role}"')
            custom = [r for r in wanted if r not in automatic]
        if not body.get("groups"):  # lxd-5.21.7 lxd/api_cluster.go:1759-1761
            return 400, _error(400, "Cluster members need to belong to at least one group")
        row["custom_roles"] = custom
        row["config"] = dict(body.get("config") or {})
        return 200, _sync({})

    def post_member_state(self, name: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """evacuate/restore; the body is decoded without DisallowUnknownFields, so an older LXD ignores
        `force` (lxd-5.21.7 lxd/api_cluster.go:3078)."""
        action = body.get("action")
        if action == "evacuate":
            if self.profile.evacuation_quorum and not body.get("force") and not self._quorum_kept(name):
                # lxd-6.9 lxd/api_cluster_member.go:1357-1362 (BadRequest), 1672
                return 400, _error(400, "Insufficient online voters to maintain quorum")
            self.members[name]["status"] = "Evacuated"
        elif action == "restore":
            self.members[name]["status"] = "Online"
        return 202, self._operation({"status": "Success"})

    def _quorum_kept(self, name: str) -> bool:
        """checkEvacuationQuorum (lxd-6.9 lxd/api_cluster_member.go:1608-1677) without control-plane mode."""
        voters = [n for n, m in self.members.items() if m["raft"] == "voter"]
        online = [n for n in voters if self.members[n]["status"] == "Online"]
        standbys = [n for n, m in self.members.items() if m["raft"] == "standby" and m["status"] == "Online"]
        target = self.members[name]
        if target["raft"] != "voter" or target["status"] != "Online":
            return True
        required = (len(voters) - 1) // 2 + 1
        if len(online) - 1 >= required:
            return True
        majority = len(voters) // 2 + 1
        return len(online) >= majority and len(online) >= required and bool(standbys) and len(online) > 1

    def put_profile(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        eth0 = (body.get("devices") or {}).get("eth0") or {}
        allowed = _NIC_KEYS | (_MAAS_NIC_KEYS if self.profile.maas else set())
        for key in eth0:
            if key not in allowed:
                # lxd-6.9 lxd/device/config/devices.go:75, lxd/instance/drivers/load.go:106; SmartError: 500
                return 500, _error(500, f'Device validation failed for "eth0": Invalid device option "{key}"')
        self.eth0 = dict(eth0)
        return 200, _sync({})

    def join_token(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """POST /1.0/cluster/members: a token operation (lxd-6.9 lxd/api_cluster_member.go:383-389)."""
        meta = {
            "serverName": body.get("server_name", ""),
            "secret": uuid.uuid4().hex,
            "fingerprint": "f" * 64,
            "addresses": ["10.0.0.1:8443"],
            "expiresAt": "2030-01-01T03:00:00Z",
        }
        return 202, self._operation({"class": "token", "status": "Running", "metadata": meta})

    def instances_get(self, path: str, query: dict[str, list[str]]) -> tuple[int, dict[str, Any]]:
        """As LXD's ProjectParams: `project` (default: default) or `all-projects`, both is a 400 (lxd-6.9
        lxd/request/parse.go:14-26); rows carry their `project` (lxd-6.9 shared/api/instance.go:126)."""
        project = query.get("project", ["default"])[0]
        everywhere = query.get("all-projects", [""])[0].lower() in ("1", "true", "yes", "on")  # shared.IsTrue
        if everywhere and "project" in query:
            return 400, _error(400, "Cannot specify a project when requesting all projects")
        if path == "/1.0/instances":  # with recursion=1, as workload.LXD asks
            return 200, _sync([i for i in self.instances if everywhere or i["project"] == project])
        name = path.split("/")[3]
        row = next((i for i in self.instances if (i["project"], i["name"]) == (project, name)), None)
        if row is None:
            return 404, _error(404, "Instance not found")
        return 200, _sync(row if not path.endswith("/state") else {"status": row["status"], "network": {}})

    def instance_write(self) -> tuple[int, dict[str, Any]]:
        """An instance move (POST) or state change (PUT) is an operation: 202, type async, its URL
        (lxd-5.0.2 lxd/instance_post.go:390, instance_state.go:205, operations/response.go:35-46)."""
        return 202, self._operation({"class": "task", "status": "Success"})

    def _operation(self, fields: dict[str, Any]) -> dict[str, Any]:
        op_id = str(uuid.uuid4())
        self.operations[op_id] = {"id": op_id, **fields}
        return {"type": "async", "status_code": 100, "operation": f"/1.0/operations/{op_id}", "metadata": fields}


def _sync(metadata: Any) -> dict[str, Any]:
    return {"type": "sync", "status_code": 200, "metadata": metadata}


def _error(code: int, message: str) -> dict[str, Any]:
    return {"type": "error", "error_code": code, "error": message}


def start(directory: Path, lxd: StandIn) -> _Server:
    """Serve `lxd` on directory/unix.socket until the returned server is shut down."""

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _answer(self, code: int, doc: dict[str, Any]) -> None:
            body = json.dumps(doc).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _body(self) -> Any:
            length = int(self.headers.get("Content-Length") or 0)
            return json.loads(self.rfile.read(length) or b"{}")

        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            lxd.requests.append(f"GET {self.path}")
            path, _, query = self.path.partition("?")
            parts = path.strip("/").split("/")
            doc: Any = None
            if path.startswith("/1.0/instances"):
                self._answer(*lxd.instances_get(path, urllib.parse.parse_qs(query)))
                return
            if path == "/1.0":
                doc = lxd.server()
            elif path == "/1.0/cluster/members":
                doc = [lxd.member(n) for n in lxd.members]
            elif path.startswith("/1.0/cluster/members/") and len(parts) == 4 and parts[3] in lxd.members:
                doc = lxd.member(parts[3])
                if lxd.new_leader_after_get:  # raft moved on between this GET and the caller's next request
                    lxd.leader, lxd.new_leader_after_get = lxd.new_leader_after_get, ""
            elif path == "/1.0/networks/br0":
                doc = {"name": "br0", "type": "bridge", "managed": False}
            elif path == "/1.0/profiles/default":
                doc = {"name": "default", "config": {}, "description": "", "devices": {"eth0": lxd.eth0}}
            elif path == "/1.0/operations":  # running token operations (lxd-6.9 lxd/operations.go:462)
                doc = {"running": [op for op in lxd.operations.values() if op.get("class") == "token"]}
            elif path in ("/1.0/certificates", "/1.0/images", "/1.0/storage-pools", "/1.0/profiles", "/1.0/networks"):
                doc = []  # no clients, images, pools, profiles or managed networks (the debug bundle's reads)
            elif len(parts) == 4 and parts[1] == "operations" and parts[3] == "wait" and parts[2] in lxd.operations:
                doc = lxd.operations[parts[2]]  # done at once: the operation (lxd-6.9 lxd/operations.go:794)
            if doc is None:
                self._answer(404, _error(404, "not found"))
            else:
                self._answer(200, _sync(doc))

        def _write(self, method: str) -> None:
            lxd.requests.append(f"{method} {self.path}")
            body = self._body()
            lxd.bodies.append((f"{method} {self.path.split('?')[0]}", body))
            path = self.path.split("?")[0]
            parts = path.strip("/").split("/")
            answer: tuple[int, dict[str, Any]] = (404, _error(404, "not found"))
            if method == "PATCH" and path == "/1.0":
                answer = lxd.patch_server(body)
            elif method == "PUT" and len(parts) == 4 and parts[1:3] == ["cluster", "members"]:
                answer = lxd.put_member(parts[3], body)
            elif method == "POST" and len(parts) == 5 and parts[4] == "state" and parts[3] in lxd.members:
                answer = lxd.post_member_state(parts[3], body)
            elif method == "POST" and path == "/1.0/cluster/members":
                answer = lxd.join_token(body)
            elif method == "PUT" and path == "/1.0/profiles/default":
                answer = lxd.put_profile(body)
            elif method in ("POST", "PUT") and len(parts) >= 3 and parts[1] == "instances":
                answer = lxd.instance_write()
            self._answer(*answer)

        def do_PATCH(self) -> None:  # noqa: N802
            self._write("PATCH")

        def do_PUT(self) -> None:  # noqa: N802
            self._write("PUT")

        def do_POST(self) -> None:  # noqa: N802
            self._write("POST")

        def log_message(self, *args) -> None:
            pass

    server = _Server(str(directory / "unix.socket"), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def serve(directory: Path, pem: str, requests: list[str], profile: str = "5.21", **config: str) -> _Server:
    """A 5.21 member of three (or another profile) that records its requests in `requests`."""
    lxd = StandIn(pem, profile)
    lxd.config.update(config)
    lxd.requests = requests
    return start(directory, lxd)
