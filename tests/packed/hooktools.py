#!/usr/bin/python3
"""Juju's hook tools, emulated at the command level for running a packed charm's dispatch.

One script, installed under each tool's name (juju-log, status-set, relation-get, ...) in a
directory put first on the hook's PATH. Every call answers from, and writes to, the JSON state
file named by HOOKTOOLS_STATE, and is recorded there (`calls`), so a test sees exactly what the
charm asked Juju. Arguments follow Juju 3's hook-tool CLI; anything this emulator does not know
exits 2 and is recorded under `unknown`, as a real Juju would refuse it: a test asserts none.
It runs on the host's /usr/bin/python3 (with Debian's python3-yaml), never on the python3 the
hook finds first on PATH: Juju's tools are binaries that do not depend on the hook's Python.
"""

from __future__ import annotations

import json
import os
import secrets
import sys
from pathlib import Path
from typing import Any

import yaml  # relation-set --file - takes YAML: Debian's python3-yaml on the system python3


class Refused(Exception):
    """What Juju's tool would print on stderr before exiting non-zero."""


def _relation_id(ref: str) -> str:
    return ref.rsplit(":", 1)[-1]


def _take(args: list[str], flag: str, has_value: bool = True) -> str | bool | None:
    """Remove `flag [value]` or `flag=value` from args; return the value (True for a bare flag)."""
    for i, arg in enumerate(args):
        if arg == flag:
            if not has_value:
                del args[i]
                return True
            if i + 1 >= len(args):
                raise Refused(f"flag needs an argument: {flag}")
            value = args[i + 1]
            del args[i : i + 2]
            return value
        if has_value and arg.startswith(flag + "="):
            del args[i]
            return arg.split("=", 1)[1]
    return None


def _format_json(args: list[str]) -> None:
    if _take(args, "--format") not in ("json", None):
        raise Refused("only --format=json is emulated")


def _no_more(args: list[str]) -> None:
    if args:
        raise Refused(f"unrecognized args: {args}")


def _positional(args: list[str]) -> list[str]:
    if args and args[0] == "--":
        return args[1:]
    if "--" in args:
        i = args.index("--")
        return args[:i] + args[i + 1 :]
    for arg in args:
        if arg.startswith("-") and arg != "-":
            raise Refused(f"unrecognized flag: {arg}")
    return args


def _content(args: list[str]) -> dict[str, str]:
    """key=value and key#file=path arguments of secret-add/secret-set."""
    content = {}
    for arg in args:
        if "#file=" in arg:
            key, path = arg.split("#file=", 1)
            content[key] = Path(path).read_text()
        elif "=" in arg:
            key, value = arg.split("=", 1)
            content[key] = value
        else:
            raise Refused(f"not key=value: {arg}")
    return content


class Tools:
    def __init__(self, state: dict[str, Any]):
        self.s = state
        self.unit = os.environ["JUJU_UNIT_NAME"]
        self.app = self.unit.split("/")[0]

    # -- status, log, version ------------------------------------------------------------
    def juju_log(self, args: list[str]) -> str:
        level = _take(args, "--log-level") or _take(args, "-l") or "INFO"
        _take(args, "--debug", has_value=False)
        self.s["log"].append([level, " ".join(_positional(args))])
        return ""

    def status_set(self, args: list[str]) -> str:
        app = _take(args, "--application")
        words = _positional(args)
        if not words or words[0] not in ("active", "blocked", "maintenance", "waiting"):
            raise Refused(f"invalid status {words[:1]}")
        key = "app-status" if app in ("true", True) else "unit-status"
        self.s[key] = [words[0], " ".join(words[1:])]
        if key == "unit-status":
            self.s["unit-status-history"].append(self.s[key])
        return ""

    def status_get(self, args: list[str]) -> str:
        _format_json(args)
        _take(args, "--include-data", has_value=False)
        app = _take(args, "--application") in ("true", True)
        _no_more(args)
        status, message = self.s.get("unit-status") or ["unknown", ""]
        unit = {"status": status, "message": message, "status-data": {}}
        if not app:
            return json.dumps(unit)
        if not self.s["leader"]:
            raise Refused("finding application status: this unit is not the leader")
        status, message = self.s.get("app-status") or ["unknown", ""]
        return json.dumps(
            {
                "application-status": {
                    "status": status,
                    "message": message,
                    "status-data": {},
                    "units": {self.unit: unit},
                }
            }
        )

    def application_version_set(self, args: list[str]) -> str:
        (version,) = _positional(args)
        self.s["workload-version"] = version
        return ""

    # -- config, leadership, goal state, network -------------------------------------------
    def config_get(self, args: list[str]) -> str:
        _format_json(args)
        _take(args, "--all", has_value=False)
        keys = _positional(args)
        if keys:
            return json.dumps(self.s["config"].get(keys[0]))
        return json.dumps(self.s["config"])

    def is_leader(self, args: list[str]) -> str:
        _format_json(args)
        _no_more(args)
        return json.dumps(self.s["leader"])

    def goal_state(self, args: list[str]) -> str:
        _format_json(args)
        _no_more(args)
        since = "2026-01-01T00:00:00Z"
        units = {self.unit: {"status": "active", "since": since}}
        units.update(
            {
                u: {"status": "active", "since": since}
                for r in self.s["relations"].values()
                if r["remote-app"] == self.app
                for u in r["units"]
            }
        )
        return json.dumps({"units": units, "relations": {}})

    def network_get(self, args: list[str]) -> str:
        _format_json(args)
        _take(args, "-r")
        _take(args, "--primary-address", has_value=False)
        (binding,) = _positional(args)
        address = self.s["bindings"].get(binding)
        if address is None:
            raise Refused(f"no network config found for binding {binding!r}")
        entry = {"hostname": "", "value": address, "address": address, "cidr": address.rsplit(".", 1)[0] + ".0/24"}
        return json.dumps(
            {
                "bind-addresses": [{"mac-address": "", "interface-name": "lab0", "addresses": [entry]}],
                "egress-subnets": [entry["cidr"]],
                "ingress-addresses": [address],
            }
        )

    # -- relations ------------------------------------------------------------------------
    def _relation(self, args: list[str]) -> dict[str, Any]:
        ref = _take(args, "-r") or os.environ.get("JUJU_RELATION_ID")
        if not ref:
            raise Refused("no relation id specified")
        relation = self.s["relations"].get(_relation_id(str(ref)))
        if relation is None:
            raise Refused(f"invalid value {ref!r} for option -r: relation not found")
        return relation

    def relation_ids(self, args: list[str]) -> str:
        _format_json(args)
        (endpoint,) = _positional(args)
        return json.dumps([f"{endpoint}:{rid}" for rid, r in self.s["relations"].items() if r["endpoint"] == endpoint])

    def relation_list(self, args: list[str]) -> str:
        _format_json(args)
        app = _take(args, "--app", has_value=False)
        relation = self._relation(args)
        _no_more(args)
        return json.dumps(relation["remote-app"] if app else relation["units"])

    def relation_get(self, args: list[str]) -> str:
        _format_json(args)
        app = _take(args, "--app", has_value=False)
        relation = self._relation(args)
        words = _positional(args)
        key, owner = (words + [os.environ.get("JUJU_REMOTE_UNIT", "")])[:2] if words else ("-", "")
        if app and owner == self.app and not self.s["leader"] and relation["remote-app"] != self.app:
            raise Refused("permission denied")
        bag = relation["data"].get(owner, {})
        return json.dumps(bag if key == "-" else bag.get(key))

    def relation_set(self, args: list[str]) -> str:
        if args == ["--help"]:
            # juju/juju worker/uniter/runner/jujuc/relation-set.go (SetFlags: `-r`, `--file`, "file
            # containing key-value pairs"): the help lists the flags; charmhelpers' relation_set
            # (core/hookenv.py, _relation_set_accepts_file) looks for "--file" in it
            return (
                "Usage: relation-set [options] key=value [key=value ...]\n\nOptions:\n"
                "--file  (= -)\n    file containing key-value pairs\n"
                "-r, --relation  (= )\n    specify a relation by id\n"
            )
        app = _take(args, "--app", has_value=False)
        path = _take(args, "--file")
        relation = self._relation(args)
        if path is None:
            raise Refused("only --file is emulated")
        _no_more(args)
        if app and not self.s["leader"]:
            raise Refused("cannot write relation settings: this unit is not the leader")
        # relation-set.go: `--file PATH` is a cmd.FileVar, "-" meaning stdin; the file is a YAML map
        text = sys.stdin.read() if path == "-" else Path(str(path)).read_text()
        values = yaml.safe_load(text)
        bag = relation["data"].setdefault(self.app if app else self.unit, {})
        for key, value in (values or {}).items():
            if value == "":
                bag.pop(key, None)  # Juju: an empty value deletes the key
            else:
                bag[key] = str(value)
        return ""

    def relation_model_get(self, args: list[str]) -> str:
        _format_json(args)
        self._relation(args)
        _no_more(args)
        return json.dumps({"uuid": os.environ["JUJU_MODEL_UUID"]})

    # -- storage --------------------------------------------------------------------------
    def storage_list(self, args: list[str]) -> str:
        _format_json(args)
        names = _positional(args)
        return json.dumps([sid for sid in self.s["storage"] if not names or sid.split("/")[0] == names[0]])

    def storage_get(self, args: list[str]) -> str:
        _format_json(args)
        sid = _take(args, "-s") or os.environ.get("JUJU_STORAGE_ID")
        _no_more(args)
        if sid not in self.s["storage"]:
            raise Refused(f"storage instance {sid!r} not found")
        return json.dumps({"kind": "block", "location": self.s["storage"][sid]})

    # -- actions --------------------------------------------------------------------------
    def _action(self) -> dict[str, Any]:
        if not os.environ.get("JUJU_ACTION_NAME"):
            raise Refused("not running an action")
        return self.s["action"]

    def action_get(self, args: list[str]) -> str:
        _format_json(args)
        keys = _positional(args)
        params = self._action()["params"]
        return json.dumps(params.get(keys[0]) if keys else params)

    def action_set(self, args: list[str]) -> str:
        results = self._action()["results"]
        for arg in args:
            key, value = arg.split("=", 1)
            results[key] = value
        return ""

    def action_log(self, args: list[str]) -> str:
        self._action()["log"].append(" ".join(_positional(args)))
        return ""

    def action_fail(self, args: list[str]) -> str:
        self._action()["failed"] = " ".join(_positional(args)) or "action failed"
        return ""

    # -- secrets --------------------------------------------------------------------------
    def _secret(self, ref: str | None, label: str | None) -> tuple[str, dict[str, Any]]:
        for sid, secret in self.s["secrets"].items():
            if (ref and sid.split(":")[-1] == ref.split(":")[-1].split("/")[-1]) or (
                not ref and label and secret.get("label") == label
            ):
                return sid, secret
        raise Refused(f"secret {ref or label!r} not found")

    def _readable(self, secret: dict[str, Any]) -> bool:
        return (
            secret["owner-unit"] == self.unit
            or (secret["owner"] == "application" and self.s["leader"])
            or (secret["owner"] == "application" and secret["owner-app"] == self.app)
            or self.unit in secret["grants"]
            or self.app in secret["grants"]
        )

    def secret_add(self, args: list[str]) -> str:
        label = _take(args, "--label")
        description = _take(args, "--description")
        expire = _take(args, "--expire")
        rotate = _take(args, "--rotate")
        owner = _take(args, "--owner") or "application"
        if owner == "application" and not self.s["leader"]:
            raise Refused("only the leader can add application secrets")
        sid = "secret:" + secrets.token_hex(10)
        self.s["secrets"][sid] = {
            "label": label,
            "description": description,
            "expire": expire,
            "rotate": rotate,
            "owner": owner,
            "owner-unit": self.unit,
            "owner-app": self.app,
            "revisions": [_content(args)],
            "grants": [],
        }
        return sid + "\n"

    def secret_get(self, args: list[str]) -> str:
        _format_json(args)
        label = _take(args, "--label")
        _take(args, "--refresh", has_value=False)
        _take(args, "--peek", has_value=False)
        ref = (_positional(args) or [None])[0]
        sid, secret = self._secret(ref, label)
        if not self._readable(secret):
            raise Refused(f"permission denied reading {sid}")
        if label and ref:
            secret["label"] = label
        return json.dumps(secret["revisions"][-1])

    def secret_info_get(self, args: list[str]) -> str:
        _format_json(args)
        label = _take(args, "--label")
        ref = (_positional(args) or [None])[0]
        sid, secret = self._secret(ref, label)
        if secret["owner-app"] != self.app:
            raise Refused("permission denied: not the owner")
        return json.dumps(
            {
                sid: {
                    "revision": len(secret["revisions"]),
                    "label": secret.get("label") or "",
                    "owner": secret["owner"],
                    "description": secret.get("description") or "",
                    "rotation": secret.get("rotate") or "never",
                }
            }
        )

    def secret_ids(self, args: list[str]) -> str:
        _format_json(args)
        _no_more(args)
        return json.dumps([sid for sid, s in self.s["secrets"].items() if s["owner-app"] == self.app])

    def secret_set(self, args: list[str]) -> str:
        fields = {k: _take(args, f"--{k}") for k in ("label", "description", "expire", "rotate", "owner")}
        ref, *content = _positional(args)
        sid, secret = self._secret(ref, None)
        secret.update({k: v for k, v in fields.items() if v is not None})
        if content:
            secret["revisions"].append(_content(content))
        return ""

    def secret_grant(self, args: list[str]) -> str:
        rid = _take(args, "--relation") or _take(args, "-r")
        unit = _take(args, "--unit")
        (ref,) = _positional(args)
        _, secret = self._secret(ref, None)
        relation = self.s["relations"].get(_relation_id(str(rid)))
        if relation is None:
            raise Refused("relation not found")
        secret["grants"].append(unit or relation["remote-app"])
        return ""

    def secret_revoke(self, args: list[str]) -> str:
        _take(args, "--relation")
        _take(args, "-r")
        unit = _take(args, "--unit")
        app = _take(args, "--app")
        (ref,) = _positional(args)
        _, secret = self._secret(ref, None)
        secret["grants"] = [g for g in secret["grants"] if g not in (unit, app)] if (unit or app) else []
        return ""

    def secret_remove(self, args: list[str]) -> str:
        revision = _take(args, "--revision")
        (ref,) = _positional(args)
        sid, secret = self._secret(ref, None)
        if revision is None:
            del self.s["secrets"][sid]
        return ""

    # -- ports ----------------------------------------------------------------------------
    def open_port(self, args: list[str]) -> str:
        _take(args, "--endpoints")
        (port,) = _positional(args)
        if port not in self.s["ports"]:
            self.s["ports"].append(port)
        return ""

    def close_port(self, args: list[str]) -> str:
        _take(args, "--endpoints")
        (port,) = _positional(args)
        self.s["ports"] = [p for p in self.s["ports"] if p != port]
        return ""

    def opened_ports(self, args: list[str]) -> str:
        _format_json(args)
        _take(args, "--endpoints", has_value=False)
        _no_more(args)
        return json.dumps(self.s["ports"])


TOOLS = [name.replace("_", "-") for name in vars(Tools) if not name.startswith("_")]


def new_state(**given: Any) -> dict[str, Any]:
    """A state file's content before the first hook: nothing recorded yet, `given` filled in."""
    empty: dict[str, Any] = {"leader": False, "config": {}, "bindings": {}, "relations": {}, "storage": {}}
    empty.update({"secrets": {}, "ports": [], "action": {}})
    empty.update({key: [] for key in ("log", "calls", "unknown", "refused", "unit-status-history")})
    return {**empty, **given}


def main() -> int:
    tool = Path(sys.argv[0]).name
    args = sys.argv[1:]
    path = Path(os.environ["HOOKTOOLS_STATE"])
    state = json.loads(path.read_text())
    state["calls"].append([tool, *args] if tool not in ("action-set", "secret-add", "secret-set") else [tool])
    handler = getattr(Tools(state), tool.replace("-", "_"), None) if tool in TOOLS else None
    code = 0
    try:
        if handler is None:
            raise Refused(f"{tool}: not emulated")
        out = handler(list(args))
    except (Refused, ValueError, KeyError) as e:
        state["unknown" if handler is None or "unrecognized" in str(e) else "refused"].append([tool, str(e)])
        out, code = "", 2
        print(f"ERROR {e}", file=sys.stderr)
    path.write_text(json.dumps(state, indent=1))
    sys.stdout.write(out)
    return code


if __name__ == "__main__":
    sys.exit(main())
