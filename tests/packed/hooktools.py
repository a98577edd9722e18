#!/usr/bin/python3
"""Juju's hook tools, emulated at the command level for running a packed charm's dispatch.

The state file is the model as this unit's hooks see it: relations, secrets (with each unit's
consumer record under `consumed`), ports, the application's units (`app-units`, for goal-state).
Like Juju, the tools change relations, secrets and ports inside the hook and the runner keeps them
only if the hook succeeded (`end_hook`); status-set, juju-log and secret-get's consumer records
take effect at once. relation-set alone needs more than the standard library (yaml).

One script, installed under each tool's name (juju-log, status-set, relation-get, ...) in a
directory put first on the hook's PATH. Every call answers from, and writes to, the JSON state
file named by HOOKTOOLS_STATE, and is recorded there (`calls`), so a test sees exactly what the
charm asked Juju. The state's `juju-version` (default 3.6.11) picks the tools a unit has: a 2.x
state has no secret-* tools (tools_for). Arguments follow Juju 3's hook-tool CLI; anything this
emulator does not know exits 2 and is recorded under `unknown`, as a real Juju would refuse it: a
test asserts none.
It runs on the host's /usr/bin/python3 (with Debian's python3-yaml), never on the python3 the
hook finds first on PATH: Juju's tools are binaries that do not depend on the hook's Python.
"""

from __future__ import annotations

import json
import os
import sys

# every call is a process on the hook's critical path: import only what all calls need
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


class Refused(Exception):
    """What Juju's tool would print on stderr before exiting non-zero."""


def _relation_id(ref: str) -> str:
    """Juju takes the number after the last colon and does not check the endpoint before it: "In
    reality, the identification of the relation is the integer following the colon"
    (worker/uniter/runner/jujuc/context.go, relationIdValue.Set and ContextRelation.FakeId)."""
    rid = ref.rsplit(":", 1)[-1]
    if not rid.isdigit():
        raise Refused(f"invalid value {ref!r} for option -r: invalid relation id")
    return rid


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


def _bool_flag(args: list[str], flag: str) -> bool:
    """A gnuflag bool flag: bare, or `flag=value` with any value Go's strconv.ParseBool takes (ops
    sends `--application=True`: ops hookcmds/_status.py:61)."""
    value = _take(args, flag, has_value=False)
    if value:
        return True
    for i, arg in enumerate(args):
        if arg.startswith(flag + "="):
            del args[i]
            text = arg.split("=", 1)[1]
            if text in ("1", "t", "T", "TRUE", "true", "True"):
                return True
            if text in ("0", "f", "F", "FALSE", "false", "False"):
                return False
            raise Refused(f'invalid boolean value "{text}" for flag {flag}: parse error')
    return False


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
            with open(path) as f:
                content[key] = f.read()
        elif "=" in arg:
            key, value = arg.split("=", 1)
            content[key] = value
        else:
            raise Refused(f"not key=value: {arg}")
    return content


def secret_revisions(secret: dict[str, Any]) -> dict[int, dict[str, str]]:
    """A secret's revisions by number (a list holds revisions 1..n)."""
    stored = secret["revisions"]
    if isinstance(stored, list):
        return {i + 1: content for i, content in enumerate(stored)}
    return {int(n): content for n, content in stored.items()}


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
        # --application is a gnuflag bool (worker/uniter/runner/jujuc/status-set.go): `--application=True`
        app = _bool_flag(args, "--application")
        words = _positional(args)
        if not words or words[0] not in ("active", "blocked", "maintenance", "waiting"):
            raise Refused(f"invalid status {words[:1]}")
        if app:
            # only the leader sets the application's status: ErrIsNotLeader
            # (worker/uniter/runner/context/context.go:634-645 SetApplicationStatus)
            if not self.s["leader"]:
                raise Refused("setting application status: this unit is not the leader")
            self.s["app-status"] = [words[0], " ".join(words[1:])]
            return ""
        # takes effect at once, whatever the hook's outcome (context.go:610 SetUnitStatus)
        self.s["unit-status"] = [words[0], " ".join(words[1:])]
        self.s["unit-status-history"].append(self.s["unit-status"])
        return ""

    def status_get(self, args: list[str]) -> str:
        _format_json(args)
        _take(args, "--include-data", has_value=False)
        app = _bool_flag(args, "--application")
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
        """Every non-dead unit of the application, joined or not, with its workload status or `dying`
        (apiserver/facades/agent/uniter/uniter.go:2358-2391 goalStateUnits); per local endpoint of a
        non-peer relation the remote application (the relation's status) and its units
        (goalStateRelations, which leaves peer relations out). The JSON shape is jujuc's
        formattedGoalState (worker/uniter/runner/jujuc/goal-state.go): units, relations, each entry
        status and since."""
        _format_json(args)
        _no_more(args)
        since = "2026-01-01T00:00:00Z"
        own = (self.s.get("unit-status") or ["unknown"])[0]
        app_units = self.s.get("app-units") or {self.unit: {"status": own}}
        units = {}
        for name, unit in app_units.items():
            status = own if name == self.unit else unit.get("status", "unknown")
            units[name] = {"status": "dying" if unit.get("life") == "dying" else status, "since": since}
        relations: dict[str, dict[str, dict[str, str]]] = {}
        for r in self.s["relations"].values():
            if r["remote-app"] == self.app:
                continue
            entry = relations.setdefault(r["endpoint"], {})
            entry[r["remote-app"]] = {"status": "joined", "since": since}
            entry.update({u: {"status": "active", "since": since} for u in r["units"]})
        return json.dumps({"units": units, "relations": relations})

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
                # no egress-subnets model config: the ingress addresses as /32
                # (apiserver/facades/agent/uniter/networkinfo.go, network.SubnetsForAddresses)
                "egress-subnets": [f"{address}/32"],
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
        import yaml  # here, not at the top: most calls need no YAML and every call is a process

        # relation-set.go: `--file PATH` is a cmd.FileVar, "-" meaning stdin; the file is a YAML map
        if path == "-":
            text = sys.stdin.read()
        else:
            with open(str(path)) as f:
                text = f.read()
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
    # A secret: owner ("unit" or "application"), owner-unit, owner-app, its owner label, revisions
    # {"n": content} (a list is revision 1..n), grants. What each unit consumes of it (the revision it
    # tracks, its consumer label) is the model's `consumed` record: unit -> secret id -> record.
    def _consumed(self) -> dict[str, dict[str, Any]]:
        return self.s.setdefault("consumed", {}).setdefault(self.unit, {})

    def _mine(self, secret: dict[str, Any]) -> bool:
        return secret["owner"] == "unit" and secret["owner-unit"] == self.unit

    def _apps(self, secret: dict[str, Any]) -> bool:
        return secret["owner"] == "application" and secret["owner-app"] == self.app

    def _by_id(self, ref: str) -> tuple[str, dict[str, Any]]:
        key = ref.split(":")[-1].split("/")[-1]
        for sid, secret in self.s["secrets"].items():
            if sid.split(":")[-1] == key:
                return sid, secret
        raise Refused(f"secret {ref!r} not found")

    def _managed(self, ref: str) -> tuple[str, dict[str, Any]]:
        """A secret this unit may change: its own, or its application's while it is the leader
        (common/secrets/access.go CanManage; ErrIsNotLeader otherwise: context.go:985-1174)."""
        sid, secret = self._by_id(ref)
        if self._apps(secret) and not self.s["leader"]:
            raise Refused(f"cannot manage secret {sid}: this unit is not the leader")
        if not self._mine(secret) and not self._apps(secret):
            raise Refused(f"cannot manage secret {sid}: permission denied")
        return sid, secret

    def _revised(self, sid: str) -> None:
        """Juju 3.6 coalesces a hook's updates of one secret into one new revision (context.go Flush)."""
        self.s.setdefault("hook", {}).setdefault("revised", [])
        if sid not in self.s["hook"]["revised"]:
            self.s["hook"]["revised"].append(sid)

    def secret_add(self, args: list[str]) -> str:
        label = _take(args, "--label")
        description = _take(args, "--description")
        expire = _take(args, "--expire")
        rotate = _take(args, "--rotate")
        owner = _take(args, "--owner") or "application"
        if owner == "application" and not self.s["leader"]:
            raise Refused("cannot add an application secret: this unit is not the leader")
        sid = "secret:" + os.urandom(10).hex()
        self.s["secrets"][sid] = {
            "label": label,
            "description": description,
            "expire": expire,
            "rotate": rotate,
            "owner": "unit" if owner == "unit" else "application",
            "owner-unit": self.unit,
            "owner-app": self.app,
            "revisions": {"1": _content(args)},
            "grants": [],
        }
        self._revised(sid)
        return sid + "\n"

    def secret_get(self, args: list[str]) -> str:
        _format_json(args)
        label = _take(args, "--label")
        refresh = bool(_take(args, "--refresh", has_value=False))
        peek = bool(_take(args, "--peek", has_value=False))
        ref = (_positional(args) or [None])[0]
        consumed = self._consumed()
        if ref:
            sid, secret = self._by_id(ref)
        else:
            # by label: the owner label of a secret this unit owns or its application owns, for every
            # unit of the application (apiserver/facades/agent/secretsmanager/secrets.go:629-656), else
            # this unit's own consumer label
            found = [
                (i, s)
                for i, s in self.s["secrets"].items()
                if (self._mine(s) or self._apps(s)) and s.get("label") == label
            ]
            found += [
                (i, self.s["secrets"][i])
                for i, r in consumed.items()
                if r.get("label") == label and i in self.s["secrets"]
            ]
            if not found:
                raise Refused(f"secret with label {label!r} not found")
            sid, secret = found[0]
        revisions = secret_revisions(secret)
        latest = max(revisions)
        if self._mine(secret) or self._apps(secret):
            # an owner reads the latest revision (secrets.go:629-656 getSecretContent); a unit of the
            # owning application gets a consumer record, so it hears of new revisions
            # (ensureConsumerMetadataForAppOwnedSecretsForPeerUnits)
            if self._apps(secret) and sid not in consumed:
                consumed[sid] = {"revision": latest}
            if label and ref and (self._mine(secret) or self.s["leader"]):
                secret["label"] = label
            return json.dumps(revisions[latest])
        if not (self.unit in secret["grants"] or self.app in secret["grants"]):
            raise Refused(f"reading {sid}: permission denied")  # common/secrets/access.go CanRead
        # a consumer reads the revision it tracks; any first read creates the record at the latest
        # revision (`refresh || err != nil // Not found, so need to create one`), --refresh moves it,
        # --peek reads the latest once (secretsmanager/secrets.go:776-813 getConsumedRevision)
        record = consumed.get(sid)
        if record is None or refresh:
            record = consumed[sid] = {**(record or {}), "revision": latest}
        if label:
            record["label"] = label
        return json.dumps(revisions[latest if peek else record["revision"]])

    def secret_info_get(self, args: list[str]) -> str:
        """Only the secrets this unit owns, plus its application's for the leader; any other is not
        found (jujuc/secret-info-get.go Run; common/secrets/secrets.go:494-515: only the leader's
        metadata includes application secrets)."""
        _format_json(args)
        label = _take(args, "--label")
        ref = (_positional(args) or [None])[0]
        for sid, secret in self.s["secrets"].items():
            if not (self._mine(secret) or (self._apps(secret) and self.s["leader"])):
                continue
            if (ref and sid.split(":")[-1] == ref.split(":")[-1].split("/")[-1]) or (
                not ref and secret.get("label") == label
            ):
                return json.dumps(
                    {
                        sid: {
                            "revision": max(secret_revisions(secret)),
                            "label": secret.get("label") or "",
                            "owner": secret["owner"],
                            "description": secret.get("description") or "",
                            "rotation": secret.get("rotate") or "never",
                        }
                    }
                )
        raise Refused(f"secret {ref or label!r} not found")

    def secret_ids(self, args: list[str]) -> str:
        _format_json(args)
        _no_more(args)
        return json.dumps(
            [sid for sid, s in self.s["secrets"].items() if self._mine(s) or (self._apps(s) and self.s["leader"])]
        )

    def secret_set(self, args: list[str]) -> str:
        # --owner is accepted and ignored: the owner never changes (jujuc/secret-add.go marshallArg and
        # context.go:985-1023 UpdateSecret do not use it); ops always sends it (hookcmds/_secret.py:297)
        _take(args, "--owner")
        fields = {k: _take(args, f"--{k}") for k in ("label", "description", "expire", "rotate")}
        ref, *content = _positional(args)
        sid, secret = self._managed(ref)
        secret.update({k: v for k, v in fields.items() if v is not None})
        if content:
            revisions = secret_revisions(secret)
            latest = max(revisions)
            new = latest if sid in self.s.get("hook", {}).get("revised", []) else latest + 1
            revisions[new] = _content(content)
            secret["revisions"] = {str(n): c for n, c in revisions.items()}
            self._revised(sid)
        return ""

    def secret_grant(self, args: list[str]) -> str:
        rid = _take(args, "--relation") or _take(args, "-r")
        unit = _take(args, "--unit")
        (ref,) = _positional(args)
        _, secret = self._managed(ref)
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
        _, secret = self._managed(ref)
        secret["grants"] = [g for g in secret["grants"] if g not in (unit, app)] if (unit or app) else []
        return ""

    def secret_remove(self, args: list[str]) -> str:
        revision = _take(args, "--revision")
        (ref,) = _positional(args)
        sid, secret = self._managed(ref)
        if revision is None:
            del self.s["secrets"][sid]
        else:
            revisions = secret_revisions(secret)
            revisions.pop(int(revision), None)
            secret["revisions"] = {str(n): c for n, c in revisions.items()}
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


def model_state(**model: Any) -> dict[str, Any]:
    """A state file for the tools: the model as a unit sees it (leader, config, bindings, relations,
    storage, secrets, app-units, ...: what is not given is empty) and the empty records of the calls."""
    empty: dict[str, Any] = {"relations": {}, "storage": {}, "secrets": {}, "consumed": {}, "ports": [], "action": {}}
    records = {"log": [], "calls": [], "unknown": [], "refused": [], "unit-status-history": []}
    return {**empty, **model, **records}


def _label_clash(before: dict[str, Any], after: dict[str, Any]) -> str:
    """Juju's commit refuses a secret owner label another owner of the same application already uses:
    an application secret's label may be no unit's of that application (owner or consumer label),
    a unit secret's label no label of its application's, nor a second one of its own
    (state/secrets.go:1290-1380 uniqueSecretLabelBaseOps, uniqueSecretOwnerLabelOps)."""
    secrets_ = after["secrets"]
    consumed = after.get("consumed", {})
    for sid, secret in secrets_.items():
        label = secret.get("label")
        old = before["secrets"].get(sid, {}).get("label")
        if not label or label == old:
            continue
        app = secret["owner-app"]
        others = [s for i, s in secrets_.items() if i != sid and s.get("label") == label and s["owner-app"] == app]
        if secret["owner"] == "application":
            tag = f"application-{app}"
            clash = bool(others) or any(
                unit.split("/")[0] == app and r.get("label") == label
                for unit, records in consumed.items()
                for r in records.values()
            )
        else:
            tag = "unit-" + secret["owner-unit"].replace("/", "-")
            clash = any(s["owner"] == "application" or s["owner-unit"] == secret["owner-unit"] for s in others) or any(
                r.get("label") == label for r in consumed.get(secret["owner-unit"], {}).values()
            )
        if clash:
            return f'secret label "{label}" for "{tag}" already exists'
    return ""


def end_hook(before: dict[str, Any], after: dict[str, Any], succeeded: bool) -> tuple[dict[str, Any], str]:
    """What the model keeps of a hook: its relation, secret and port changes only when the hook
    succeeded and its commit passed (worker/uniter/runner/context/context.go Flush ->
    CommitHookChanges, one transaction); status, logs and consumer records stay either way.
    Returns the state to keep and the commit's error ("" when committed or not attempted)."""
    after = {k: v for k, v in after.items() if k != "hook"}
    error = _label_clash(before, after) if succeeded else ""
    if succeeded and not error:
        return after, ""
    return {**after, **{k: before[k] for k in ("relations", "secrets", "ports") if k in before}}, error


TOOLS = [name.replace("_", "-") for name in vars(Tools) if not name.startswith("_")]
JUJU_VERSION = "3.6.11"  # what a state file plays unless it names another (its "juju-version")


def tools_for(juju_version: str) -> list[str]:
    """The hook tools a Juju version has: 2.x none of the secret-* ones (Juju secrets came with 3.0:
    worker/uniter/runner/jujuc `secretCommands`), so on 2.9 a secret call finds no such command."""
    if int(juju_version.split(".")[0]) < 3:
        return [tool for tool in TOOLS if not tool.startswith("secret-")]
    return list(TOOLS)


def main() -> int:
    tool = os.path.basename(sys.argv[0])
    args = sys.argv[1:]
    path = os.environ["HOOKTOOLS_STATE"]
    with open(path) as f:
        state = json.load(f)
    state["calls"].append([tool, *args] if tool not in ("action-set", "secret-add", "secret-set") else [tool])
    known = tools_for(state.get("juju-version", JUJU_VERSION))
    handler = getattr(Tools(state), tool.replace("-", "_"), None) if tool in known else None
    code = 0
    try:
        if handler is None:
            raise Refused(f"{tool}: not emulated")
        out = handler(list(args))
    except (Refused, ValueError, KeyError) as e:
        state["unknown" if handler is None or "unrecognized" in str(e) else "refused"].append([tool, str(e)])
        out, code = "", 2
        print(f"ERROR {e}", file=sys.stderr)
    with open(path, "w") as f:
        json.dump(state, f, indent=1)
    sys.stdout.write(out)
    return code


if __name__ == "__main__":
    sys.exit(main())
