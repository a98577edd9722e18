"""A stand-in LXD daemon on a unix socket for tests of the real workload.LXD: it answers GET /1.0
(a clustered 5.21 member), the member list (three members), br0, and empty operations and
certificates; an instance `web` in the default project and another `web` in project `runner`;
instance moves and state changes as operations that succeed; 404 for anything else, 500 for
PATCH; and records every request it gets (path and query)."""

from __future__ import annotations

import http.server
import json
import socketserver
import threading
import urllib.parse
from pathlib import Path


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


def serve(directory: Path, pem: str, requests: list[str]) -> _Server:
    members = [
        {
            "server_name": f"lxd-cluster-{i}",
            "url": f"https://10.0.0.{i + 1}:8443",
            "roles": ["database"],
            "status": "Online",
            "message": "Fully operational",
            "config": {},
        }
        for i in range(3)
    ]
    instances = [
        {"name": "web", "project": p, "location": f"lxd-cluster-{i}", "status": "Running", "type": "container"}
        for i, p in ((1, "default"), (2, "runner"))
    ]
    server_doc = {
        "api_extensions": ["clustering_join_token"],
        "config": {"core.https_address": "10.0.0.2:8443", "core.metrics_address": "10.0.0.2:8444"},
        "environment": {
            "server_version": "5.21.2",
            "server_clustered": True,
            "server_name": "lxd-cluster-1",
            "certificate": pem,
            "storage_supported_drivers": [{"Name": "dir"}],
        },
    }

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            requests.append(f"GET {self.path}")
            path, _, query = self.path.partition("?")
            networks = {"/1.0/networks/br0": {"name": "br0", "type": "bridge", "managed": False}}
            collections = {"/1.0/operations": {}, "/1.0/certificates": []}  # no pending tokens, no clients
            collections.update(
                dict.fromkeys(("/1.0/images", "/1.0/storage-pools", "/1.0/profiles", "/1.0/networks"), [])
            )
            doc = {"/1.0": server_doc, "/1.0/cluster/members": members, **networks, **collections}.get(path)
            if path.startswith("/1.0/instances"):
                doc = instances_get(path, urllib.parse.parse_qs(query))
                if isinstance(doc, str):
                    self.answer({"type": "error", "error_code": 400, "error": doc}, 400)
                    return
            elif path.startswith("/1.0/operations/") and path.endswith("/wait"):  # lxd-5.0.2 lxd/operations.go:854
                doc = {"id": path.split("/")[3], "status": "Success", "status_code": 200, "err": ""}
            self.answer(
                {"type": "sync", "status_code": 200, "metadata": doc}
                if doc is not None
                else {"type": "error", "error_code": 404, "error": "not found"},
                200 if doc is not None else 404,
            )

        def do_POST(self) -> None:  # noqa: N802
            self.operation()

        def do_PUT(self) -> None:  # noqa: N802
            self.operation()

        def operation(self) -> None:
            """An instance move (POST) or state change (PUT) is an operation: 202, type async, its URL
            (lxd-5.0.2 lxd/instance_post.go:390, instance_state.go:205, operations/response.go:35-46)."""
            length = int(self.headers.get("Content-Length") or 0)
            requests.append(f"{self.command} {self.path} {self.rfile.read(length).decode()}")
            if not self.path.startswith("/1.0/instances/"):
                self.answer({"type": "error", "error_code": 500, "error": "not in this stand-in"}, 500)
                return
            meta = {"id": "op1", "class": "task", "status": "Running", "status_code": 103}
            self.answer(
                {"type": "async", "status_code": 100, "operation": "/1.0/operations/op1", "metadata": meta}, 202
            )

        def answer(self, document: dict, code: int) -> None:
            body = json.dumps(document).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_PATCH(self) -> None:  # noqa: N802
            requests.append(f"PATCH {self.path}")
            self.send_response(500)
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    def instances_get(path: str, query: dict[str, list[str]]) -> dict | list | str | None:
        """As LXD's ProjectParams: `project` (default: default) or `all-projects`, both is a 400 (its
        words returned here) (lxd-6.9 lxd/request/parse.go:14-26); rows carry their `project` (lxd-6.9
        shared/api/instance.go:126)."""
        project = query.get("project", ["default"])[0]
        everywhere = query.get("all-projects", [""])[0].lower() in ("1", "true", "yes", "on")  # shared.IsTrue
        if everywhere and "project" in query:
            return "Cannot specify a project when requesting all projects"
        if path == "/1.0/instances":  # with recursion=1, as workload.LXD asks
            return [i for i in instances if everywhere or i["project"] == project]
        name = path.split("/")[3]
        row = next((i for i in instances if (i["project"], i["name"]) == (project, name)), None)
        return row if row is None or not path.endswith("/state") else {"status": row["status"], "network": {}}

    server = _Server(str(directory / "unix.socket"), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server
