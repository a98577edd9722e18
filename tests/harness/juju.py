"""Playing Juju without Juju: run the unchanged charm for N units through ops.testing.

Each unit has its own Context (unit_id; `context_factory` makes it, by default an ops.testing
Context) and State; all share one peer relation. After every hook the driver carries what the unit
wrote (its unit databag; the app databag and the app-owned secrets when it is the leader) into the
other units' states and queues the events real Juju would fire for that change. `settle()` runs
hooks until nothing changes.

It follows Juju 3.6's uniter, each rule with the Juju source line beside its code (the table in
docs/reliability.md lists them with their tests):
- a new unit enters the peer relation's scope only at its relation-created hook: storage-attached and
  install see no peer relation; peers see each other from relation-joined on;
- `remove_unit`: the unit is dying at once. The others see it depart at once (their relation-departed
  for it is queued, it leaves their relation); it runs only its departure hooks (storage-detaching,
  then relation-departed/-broken for each non-peer relation, then the peer relation-departed hooks,
  then stop and remove) and actions; it goes after `remove`, with the secrets it owns;
- a hook that raises commits nothing but its status-set; the unit is in error and retries that one
  hook, running no other hook meanwhile (actions still run). Juju retries forever with a backoff of
  5 s to 5 min; here `max_attempts` retries per `settle()` bound a test: then HookFailed is raised
  and the hook stays queued, so the next settle() retries it (Juju's next retry, or `juju resolve`);
- the leader gets relation-changed for its own app-databag writes; an app change has no remote unit;
- any first read of a secret tracks it (then secret-changed fires on each new revision); every unit
  finds an app-owned secret by its label; a unit-owned label that an app-owned secret uses (or the
  reverse) fails the hook at commit; a removed unit's secrets are deleted;
- every hook and action finds Juju's `goal-state` tool on PATH (every non-dead unit with its status,
  or `dying`; each non-peer relation's remote application and units), and planned units agree;
- `unrelate`: each unit runs relation-departed for the remote unit, then relation-broken;
- every hook gets the model's proxy (`set_model_proxy`) as JUJU_CHARM_HTTP_PROXY, _HTTPS_PROXY,
  _FTP_PROXY and _NO_PROXY, empty when unset; a change queues no hook here (a test runs one).
Simplified, and documented where it is: hooks of all units run one at a time from one FIFO queue
(Juju runs different units' hooks concurrently: inside `interleaved()`, a hook that waits lets the
other units' next hooks run first); unit 0 is the first leader and the lowest-numbered
staying unit succeeds a removed leader (Juju: whichever unit claims the lease first); each related
application has one unit, N/0; a hook reads every peer's latest databag (Juju caches a member's
settings across hooks); action parameters are checked at the top level of their schema only.

It plays Juju 3.6 by default; `juju_version="2.9"` or `"4.0"` plays those (JujuProfile: JUJU_VERSION,
the secret-* tools, option types, the action and relation commands of `cli()`, series or bases, the
upgrade target variables, the action schema default), each difference with its source line beside it.

Which LXD each unit talks to is the only thing the driver injects: `env_for_unit(uid)` gives the
environment a unit's hooks run with (LXD_DIR, as LXD itself reads it), `address_for_unit(uid)`
its address on the `cluster` binding.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import datetime
import errno
import ipaddress
import json
import os
import shlex
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml
from ops import testing
from scenario import _ops_main_mock, _runtime
from scenario import mocking as _mocking
from scenario.state import _EntityStatus

_MODEL_PROXY = {
    "juju-http-proxy": "JUJU_CHARM_HTTP_PROXY",
    "juju-https-proxy": "JUJU_CHARM_HTTPS_PROXY",
    "juju-ftp-proxy": "JUJU_CHARM_FTP_PROXY",
    "juju-no-proxy": "JUJU_CHARM_NO_PROXY",
}


class _LibYAML:
    """ops.testing writes the charm's metadata, config and actions YAML before every hook with
    PyYAML's pure-Python dumper (a third of a hook's time here); the same text from libyaml."""

    @staticmethod
    def safe_dump(data: Any, **kw: Any) -> str:
        return yaml.dump(data, Dumper=getattr(yaml, "CSafeDumper", yaml.SafeDumper), **kw)


_runtime.yaml = _LibYAML  # type: ignore[assignment]

# The hook's own time: ops' dispatch as a hook process runs it after start-up (framework and charm made,
# the event emitted, collect-status, commit; the hook tools answered in memory), without what the
# driver does around it (ops.testing's state copies and consistency checks, the virtual charm root)
_DISPATCH = [0.0]


def _timed(method: Callable[..., Any]) -> Callable[..., Any]:
    def timed(*args: Any, **kw: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return method(*args, **kw)
        finally:
            _DISPATCH[0] += time.perf_counter() - t0

    return timed


_ops_main_mock.Ops.__init__ = _timed(_ops_main_mock.Ops.__init__)  # type: ignore[method-assign]
_ops_main_mock.Ops.run = _timed(_ops_main_mock.Ops.run)  # type: ignore[method-assign]

# What a hook reads (relation-get, secret-get) and when it writes (relation-set, secret-add/-set, ""), in
# order: a write waits for the hooks that wrote what was read before it.
_TRACE: list[str] = []
_relation_get = _mocking._MockModelBackend.relation_get
_secret_get = _mocking._MockModelBackend.secret_get
_writers = {name: getattr(_mocking._MockModelBackend, name) for name in ("secret_add", "secret_set")}
_relation_set = _mocking._MockModelBackend.relation_set
_status_set = _mocking._MockModelBackend.status_set
_event_env = _runtime.Runtime._get_event_env
_SECRET_READS: list[tuple[str, bool]] = []  # (secret id, refresh) for each secret-get of the running hook
_STATUS_SET: list[tuple[str, str]] = []  # the running hook's unit status-set calls (Juju applies them at once)
_EVENT_ENV: dict[str, str | None] = {}  # JUJU_* variables the running hook gets as Juju sets them (None: unset)
_HOOK_TOOLS_MISSING: set[str] = set()  # hook tools the running unit's Juju does not have (its profile)
_MISSING_CALLED: list[str] = []  # the running hook's calls of such tools


@dataclasses.dataclass(frozen=True)
class JujuProfile:
    """What a Juju version gives a machine charm, where 2.9 LTS, 3.6 LTS and 4.0 differ."""

    name: str  # juju29, juju36, juju40: the test ids
    version: str  # JUJU_VERSION in every hook
    # the secret-* hook tools: Juju secrets came with 3.0 (worker/uniter/runner/jujuc `secretCommands`;
    # ops/scenario gate them at 3.0.2, scenario/mocking.py:253 `secrets are only available in juju >= 3.0.2`)
    secrets: bool
    # config option types the controller accepts: 2.9's charm library knows four (juju/charm v8 config.go
    # ReadConfig `case "string", "int", "float", "boolean"`, else `invalid config: option %q has unknown
    # type %q`); 3.x adds "secret" (juju/juju internal/charm/config.go `case "string", "secret", ...`)
    option_types: frozenset[str]
    action_command: str  # 2.9 `juju run-action` (cmd/juju/action/runaction.go), 3.x `juju run` (run.go)
    relate_commands: frozenset[str]  # 2.9 add-relation, alias relate; 3.x integrate, alias relate (integrate.go Info)
    # the OS of a deploy: 4.0 removed series, bases only (docs/releasenotes/juju_4.0.x/juju_4.0.0.md
    # "Series fully retired in favor of bases"); 2.9 names series only (--series)
    deploy_flags: frozenset[str]
    # the upgrade-series hooks' target: 2.9 `juju upgrade-series` sets JUJU_TARGET_SERIES; 3.6 `juju
    # upgrade-machine` sets JUJU_TARGET_BASE and JUJU_TARGET_SERIES (worker/uniter/runner/context/context.go
    # HookVars, `if ctx.baseUpgradeTarget != ""`); 4.0 removed upgrade-machine and JUJU_TARGET_SERIES
    # (docs/howto upgrade 3.6 -> 4.0: "JUJU_TARGET_SERIES removed", "upgrade-machine ... removed")
    upgrade_command: str | None
    target_vars: tuple[str, ...]
    # an action schema without additionalProperties: 4.0 defaults it to false (upgrade 3.6 -> 4.0, item 8)
    additional_properties: bool


_TYPES_29 = frozenset({"string", "int", "float", "boolean"})
PROFILES = {
    # 2.9.52 (7 July 2025) is the last 2.9 release (docs/reference/juju/juju-roadmap-and-releases.md)
    "2.9": JujuProfile(
        "juju29", "2.9.52", False, _TYPES_29, "run-action", frozenset({"add-relation", "relate"}),
        frozenset({"--series"}), "upgrade-series", ("JUJU_TARGET_SERIES",), True,
    ),
    "3.6": JujuProfile(
        "juju36", "3.6.14", True, _TYPES_29 | {"secret"}, "run", frozenset({"integrate", "relate"}),
        frozenset({"--base", "--series"}), "upgrade-machine", ("JUJU_TARGET_BASE", "JUJU_TARGET_SERIES"), True,
    ),
    "4.0": JujuProfile(
        "juju40", "4.0.1", True, _TYPES_29 | {"secret"}, "run", frozenset({"integrate", "relate"}),
        frozenset({"--base"}), None, (), False,
    ),
}  # fmt: skip
SECRET_TOOLS = frozenset(
    f"secret-{t}" for t in ("add", "get", "info-get", "set", "grant", "revoke", "remove", "ids")
)  # jujuc secretCommands
_SERIES = {"ubuntu@20.04": "focal", "ubuntu@22.04": "jammy", "ubuntu@24.04": "noble"}


class JujuRefused(RuntimeError):
    """What the juju client or controller says when it refuses a command (nothing is changed)."""


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
    sid = self._get_secret(id, label).id
    _TRACE.append(f"secret:{sid}")
    _SECRET_READS.append((sid, bool(kw.get("refresh"))))
    return content


def _recording_status_set(self: Any, status: str, message: str = "", *, is_app: bool = False) -> None:
    _status_set(self, status, message, is_app=is_app)
    if not is_app:
        _STATUS_SET.append((status, message))


def _juju_event_env(self: Any, state: Any, event: Any, charm_root: Path) -> dict[str, str]:
    """The hook's environment with the JUJU_* variables the driver sets as Juju would (scenario
    can name neither no remote unit on relation-changed nor a local departing unit)."""
    env = _event_env(self, state, event, charm_root)
    for key, value in _EVENT_ENV.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


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
_mocking._MockModelBackend.status_set = _recording_status_set  # type: ignore[method-assign]
_runtime.Runtime._get_event_env = _juju_event_env  # type: ignore[method-assign]


def _missing_tool(tool: str, method: Callable[..., Any]) -> Callable[..., Any]:
    """A secret call on a Juju without the secret-* tools fails as a missing executable does: ops runs
    the tool with subprocess.run (ops/hookcmds/_utils.py:64) and translates only a tool's non-zero
    exit (ops/model.py:3638 `except hookcmds.Error`), so the FileNotFoundError reaches the charm."""

    def call(*args: Any, **kw: Any) -> Any:
        if tool in _HOOK_TOOLS_MISSING:
            _MISSING_CALLED.append(tool)
            raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), tool)
        return method(*args, **kw)

    return call


for _name in [n for n in vars(_mocking._MockModelBackend) if n.startswith("secret_")]:
    _tool = _name.replace("_", "-")
    setattr(_mocking._MockModelBackend, _name, _missing_tool(_tool, getattr(_mocking._MockModelBackend, _name)))

PEER = "cluster"
STORAGE = "local"
RELATION_ID = 1
# What a dying unit still runs: worker/uniter/resolver.go:360-379 (`case life.Dying`: storage, relation
# departure, stop, remove), plus actions (actions/resolver.go:106)
DEPARTURE = {"storage_detaching", "relation_departed", "relation_broken", "stop", "remove"}
# The goal-state hook tool (worker/uniter/runner/jujuc/goal-state.go): yaml by default, json on request;
# shell builtins only, as a hook's PATH may hold nothing else
_GOAL_STATE_TOOL = """#!/bin/sh
case " $* " in
  *json*) file="{dir}/goal-state.json" ;;
  *) file="{dir}/goal-state.yaml" ;;
esac
while IFS= read -r line || [ -n "$line" ]; do printf '%s\\n' "$line"; done < "$file"
"""


def _yaml_v2(text: str) -> Any:
    """A CLI action value as the juju client's gopkg.in/yaml.v2 reads it into interface{} (YAML 1.1 as
    PyYAML, but resolve.go also takes y/Y/n/N as booleans and knows neither base-60 numbers nor
    timestamps, which stay strings)."""
    if text in ("y", "Y", "n", "N"):
        return text in ("y", "Y")
    value = yaml.safe_load(text) if text else ""
    if isinstance(value, (datetime.date, datetime.datetime)) or (isinstance(value, int) and ":" in text):
        return text
    return value


def _cidr(address: str) -> str:
    return str(ipaddress.ip_interface(f"{address}/24").network)


def _kind(name: str) -> str:
    """A hook's kind: relation_changed for relation_changed:app, relation_broken@3, ..."""
    return name.partition(":")[0].partition("@")[0]


def _since(moment: datetime.datetime) -> str:
    """Juju's goal-state time format (cmd/juju/common FormatTime(t, true): UTC, "2006-01-02 15:04:05Z")."""
    return moment.astimezone(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


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
    dispatch: float = 0.0  # of `seconds`, ops' dispatch in this process (0 where the hook ran elsewhere)
    wrote: bool = False  # changed a databag or a secret others can read
    status_changed: bool = False


@dataclasses.dataclass
class UnitSim:
    uid: int
    ctx: Any  # what context_factory made: .run(event, state), .on, .charm_spec, .juju_log, action results
    state: testing.State
    unit_data: dict[str, str] = dataclasses.field(default_factory=dict)
    tracked: dict[str, dict[str, str]] = dataclasses.field(default_factory=dict)  # secret id -> tracked content
    alive: bool = True
    dying: bool = False  # `juju remove-unit` ran: it runs its departure hooks, then goes
    error: str = ""  # the hook that failed (Juju: `error: hook failed: ...`), until that hook succeeds
    failed: Hook | None = None  # that hook's retry, the only hook the unit runs until it succeeds
    scope: set[int] = dataclasses.field(default_factory=set)  # relations it has entered (relation-created on)
    seen: set[int] = dataclasses.field(default_factory=set)  # peers it has had relation-joined for
    goal: tuple[str, datetime.datetime] = ("waiting", datetime.datetime.min)  # goal-state status, since
    depth: int = 0  # depth of its last hook that wrote something, or of the deepest write it has read
    read: dict[str, int] = dataclasses.field(default_factory=dict)  # data it has seen: key -> write number

    @property
    def status(self) -> Any:
        return self.state.unit_status


class HookFailed(RuntimeError):
    pass


class _CommitRefused(RuntimeError):
    """Juju refused the hook's changes at commit: the hook fails, nothing of it is kept."""


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
        juju_version: str = "3.6",  # the Juju it plays: a key of PROFILES (2.9, 3.6, 4.0)
    ):
        self.charm_type = charm_type
        self.env_for_unit = env_for_unit
        self.address_for_unit = address_for_unit
        self.storage_for_unit = storage_for_unit
        self.config = dict(config or {})
        self.app = app
        self.max_attempts = max_attempts
        self.profile = PROFILES[juju_version]
        # JUJU_VERSION in every hook: ops.testing.Context sets it from juju_version (scenario/_runtime.py:73)
        self.context_kw = {"juju_version": self.profile.version, **(context_kw or {})}
        self.context_factory = context_factory
        self.units: dict[int, UnitSim] = {}
        self.leader: int | None = None
        self.app_data: dict[str, str] = {}
        self.app_secrets: dict[str, testing.Secret] = {}  # as the leader owns them
        self.unit_secrets: dict[str, tuple[int, testing.Secret]] = {}  # id -> (owner uid, secret)
        self.user_secrets: dict[str, testing.Secret] = {}  # the model's secrets granted to this app
        # other applications related to this one: relation id -> the remote app's databag, and
        # what our leader wrote into our side of it
        self.remote: dict[int, tuple[str, str, dict[str, str]]] = {}  # id -> (endpoint, app, data)
        self.provided: dict[int, dict[str, str]] = {}
        self.related_at: dict[int, datetime.datetime] = {}
        self.removing: set[int] = set()  # relations `unrelate` is removing (Juju: dying)
        self.queue: collections.deque[Hook] = collections.deque()
        self.log: list[HookRecord] = []
        # the model's juju-http-proxy, juju-https-proxy, juju-no-proxy (juju model-config)
        self.model_proxy: dict[str, str] = {}
        self.after_hook: list[Callable[[JujuSim], None]] = []  # invariants checked after each hook
        self.secret_values: set[str] = set()  # every secret value any unit ever wrote
        self.missing_tool_calls: list[tuple[int, str]] = []  # (unit, tool): a call of a tool its Juju lacks
        # the last write of each databag / secret: key (app, unit:<uid>, secret:<id>) -> (number, depth)
        self.writes: dict[str, tuple[int, int]] = {}
        self._in_hook: list[int] = []  # units whose hook is running (more than one only in interleaved())
        self._failed_meanwhile: HookFailed | None = None  # a hook run during another's wait gave up
        self._tools = tempfile.TemporaryDirectory(prefix="jujusim-tools-")
        tool = Path(self._tools.name, "goal-state")
        tool.write_text(_GOAL_STATE_TOOL.format(dir=self._tools.name))
        tool.chmod(0o755)

    # -- model operations -------------------------------------------------------------------
    def _check_charm(self, spec: Any) -> None:
        """The controller reads the charm's config.yaml at deploy and refuses an option type it does
        not know (see JujuProfile.option_types)."""
        for name, option in ((spec.config or {}).get("options") or {}).items():
            kind = option.get("type") or "string"
            if kind not in self.profile.option_types:
                raise JujuRefused(f'invalid config: option "{name}" has unknown type "{kind}"')

    def cli(self, line: str) -> Any:
        """One `juju ...` command line as this Juju's client takes it: deploy, add-unit, remove-unit,
        config, the action command (`run-action --wait` on 2.9, `run` on 3.x/4.x) and the relation
        command. A command this version does not have is refused as its client refuses it."""
        words = shlex.split(line)
        if words[:1] != ["juju"] or len(words) < 2:
            raise JujuRefused(f"not a juju command: {line!r}")
        command, args = words[1], words[2:]
        if command in ("run-action", "run") and command != self.profile.action_command:
            # 3.0 removed run-action; on 2.9 `juju run` runs commands on machines (--unit/--machine)
            raise JujuRefused(f"juju {command}: not the action command of Juju {self.profile.version}")
        if command == self.profile.action_command:
            return self._cli_action(args)
        if command in ("integrate", "relate", "add-relation"):
            if command not in self.profile.relate_commands:
                raise JujuRefused(f'ERROR juju: "{command}" is not a juju command')
            ours = [a for a in args if a.split(":")[0] == self.app]
            (mine,) = ours
            (theirs,) = [a for a in args if a is not mine]
            return self.relate(mine.partition(":")[2], theirs.split(":")[0])
        if command == "deploy":
            flags = {a.split("=")[0] for a in args if a.startswith("--")}
            for flag in sorted(flags & {"--series", "--base"} - self.profile.deploy_flags):
                raise JujuRefused(f"ERROR option provided but not defined: {flag}")
            n = int(args[args.index("-n") + 1]) if "-n" in args else 1
            return self.deploy(n)
        if command == "add-unit":
            n = int(args[args.index("-n") + 1]) if "-n" in args else 1
            return [self.add_unit() for _ in range(n)]
        if command == "remove-unit":
            return self.remove_units(*(int(a.rsplit("/", 1)[1]) for a in args if "/" in a))
        if command == "config":
            self.set_config(**{k: v for k, _, v in (a.partition("=") for a in args[1:])})
            return None
        raise JujuRefused(f"not played by JujuSim: juju {command}")

    def _cli_action(self, args: list[str]) -> ActionOutcome:
        """`juju run-action --wait <unit> <action> k=v ...` (2.9) or `juju run <unit> <action> k=v ...`
        (3.x): each value is parsed as YAML (yaml.v2) unless --string-args (runaction.go Run, run.go
        enqueueActions: `if !c.parseStrings { yaml.Unmarshal(value) }`); keys split on dots."""
        strings = "--string-args" in args
        words = [a for a in args if not a.startswith("--")]
        if self.profile.action_command == "run-action" and not any(a.startswith("--wait") for a in args):
            raise JujuRefused("run-action without --wait only queues the action (no results): add --wait")
        unit, name, *pairs = words
        params: dict[str, Any] = {}
        for pair in pairs:
            key, eq, value = pair.partition("=")
            if not eq:
                raise JujuRefused(f'argument "{pair}" must be of the form key...=value')
            *path, last = key.split(".")
            into = params
            for part in path:
                into = into.setdefault(part, {})
            into[last] = value if strings else _yaml_v2(value)
        which = unit.rsplit("/", 1)[1]  # <app>/leader: the leader's unit (runaction.go, run.go validLeader)
        return self.run_action(self.leader if which == "leader" else int(which), name, **params)

    def upgrade_machine(self, uid: int, base: str) -> None:
        """`juju upgrade-series <machine> prepare <series>` (2.9) / `juju upgrade-machine <machine>
        prepare <base>` (3.6): the unit runs pre-series-upgrade with the target variables its Juju
        sets (JujuProfile.target_vars). 4.0 has neither the command nor the variables."""
        if self.profile.upgrade_command is None:
            raise JujuRefused(f"Juju {self.profile.version} removed upgrade-machine: move to a machine on {base}")
        self._queue(Hook(uid, f"pre_series_upgrade:{_SERIES[base]}"))

    def add_unit(self) -> int:
        """`juju add-unit`: a new unit, with the hooks Juju fires on a fresh machine (its joins with
        the others are queued when it enters the peer relation's scope, at its relation-created)."""
        uid = max(self.units, default=-1) + 1
        # the unit's charm directory on its machine (JUJU_CHARM_DIR, /var/lib/juju/agents/unit-<app>-<n>/charm):
        # what a hook leaves there the next hook finds (scenario's default is a new temporary one per hook)
        charm_dir = self.charm_dir(uid)
        charm_dir.mkdir(parents=True, exist_ok=True)
        kw = {"charm_root": charm_dir, **self.context_kw}
        ctx = self.context_factory(self.charm_type, app_name=self.app, unit_id=uid, **kw)
        self._check_charm(ctx.charm_spec)
        ctx.block_device = self.storage_for_unit(uid)
        storages = [testing.Storage(STORAGE, index=uid)] if ctx.block_device else []
        self.units[uid] = UnitSim(uid, ctx, testing.State(storages=storages), goal=("waiting", _now()))
        first = self.leader is None
        if first:  # Juju: whichever unit claims the lease first; here the first unit, deterministic
            self.leader = uid
        if storages:  # Juju attaches storage before install
            self._queue(Hook(uid, "storage_attached"))
        self._queue(Hook(uid, "install"))
        # the unit enters relation scope only once installed (relation/resolver.go:396-408)
        self._queue(Hook(uid, "relation_created"))
        others = [rid for rid in self.remote if rid not in self.removing]
        for rid in others:
            self._queue(Hook(uid, f"relation_created@{rid}"))
        if first:
            self._queue(Hook(uid, "leader_elected"))
        self._queue(Hook(uid, "config_changed"))
        self._queue(Hook(uid, "start"))
        return uid

    def charm_dir(self, uid: int) -> Path:
        """The unit's charm directory on its machine (what its hooks see as JUJU_CHARM_DIR)."""
        return Path(self._tools.name, f"unit-{self.app}-{uid}", "charm")

    def deploy(self, n: int) -> list[int]:
        return [self.add_unit() for _ in range(n)]

    def elect(self, uid: int) -> None:
        """Juju moves leadership to uid (leader-elected fires there)."""
        self.leader = uid
        self._queue(Hook(uid, "leader_elected"))

    def add_user_secret(self, **content: str) -> str:
        """`juju add-secret NAME k=v`, then `juju grant-secret NAME <this app>`: every unit of the app
        may read it, by id (juju/juju apiserver/common/secrets/access.go:71-82, CanRead: a unit reads
        what its application was granted view on). Returns the secret URI for the config."""
        secret = testing.Secret(dict(content), owner=None)
        self.user_secrets[secret.id] = secret
        self.secret_values.update(content.values())
        return secret.id

    def set_model_proxy(self, **settings: str) -> None:
        """`juju model-config juju-http-proxy=... juju-https-proxy=... juju-no-proxy=...` (keys with
        underscores: juju_http_proxy=...); an empty value unsets. No hook is queued: the units see it
        from their next hook on (a test runs one, e.g. update_status)."""
        for key, value in settings.items():
            self.model_proxy[key.replace("_", "-")] = value

    def set_config(self, **changes: Any) -> None:
        self.config.update(changes)
        for uid in self._live():
            self._queue(Hook(uid, "config_changed"))

    def remove_unit(self, uid: int) -> None:
        """`juju remove-unit`: see remove_units."""
        self.remove_units(uid)

    def remove_units(self, *uids: int) -> None:
        """`juju remove-unit a b`: every unit named is dying at once (goal state says so; planned units
        drop) and the others see it depart at once. Each runs only its departure hooks, interleaved with
        the others': storage-detaching, relation-departed and -broken for each non-peer relation, the
        peer relation-departed hooks, stop, remove. A unit whose hook fails stays, in error, retrying
        it; once `remove` succeeded it goes and, if it led, a successor is elected."""
        uids = tuple(uid for uid in uids if not self.units[uid].dying)  # remove-unit of a dying unit: no-op
        for uid in uids:
            unit = self.units[uid]
            unit.dying = True
            # a dying unit runs nothing else (resolver.go:360-379); a failed hook's retry stays first
            # (resolver.go: a hook in error is retried before the unit's life is looked at)
            self.queue = collections.deque(
                h for h in self.queue if h.uid != uid or _kind(h.name) in DEPARTURE or h is unit.failed
            )
        plans = {uid: self._departure(uid) for uid in uids}
        for uid in uids:  # the others see it depart at once: PrepareLeaveScope at remove-unit
            self._depart_others(uid)  # (state/cleanup.go ~897-923, state/relationunit.go:296-314)
        for i in range(max((len(p) for p in plans.values()), default=0)):
            for uid in uids:
                if i < len(plans[uid]):
                    self._queue(Hook(uid, plans[uid][i]))

    def _departure(self, uid: int) -> list[str]:
        """A dying unit's hooks, in Juju's order."""
        unit = self.units[uid]
        hooks = []
        if unit.ctx.block_device:  # the storage resolver runs before nextOp (resolver.go:158, :360)
            hooks.append("storage_detaching")
        # then each non-peer relation: relation-departed for its remote unit, then relation-broken
        # (relation/resolver.go:134-140, :273 `remoteBroken && !isPeer`)
        for rid in sorted(unit.scope - {RELATION_ID}):
            hooks += [f"relation_departed@{rid}", f"relation_broken@{rid}"]
        hooks += [f"relation_departed:{other}:{uid}" for other in sorted(unit.seen)]  # peers last (:79)
        return [*hooks, "stop", "remove"]  # then stop, then remove (resolver.go:360-379)

    def _depart_others(self, uid: int) -> None:
        """The other units drop uid from their relation at once and get relation-departed for it (only
        those that had joined it: Juju skips a join it can no longer run)."""
        for other in self._live(exclude=uid):
            unit = self.units[other]
            if unit.dying:  # its own departure departs uid as well
                continue
            self.queue = collections.deque(
                h
                for h in self.queue
                if not (h.uid == other and h.name in (f"relation_joined:{uid}", f"relation_changed:{uid}"))
            )
            if uid in unit.seen:
                unit.seen.discard(uid)
                self._queue(Hook(other, f"relation_departed:{uid}:{uid}"))

    def _gone(self, uid: int) -> None:
        """A unit leaves the model: the secrets it owns go with it (state/unit.go RemoveUnitOperation.Done
        -> deleteUnitSecrets, ~:1052, :625-635); a leader's lease ends and another unit takes it
        (leadership/resolver.go:52-62: a dying leader keeps it until then)."""
        unit = self.units[uid]
        unit.alive = False
        for sid in [sid for sid, (owner, _) in self.unit_secrets.items() if owner == uid]:
            del self.unit_secrets[sid]
            for other in self.units.values():
                other.tracked.pop(sid, None)
        others = self._live()
        if self.leader == uid and others:
            staying = [o for o in others if not self.units[o].dying]
            self.elect(min(staying or others))  # Juju: whichever claims the lease first

    def vanish(self, uid: int) -> None:
        """The unit's machine disappears without running any hook (`remove-unit --force`)."""
        self._depart_others(uid)
        self._gone(uid)

    def relate(self, endpoint: str, remote_app: str, data: Mapping[str, str] | None = None) -> int:
        """`juju integrate`: another application (one unit, <remote_app>/0) on `endpoint`, its app
        databag `data`."""
        rid = max([RELATION_ID, *self.remote]) + 1
        self.remote[rid] = (endpoint, remote_app, dict(data or {}))
        self.provided[rid] = {}
        self.related_at[rid] = _now()
        for uid in self._live():
            self._queue(Hook(uid, f"relation_created@{rid}"))  # its joins are queued when it has run
        return rid

    def set_remote_data(self, rid: int, data: Mapping[str, str]) -> None:
        """The remote application's leader rewrites its app databag: relation-changed with no remote
        unit (relation/resolver.go:303)."""
        endpoint, app, _ = self.remote[rid]
        self.remote[rid] = (endpoint, app, dict(data))
        for uid in self._live():
            if rid in self.units[uid].scope:
                self._enqueue(Hook(uid, f"relation_changed@{rid}:app"))

    def unrelate(self, rid: int) -> None:
        """`juju remove-relation`: each unit runs relation-departed for the remote unit, then
        relation-broken (relation/resolver.go:231-285); the relation is gone once every unit left it."""
        self.removing.add(rid)
        for uid in self._live():
            mine = [h for h in self.queue if h.uid == uid and h.name.partition("@")[2].partition(":")[0] == str(rid)]
            pending = {id(h) for h in mine if _kind(h.name) not in ("relation_departed", "relation_broken")}
            self.queue = collections.deque(h for h in self.queue if id(h) not in pending)
            leaving = any(_kind(h.name) == "relation_broken" for h in mine)  # a dying unit's own departure
            if rid in self.units[uid].scope and not leaving:
                self._queue(Hook(uid, f"relation_departed@{rid}"))
                self._queue(Hook(uid, f"relation_broken@{rid}"))
        self._drop_relation_if_left(rid)

    def _drop_relation_if_left(self, rid: int) -> None:
        if rid in self.removing and not any(rid in self.units[u].scope for u in self._live()):
            self.removing.discard(rid)
            del self.remote[rid], self.provided[rid], self.related_at[rid]

    def run_action(self, uid: int, name: str, /, **params: Any) -> ActionOutcome:
        """`juju run <unit> <action>`: results, logs and the failure message (empty on success). Actions
        run on a unit in hook error and on a dying unit (actions/resolver.go:106)."""
        unit = self.units[uid]
        ctx = unit.ctx
        refused = self._check_params(ctx, name, params)
        if refused:  # Juju validates against actions.yaml before the charm runs
            self.log.append(HookRecord(uid, f"action:{name}", 0.0, refused))
            return ActionOutcome({}, [], refused)
        self._begin()
        try:
            with self._unit_env(uid):
                out = ctx.run(ctx.on.action(name, params=params), self._state_for(unit))
            failure = ""
        except testing.ActionFailed as e:
            out, failure = e.state, e.message
        finally:
            self._end(unit)
        outcome = ActionOutcome(dict(ctx.action_results or {}), list(ctx.action_logs), failure)
        self.log.append(HookRecord(uid, f"action:{name}", 0.0, failure))
        if out is not None:
            self._commit(unit, out)
        return outcome

    def _check_params(self, ctx: testing.Context, name: str, params: Mapping[str, Any]) -> str:
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
        if spec.get("additionalProperties", self.profile.additional_properties) is False:
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
            self._enqueue(Hook(uid, "update_status"))

    # -- running hooks ----------------------------------------------------------------------
    def settle(self, max_hooks: int = 500, timeout: float = 900.0) -> int:
        """Run queued hooks until none can run, then one update-status round; returns hooks run."""
        ran, deadline = 0, time.monotonic() + timeout
        while True:
            while (hook := self._pop()) is not None:
                if ran >= max_hooks or time.monotonic() > deadline:
                    self.queue.appendleft(hook)
                    raise HookFailed(f"not settled after {ran} hooks: {list(self.queue)[:5]}")
                self.run(hook)
                ran += 1
            before = self._snapshot()
            self.update_status()
            while (hook := self._pop()) is not None:
                self.run(hook)
                ran += 1
            if self._snapshot() == before:
                return ran

    def run_until(self, done: Callable[[JujuSim], bool], max_hooks: int = 500) -> int:
        """Run queued hooks one by one until done(sim) holds (to act between two steps)."""
        for ran in range(max_hooks):
            if done(self):
                return ran
            hook = self._pop()
            if hook is None:
                raise HookFailed("the queue ran dry before the condition held")
            self.run(hook)
        raise HookFailed(f"condition not reached after {max_hooks} hooks")

    @contextlib.contextmanager
    def interleaved(self) -> Iterator[None]:
        """Different units' hooks at the same time, as Juju runs them: each unit agent has its own uniter,
        which runs that unit's hooks one at a time (worker/uniter/uniter.go loop; the machine agent starts
        one unit agent per unit). Inside this block, a hook that waits (time.sleep) first lets the next
        queued hook of every other unit not in a hook run, as if it had run during the wait; then the wait
        passes. Outside it, hooks run one after another (a sequential order Juju may also take)."""
        real_sleep = time.sleep

        def sleep(seconds: float) -> None:
            self._run_others()
            real_sleep(seconds)

        time.sleep = sleep
        try:
            yield
        finally:
            time.sleep = real_sleep
        if self._failed_meanwhile is not None:
            failed, self._failed_meanwhile = self._failed_meanwhile, None
            raise failed

    def _run_others(self) -> None:
        """Run the next hook of each unit not in a hook (called from inside a running hook); the running
        hook's own records (what it read, wrote and set) are put back afterwards."""
        saved = (list(_TRACE), list(_SECRET_READS), list(_STATUS_SET), dict(_EVENT_ENV), _DISPATCH[0])
        environ = dict(os.environ)  # each hook is its own process in Juju: the waiting hook's env is not theirs
        os.environ.pop("OPERATOR_DISPATCH", None)  # ops' mark of a running dispatch (ops/_main.py)
        try:
            for uid in sorted(self.units):
                unit = self.units[uid]
                if uid in self._in_hook or not unit.alive:
                    continue
                hook = next((h for h in self.queue if h.uid == uid and (unit.failed is None or h is unit.failed)), None)
                if hook is None:
                    continue
                self.queue.remove(hook)
                try:
                    self.run(hook)
                except HookFailed as e:  # raised at the end of interleaved(), not into the waiting charm
                    self._failed_meanwhile = e
        finally:
            os.environ.clear()
            os.environ.update(environ)
            _TRACE[:], _SECRET_READS[:], _STATUS_SET[:] = saved[:3]
            _EVENT_ENV.clear()
            _EVENT_ENV.update(saved[3])
            _DISPATCH[0] = saved[4]

    def _pop(self) -> Hook | None:
        """The next hook that may run: a unit in hook error runs only that hook's retry (resolver.go
        RunHook/Pending -> nextOpHookError); its other hooks wait behind it. None when none may run."""
        for hook in self.queue:
            unit = self.units[hook.uid]
            if not unit.alive or unit.failed is None or hook is unit.failed:
                self.queue.remove(hook)
                return hook
        return None

    def run(self, hook: Hook) -> None:
        self._in_hook.append(hook.uid)
        try:
            self._run(hook)
        finally:
            self._in_hook.pop()

    def _run(self, hook: Hook) -> None:
        unit = self.units[hook.uid]
        if not unit.alive:
            return
        kind, _, arg = hook.name.partition(":")
        if kind == "relation_created":  # the unit enters the peer relation's scope (relation/resolver.go:396-408)
            self._enter_scope(unit)
        elif kind.startswith("relation_created@"):
            self._enter_remote_scope(unit, int(kind.partition("@")[2]))
        if kind == "relation_joined" and arg.isdigit():
            unit.seen.add(int(arg))  # Juju lists the remote unit from its relation-joined on
        if kind == "relation_departed":  # ... and no longer in its relation-departed
            unit.seen.discard(int(arg.partition(":")[0]))
        state = self._state_for(unit)
        if kind == "secret_changed" and not any(s.id == arg for s in state.secrets):
            return  # the secret is gone (its owner removed it, or left the model) before the hook ran
        event = self._event(unit, hook.name, state)
        # Juju runs different units' hooks in parallel, one unit's one at a time: a hook waits for the
        # hook whose writes queued it and for the last hook of its own unit that changed anything
        status_before = (unit.state.unit_status, unit.error)
        self._begin()
        t0 = time.monotonic()
        try:
            with self._unit_env(hook.uid):
                out = unit.ctx.run(event, state)
            refused = self._label_clash(unit, out)
            if refused:
                raise _CommitRefused(refused)
        except Exception as e:  # the hook failed: Juju commits nothing but its status-set; the unit is
            self._end(unit)  # in error and retries this hook, and only this one, until it succeeds
            if _STATUS_SET:  # status-set takes effect at once (runner/context/context.go:610)
                unit.state = dataclasses.replace(
                    unit.state, unit_status=_EntityStatus.from_status_name(*_STATUS_SET[-1])
                )
            depth = 1 + max(hook.cause, unit.depth, self._news(unit, _TRACE))
            cause = e.__cause__ or e
            self.log.append(HookRecord(hook.uid, hook.name, time.monotonic() - t0, repr(cause), depth, hook.cause > 0))
            unit.error = f"hook failed: {hook.name}: {cause}"
            # Juju retries forever (5 s backoff doubling to 5 min); max_attempts bounds one settle()
            retry = dataclasses.replace(hook, attempt=1 if hook.attempt >= self.max_attempts else hook.attempt + 1)
            unit.failed = retry
            self.queue.append(retry)
            if hook.attempt >= self.max_attempts:
                raise HookFailed(f"unit {hook.uid} {hook.name} failed {hook.attempt}x: {cause!r}") from e
            return
        self._end(unit)
        unit.error, unit.failed = "", None
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
        record = HookRecord(hook.uid, hook.name, time.monotonic() - t0, "", depth, hook.cause > 0, _DISPATCH[0])
        self.log.append(record)
        record.wrote = self._commit(unit, out, depth, key_depths)
        record.status_changed = (out.unit_status, "") != status_before
        if kind.startswith("relation_broken@"):  # it left that relation (relationer.go CommitHook -> die)
            rid = int(kind.partition("@")[2])
            unit.scope.discard(rid)
            self._drop_relation_if_left(rid)
        if kind == "remove":
            self._gone(unit.uid)
        for check in self.after_hook:
            check(self)

    def _enter_scope(self, unit: UnitSim) -> None:
        """The unit enters the peer relation: an app relation-changed first when the app databag holds
        anything (Juju runs app hooks before joins: relation/resolver.go, the app settings version), then
        it and every unit already in the relation join each other."""
        unit.scope.add(RELATION_ID)
        if self.app_data:
            self._queue(Hook(unit.uid, "relation_changed:app"))
        for other in self._live(exclude=unit.uid):
            if RELATION_ID in self.units[other].scope and not self.units[other].dying:
                self._queue(Hook(unit.uid, f"relation_joined:{other}"))
                self._queue(Hook(unit.uid, f"relation_changed:{other}"))
                self._queue(Hook(other, f"relation_joined:{unit.uid}"))
                self._queue(Hook(other, f"relation_changed:{unit.uid}"))

    def _enter_remote_scope(self, unit: UnitSim, rid: int) -> None:
        """The unit enters a relation with another application: the remote app's databag first (as
        above), then the remote unit joins."""
        unit.scope.add(rid)
        if self.remote[rid][2]:
            self._queue(Hook(unit.uid, f"relation_changed@{rid}:app"))
        self._queue(Hook(unit.uid, f"relation_joined@{rid}"))
        self._queue(Hook(unit.uid, f"relation_changed@{rid}"))

    def _begin(self) -> None:
        _DISPATCH[0] = 0.0
        _TRACE.clear()
        _SECRET_READS.clear()
        _STATUS_SET.clear()

    def _end(self, unit: UnitSim) -> None:
        """What outlives the hook whatever its outcome: a secret read creates the reader's consumer
        record at once, at the latest revision (a first read of any kind, or --refresh), server side
        (apiserver/facades/agent/secretsmanager/secrets.go:776-813, `refresh = refresh || err != nil`)."""
        _EVENT_ENV.clear()
        self.missing_tool_calls += [(unit.uid, tool) for tool in _MISSING_CALLED]
        _MISSING_CALLED.clear()
        for sid, refresh in _SECRET_READS:
            latest = self._latest(sid)
            if latest is None or self._owns(unit, sid):
                continue
            if refresh or sid not in unit.tracked:
                unit.tracked[sid] = dict(latest)

    def _latest(self, sid: str) -> dict[str, str] | None:
        if sid in self.app_secrets:
            return dict(self.app_secrets[sid].latest_content)
        if sid in self.unit_secrets:
            return dict(self.unit_secrets[sid][1].latest_content)
        return None

    def _owns(self, unit: UnitSim, sid: str) -> bool:
        owner = self.unit_secrets.get(sid, (None, None))[0]
        return owner == unit.uid or (sid in self.app_secrets and unit.uid == self.leader)

    def _label_clash(self, unit: UnitSim, out: testing.State) -> str:
        """Juju's commit refuses a unit-owned secret label that an app-owned secret of the application
        uses, and an app-owned label that a unit of the application uses (state/secrets.go:1290-1380,
        uniqueSecretLabelBaseOps); the whole hook fails."""
        mine = {s.label for s in out.secrets if s.owner == "unit" and s.label}
        if unit.uid == self.leader:
            app_labels = {s.label for s in out.secrets if s.owner == "app" and s.label}
        else:
            app_labels = {s.label for s in self.app_secrets.values() if s.label}
        others = {s.label for sid, (owner, s) in self.unit_secrets.items() if owner != unit.uid and s.label}
        for label in sorted(mine & app_labels):
            return f'secret label "{label}" for "unit-{self.app}-{unit.uid}" already exists'
        if unit.uid == self.leader:
            for label in sorted(app_labels & others):
                return f'secret label "{label}" for "application-{self.app}" already exists'
        return ""

    @contextlib.contextmanager
    def _unit_env(self, uid: int) -> Iterator[None]:
        """The environment a unit's hook process gets: which LXD it talks to, and Juju's hook tools
        that ops calls as commands (goal-state) first on PATH."""
        tools = self._tools.name
        state = self.goal_state()
        Path(tools, "goal-state.json").write_text(json.dumps(state) + "\n")
        Path(tools, "goal-state.yaml").write_text(_LibYAML.safe_dump(state))
        env = {**self.env_for_unit(uid), "PATH": f"{tools}{os.pathsep}{os.environ.get('PATH', '')}"}
        # every hook gets the model's proxy, empty when unset (juju/juju worker/uniter/runner/context/
        # context.go HookVars: "Some of these will be empty, but that is fine, better to explicitly
        # export them as empty"; environs/config/config.go juju-http-proxy -> JUJU_CHARM_HTTP_PROXY)
        for key, variable in _MODEL_PROXY.items():
            env[variable] = self.model_proxy.get(key, "")
        saved = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        if not self.profile.secrets:
            _HOOK_TOOLS_MISSING.update(SECRET_TOOLS)
        try:
            yield
        finally:
            _HOOK_TOOLS_MISSING.clear()
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v

    def goal_state(self) -> dict[str, Any]:
        """What `goal-state --format=json` prints (the uniter facade's GoalStates,
        apiserver/facades/agent/uniter/uniter.go ~2358-2391, formatted by jujuc/goal-state.go): every
        non-dead unit of the application with its status (`error` while in hook error: state/unit.go
        Unit.Status), or `dying`; and, per non-peer endpoint, the related application with the
        relation's status and its units with theirs (peer relations are left out). The relation's
        entry is its status (`joined` once the leader entered it, statetracker.go joinRelation), not
        its life: a relation being removed is not shown as dying. The related unit's status is
        `unknown` here (the sim does not play the other charm)."""
        units = {}
        for uid in self._live():
            unit = self.units[uid]
            status = "dying" if unit.dying else "error" if unit.error else unit.status.name
            if unit.goal[0] != status:
                unit.goal = (status, _now())
            units[f"{self.app}/{uid}"] = {"status": status, "since": _since(unit.goal[1])}
        relations: dict[str, dict[str, dict[str, str]]] = {}
        for rid, (endpoint, app, _) in self.remote.items():
            since = _since(self.related_at[rid])
            joined = self.leader is not None and rid in self.units[self.leader].scope
            relations.setdefault(endpoint, {})[app] = {"status": "joined" if joined else "joining", "since": since}
            relations[endpoint][f"{app}/0"] = {"status": "unknown", "since": since}
        return {"units": units, "relations": relations}

    def _commit(
        self, unit: UnitSim, out: testing.State, depth: int | None = None, key_depths: dict[str, int] | None = None
    ) -> bool:
        """Carry what a hook wrote to the others; returns whether it wrote anything they can read."""
        depth = 1 + unit.depth if depth is None else depth
        relation = next((r for r in out.relations if r.id == RELATION_ID), None)  # None before relation-created
        new_unit_data = dict(relation.local_unit_data) if relation is not None else dict(unit.unit_data)
        old_unit_data, old_app = unit.unit_data, dict(self.app_data)
        unit_changed = new_unit_data != unit.unit_data
        unit.unit_data = new_unit_data
        unit.state = out
        if unit.uid == self.leader:
            for other in out.relations:
                if other.id in self.provided:
                    self.provided[other.id] = dict(other.local_app_data)
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
            new_app = dict(relation.local_app_data) if relation is not None else dict(self.app_data)
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
        for other in self._live():
            if app_changed and RELATION_ID in self.units[other].scope:
                # the writer too: a peer relation's counterpart app is the unit's own app
                # (state/relationunit.go:215-234; juju#20178, documented, not changed)
                self._enqueue(Hook(other, "relation_changed:app", cause=app_cause))
            if other == unit.uid:
                continue
            if unit_changed and unit.uid in self.units[other].seen:  # Juju: only after relation-joined
                self._enqueue(Hook(other, f"relation_changed:{unit.uid}", cause=unit_cause))
            for sid in changed_secrets:
                if sid in self.units[other].tracked:  # Juju notifies units that track it (secrets/resolver.go:69-80)
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

    def _queue(self, hook: Hook, coalesce: bool = False) -> None:
        """Queue a hook, as Juju would run it: none for a unit that is gone, only departure hooks for a
        dying unit (resolver.go:360-379; the secrets resolver does nothing then, secrets/resolver.go:53).
        With coalesce, a change whose hook is still queued rides on it (which then also waits for it)."""
        unit = self.units.get(hook.uid)
        if unit is None or not unit.alive or (unit.dying and _kind(hook.name) not in DEPARTURE):
            return
        if coalesce:
            for queued in self.queue:
                if queued.uid == hook.uid and queued.name == hook.name:
                    queued.cause = max(queued.cause, hook.cause)
                    return
        self.queue.append(hook)

    def _enqueue(self, hook: Hook) -> None:
        self._queue(hook, coalesce=True)

    # -- building each unit's view ----------------------------------------------------------
    def _state_for(self, unit: UnitSim) -> testing.State:
        relations: list[Any] = []
        if RELATION_ID in unit.scope:  # no peer relation before relation-created (context.go:1357)
            peers = {o: dict(self.units[o].unit_data) for o in self._live(exclude=unit.uid) if o in unit.seen}
            relations.append(
                testing.PeerRelation(
                    PEER,
                    id=RELATION_ID,
                    local_app_data=dict(self.app_data),
                    local_unit_data=dict(unit.unit_data),
                    peers_data=peers,
                )
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
        pool += [(sid, secret, False) for sid, secret in self.user_secrets.items()]  # read, never owned
        pool += [
            (sid, secret, owner == unit.uid)
            for sid, (owner, secret) in self.unit_secrets.items()
            if owner == unit.uid or self._granted(secret, unit)
        ]
        for sid, secret, mine in pool:
            if mine:
                secrets.append(secret)
                continue
            # a reader sees the revision it tracks; its first read of any kind gets the latest
            # (secretsmanager/secrets.go:781). Every unit of the app finds an app-owned secret by its
            # owner label (secretsmanager/secrets.go:629-656, 707-715); a grantee of a unit's secret doesn't
            label = secret.label if sid in self.app_secrets else None
            tracked = unit.tracked.get(sid, secret.latest_content)
            secrets.append(
                testing.Secret(tracked, latest_content=secret.latest_content, id=sid, owner=None, label=label)
            )
        for rid, (endpoint, app, data) in self.remote.items():
            if rid in unit.scope:  # from its relation-created until its relation-broken
                relations.append(
                    testing.Relation(
                        endpoint,
                        id=rid,
                        remote_app_name=app,
                        remote_app_data=dict(data),
                        local_app_data=dict(self.provided[rid]),
                        remote_units_data={0: {}},
                    )
                )
        goal = self.goal_state()["units"].values()
        return dataclasses.replace(
            unit.state,
            config=dict(self.config),
            relations=relations,
            networks=[network],
            secrets=secrets,
            leader=is_leader,
            # ops counts goal-state's units that are not dying (ops/model.py planned_units)
            planned_units=sum(1 for g in goal if g["status"] != "dying"),
        )

    def _granted(self, secret: testing.Secret, unit: UnitSim) -> bool:
        """A unit-owned secret is readable by another unit only when granted to its app or to it."""
        unit_name = f"{self.app}/{unit.uid}"
        return any(self.app in names or unit_name in names for names in secret.remote_grants.values())

    def _event(self, unit: UnitSim, name: str, state: testing.State) -> Any:
        _EVENT_ENV.clear()
        on = unit.ctx.on
        if "@" in name:  # an event on a relation with another application (its one unit: <app>/0)
            kind, _, rest = name.partition("@")
            rid_s, _, what = rest.partition(":")
            other = state.get_relation(int(rid_s))
            if kind in ("relation_created", "relation_broken"):
                return getattr(on, kind)(other)
            if what == "app":  # the remote app's databag changed: no remote unit (relation/resolver.go:303)
                _EVENT_ENV["JUJU_REMOTE_UNIT"] = ""
            if kind == "relation_departed":  # the departing unit: this one when it is dying, else theirs
                departing = f"{self.app}/{unit.uid}" if unit.dying else f"{other.remote_app_name}/0"
                _EVENT_ENV["JUJU_DEPARTING_UNIT"] = departing
            return getattr(on, kind)(other, remote_unit=0)
        kind, _, arg = name.partition(":")
        if kind in ("relation_created", "relation_joined", "relation_changed", "relation_departed"):
            relation = state.get_relation(RELATION_ID)
            if kind == "relation_created":
                return on.relation_created(relation)
            if arg == "app":  # an app-settings change has no remote unit (relation/resolver.go:303); scenario
                _EVENT_ENV["JUJU_REMOTE_UNIT"] = ""  # wants one named, Juju sets none
                return on.relation_changed(relation, remote_unit=unit.uid)
            remote_s, _, departing_s = arg.partition(":")
            remote = int(remote_s)
            if kind == "relation_departed":  # relation_departed:<remote>:<departing>
                departing = int(departing_s or remote_s)
                # scenario 8.9 drops JUJU_DEPARTING_UNIT for unit id 0 (a falsy check): set it as Juju does
                _EVENT_ENV["JUJU_DEPARTING_UNIT"] = f"{self.app}/{departing}"
                return on.relation_departed(relation, remote_unit=remote, departing_unit=departing)
            return getattr(on, kind)(relation, remote_unit=remote)
        if kind in ("storage_attached", "storage_detaching"):
            return getattr(on, kind)(next(iter(state.storages)))
        if kind == "secret_changed":
            return on.secret_changed(next(s for s in state.secrets if s.id == arg))
        if kind == "pre_series_upgrade":  # the target variables its Juju sets (upgrade_machine)
            base = next(b for b, series in _SERIES.items() if series == arg)
            values = {"JUJU_TARGET_BASE": base, "JUJU_TARGET_SERIES": arg}
            _EVENT_ENV.update({k: values[k] for k in self.profile.target_vars})
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
        -changed per pair, one update-status round), and, once the app databag holds anything, one
        app relation-changed per unit: each unit gets at least one, at its scope entry or on the write,
        the leader too (state/relationunit.go:215-234). The part of hooks_run() no charm can save."""
        once = [
            r
            for r in self.log
            if not r.caused and not r.name.startswith(("action:", "update_status")) and r.name != "relation_changed:app"
        ]
        published = len(self._live()) if self.app_data else 0
        return len(once) + len(self._live()) + published  # and one update-status round
