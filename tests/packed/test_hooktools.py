"""The hook-tool emulator behaves as Juju 3.6's hook tools do (no LXD, no charm: each test runs the
tools as processes against a state file, as a packed charm's hooks do). Each test names the Juju
behaviour and the emulator's code cites the Juju source it follows."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.packed.hooktools import TOOLS, end_hook, model_state
from tests.packed.packed_unit import HOOKTOOLS, SYSTEM_PATH


class Model:
    """A model of one application `app` as the emulator's state file, and its units calling tools."""

    def __init__(self, root: Path):
        self.tools = root / "tools"
        self.tools.mkdir()
        for tool in TOOLS:
            (self.tools / tool).symlink_to(HOOKTOOLS)
        self.file = root / "state.json"
        self.in_hook = False
        self.write(
            model_state(
                leader=True,
                config={},
                bindings={"cluster": "10.1.2.3"},
                relations={
                    "1": {"endpoint": "cluster", "remote-app": "app", "units": ["app/1"], "data": {}},
                    "2": {"endpoint": "lxd-cluster", "remote-app": "client", "units": ["client/0"], "data": {}},
                },
                **{"app-units": {"app/0": {}, "app/1": {"status": "waiting"}}},
            )
        )

    @property
    def state(self) -> dict[str, Any]:
        return json.loads(self.file.read_text())

    def write(self, state: dict[str, Any]) -> None:
        self.file.write_text(json.dumps(state))

    def run(
        self, tool: str, *args: str, unit: str = "app/0", leader: bool | None = None, stdin: str = ""
    ) -> subprocess.CompletedProcess:
        if leader is not None:
            self.write({**self.state, "leader": leader})
        env = {
            "PATH": f"{self.tools}:{SYSTEM_PATH}",
            "HOOKTOOLS_STATE": str(self.file),
            "JUJU_UNIT_NAME": unit,
            "JUJU_MODEL_UUID": "0000",
            "LANG": "C.UTF-8",
        }
        before = self.state
        done = subprocess.run([tool, *args], env=env, input=stdin, capture_output=True, text=True)
        if not self.in_hook:  # a call outside hook() is a hook of its own, which succeeds
            self.write(end_hook(before, self.state, True)[0])
        return done

    def ok(self, tool: str, *args: str, **kw: Any) -> str:
        done = self.run(tool, *args, **kw)
        assert done.returncode == 0, done.stderr
        return done.stdout

    def refused(self, tool: str, *args: str, **kw: Any) -> str:
        done = self.run(tool, *args, **kw)
        assert done.returncode != 0, f"{tool} {args} was accepted"
        return done.stderr

    def add(self, *content: str, owner: str = "application", unit: str = "app/0", label: str = "") -> str:
        args = [*content, "--owner", owner] + (["--label", label] if label else [])
        return self.ok("secret-add", *args, unit=unit, leader=unit == "app/0").strip()

    def secret_set(self, sid: str, *content: str, **kw: Any) -> None:
        self.ok("secret-set", "--owner", "application", sid, *content, **kw)

    def hook(self, calls: list[tuple[Any, ...]], succeeded: bool) -> tuple[dict[str, Any], str]:
        """Run tool calls as one hook of app/0 that ends in success or failure; the state kept."""
        self.write({**self.state, "leader": True})
        before = self.state
        self.in_hook = True
        for tool, *args in calls:
            self.ok(tool, *args[0], stdin=args[1] if len(args) > 1 else "")
        self.in_hook = False
        kept, error = end_hook(before, self.state, succeeded)
        self.write(kept)
        return kept, error


@pytest.fixture
def model(tmp_path: Path) -> Model:
    os.environ.pop("JUJU_RELATION_ID", None)
    return Model(tmp_path)


# -- status-set -----------------------------------------------------------------------------------
def test_status_set_application_true_as_ops_sends_it_sets_the_app_status_not_the_units(model):
    model.ok("status-set", "--application=True", "active", "--", "app fine")
    model.ok("status-set", "--application=False", "waiting", "--", "unit busy")
    state = model.state
    assert state["app-status"] == ["active", "app fine"]
    assert state["unit-status"] == ["waiting", "unit busy"]
    status = json.loads(model.ok("status-get", "--include-data", "--format=json", "--application=true"))
    assert status["application-status"]["status"] == "active"


def test_status_set_application_by_a_non_leader_is_refused(model):
    error = model.refused("status-set", "--application=True", "blocked", "--", "no", leader=False)
    assert "not the leader" in error
    assert "app-status" not in model.state


# -- secret ownership and management ----------------------------------------------------------------
def test_secret_set_owner_is_accepted_and_ignored(model):
    sid = model.add("k=v", owner="unit", label="membership")
    model.secret_set(sid, "k=w")  # ops always sends --owner application (hookcmds/_secret.py:297)
    secret = model.state["secrets"][sid]
    assert secret["owner"] == "unit" and secret["owner-unit"] == "app/0"
    # so another unit of the app still cannot read it without a grant
    assert "permission denied" in model.refused("secret-get", sid, "--format=json", unit="app/1", leader=False)


def test_secret_info_get_finds_only_owned_secrets_and_the_apps_for_the_leader(model):
    app_sid = model.add("k=v", label="join-1")
    unit_sid = model.add("k=v", owner="unit", unit="app/1", label="membership")
    leader_view = json.loads(model.ok("secret-info-get", "--format=json", "--label", "join-1", leader=True))
    assert list(leader_view) == [app_sid]
    assert "not found" in model.refused("secret-info-get", "--format=json", app_sid, unit="app/1", leader=False)
    assert "not found" in model.refused("secret-info-get", "--format=json", "--label", "join-1", unit="app/1")
    assert "not found" in model.refused("secret-info-get", "--format=json", unit_sid, unit="app/0", leader=True)
    own = json.loads(model.ok("secret-info-get", "--format=json", unit_sid, unit="app/1", leader=False))
    assert own[unit_sid]["owner"] == "unit"


@pytest.mark.parametrize(
    "argv",
    [
        ["secret-set", "--owner", "application", "{sid}", "k=w"],
        ["secret-remove", "{sid}"],
        ["secret-grant", "--relation", "2", "{sid}"],
    ],
)
def test_a_non_leader_managing_an_app_owned_secret_is_refused(model, argv):
    sid = model.add("k=v", label="join-1")
    before = model.state["secrets"][sid]
    error = model.refused(*[a.replace("{sid}", sid) for a in argv], unit="app/1", leader=False)
    assert "not the leader" in error
    assert model.state["secrets"][sid] == before


# -- secret-get: owners, consumers, tracking ------------------------------------------------------------
def test_an_app_owned_secret_is_found_by_its_label_by_every_unit_of_the_app(model):
    sid = model.add("token=t1", label="join-app-1")
    content = json.loads(model.ok("secret-get", "--format=json", "--label", "join-app-1", unit="app/1", leader=False))
    assert content == {"token": "t1"}
    assert "not found" in model.refused("secret-get", "--format=json", "--label", "join-app-1", unit="other/0")
    assert sid in model.state["consumed"]["app/1"]  # a peer of the owner app hears of new revisions


def test_secret_get_plain_returns_the_tracked_revision_refresh_moves_it_peek_reads_latest_once(model):
    sid = model.add("v=1", owner="unit", unit="app/1", label="membership")
    model.write({**model.state, "leader": False})
    state = model.state
    state["secrets"][sid]["grants"] = ["app/0"]
    model.write(state)

    def get(*flags: str) -> str:
        return json.loads(model.ok("secret-get", "--format=json", sid, *flags, unit="app/0"))["v"]

    assert get() == "1"  # the first read tracks revision 1
    model.secret_set(sid, "v=2", unit="app/1")
    assert get() == "1"  # still pinned
    assert get("--peek") == "2"  # the latest, once
    assert get() == "1"
    assert get("--refresh") == "2"  # the pin moves
    assert get() == "2"
    assert model.state["consumed"]["app/0"][sid]["revision"] == 2


@pytest.mark.parametrize("flags", [[], ["--peek"], ["--refresh"]])
def test_any_first_read_of_a_secret_tracks_it(model, flags):
    sid = model.add("v=1", owner="unit", unit="app/1")
    state = model.state
    state["secrets"][sid]["grants"] = ["app"]
    model.write(state)
    model.ok("secret-get", "--format=json", sid, *flags, unit="app/0", leader=False)
    assert model.state["consumed"]["app/0"][sid]["revision"] == 1


def test_the_owner_reads_the_latest_revision_of_its_own_secret(model):
    sid = model.add("v=1", owner="unit", unit="app/1")
    model.secret_set(sid, "v=2", unit="app/1")
    assert json.loads(model.ok("secret-get", "--format=json", sid, unit="app/1"))["v"] == "2"


# -- commit --------------------------------------------------------------------------------------
def test_a_unit_secret_whose_label_an_app_secret_uses_fails_the_hook_at_commit(model):
    model.add("k=v", label="join-app-1")
    kept, error = model.hook([("secret-add", ["k=v", "--owner", "unit", "--label", "join-app-1"])], succeeded=True)
    assert error == 'secret label "join-app-1" for "unit-app-0" already exists'
    assert [s["owner"] for s in kept["secrets"].values()] == ["application"]  # nothing of the hook kept


def test_an_app_secret_whose_label_a_unit_secret_uses_fails_the_hook_at_commit(model):
    model.add("k=v", owner="unit", unit="app/1", label="issuer")
    kept, error = model.hook([("secret-add", ["k=v", "--owner", "application", "--label", "issuer"])], succeeded=True)
    assert error == 'secret label "issuer" for "application-app" already exists'
    assert [s["owner"] for s in kept["secrets"].values()] == ["unit"]


def test_a_failed_hooks_relation_secret_and_port_writes_are_discarded_its_status_and_log_stay(model):
    calls = [
        ("relation-set", ["-r", "1", "--app", "--file", "-"], "k: v\n"),
        ("secret-add", ["k=v", "--owner", "unit"]),
        ("open-port", ["8443/tcp"]),
        ("status-set", ["--application=False", "blocked", "--", "broken"]),
        ("juju-log", ["--log-level", "ERROR", "--", "boom"]),
    ]
    kept, error = model.hook(calls, succeeded=False)
    assert error == ""
    assert kept["relations"]["1"]["data"] == {} and kept["secrets"] == {} and kept["ports"] == []
    assert kept["unit-status"] == ["blocked", "broken"]
    assert ["ERROR", "boom"] in kept["log"]
    kept, _ = model.hook(calls, succeeded=True)
    assert kept["relations"]["1"]["data"] == {"app": {"k": "v"}} and kept["ports"] == ["8443/tcp"]
    assert len(kept["secrets"]) == 1


def test_a_hooks_updates_of_one_secret_make_one_revision(model):
    sid = model.add("v=1")
    _, error = model.hook([("secret-set", ["--owner", "application", sid, "v=2"])] * 2, succeeded=True)
    assert error == ""
    info = json.loads(model.ok("secret-info-get", "--format=json", sid))
    assert info[sid]["revision"] == 2


# -- goal-state, relation ids, network -------------------------------------------------------------------
def test_goal_state_lists_every_non_dead_unit_with_its_status_or_dying_and_the_relations(model):
    state = model.state
    state["app-units"] = {"app/0": {}, "app/1": {"status": "active"}, "app/2": {"status": "active", "life": "dying"}}
    state["unit-status"] = ["maintenance", "installing"]
    model.write(state)
    goal = json.loads(model.ok("goal-state", "--format=json"))
    assert {u: v["status"] for u, v in goal["units"].items()} == {
        "app/0": "maintenance",
        "app/1": "active",
        "app/2": "dying",
    }
    assert set(goal["relations"]) == {"lxd-cluster"}  # the peer relation is left out
    assert set(goal["relations"]["lxd-cluster"]) == {"client", "client/0"}
    assert all(set(v) == {"status", "since"} for v in goal["units"].values())


def test_relation_ref_is_the_number_after_the_last_colon_as_juju_parses_it(model):
    # Juju does not check the endpoint in `-r endpoint:id` (jujuc relationIdValue.Set): the issue's
    # "a mismatched endpoint is an error" is not what Juju's source does
    assert json.loads(model.ok("relation-list", "--format=json", "-r", "lxd-cluster:1")) == ["app/1"]
    assert "not found" in model.refused("relation-list", "--format=json", "-r", "cluster:9")
    assert "invalid relation id" in model.refused("relation-list", "--format=json", "-r", "cluster:x")


def test_egress_subnets_are_the_ingress_address_as_a_32(model):
    net = json.loads(model.ok("network-get", "--format=json", "cluster"))
    assert net["egress-subnets"] == ["10.1.2.3/32"] and net["ingress-addresses"] == ["10.1.2.3"]


# -- Juju version profiles (issue 24): the emulator's state names the Juju it plays -------------------------
@pytest.mark.parametrize(
    "version, secrets", [("2.9.52", False), ("3.6.11", True), ("4.0.1", True)], ids=["juju29", "juju36", "juju40"]
)
def test_a_unit_finds_the_secret_tools_only_on_juju3_and_later(tmp_path, version, secrets):
    """A 2.9 unit's hook PATH has no secret-* tool: ops' subprocess.run of secret-get raises
    FileNotFoundError, as on a 2.9 machine; JUJU_VERSION is the state's Juju."""
    from tests.packed.packed_unit import PackedUnit

    unit = PackedUnit(Path(__file__).parents[2], tmp_path, address="10.1.2.3", juju_version=version)
    env = unit.env("hooks/install")
    assert env["JUJU_VERSION"] == version and unit.state["juju-version"] == version
    assert shutil.which("relation-get", path=env["PATH"])
    for tool in ("secret-add", "secret-get", "secret-set", "secret-grant"):
        assert bool(shutil.which(tool, path=env["PATH"])) is secrets
    if not secrets:
        with pytest.raises(FileNotFoundError):
            subprocess.run(["secret-get", "--label", "x"], env=env, capture_output=True, check=False)


def test_a_juju29_state_refuses_a_secret_tool_called_by_path_as_one_it_does_not_have(model):
    """Even a secret tool run by its path (the link exists here) is no tool of a 2.9 state."""
    model.write({**model.state, "juju-version": "2.9.52"})
    assert "secret-add: not emulated" in model.refused("secret-add", "k=v")
    assert model.state["unknown"] == [["secret-add", "secret-add: not emulated"]]
    assert model.state["secrets"] == {}
