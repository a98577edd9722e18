"""GET requests to LXD over its unix socket with the standard library only.

Every read of workload.LXD goes through here, so a hook that only reads (update-status, a leader's
steady state, cluster-list) never imports pylxd (requests, urllib3, cryptography: most of a hook's
start-up time). Writes and operations go through pylxd (workload.py). No ops import here.
"""

from __future__ import annotations

import http.client
import json
import socket
import urllib.parse
from typing import Any


class SocketError(Exception):
    """The daemon could not be reached or refused the request; str() is LXD's own words."""


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float):
        super().__init__("lxd", timeout=timeout)
        self.path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.path)


def get(
    socket_path: str,
    path: str,
    params: dict[str, Any] | None = None,
    error: type[Exception] = SocketError,
    timeout: float = 30,
) -> dict[str, Any]:
    """The response document of GET /1.0/<path>; failures raise `error` with LXD's words."""
    url = "/1.0" + (f"/{path.strip('/')}" if path.strip("/") else "")
    if params:
        url += "?" + urllib.parse.urlencode(params)
    connection = _UnixConnection(socket_path, timeout)
    try:
        connection.request("GET", url)
        response = connection.getresponse()
        body = json.loads(response.read() or b"{}")
    except (OSError, ValueError, http.client.HTTPException) as e:
        raise error(f"cannot reach LXD at {socket_path}: {e}") from None
    finally:
        connection.close()
    if response.status >= 400 or body.get("type") == "error":
        raise error(str(body.get("error") or f"GET {url}: HTTP {response.status}"))
    return body
