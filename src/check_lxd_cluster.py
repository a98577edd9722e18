#!/usr/bin/env python3
"""Nagios plugin for one lxd-cluster member: `check_lxd_cluster.py api|member|voters --socket PATH`.

Plain Python 3 (standard library and lxd_socket.py, installed beside it), run by the NRPE server
as the `nagios` user. It prints one status line and exits with the Nagios plugin codes: 0 OK,
1 WARNING, 2 CRITICAL, 3 UNKNOWN.
- api: LXD answers GET /1.0 on its unix socket (CRITICAL when it does not).
- member: this member (its server name from GET /1.0) is ONLINE in the cluster's member list;
  WARNING when it is but another member is not, CRITICAL when it is not itself.
- voters: the database voters (role `database`) keep a majority online (CRITICAL without one) and
  can lose one more (WARNING with a voter offline, or fewer than 3 voters).
member and voters say UNKNOWN when the socket cannot be reached at all: the api check says that.
LXD's socket is root:lxd 0660, so a plugin that cannot open it runs itself again through
`sudo -n` (the charm allows exactly this file, as root, in /etc/sudoers.d).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

import lxd_socket

OK, WARNING, CRITICAL, UNKNOWN = 0, 1, 2, 3
LABELS = {OK: "OK", WARNING: "WARNING", CRITICAL: "CRITICAL", UNKNOWN: "UNKNOWN"}
MIN_VOTERS = 3  # LXD's cluster.max_voters default: three voters survive the loss of one
TIMEOUT = 10.0  # seconds per request; NRPE kills a command after its command_timeout (60 s)


class Unreachable(Exception):
    """Nothing listens on the socket (or it is not there)."""


def _get(socket_path: str, path: str, params: dict | None = None) -> dict:
    if not os.path.exists(socket_path):
        raise Unreachable(f"no LXD socket at {socket_path}")
    try:
        return lxd_socket.get(socket_path, path, params, timeout=TIMEOUT)["metadata"]
    except lxd_socket.SocketError as e:
        if isinstance(e.__context__, (ConnectionRefusedError, FileNotFoundError)) or "Connection refused" in str(e):
            raise Unreachable(str(e)) from None
        raise


def check_api(socket_path: str) -> tuple[int, str]:
    try:
        server = _get(socket_path, "")
    except (Unreachable, lxd_socket.SocketError) as e:
        return CRITICAL, f"LXD API does not answer: {e}"
    env = server.get("environment", {})
    where = f"member {env.get('server_name')}" if env.get("server_clustered") else "not clustered"
    return OK, f"LXD {env.get('server_version', '?')} answers ({where})"


def _members(socket_path: str) -> tuple[str, list[dict]]:
    name = _get(socket_path, "").get("environment", {}).get("server_name", "")
    return name, _get(socket_path, "cluster/members", {"recursion": 1})


def check_member(socket_path: str) -> tuple[int, str]:
    name, members = _members(socket_path)
    status = {m["server_name"]: m.get("status", "") for m in members}
    if name not in status:
        return CRITICAL, f"{name or 'this LXD'} is not a cluster member"
    if status[name] != "Online":
        return CRITICAL, f"member {name} is {status[name]}: {_message(members, name)}"
    others = sorted(f"{n} ({s})" for n, s in status.items() if s != "Online")
    if others:
        return WARNING, f"member {name} is ONLINE; not online: {', '.join(others)}"
    return OK, f"member {name} is ONLINE, {len(status)} of {len(status)} members online"


def _message(members: list[dict], name: str) -> str:
    return next((m.get("message", "") for m in members if m["server_name"] == name), "")


def check_voters(socket_path: str) -> tuple[int, str]:
    _, members = _members(socket_path)
    voters = sorted(m["server_name"] for m in members if "database" in (m.get("roles") or []))
    online = [m["server_name"] for m in members if m["server_name"] in voters and m.get("status") == "Online"]
    down = sorted(set(voters) - set(online))
    counts = f"{len(online)} of {len(voters)} database voters online"
    if not voters or 2 * len(online) <= len(voters):
        return CRITICAL, f"{counts}: no majority, the cluster database has lost quorum (not online: {', '.join(down)})"
    if down:
        return WARNING, f"{counts}: one more loss loses quorum (not online: {', '.join(down)})"
    if len(voters) < MIN_VOTERS:
        return WARNING, f"{counts}: fewer than {MIN_VOTERS}, losing one loses quorum ({len(members)} members)"
    return OK, f"{counts} ({', '.join(voters)})"


CHECKS = {"api": check_api, "member": check_member, "voters": check_voters}


def run(check: str, socket_path: str) -> tuple[int, str]:
    try:
        return CHECKS[check](socket_path)
    except Unreachable as e:
        return UNKNOWN, f"cannot ask LXD ({e}): see the lxd_api check"
    except (lxd_socket.SocketError, KeyError, TypeError) as e:
        return CRITICAL, f"LXD cannot tell the cluster's state: {e}"


def _as_root(argv: list[str]) -> int:
    """Run this plugin again through sudo (non-interactive); what it says is what we say."""
    try:
        done = subprocess.run(
            ["sudo", "-n", os.path.realpath(__file__), *argv], capture_output=True, text=True, timeout=3 * TIMEOUT
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        why = str(e)
    else:
        if done.returncode in LABELS and done.stdout.strip():
            print(done.stdout.strip().splitlines()[0])
            return done.returncode
        why = done.stderr.strip()[:200]
    print(f"UNKNOWN: cannot open the LXD socket as uid {os.getuid()} nor through sudo: {why}")
    return UNKNOWN


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("check", choices=sorted(CHECKS))
    parser.add_argument("--socket", required=True, help="LXD's unix socket")
    args = parser.parse_args(argv)
    if os.geteuid() != 0 and os.path.exists(args.socket) and not os.access(args.socket, os.R_OK | os.W_OK):
        return _as_root(argv)
    code, line = run(args.check, args.socket)
    print(f"{LABELS[code]}: {line}")
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
