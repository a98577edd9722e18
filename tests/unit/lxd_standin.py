"""A stand-in LXD daemon on a unix socket for tests of the real workload.LXD: it answers GET /1.0
(a clustered 5.21 member), the member list (three members), br0, and empty operations and
certificates, 404 for anything else, 500 for any write, and records every request it gets."""

from __future__ import annotations

import http.server
import json
import socketserver
import threading
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
            path = self.path.split("?")[0]
            networks = {"/1.0/networks/br0": {"name": "br0", "type": "bridge", "managed": False}}
            collections = {"/1.0/operations": {}, "/1.0/certificates": []}  # no pending tokens, no clients
            doc = {"/1.0": server_doc, "/1.0/cluster/members": members, **networks, **collections}.get(path)
            body = json.dumps(
                {"type": "sync", "status_code": 200, "metadata": doc}
                if doc is not None
                else {"type": "error", "error_code": 404, "error": "not found"}
            ).encode()
            self.send_response(200 if doc is not None else 404)
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

    server = _Server(str(directory / "unix.socket"), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server
