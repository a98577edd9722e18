"""The Juju controller the integration suite drives, and which python-libjuju and CLI serve it
(see conftest's docstring)."""

from __future__ import annotations

import functools
import importlib.metadata
import json
import shutil
import subprocess


@functools.cache
def controller_version() -> str:
    """The current controller's Juju version ('' when none answers)."""
    if shutil.which("juju") is None:
        return ""
    out = subprocess.run(["juju", "show-controller", "--format=json"], capture_output=True, text=True, check=False)
    found = json.loads(out.stdout or "{}") if out.returncode == 0 else {}
    return next(iter(found.values()), {}).get("details", {}).get("agent-version", "")


def controller_unreachable() -> str:
    """Why no Juju controller can be used here, or '' when one answers."""
    if shutil.which("juju") is None:
        return "no Juju controller: the juju CLI is not installed on this machine"
    try:
        out = subprocess.run(
            ["juju", "show-controller", "--format=json"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return "no Juju controller: `juju show-controller` timed out"
    if out.returncode != 0 or not json.loads(out.stdout or "{}"):
        return f"no Juju controller reachable: {(out.stderr or 'juju show-controller failed').strip()}"
    return pin_mismatch(controller_version(), installed_libjuju())


def installed_libjuju() -> str:
    try:
        return importlib.metadata.version("juju")
    except importlib.metadata.PackageNotFoundError:
        return ""


def pin_mismatch(agent_version: str, libjuju: str) -> str:
    """Why the installed python-libjuju cannot drive a controller of agent_version ('' when it can)."""
    major = agent_version.split(".")[0]
    if major == "4":
        return f"the controller runs Juju {agent_version}: no python-libjuju serves Juju 4 (see conftest)"
    pin = "2.9" if major == "2" else "3"
    if libjuju.split(".")[0] != major:
        return (
            f"the controller runs Juju {agent_version} but python-libjuju {libjuju or '(none)'} is installed: "
            f"LXD_CLUSTER_JUJU={pin} tox -e integration (tests/integration/requirements-juju{pin}.txt)"
        )
    return ""


SERIES = {"ubuntu@20.04": "focal", "ubuntu@22.04": "jammy", "ubuntu@24.04": "noble"}


def juju_args(args: list[str], agent_version: str) -> list[str]:
    """A 3.x juju command line as the controller's own client takes it: on 2.9, `exec` is `run`
    (cmd/juju/commands/run.go), `show-task` is `show-action-output`, a base is a series (--series),
    and remove-unit/remove-machine do not prompt (no --no-prompt)."""
    if not agent_version.startswith("2."):
        return list(args)
    renamed = {"exec": "run", "show-task": "show-action-output"}
    out: list[str] = []
    words = iter(args)
    for word in words:
        if word == "--no-prompt":
            continue
        if word == "--base":
            out += ["--series", SERIES[next(words)]]
            continue
        out.append(renamed.get(word, word) if not out else word)
    return out
