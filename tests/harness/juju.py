"""Playing Juju without Juju: run the unchanged charm for N units through ops.testing.

Each unit has its own `testing.Context` (unit_id) and `State`; all share one peer relation. After
every hook the driver carries what the unit wrote (its unit databag; the app databag and the
app-owned secrets when it is the leader) into the other units' states and queues the events real
Juju would fire for that change (relation-changed, secret-changed). A hook that raises commits
nothing, as in Juju, leaves the unit in error and is retried later. `settle()` runs hooks until
nothing changes.

It does not hide what Juju would show: a unit sees a peer's databag only from that peer's
relation-joined on; a unit-owned secret is readable only by those it was granted to; required
action parameters are enforced before the charm runs; a departing unit stays (in error, its
machine and LXD intact) while its departure hook fails, and goes only once its hooks succeeded;
units removed together run their departure hooks interleaved, and planned units (goal state)
counts neither of them from the start.

Which LXD each unit talks to is the only thing the driver injects: `env_for_unit(uid)` gives the
environment a unit's hooks run with (LXD_DIR, as LXD itself reads it), `address_for_unit(uid)`
its address on the `cluster` binding.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import ipaddress
import os
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml
from ops import testing
from scenario import _runtime
from scenario import mocking as _mocking


class _LibYAML:
    """ops.testing writes the charm's metadata, config and actions YAML before every hook with
    PyYAML's pure-Python dumper (a third of a hook's time here); the same text from libyaml."""

    @staticmethod
    def safe_dump(data: Any, **kw: Any) -> str:
        return yaml.dump(data, Dumper=getattr(yaml, "CSafeDumper", yaml.SafeDumper), **kw)


_runtime.yaml = _LibYAML  # type: ignore[assignment]

# What a hook reads (relation-get, secret-get) and when it writes (relation-set, secret-add/-set, ""), in
# order: a write waits for the hooks that wrote what was read before it.
_TRACE: list[str] = []
_relation_get = _mocking._MockModelBackend.relation_get
_secret_get = _mocking._MockModelBackend.secret_get
_writers = {name: getattr(_mocking._MockModelBackend, name) for name in ("secret_add", "secret_set")}
_relation_set = _mocking._MockModelBackend.relation_set


class _ReadBag(dict):
    """A databag as relation-get gave it, noting each key the charm reads ("*": all of them)."""

    def __init__(self, data: dict[str, str], bag: str):
        super().__init__(data)
        self.bag = bag

    def _read(self, key: str) -> None:
        _TRACE.append(f"{self.bag}#{key}")

    def __getitem__(self, key: str) -> str:
        self._read(key)
        return super().__getitem__(key)

    def __contains__(self, key: object) -> bool:
        self._read(str(key))
        return super().__contains__(key)

    def get(self, key: str, default: Any = None) -> Any:
        self._read(key)
        return super().get(key, default)

    def __iter__(self) -> Iterator[str]:
        self._read("*")
        return super().__iter__()

    def keys(self) -> Any:
        self._read("*")
        return super().keys()

    def items(self) -> Any:
        self._read("*")
        return super().items()

    def values(self) -> Any:
        self._read("*")
        return super().values()


def _changed(old: Mapping[str, str], new: Mapping[str, str]) -> set[str]:
    return {k for k in set(old) | set(new) if old.get(k) != new.get(k)}


def _recording_relation_get(self: Any, relation_id: int, member_name: str, is_app: bool, **kw: Any) -> Any:
    data = _relation_get(self, relation_id, member_name, is_app, **kw)
    if relation_id != RELATION_ID:
        return data
    return _ReadBag(data, "app" if is_app else f"unit:{member_name.rsplit('/', 1)[-1]}")


def _recording_secret_get(self: Any, *, id: str | None = None, label: str | None = None, **kw: Any) -> Any:
    content = _secret_get(self, id=id, label=label, **kw)
    _TRACE.append(f"secret:{self._get_secret(id, label).id}")
    return content


def _recording(write: Callable[..., Any]) -> Callable[..., Any]:
    def recorded(*args: Any, **kw: Any) -> Any:
        _TRACE.append("")
        return write(*args, **kw)

    return recorded


def _recording_relation_set(self: Any, relation_id: int, data: Mapping[str, str], is_app: bool, **kw: Any) -> Any:
    if relation_id == RELATION_ID:  # "=<bag>#<key>": which key was written, after which reads
        bag = "app" if is_app else f"unit:{self.unit_name.rsplit('/', 1)[-1]}"
        _TRACE.extend(f"={bag}#{key}" for key in data)
    else:
        _TRACE.append("")
    return _relation_set(self, relation_id, data, is_app, **kw)


for _name, _write in _writers.items():
    setattr(_mocking._MockModelBackend, _name, _recording(_write))
_mocking._MockModelBackend.relation_set = _recording_relation_set  # type: ignore[method-assign]
_mocking._MockModelBackend.relation_get = _recording_relation_get  # type: ignore[method-assign]
_mocking._MockModelBackend.secret_get = _recording_secret_get  # type: ignore[method-assign]

PEER = "cluster"
_UNTRACKED = 0  # ops.testing's revision a secret's reader tracks: 0 until it reads it (refresh)


def _cidr(address: str) -> str:
    return str(ipaddress.ip_interface(f"{address}/24").network)


STORAGE = "local"
RELATION_ID = 1


@dataclasses.dataclass
class Hook:
    uid: int
    name: str  # install, start, config_changed, leader_elected, relation_changed:<uid|app>, ...
    attempt: int = 1
    cause: int = 0  # depth of the deepest hook whose writes queued this one (0: the model queued it)


@dataclasses.dataclass
class HookRecord:
    uid: int
    name: str
    seconds: float
    error: str = ""
    depth: int = 0  # its step on the longest chain of causally dependent hooks (see JujuSim.rounds)
    caused: bool = False  # queued by another hook's writes, not by the model (Juju's floor)
    wrote: bool = False  # changed a databag or a secret others can read
    status_changed: bool = False


@dataclasses.dataclass
class UnitSim:
    uid: int
    ctx: testing.Context
    state: testing.State
    unit_data: dict[str, str] = dataclasses.field(default_factory=dict)
    tracked: dict[str, dict[str, str]] = dataclasses.field(default_factory=dict)  # secret id -> content
    alive: bool = True
    dying: bool = False  # `juju remove-unit` ran: it runs its departure hooks, then goes
    error: str = ""  # the hook that failed last (Juju: `error: hook failed: ...`), until one succeeds
    seen: set[int] = dataclasses.field(default_factory=set)  # peers it has had relation-joined for
    depth: int = 0  # depth of its last hook that wrote something, or of the deepest write it has read
    read: dict[str, int] = dataclasses.field(default_factory=dict)  # data it has seen: key -> write number

    @property
    def status(self) -> Any:
        return self.state.unit_status


class HookFailed(RuntimeError):
    pass


@dataclasses.dataclass
class ActionOutcome:
    results: dict[str, Any]
    logs: list[str]
    failure: str

    @property
    def ok(self) -> bool:
        return not self.failure


class _UnitContext(testing.Context):
    """A unit's Context whose Juju storage `local` is a real block device, as storage-get says."""

    block_device: str | None = None

    def _get_storage_root(self, name: str, index: int) -> Path:
        if name == STORAGE and self.block_device:
            return Path(self.block_device)
        return super()._get_storage_root(name, index)


class JujuSim:
    def __init__(
        self,
        charm_type: type,
        *,
        env_for_unit: Callable[[int], Mapping[str, str]],
        address_for_unit: Callable[[int], str],
        storage_for_unit: Callable[[int], str | None] = lambda uid: None,
        config: Mapping[str, Any] | None = None,
        app: str = "lxd-cluster",
        max_attempts: int = 3,
        context_kw: Mapping[str, Any] | None = None,  # e.g. meta/actions for a charm without YAML files
        context_factory: Callable[..., Any] = _UnitContext,  # (charm_type, app_name=, unit_id=, **context_kw)
    ):
        self.charm_type = charm_type
        self.env_for_unit = env_for_unit
        self.address_for_unit = address_for_unit
        self.storage_for_unit = storage_for_unit
        self.config = dict(config or {})
        self.app = app
        self.max_attempts = max_attempts
        self.context_kw = dict(context_kw or {})
        self.context_factory = context_factory
        self.units: dict[int, UnitSim] = {}
        self.leader: int | None = None
        self.app_data: dict[str, str] = {}
        self.app_secrets: dict[str, testing.Secret] = {}  # as the leader owns them
        self.unit_secrets: dict[str, tuple[int, testing.Secret]] = {}  # id -> (owner uid, secret)
        # other applications related to this one: relation id -> the remote app's databag, and
        # what our leader wrote into our side of it
        self.remote: dict[int, tuple[str, str, dict[str, str]]] = {}  # id -> (endpoint, app, data)
        self.provided: dict[int, dict[str, str]] = {}
        self.queue: collections.deque[Hook] = collections.deque()
        self.log: list[HookRecord] = []
        self.after_hook: list[Callable[[JujuSim], None]] = []  # invariants checked after each hook
        self.secret_values: set[str] = set()  # every secret value any unit ever wrote
        # the last write of each databag / secret: key (app, unit:<uid>, secret:<id>) -> (number, depth)
        self.writes: dict[str, tuple[int, int]] = {}

    # -- model operations -------------------------------------------------------------------
    def add_unit(self) -> int:
        """`juju add-unit`: a new unit, with the hooks Juju fires on a fresh machine."""
        uid = max(self.units, default=-1) + 1
        ctx = self.context_factory(self.charm_type, app_name=self.app, unit_id=uid, **self.context_kw)
        ctx.block_device = self.storage_for_unit(uid)
        storages = [testing.Storage(STORAGE, index=uid)] if ctx.block_device else []
        self.units[uid] = UnitSim(uid, ctx, testing.State(storages=storages))
        first = self.leader is None
        if first:
            self.leader = uid
        if storages:  # Juju attaches storage before install
            self.queue.append(Hook(uid, "storage_attached"))
        self.queue.append(Hook(uid, "install"))
        self.queue.append(Hook(uid, "relation_created"))
        if first:
            self.queue.append(Hook(uid, "leader_elected"))
        self.queue.append(Hook(uid, "config_changed"))
        self.queue.append(Hook(uid, "start"))
        for other in self._live(exclude=uid):
            self.queue.append(Hook(uid, f"relation_joined:{other}"))
            self.queue.append(Hook(uid, f"relation_changed:{other}"))
            self.queue.append(Hook(other, f"relation_joined:{uid}"))
            self.queue.append(Hook(other, f"relation_changed:{uid}"))
        return uid

    def deploy(self, n: int) -> list[int]:
        return [self.add_unit() for _ in range(n)]

    def elect(self, uid: int) -> None:
        """Juju moves leadership to uid (leader-elected fires there)."""
        self.leader = uid
        self.queue.append(Hook(uid, "leader_elected"))

    def set_config(self, **changes: Any) -> None:
        self.config.update(changes)
        for uid in self._live():
            self.queue.append(Hook(uid, "config_changed"))

    def remove_unit(self, uid: int) -> None:
        """`juju remove-unit`: the unit is dying at once (planned units drop); its relation-departed
        hooks are queued; it goes only once they succeeded (see remove_units)."""
        self.remove_units(uid)

    def remove_units(self, *uids: int) -> None:
        """`juju remove-unit a b`: every unit named is dying at once; their departure hooks (one
        relation-departed per remote unit, then storage-detaching) interleave in the queue. A unit
        whose hook fails stays, in error, and the hook is retried; once all its departure hooks
        succeeded it goes, the others get relation-departed for it and a successor is elected."""
        for uid in uids:
            self.units[uid].dying = True
        rounds = {uid: [o for o in self._live(exclude=uid)] for uid in uids}
        for i in range(max(len(r) for r in rounds.values())):
            for uid in uids:
                if i < len(rounds[uid]):
                    self.queue.append(Hook(uid, f"relation_departed:{rounds[uid][i]}:{uid}"))
        for uid in uids:
            if self.units[uid].ctx.block_device:
                self.queue.append(Hook(uid, "storage_detaching"))
            if not rounds[uid]:
                self._gone(uid)

    def _gone(self, uid: int) -> None:
        """A dying unit whose departure hooks all succeeded leaves the model."""
        self.units[uid].alive = False
        others = self._live()
        if self.leader == uid and others:
            staying = [o for o in others if not self.units[o].dying]
            self.elect(min(staying or others))
        for other in others:
            self.queue.append(Hook(other, f"relation_departed:{uid}:{uid}"))

    def vanish(self, uid: int) -> None:
        """The unit's machine disappears without running any hook (`remove-unit --force`)."""
        self.units[uid].alive = False
        others = self._live()
        if self.leader == uid and others:
            self.elect(min(others))
        for other in others:
            self.queue.append(Hook(other, f"relation_departed:{uid}:{uid}"))

    def relate(self, endpoint: str, remote_app: str, data: Mapping[str, str] | None = None) -> int:
        """`juju integrate`: another application on `endpoint`, its app databag `data`."""
        rid = max([RELATION_ID, *self.remote]) + 1
        self.remote[rid] = (endpoint, remote_app, dict(data or {}))
        self.provided[rid] = {}
        for uid in self._live():
            for kind in ("relation_created", "relation_joined", "relation_changed"):
                self.queue.append(Hook(uid, f"{kind}@{rid}"))
        return rid

    def set_remote_data(self, rid: int, data: Mapping[str, str]) -> None:
        endpoint, app, _ = self.remote[rid]
        self.remote[rid] = (endpoint, app, dict(data))
        for uid in self._live():
            self._enqueue(Hook(uid, f"relation_changed@{rid}"))

    def unrelate(self, rid: int) -> None:
        """`juju remove-relation`: relation-broken on every unit, then the relation is gone."""
        for uid in self._live():
            self.run(Hook(uid, f"relation_broken@{rid}"))
        del self.remote[rid]
        del self.provided[rid]

    def run_action(self, uid: int, name: str, /, **params: Any) -> ActionOutcome:
        """`juju run <unit> <action>`: results, logs and the failure message (empty on success)."""
        unit = self.units[uid]
        ctx = unit.ctx
        refused = self._check_params(ctx, name, params)
        if refused:  # Juju validates against actions.yaml before the charm runs
            self.log.append(HookRecord(uid, f"action:{name}", 0.0, refused))
            return ActionOutcome({}, [], refused)
        try:
            with self._unit_env(uid):
                out = ctx.run(ctx.on.action(name, params=params), self._state_for(unit))
            failure = ""
        except testing.ActionFailed as e:
            out, failure = e.state, e.message
        outcome = ActionOutcome(dict(ctx.action_results or {}), list(ctx.action_logs), failure)
        self.log.append(HookRecord(uid, f"action:{name}", 0.0, failure))
        if out is not None:
            self._commit(unit, out)
        return outcome

    @staticmethod
    def _check_params(ctx: testing.Context, name: str, params: Mapping[str, Any]) -> str:
        """What Juju says when a `juju run` does not fit the action's schema ("" when it fits)."""
        spec = (ctx.charm_spec.actions or {}).get(name)
        if spec is None:
            return f'action "{name}" not defined'
        declared = spec.get("params", {})
        # Juju inserts the defaults, then validates: a required parameter with a default is satisfied
        with_defaults = {**{k: v["default"] for k, v in declared.items() if "default" in v}, **params}
        missing = [p for p in spec.get("required", []) if p not in with_defaults]
        if missing:
            return f'validation failed: (root) : "{missing[0]}" property is missing and required'
        if spec.get("additionalProperties", True) is False:
            extra = sorted(set(params) - set(declared))
            if extra:
                return f'validation failed: (root) : additional property "{extra[0]}" is not allowed'
        types = {"string": str, "boolean": bool, "integer": int, "number": (int, float), "array": list, "object": dict}
        for key, value in params.items():
            want = types.get(declared.get(key, {}).get("type", ""))
            if want and (not isinstance(value, want) or (want is int and isinstance(value, bool))):
                return f"validation failed: (root).{key} : must be of type {declared[key]['type']}"
        return ""

    def update_status(self) -> None:
        for uid in self._live():
            self.queue.append(Hook(uid, "update_status"))

    # -- running hooks ----------------------------------------------------------------------
    def settle(self, max_hooks: int = 500, timeout: float = 900.0) -> int:
        """Run queued hooks until none is left, then one update-status round; returns hooks run."""
        ran, deadline = 0, time.monotonic() + timeout
        while True:
            while self.queue:
                if ran >= max_hooks or time.monotonic() > deadline:
                    raise HookFailed(f"not settled after {ran} hooks: {list(self.queue)[:5]}")
                self.run(self.queue.popleft())
                ran += 1
            before = self._snapshot()
            self.update_status()
            while self.queue:
                self.run(self.queue.popleft())
                ran += 1
            if self._snapshot() == before:
                return ran

    def run_until(self, done: Callable[[JujuSim], bool], max_hooks: int = 500) -> int:
        """Run queued hooks one by one until done(sim) holds (to act between two steps)."""
        for ran in range(max_hooks):
            if done(self):
                return ran
            if not self.queue:
                raise HookFailed("the queue ran dry before the condition held")
            self.run(self.queue.popleft())
        raise HookFailed(f"condition not reached after {max_hooks} hooks")

    def run(self, hook: Hook) -> None:
        unit = self.units[hook.uid]
        if not unit.alive:
            return
        kind, _, arg = hook.name.partition(":")
        if kind == "relation_joined" and arg.isdigit():
            unit.seen.add(int(arg))  # Juju lists the remote unit from its relation-joined on
        if kind == "relation_departed":  # ... and no longer in its relation-departed
            unit.seen.discard(int(arg.partition(":")[0]))
        state = self._state_for(unit)
        event = self._event(unit, hook.name, state)
        # Juju runs different units' hooks in parallel, one unit's one at a time: a hook waits for the
        # hook whose writes queued it and for the last hook of its own unit that changed anything
        status_before = (unit.state.unit_status, unit.error)
        _TRACE.clear()
        t0 = time.monotonic()
        try:
            with self._unit_env(hook.uid):
                out = unit.ctx.run(event, state)
        except Exception as e:  # the hook failed: Juju commits nothing, the unit is in error, retried later
            depth = 1 + max(hook.cause, unit.depth, self._news(unit, _TRACE))
            cause = e.__cause__ or e
            self.log.append(HookRecord(hook.uid, hook.name, time.monotonic() - t0, repr(cause), depth, hook.cause > 0))
            unit.error = f"hook failed: {hook.name}: {cause}"
            if hook.attempt >= self.max_attempts:
                raise HookFailed(f"unit {hook.uid} {hook.name} failed {hook.attempt}x: {cause!r}") from e
            self.queue.append(dataclasses.replace(hook, attempt=hook.attempt + 1))
            return
        unit.error = ""
        # each write waits for what the hook read before it (and for whatever queued the hook)
        key_depths: dict[str, int] = {}
        base, read_so_far, start = 1 + max(hook.cause, unit.depth), 0, 0
        for i, entry in enumerate(_TRACE):
            if entry == "" or entry.startswith("="):
                read_so_far = max(read_so_far, self._news(unit, _TRACE[start:i]))
                start = i + 1
                key_depths[entry[1:] or "secret"] = max(base, 1 + read_so_far)
        unit.depth = max(unit.depth, read_so_far, self._news(unit, _TRACE[start:]))  # its later hooks may use
        depth = max(key_depths.values(), default=1 + max(hook.cause, unit.depth))
        record = HookRecord(hook.uid, hook.name, time.monotonic() - t0, "", depth, hook.cause > 0)
        self.log.append(record)
        record.wrote = self._commit(unit, out, depth, key_depths)
        record.status_changed = (out.unit_status, "") != status_before
        if unit.dying and not any(h.uid == unit.uid for h in self.queue):
            self._gone(unit.uid)
        for check in self.after_hook:
            check(self)

    @contextlib.contextmanager
    def _unit_env(self, uid: int) -> Iterator[None]:
        """The environment a unit's hook process gets (which LXD it talks to)."""
        env = dict(self.env_for_unit(uid))
        saved = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        try:
            yield
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v

    def _commit(
        self, unit: UnitSim, out: testing.State, depth: int | None = None, key_depths: dict[str, int] | None = None
    ) -> bool:
        """Carry what a hook wrote to the others; returns whether it wrote anything they can read."""
        depth = 1 + unit.depth if depth is None else depth
        relation = out.get_relation(RELATION_ID)
        new_unit_data = dict(relation.local_unit_data)
        old_unit_data, old_app = unit.unit_data, dict(self.app_data)
        unit_changed = new_unit_data != unit.unit_data
        unit.unit_data = new_unit_data
        for secret in out.secrets:  # what this unit has now seen of each secret it owns or has read
            if secret.owner or secret.id in unit.tracked or getattr(secret, "_tracked_revision", 1) != _UNTRACKED:
                unit.tracked[secret.id] = dict(secret.tracked_content)
        unit.state = out
        if unit.uid == self.leader:
            for rid in self.remote:
                self.provided[rid] = dict(out.get_relation(rid).local_app_data)
        changed_secrets: list[str] = []
        for secret in out.secrets:
            if secret.owner:
                self.secret_values.update(secret.latest_content.values())
        owned = {s.id: s for s in out.secrets if s.owner == "unit"}
        before_owned = {sid for sid, (owner, _) in self.unit_secrets.items() if owner == unit.uid}
        for sid, (owner, old) in list(self.unit_secrets.items()):
            if owner == unit.uid and sid not in owned:
                del self.unit_secrets[sid]  # removed by its owner
            elif owner == unit.uid and old.latest_content != owned[sid].latest_content:
                changed_secrets.append(sid)
        self.unit_secrets.update({sid: (unit.uid, secret) for sid, secret in owned.items()})
        app_changed = pool_changed = False
        if unit.uid == self.leader:
            new_app = dict(relation.local_app_data)
            app_changed = new_app != self.app_data
            self.app_data = new_app
            new_pool = {s.id: s for s in out.secrets if s.owner == "app"}
            for sid, secret in new_pool.items():
                old = self.app_secrets.get(sid)
                if old is not None and old.latest_content != secret.latest_content:
                    changed_secrets.append(sid)
            pool_changed = new_pool.keys() != self.app_secrets.keys()
            self.app_secrets = new_pool
        key_depths = key_depths or {}
        unit_keys = {f"unit:{unit.uid}#{k}" for k in _changed(old_unit_data, new_unit_data)}
        app_keys = {f"app#{k}" for k in _changed(old_app, self.app_data)}
        for key in unit_keys | app_keys:
            self._wrote(key, key_depths.get(key, depth))
        unit_cause = max((key_depths.get(k, depth) for k in unit_keys), default=depth)
        app_cause = max((key_depths.get(k, depth) for k in app_keys), default=depth)
        secret_cause = key_depths.get("secret", depth)
        for other in self._live(exclude=unit.uid):
            if unit_changed and unit.uid in self.units[other].seen:  # Juju: only after relation-joined
                self._enqueue(Hook(other, f"relation_changed:{unit.uid}", cause=unit_cause))
            if app_changed:
                self._enqueue(Hook(other, "relation_changed:app", cause=app_cause))
            for sid in changed_secrets:
                if sid in self.units[other].tracked:  # Juju notifies units that track it
                    self._enqueue(Hook(other, f"secret_changed:{sid}", cause=secret_cause))
        wrote = unit_changed or app_changed or bool(changed_secrets) or owned.keys() != before_owned or pool_changed
        for sid in changed_secrets:
            self._wrote(f"secret:{sid}", secret_cause)
        if wrote:
            unit.depth = depth
        return wrote

    def _wrote(self, key: str, depth: int) -> None:
        self.writes[key] = (self.writes.get(key, (0, 0))[0] + 1, depth)

    def _news(self, unit: UnitSim, trace: list[str]) -> int:
        """The depth of the deepest write among `trace`'s reads (databag keys, secrets) that this unit
        reads for the first time: whatever queued the hook, a hook that reads new data waits for the
        hook that wrote it."""
        depth = 0
        reads = set(trace) - {""}
        whole = {read[:-2] for read in reads if read.endswith("#*")}
        for key, (number, wrote_at) in self.writes.items():
            bag = key.partition("#")[0]
            if bag == f"unit:{unit.uid}" or not (key in reads or bag in whole):
                continue
            if unit.read.get(key) != number:
                unit.read[key] = number
                depth = max(depth, wrote_at)
        return depth

    def _enqueue(self, hook: Hook) -> None:
        """Juju coalesces: a change to a databag whose relation-changed is still queued rides on it
        (which then also waits for this write)."""
        for queued in self.queue:
            if queued.uid == hook.uid and queued.name == hook.name:
                queued.cause = max(queued.cause, hook.cause)
                return
        self.queue.append(hook)

    # -- building each unit's view ----------------------------------------------------------
    def _state_for(self, unit: UnitSim) -> testing.State:
        peers = {o: dict(self.units[o].unit_data) for o in self._live(exclude=unit.uid) if o in unit.seen}
        relation = testing.PeerRelation(
            PEER,
            id=RELATION_ID,
            local_app_data=dict(self.app_data),
            local_unit_data=dict(unit.unit_data),
            peers_data=peers,
        )
        address = self.address_for_unit(unit.uid)
        network = testing.Network(
            PEER,
            # the lab's members carry their address on lab0, a /24 (what network-get says on a machine)
            bind_addresses=[
                testing.BindAddress([testing.Address(address, cidr=_cidr(address))], interface_name="lab0")
            ],
            ingress_addresses=[address],
            egress_subnets=[f"{address}/32"],
        )
        is_leader = unit.uid == self.leader
        secrets = []
        pool = [(sid, secret, is_leader) for sid, secret in self.app_secrets.items()]
        pool += [
            (sid, secret, owner == unit.uid)
            for sid, (owner, secret) in self.unit_secrets.items()
            if owner == unit.uid or self._granted(secret, unit)
        ]
        for sid, secret, mine in pool:
            if mine:
                secrets.append(secret)
            else:  # a peer reads the app's secret as an observer, from the revision it tracks
                tracked = unit.tracked.get(sid, secret.latest_content)
                seen = testing.Secret(tracked, latest_content=secret.latest_content, id=sid, owner=None)
                if sid not in unit.tracked:  # Juju: a unit tracks a secret (gets secret-changed) once it read it
                    object.__setattr__(seen, "_tracked_revision", _UNTRACKED)
                secrets.append(seen)
        others = [
            testing.Relation(
                endpoint,
                id=rid,
                remote_app_name=app,
                remote_app_data=dict(data),
                local_app_data=dict(self.provided[rid]),
                remote_units_data={0: {}},
            )
            for rid, (endpoint, app, data) in self.remote.items()
        ]
        return dataclasses.replace(
            unit.state,
            config=dict(self.config),
            relations=[relation, *others],
            networks=[network],
            secrets=secrets,
            leader=is_leader,
            planned_units=len([u for u in self._live() if not self.units[u].dying]),
        )

    def _granted(self, secret: testing.Secret, unit: UnitSim) -> bool:
        """A unit-owned secret is readable by another unit only when granted to its app or to it."""
        unit_name = f"{self.app}/{unit.uid}"
        return any(self.app in names or unit_name in names for names in secret.remote_grants.values())

    def _event(self, unit: UnitSim, name: str, state: testing.State) -> Any:
        on = unit.ctx.on
        if "@" in name:  # an event on a relation with another application
            kind, _, rid = name.partition("@")
            other = state.get_relation(int(rid))
            if kind in ("relation_created", "relation_broken"):
                return getattr(on, kind)(other)
            return getattr(on, kind)(other, remote_unit=0)
        kind, _, arg = name.partition(":")
        relation = state.get_relation(RELATION_ID)
        if kind in ("relation_created", "relation_joined", "relation_changed", "relation_departed"):
            remote = self.leader if arg in ("", "app") else int(arg.partition(":")[0])
            if kind == "relation_created":
                return on.relation_created(relation)
            if kind == "relation_departed":  # relation_departed:<remote>:<departing>
                remote_s, _, departing_s = arg.partition(":")
                remote, departing = int(remote_s), int(departing_s or remote_s)
                if departing == 0:  # ops-scenario 8.9 drops JUJU_DEPARTING_UNIT for unit id 0 (falsy
                    remote = 0  # check); ops then takes the remote unit, so make that the departing one
                return on.relation_departed(relation, remote_unit=remote, departing_unit=departing)
            return getattr(on, kind)(relation, remote_unit=remote)
        if kind in ("storage_attached", "storage_detaching"):
            return getattr(on, kind)(next(iter(state.storages)))
        if kind == "secret_changed":
            return on.secret_changed(next(s for s in state.secrets if s.id == arg))
        return getattr(on, kind)()

    # -- observations -----------------------------------------------------------------------
    def _live(self, exclude: int | None = None) -> list[int]:
        return [u for u, s in self.units.items() if s.alive and u != exclude]

    def _snapshot(self) -> tuple:
        return (
            tuple(sorted(self.app_data.items())),
            tuple(tuple(sorted(self.units[u].unit_data.items())) for u in self._live()),
            tuple(str(self.units[u].status) + self.units[u].error for u in self._live()),
        )

    def statuses(self) -> dict[int, Any]:
        return {u: self.units[u].status for u in self._live()}

    def hooks_run(self) -> int:
        return len(self.log)

    def rounds(self, include_status: bool = False) -> int:
        """Sequential hook rounds on the critical path: the longest chain of hooks each of which waited
        for the previous one (its writes queued it, or it ran after it on the same unit), ending in a
        hook that wrote something others read (with include_status: or changed only its status)."""
        return max(
            (r.depth for r in self.log if r.wrote or (include_status and r.status_changed)),
            default=0,
        )

    def floor(self) -> int:
        """Hooks the model queued whatever the charm wrote (install, start, relation-joined and
        -changed per pair, one update-status round): the part of hooks_run() no charm can save."""
        once = [r for r in self.log if not r.caused and not r.name.startswith(("action:", "update_status"))]
        return len(once) + len(self._live())  # and one update-status round
