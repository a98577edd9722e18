"""A fake snapd for unit tests: a `snap` executable on PATH and snapd's socket, sharing one state file.

The charm asks snapd what is installed through charmlibs.snap (the socket: GET /v2/snaps/lxd, POST
hold) and installs/refreshes with the `snap` command (cohorts). Both land here and are recorded.
It simulates a store (channel -> revision, version), cohort keys (a snapshot of the store taken
when the key is made), holds, snapd being absent, a deb LXD and Ubuntu 24.04's lxd-installer shim,
and the system's options (`snap set system proxy.http=...`) as snapd's /v2/snaps/system/conf serves them.
"""

from __future__ import annotations

import json
import os
import socketserver
import sys
import threading
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

HOLD_FOREVER = "2315-01-01T00:00:00+00:00"
STORE = {
    "5.0/stable": ["24322", "5.0.3-babaaf8"],
    "5.21/stable": ["33110", "5.21.3-c5ae129"],
    "6/stable": ["35000", "6.1-78a3d8f"],
    "latest/stable": ["35000", "6.1-78a3d8f"],
}


def _load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def _save(path: Path, state: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(state))
    os.replace(tmp, path)


def cli(state_path: str, argv: list[str]) -> int:
    """`snap install|refresh lxd --channel=C --cohort=K`, `snap create-cohort lxd`."""
    path = Path(state_path)
    state = _load(path)
    state["calls"].append(argv)
    command, name = argv[0], argv[1] if len(argv) > 1 else ""
    opts = {}
    for arg in argv[2:]:
        key, _, value = arg.partition("=")
        opts[key.lstrip("-")] = value.strip('"')  # the older snap library quotes values
    try:
        if name != "lxd":
            raise RuntimeError(f'snap "{name}" not found')
        if command in state["fail"]:
            raise RuntimeError(state["fail"][command])
        if command == "create-cohort":
            key = f"cohort-{len(state['cohorts']) + 1}"
            state["cohorts"][key] = dict(state["store"])
            print(f"cohorts:\n  lxd:\n    cohort-key: {key}")
        elif command in ("install", "refresh"):
            if command == "install" and state["installed"]:
                print('snap "lxd" is already installed')
                return 0
            if command == "refresh" and not state["installed"]:
                raise RuntimeError('snap "lxd" is not installed')
            channel = opts.get("channel") or (state["installed"] or {}).get("channel", "latest/stable")
            cohort = opts.get("cohort", "")
            store = state["store"] if cohort in ("", "+") else state["cohorts"].get(cohort)
            if store is None:
                raise RuntimeError(f'cannot {command} "lxd": invalid cohort key')
            if channel not in store:
                raise RuntimeError(f'requested channel "{channel}" is not available for "lxd"')
            revision, version = store[channel]
            hold = (state["installed"] or {}).get("hold", "")  # snapd keeps a hold across manual refreshes
            state["installed"] = {
                "channel": channel,
                "revision": revision,
                "version": version,
                "hold": hold,
                "cohort": cohort,
            }
            print(f"lxd ({channel}) {version} from Canonical✓ {'installed' if command == 'install' else 'refreshed'}")
        else:
            raise RuntimeError(f"unknown command {command!r}")
    except RuntimeError as e:
        print(f"error: {e}", file=sys.stderr)
        _save(path, state)
        return 1
    _save(path, state)
    return 0


# what a stock kernel has (Linux's defaults; LXD's doc/reference/server_settings.md lists them too)
KERNEL_DEFAULTS = {
    "fs.aio-max-nr": 65536,
    "fs.inotify.max_queued_events": 16384,
    "fs.inotify.max_user_instances": 128,
    "fs.inotify.max_user_watches": 8192,
    "kernel.dmesg_restrict": 0,
    "kernel.keys.maxbytes": 20000,
    "kernel.keys.maxkeys": 200,
    "net.ipv4.neigh.default.gc_thresh3": 1024,
    "net.ipv6.neigh.default.gc_thresh3": 1024,
    "vm.max_map_count": 65530,
}


def sysctl_cli(proc_sys: str, argv: list[str]) -> int:
    """procps' sysctl as charmlibs-sysctl runs it: `-n KEY...` prints each value; `KEY=VALUE...` writes
    each and prints `KEY = VALUE`, or, where the kernel refuses (a file named KEY.denied beside it),
    `sysctl: permission denied on key "KEY", ignoring` and goes on (procps sysctl.c WriteSetting)."""
    root = Path(proc_sys)
    with open(root.parent / "sysctl.calls", "a") as calls:
        calls.write(" ".join(argv) + "\n")
    if argv and argv[0] == "-n":
        for key in argv[1:]:
            print(root.joinpath(*key.split(".")).read_text().strip())
        return 0
    for setting in argv:
        key, _, value = setting.partition("=")
        path = root.joinpath(*key.split("."))
        if path.with_name(path.name + ".denied").exists():
            print(f'sysctl: permission denied on key "{key}", ignoring')
            continue
        path.write_text(f"{value}\n")
        print(f"{key} = {value}")
    return 0


class _SnapdHandler(BaseHTTPRequestHandler):
    state_path: Path

    def log_message(self, *args: Any) -> None:  # unix sockets have no client address
        pass

    def _answer(self, code: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        state = _load(self.state_path)
        state["api"].append(["GET", self.path])
        _save(self.state_path, state)
        if self.path == "/v2/snaps/system/conf":  # snapd daemon/api_snap_conf.go getSnapConf: the nested
            # document, {} when nothing is set; `system` is served with or without the core snap
            self._answer(200, {"type": "sync", "status-code": 200, "status": "OK", "result": state["system"]})
            return
        if self.path.startswith("/v2/changes/"):  # every change here is done at once
            change = {"id": self.path.rsplit("/", 1)[1], "status": "Done", "ready": True}
            self._answer(200, {"type": "sync", "status-code": 200, "status": "OK", "result": change})
            return
        installed = state["installed"]
        if self.path != "/v2/snaps/lxd" or not installed:
            self._answer(
                404,
                {
                    "type": "error",
                    "status-code": 404,
                    "status": "Not Found",
                    "result": {"message": "snap not installed", "kind": "snap-not-found"},
                },
            )
            return
        result = {
            "name": "lxd",
            "tracking-channel": installed["channel"],
            "channel": installed["channel"],
            "revision": installed["revision"],
            "version": installed["version"],
            "confinement": "strict",
        }
        if installed["hold"]:
            result["hold"] = installed["hold"]
        self._answer(200, {"type": "sync", "status-code": 200, "status": "OK", "result": result})

    def do_POST(self) -> None:  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        state = _load(self.state_path)
        state["api"].append(["POST", self.path, body.get("action")])
        if not state["installed"]:
            _save(self.state_path, state)
            self._answer(
                400,
                {
                    "type": "error",
                    "status-code": 400,
                    "status": "Bad Request",
                    "result": {"message": 'snap "lxd" is not installed', "kind": "snap-not-installed"},
                },
            )
            return
        if body.get("action") == "hold":
            state["installed"]["hold"] = HOLD_FOREVER
        elif body.get("action") == "unhold":
            state["installed"]["hold"] = ""
        _save(self.state_path, state)
        self._answer(200, {"type": "sync", "status-code": 200, "status": "OK", "result": None})

    def do_PUT(self) -> None:  # noqa: N802
        """snapd daemon/api_snap_conf.go setSnapConf: dotted keys set into the nested document, null
        unsets; answered with an async change (202)."""
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        state = _load(self.state_path)
        state["api"].append(["PUT", self.path, sorted(body)])
        for key, value in body.items():
            *parents, leaf = key.split(".")
            node = state["system"]
            for part in parents:
                node = node.setdefault(part, {})
            if value is None:
                node.pop(leaf, None)
            else:
                node[leaf] = value
        state["system"] = {k: v for k, v in state["system"].items() if v != {}}
        _save(self.state_path, state)
        self._answer(202, {"type": "async", "status-code": 202, "status": "Accepted", "change": "1"})


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


class FakeHost:
    """This machine as the charm sees it: snapd (or none), the lxd snap, a deb LXD or a shim on PATH."""

    def __init__(self, root: Path):
        self.root = root
        self.bin = root / "bin"
        self.bin.mkdir(parents=True, exist_ok=True)
        self.socket = root / "snapd.socket"
        self.state_path = root / "snapd.json"
        _save(
            self.state_path,
            {"installed": None, "store": dict(STORE), "cohorts": {}, "calls": [], "api": [], "fail": {}, "system": {}},
        )
        snap = self.bin / "snap"
        snap.write_text(
            f"#!{sys.executable}\nimport sys\nsys.path.insert(0, {str(Path(__file__).parent)!r})\n"
            f"from fake_snap import cli\nsys.exit(cli({str(self.state_path)!r}, sys.argv[1:]))\n"
        )
        snap.chmod(0o755)
        self._server: _Server | None = None
        # the kernel's /proc/sys with a stock kernel's values, and procps' `sysctl` over it
        self.proc_sys = root / "proc_sys"
        for key, value in KERNEL_DEFAULTS.items():
            path = self.proc_sys.joinpath(*key.split("."))
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(f"{value}\n")
        self.sysctl_d = root / "sysctl.d"
        self.sysctl_d.mkdir()
        self.limits_d = root / "limits.d"
        sysctl = self.bin / "sysctl"
        sysctl.write_text(
            f"#!{sys.executable}\nimport sys\nsys.path.insert(0, {str(Path(__file__).parent)!r})\n"
            f"from fake_snap import sysctl_cli\nsys.exit(sysctl_cli({str(self.proc_sys)!r}, sys.argv[1:]))\n"
        )
        sysctl.chmod(0o755)

    # -- arrange ----------------------------------------------------------------------------
    def start_snapd(self) -> FakeHost:
        handler = type("Handler", (_SnapdHandler,), {"state_path": self.state_path})
        self._server = _Server(str(self.socket), handler)
        threading.Thread(target=self._server.serve_forever, args=(0.02,), daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def _lxd_on_path(self, content: bytes) -> None:
        lxd = self.bin / "lxd"
        lxd.write_bytes(content)
        lxd.chmod(0o755)

    def deb(self) -> FakeHost:
        """A distribution LXD binary (Debian's deb): an ELF file named lxd."""
        self._lxd_on_path(b"\x7fELF fake lxd binary")
        return self

    def shim(self) -> FakeHost:
        """Ubuntu 24.04's lxd-installer: /usr/sbin/lxd is a script that installs the snap on first use."""
        self._lxd_on_path(b'#!/bin/sh\n# lxd-installer\nsnap install lxd && exec /snap/bin/lxd "$@"\n')
        return self

    def preinstall(self, channel: str, *, held: bool = False) -> FakeHost:
        """The snap as the image ships it (Ubuntu 22.04: 5.0/stable, uninitialised)."""
        state = self.state
        revision, version = state["store"][channel]
        state["installed"] = {
            "channel": channel,
            "revision": revision,
            "version": version,
            "hold": HOLD_FOREVER if held else "",
            "cohort": "",
        }
        self.state = state
        return self

    def publish(self, channel: str, revision: str, version: str) -> None:
        """The store gets a new revision on a channel (cohort keys made before keep the old one)."""
        state = self.state
        state["store"][channel] = [revision, version]
        self.state = state

    def fail(self, command: str, message: str) -> None:
        state = self.state
        state["fail"][command] = message
        self.state = state

    def clear_failures(self) -> None:
        state = self.state
        state["fail"] = {}
        self.state = state

    # -- inspect ----------------------------------------------------------------------------
    @property
    def state(self) -> dict[str, Any]:
        return _load(self.state_path)

    @state.setter
    def state(self, value: dict[str, Any]) -> None:
        _save(self.state_path, value)

    @property
    def installed(self) -> dict[str, str] | None:
        return self.state["installed"]

    @property
    def calls(self) -> list[list[str]]:
        """`snap` command lines, e.g. ["install", "lxd", "--channel=5.21/stable", "--cohort=+"]."""
        return self.state["calls"]

    @property
    def sysctl_calls(self) -> list[str]:
        """`sysctl` command lines, e.g. "-n vm.max_map_count", "vm.max_map_count=262144"."""
        path = self.root / "sysctl.calls"
        return path.read_text().splitlines() if path.exists() else []

    def changes(self) -> list[list[str]]:
        """Calls that change something: installs, refreshes, holds (not create-cohort, not reads)."""
        holds = [["hold"] for api in self.state["api"] if api[0] == "POST" and api[2] == "hold"]
        return [c for c in self.calls if c[0] in ("install", "refresh")] + holds
