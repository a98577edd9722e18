"""JujuSim's units played by the packed .charm: every hook one `dispatch` process, as Juju runs it.

`PackedContext` has the surface JujuSim uses of `ops.testing.Context` (`run(event, state) ->
State`, `on`, `action_results`, `action_logs`, `charm_spec`, `ActionFailed` on action-fail, an
exception when the hook exits non-zero). Each `run` writes the unit's view of the model (the
scenario `State`) into the hook-tool emulator's state file (hooktools.py), runs the unit's own
unpacked charm directory's `dispatch` inside its lab member's network namespace with its LXD_DIR
(PackedUnit), and reads the emulator's state back into a `State`. The emulator applies Juju's
semantics (hook-end commit only on success, secret ownership and tracking, label clashes at
commit), so a packed hook can fail where the in-process one would not, as it would in Juju.

Goal-state is the one thing a `State` cannot say (only `planned_units`). When the driver puts its own
`goal-state` tool on PATH for its hooks (JujuSim does: the model's units, each with its status or
`dying`), the emulator answers with the driver's units; without one it approximates: this unit, the
peers it has seen and placeholders up to `planned_units` (the count ops reads is exact, the names of
units not seen yet and which of them are dying are not).

JujuSim's read/write trace (for `rounds()`) does not see inside a hook process, so its rounds are
approximate for this backend (each hook waits for whatever queued it and its unit's previous
hook); hook counts and statuses are exact.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import ops
import yaml
from ops import testing

from tests.harness.lab import Lab
from tests.packed.hooktools import model_state, secret_revisions
from tests.packed.packed_unit import PackedUnit, unpack


class PackedHookFailed(RuntimeError):
    """The hook process exited non-zero, or Juju's commit of its changes failed."""


def _status(pair: list[str] | None) -> ops.StatusBase | None:
    return ops.StatusBase.from_name(pair[0], pair[1]) if pair else None


def _driver_goal_state() -> dict[str, Any] | None:
    """What the driver's own goal-state tool says, when it put one on this process's PATH."""
    tool = shutil.which("goal-state")
    if tool is None:
        return None
    return json.loads(subprocess.run([tool, "--format=json"], capture_output=True, text=True, check=True).stdout)


def _nested(flat: Mapping[str, str]) -> dict[str, Any]:
    """action-set's dotted keys as the nested results Juju returns (ops flattens them)."""
    results: dict[str, Any] = {}
    for key, value in flat.items():
        *parents, last = key.split(".")
        node = results
        for parent in parents:
            node = node.setdefault(parent, {})
        node[last] = value
    return results


class PackedContext(testing.Context):
    """One unit of the packed charm (see the module docstring)."""

    block_device: str | None = None  # JujuSim sets it: what storage-get says for storage `local`

    def __init__(
        self,
        charm_type: type,
        *,
        charm: Path,
        root: Path,
        netns: str | None,
        env: Mapping[str, str],
        app_name: str,
        unit_id: int,
        **context_kw: Any,
    ):
        self.unit_root = root / f"unit-{unit_id}"
        shutil.rmtree(self.unit_root, ignore_errors=True)
        charm_dir = unpack(charm, self.unit_root / "charm")
        meta, actions, config = (
            yaml.safe_load((charm_dir / f"{name}.yaml").read_text()) for name in ("metadata", "actions", "config")
        )
        super().__init__(
            charm_type, meta=meta, actions=actions, config=config, app_name=app_name, unit_id=unit_id, **context_kw
        )
        self.unit_name = f"{app_name}/{unit_id}"
        self.calls: list[list[str]] = []  # the hook-tool calls of all its hooks so far, in order
        self.defaults = {k: v["default"] for k, v in config["options"].items() if "default" in v}
        self.endpoints = [e for kind in ("provides", "requires", "peers") for e in (meta.get(kind) or {})]
        self.packed = PackedUnit(
            charm_dir,
            self.unit_root / "juju",
            unit=self.unit_name,
            address="",
            netns=netns,
            env=dict(env),
            juju_version=self.juju_version,  # JujuSim's profile, through Context(juju_version=)
        )

    # -- State -> the emulator's state file ------------------------------------------------------
    def _model(self, state: testing.State, event: Any) -> dict[str, Any]:
        me, app = self.unit_name, self.app_name
        address = next((n.bind_addresses[0].addresses[0].value for n in state.networks if n.bind_addresses), "10.0.0.1")
        bindings = {e: address for e in self.endpoints}
        bindings.update({n.binding_name: n.bind_addresses[0].addresses[0].value for n in state.networks})
        relations: dict[str, Any] = {}
        peers: list[str] = []
        for r in state.relations:
            if isinstance(r, testing.PeerRelation):
                units = [f"{app}/{i}" for i in r.peers_data]
                data = {app: dict(r.local_app_data), **{f"{app}/{i}": dict(d) for i, d in r.peers_data.items()}}
                peers += units
                remote = app
            else:
                remote = r.remote_app_name
                units = [f"{remote}/{i}" for i in r.remote_units_data]
                data = {
                    app: dict(r.local_app_data),
                    remote: dict(r.remote_app_data),
                    **{f"{remote}/{i}": dict(d) for i, d in r.remote_units_data.items()},
                }
            data[me] = dict(r.local_unit_data)
            relations[str(r.id)] = {"endpoint": r.endpoint, "remote-app": remote, "units": units, "data": data}
        secrets, consumed = {}, {}
        for s in state.secrets:
            latest, tracked = max(s._latest_revision, 1), s._tracked_revision
            if s.owner is None and tracked and s.tracked_content != s.latest_content and tracked >= latest:
                latest = tracked + 1  # an observer's copy: the revision it tracks is older than the latest
            revisions = {str(latest): dict(s.latest_content)}
            if s.owner is None and tracked:
                revisions.setdefault(str(tracked), dict(s.tracked_content))
            if tracked and (s.owner is None or (s.owner == "app" and not state.leader)):
                consumed[s.id] = {"revision": min(tracked, latest), **({"label": s.label} if s.owner is None else {})}
            secrets[s.id] = {
                "label": s.label if s.owner else None,
                "description": s.description,
                "expire": None,  # the charm sets no expiry or rotation
                "rotate": None,
                # an observer's copy: someone else's secret granted to this unit (a State cannot say whose)
                "owner": "application" if s.owner == "app" else "unit",
                "owner-unit": me if s.owner else "",
                "owner-app": app if s.owner else "",
                "revisions": revisions,
                "grants": [me] if s.owner is None else sorted({n for ns in s.remote_grants.values() for n in ns}),
            }
        goal = _driver_goal_state()
        if goal is not None:
            app_units = {
                name: {"status": u["status"], **({"life": "dying"} if u["status"] == "dying" else {})}
                for name, u in goal["units"].items()
            }
        else:  # this unit, the peers it has seen, placeholders up to the planned units; the surplus, if
            names = [me, *peers]  # fewer are planned than seen, is dying (the count is exact, not the names)
            names += [f"{app}/placeholder-{i}" for i in range(state.planned_units - len(names))]
            surplus = set(sorted(names[1:])[state.planned_units - 1 :]) if len(names) > state.planned_units else set()
            app_units = {n: {"status": "active", **({"life": "dying"} if n in surplus else {})} for n in names}
        model = model_state(
            leader=state.leader,
            config={**self.defaults, **state.config},
            bindings=bindings,
            relations=relations,
            storage={f"{s.name}/{s.index}": self.block_device for s in state.storages},
            secrets=secrets,
            consumed={me: consumed},
            ports=[f"{p.port}/{p.protocol}" for p in state.opened_ports],
            **{"app-units": app_units, "workload-version": state.workload_version, "juju-version": self.juju_version},
        )
        if state.unit_status.name != "unknown":
            model["unit-status"] = [state.unit_status.name, state.unit_status.message]
        if event.action:
            model["action"] = self.packed.action_state(event.action.name, dict(event.action.params))
        return model

    # -- the emulator's state file -> State -------------------------------------------------------
    def _state(self, state: testing.State, model: dict[str, Any]) -> testing.State:
        me, app = self.unit_name, self.app_name
        relations = []
        for r in state.relations:
            data = model["relations"][str(r.id)]["data"]
            relations.append(dataclasses.replace(r, local_unit_data=data.get(me, {}), local_app_data=data.get(app, {})))
        by_name = {rel["remote-app"]: int(rid) for rid, rel in model["relations"].items()}
        before = {s.id: s for s in state.secrets}
        consumed = model["consumed"].get(me, {})
        secrets = []
        for sid, stored in model["secrets"].items():
            old = before.get(sid)
            owner = old.owner if old else ("unit" if stored["owner"] == "unit" else "app")
            revisions = secret_revisions(stored)
            latest = max(revisions)
            record = consumed.get(sid)
            tracked = record["revision"] if record else (latest if owner else 0)
            grants: dict[int, set[str]] = {}
            for name in stored["grants"] if owner else []:
                grants.setdefault(by_name.get(name.split("/")[0], 0), set()).add(name)
            secret = testing.Secret(
                revisions.get(tracked, revisions[latest]),
                latest_content=revisions[latest],
                id=sid,
                owner=owner,
                label=stored.get("label") if owner else (record or {}).get("label", old.label if old else None),
                description=stored.get("description"),
                remote_grants=grants,
            )
            object.__setattr__(secret, "_latest_revision", latest)
            object.__setattr__(secret, "_tracked_revision", tracked)
            secrets.append(secret)
        ports = [testing.TCPPort(int(p.split("/")[0])) for p in model["ports"] if p.endswith("/tcp")]
        return dataclasses.replace(
            state,
            relations=relations,
            secrets=secrets,
            opened_ports=ports,
            unit_status=_status(model.get("unit-status")) or state.unit_status,
            app_status=_status(model.get("app-status")) or state.app_status,
            workload_version=model.get("workload-version", ""),
        )

    # -- running -----------------------------------------------------------------------------------
    def _env(self, event: Any, state: testing.State) -> tuple[str, dict[str, str]]:
        if event.action:
            return f"actions/{event.action.name}", self.packed.action_env(event.action.name)
        extra: dict[str, str] = {}
        if event.relation is not None:
            r = event.relation
            remote = self.app_name if isinstance(r, testing.PeerRelation) else r.remote_app_name
            extra.update(JUJU_RELATION=r.endpoint, JUJU_RELATION_ID=f"{r.endpoint}:{r.id}", JUJU_REMOTE_APP=remote)
            if event.relation_remote_unit_id is not None:  # an app relation-changed has no remote unit
                extra["JUJU_REMOTE_UNIT"] = f"{remote}/{event.relation_remote_unit_id}"
            if event.relation_departed_unit_id is not None:
                extra["JUJU_DEPARTING_UNIT"] = f"{remote}/{event.relation_departed_unit_id}"
        if event.storage is not None:
            extra["JUJU_STORAGE_ID"] = f"{event.storage.name}/{event.storage.index}"
        if event.secret is not None:
            extra.update(JUJU_SECRET_ID=event.secret.id, JUJU_SECRET_LABEL=event.secret.label or "")
            if event.secret_revision is not None:
                extra["JUJU_SECRET_REVISION"] = str(event.secret_revision)
        return f"hooks/{event._juju_name}", extra

    def run(self, event: Any, state: testing.State) -> testing.State:
        model = self._model(state, event)
        self.packed.write(model)
        path, extra = self._env(event, state)
        done = self.packed.dispatch(path, **extra)
        after = self.packed.state
        self.calls.extend(after["calls"])  # every hook-tool call of every hook, for tests to search
        if after["unknown"]:
            raise PackedHookFailed(f"{path}: the charm called what Juju does not have: {after['unknown']}")
        if done.returncode != 0:
            logged = "\n".join(f"{level}: {line}" for level, line in after["log"][-15:])
            raise PackedHookFailed(f"{path} failed ({done.returncode}): {done.stderr.strip()[-1500:]}\n{logged}")
        out = self._state(state, after)
        if event.action:
            action = after["action"]
            self.action_results = _nested(action["results"])
            self.action_logs[:] = action["log"]
            if action["failed"] is not None:
                raise testing.ActionFailed(action["failed"], state=out)
        return out


def packed_context_factory(
    charm: Path,
    root: Path,
    netns_for_unit: Callable[[int], str | None],
    env_for_unit: Callable[[int], Mapping[str, str]],
) -> Callable[..., PackedContext]:
    """JujuSim's `context_factory`: unit N runs `charm` in its own directory under `root`, in the
    network namespace and with the environment (LXD_DIR) its lab member gives."""

    def factory(charm_type: type, *, app_name: str, unit_id: int, **context_kw: Any) -> PackedContext:
        return PackedContext(
            charm_type,
            charm=charm,
            root=root,
            netns=netns_for_unit(unit_id),
            env=env_for_unit(unit_id),
            app_name=app_name,
            unit_id=unit_id,
            **context_kw,
        )

    return factory


def lab_context_factory(charm: Path, root: Path, lab: Lab) -> Callable[..., PackedContext]:
    """Unit N on lab member N (tests/harness/cluster.py's wiring): its namespace and LXD_DIR."""
    return packed_context_factory(
        charm,
        root,
        netns_for_unit=lambda uid: lab.members[uid].netns,
        env_for_unit=lambda uid: {"LXD_DIR": str(lab.members[uid].lxd_dir)},
    )
