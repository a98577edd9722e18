"""One unit of the packed .charm, run as Juju runs it: its own `dispatch`, its venv, hook tools.

The .charm is unzipped into a charm directory; each hook is `./dispatch` with
JUJU_DISPATCH_PATH=hooks/<event> (or actions/<name>) and the JUJU_* variables a hook gets, on the
Python a machine of the charm's platform has as python3 (CPython 3.10 on ubuntu@22.04, 3.12 on
ubuntu@24.04: platforms.py), with a hook PATH that starts with Juju's hook tools, emulated by
hooktools.py against a JSON state file. The unit's LXD is a lab member: the hook runs inside the
member's network namespace with its LXD_DIR.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import uuid
import zipfile
from pathlib import Path
from typing import Any

import yaml

from tests.packed import hooktools
from tests.packed.hooktools import JUJU_VERSION, tools_for
from tests.packed.platforms import machine_python

HOOKTOOLS = Path(__file__).with_name("hooktools.py")
# what a machine unit's hook gets on PATH (Juju puts its tools directory first)
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/snap/bin"


def unpack(charm: Path, into: Path) -> Path:
    """Unzip as Juju does, keeping the modes the .charm records (dispatch, hooks, entrypoint)."""
    into.mkdir(parents=True)
    with zipfile.ZipFile(charm) as archive:
        for info in archive.infolist():
            path = Path(archive.extract(info, into))
            mode = info.external_attr >> 16
            if mode & 0o777:
                path.chmod(mode & 0o777)
    return into


def source_charm(into: Path) -> Path:
    """The charm as it is in this tree, unpacked (metadata, config, actions, src, lib), for a dispatch of
    src/main.py without packing: the bench's cold start and the steady-state hook-tool test."""
    root = Path(__file__).resolve().parents[2]
    into.mkdir(parents=True)
    for name in ("metadata.yaml", "config.yaml", "actions.yaml", "charmcraft.yaml"):
        shutil.copy(root / name, into / name)
    for name in ("src", "lib"):
        shutil.copytree(root / name, into / name, ignore=shutil.ignore_patterns("__pycache__"))
    return into


class PackedUnit:
    def __init__(
        self,
        charm_dir: Path,
        root: Path,
        *,
        unit: str = "lxd-cluster/0",
        leader: bool = True,
        address: str,
        netns: str | None = None,
        env: dict[str, str] | None = None,
        storage: dict[str, str] | None = None,
        config: dict[str, Any] | None = None,
        python: Path | None = None,
        juju_version: str = JUJU_VERSION,
    ):
        """python: what the hooks run as `python3` (default: what the charm's platform runs)."""
        self.charm_dir = charm_dir
        self.unit = unit
        self.app = unit.split("/")[0]
        self.netns = netns
        self.wrap: list[str] = []  # an argv prefix for every hook (e.g. ubuntu_host.UbuntuHost.wrap())
        self.extra_env = env or {}
        self.tools = root / "tools"
        self.tools.mkdir(parents=True, exist_ok=True)
        self.juju_version = juju_version
        for tool in tools_for(juju_version):  # only the tools this Juju has: a missing one is not on PATH
            link = self.tools / tool
            if not link.exists():
                link.symlink_to(HOOKTOOLS)
        # first on PATH after the tools, as /usr/bin/python3 is on the machine: the entrypoint's
        # `#!/usr/bin/env python3` finds it (a script, not a symlink: a venv's python stays a venv)
        self.python = python or machine_python(charm_dir)
        (root / "python").mkdir(exist_ok=True)
        (root / "python/python3").write_text(f'#!/bin/sh\nexec "{self.python}" "$@"\n')
        (root / "python/python3").chmod(0o755)
        self.state_file = root / "state.json"
        options = yaml.safe_load((charm_dir / "config.yaml").read_text())["options"]
        defaults = {k: v["default"] for k, v in options.items() if "default" in v}
        defaults["production-tuning"] = False  # this is the real host's kernel: its own test turns it on
        self.model_uuid = str(uuid.uuid4())
        self.write(
            hooktools.model_state(
                leader=leader,
                config={**defaults, **(config or {})},
                bindings={"cluster": address, "lxd-cluster": address},
                relations={"0": {"endpoint": "cluster", "remote-app": self.app, "units": [], "data": {}}},
                storage=storage or {},
                **{"app-units": {unit: {}}, "juju-version": juju_version},
            )
        )

    # -- state ------------------------------------------------------------------------------
    @property
    def state(self) -> dict[str, Any]:
        return json.loads(self.state_file.read_text())

    def write(self, state: dict[str, Any]) -> None:
        self.state_file.write_text(json.dumps(state, indent=1))

    # -- running ------------------------------------------------------------------------------
    def env(self, dispatch_path: str, **extra: str) -> dict[str, str]:
        env = {
            "PATH": f"{self.tools}:{self.tools.parent / 'python'}:{SYSTEM_PATH}",
            "LANG": "C.UTF-8",
            "HOME": "/root",
            "JUJU_DISPATCH_PATH": dispatch_path,
            "JUJU_UNIT_NAME": self.unit,
            "JUJU_PRINCIPAL_UNIT": "",
            "JUJU_MODEL_NAME": "lab",
            "JUJU_MODEL_UUID": self.model_uuid,
            "JUJU_CHARM_DIR": str(self.charm_dir),
            "CHARM_DIR": str(self.charm_dir),
            "JUJU_VERSION": self.juju_version,
            "JUJU_CONTEXT_ID": f"{self.unit}-{dispatch_path}",
            "JUJU_MACHINE_ID": "0",
            "JUJU_AVAILABILITY_ZONE": "",
            # the model's proxy, always exported, empty when unset (juju/juju worker/uniter/runner/
            # context/context.go HookVars: "better to explicitly export them as empty")
            "JUJU_CHARM_HTTP_PROXY": "",
            "JUJU_CHARM_HTTPS_PROXY": "",
            "JUJU_CHARM_FTP_PROXY": "",
            "JUJU_CHARM_NO_PROXY": "",
            "HOOKTOOLS_STATE": str(self.state_file),
        }
        if dispatch_path.startswith("hooks/"):
            env["JUJU_HOOK_NAME"] = dispatch_path.split("/", 1)[1]
        env.update(self.extra_env)
        env.update(extra)
        return env

    def dispatch(self, dispatch_path: str, **extra: str) -> subprocess.CompletedProcess:
        """One hook process; its relation, secret and port changes are kept only if it succeeded and
        they commit (hooktools.end_hook), as Juju does. A failed commit fails the hook."""
        argv = ["./dispatch"]
        if self.netns:
            argv = [shutil.which("nsenter") or "nsenter", f"--net=/run/netns/{self.netns}", *argv]
        argv = [*self.wrap, *argv]
        before = self.state
        out = subprocess.run(
            argv, cwd=self.charm_dir, env=self.env(dispatch_path, **extra), capture_output=True, text=True, timeout=600
        )
        kept, error = hooktools.end_hook(before, self.state, out.returncode == 0)
        self.write(kept)
        if error:
            out = subprocess.CompletedProcess(
                out.args, 1, out.stdout, f"{out.stderr}\ncommitting the hook failed: {error}"
            )
        return out

    def hook(self, event: str, **extra: str) -> subprocess.CompletedProcess:
        out = self.dispatch(f"hooks/{event}", **extra)
        assert out.returncode == 0, f"hook {event} failed ({out.returncode}):\n{out.stderr}\n{self.log_tail()}"
        return out

    def log_tail(self, lines: int = 15) -> str:
        """What the hook told juju-log last (ops logs an uncaught exception's traceback there)."""
        return "\n".join(f"{level}: {message}" for level, message in self.state["log"][-lines:])

    def peer_hook(self, event: str) -> subprocess.CompletedProcess:
        return self.hook(
            f"cluster-{event}", JUJU_RELATION="cluster", JUJU_RELATION_ID="cluster:0", JUJU_REMOTE_APP=self.app
        )

    def action_state(self, name: str, params: dict[str, Any]) -> dict[str, Any]:
        """What action-get answers in `juju run`: the params with actions.yaml's defaults filled in."""
        spec = yaml.safe_load((self.charm_dir / "actions.yaml").read_text())[name]
        defaults = {k: v["default"] for k, v in (spec.get("params") or {}).items() if "default" in v}
        return {"params": {**defaults, **params}, "results": {}, "log": [], "failed": None}

    @staticmethod
    def action_env(name: str) -> dict[str, str]:
        action_id = str(uuid.uuid4())
        return {"JUJU_ACTION_NAME": name, "JUJU_ACTION_UUID": action_id, "JUJU_ACTION_TAG": f"action-{action_id}"}

    def action(self, action: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        """Run an action as `juju run` does."""
        name = action
        state = self.state
        state["action"] = self.action_state(name, params or {})
        self.write(state)
        out = self.dispatch(f"actions/{name}", **self.action_env(name))
        assert out.returncode == 0, f"action {name} crashed ({out.returncode}):\n{out.stderr}\n{self.log_tail()}"
        return self.state["action"]
