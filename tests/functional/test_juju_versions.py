"""The charm under each Juju it supports (issue 24): JujuSim plays Juju 2.9, 3.6 or 4.0
(tests/harness/juju.py JujuProfile) on real LXD 5.0.2 daemons with dir pools.

Each profile plays one model's life in order on its own lab, every operator command typed as that
version's client takes it (`juju run-action --wait` on 2.9, `juju run` on 3.x/4.x; `juju relate` /
`juju integrate`): deploy 3, `add-unit`, the primer's actions (launch with and without a target,
remove-node with evacuate, force-remove of a dead host), a related client restricted to its own
project (least privilege), then scale in. Test ids carry the profile: `-k juju29`.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator

import pytest
from pylxd.exceptions import LXDAPIException

import issuing
import sealing
import unit_key
import workload
from tests.conftest import fresh_lab
from tests.functional.test_client_library import client_certificate, tls_client
from tests.harness.cluster import FormedCluster, add_units, form

pytestmark = pytest.mark.functional

PROFILES = {"juju29": "2.9", "juju36": "3.6", "juju40": "4.0"}


class Model:
    """One profile's model: the formed cluster and what LXD issued as join tokens meanwhile."""

    def __init__(self, profile: str, cluster: FormedCluster, tokens: list[str], sealed: list[tuple[str, str]]):
        self.profile, self.cluster, self.sim, self.tokens = profile, cluster, cluster.sim, tokens
        self.sealed = sealed  # (sealed value, the unit it was sealed to) as the issuer made them

    def run(self, uid: int, action: str, *params: str):
        """The action, typed as this version's client takes it (README, "Operate")."""
        command = "juju run-action --wait" if self.profile == "juju29" else "juju run"
        return self.sim.cli(f"{command} lxd-cluster/{uid} {action} {' '.join(params)}")

    def members(self, via: int) -> dict[str, str]:
        rows = json.loads(self.cluster.lxc(via, "cluster", "list", "--format", "json").stdout)
        return {r["server_name"]: r["status"] for r in rows}

    def instances(self, via: int) -> dict[str, str]:
        rows = json.loads(self.cluster.lxc(via, "list", "--format", "json").stdout)
        return {r["name"]: r["location"] for r in rows}


@pytest.fixture(scope="module", params=list(PROFILES))
def model(request: pytest.FixtureRequest) -> Iterator[Model]:
    """Deploy 3 under the profile's Juju; every join token LXD issues is noted (a spy on the one
    call that asks LXD for one, the real token returned unchanged)."""
    tokens: list[str] = []
    sealed: list[tuple[str, str]] = []
    issue, seal = workload.LXD.issue_join_token, issuing.seal

    def noted(self: workload.LXD, server_name: str) -> str:
        token = issue(self, server_name)
        tokens.append(token)
        return token

    def noted_seal(plaintext: str, recipient_public: str, recipient: str) -> str:
        value = seal(plaintext, recipient_public, recipient)
        sealed.append((value, recipient))
        return value

    with pytest.MonkeyPatch.context() as patch, fresh_lab() as lab:
        patch.setattr(workload.LXD, "issue_join_token", noted)
        patch.setattr(issuing, "seal", noted_seal)
        cluster = form(lab, 3, driver="dir", juju_version=PROFILES[request.param])
        yield Model(request.param, cluster, tokens, sealed)


def test_formation_of_3(model):
    sim = model.sim
    assert model.members(0) == {f"lxd-cluster-{u}": "Online" for u in range(3)}
    for uid, status in sim.statuses().items():
        assert status.name == "active" and f"member lxd-cluster-{uid} of 3" in status.message, status
    assert len(model.tokens) == 2  # one per joiner
    assert sim.missing_tool_calls == []  # on 2.9 the charm never calls a secret-* tool


def test_scale_out_with_add_unit(model):
    add_units(model.cluster, 2, loop_devices=False)
    assert model.members(4) == {f"lxd-cluster-{u}": "Online" for u in range(5)}


def databags(sim) -> dict[str, dict[str, str]]:
    """Every databag the model holds: the peer app bag, each unit's (gone ones too), what the leader
    wrote to each related application."""
    bags = {"app": sim.app_data, **{f"unit/{u}": unit.unit_data for u, unit in sim.units.items()}}
    return {**bags, **{f"provided/{rid}": data for rid, data in sim.provided.items()}}


def test_no_join_token_nor_its_secret_in_any_databag(model):
    """Each join token LXD issued (4 joiners by now), and the raw secret inside it, in no databag.
    On 2.9 the tokens travel sealed in the peer databag, on 3.x/4.x in Juju secrets."""
    assert len(model.tokens) == 4
    raw = [json.loads(base64.b64decode(t))["secret"] for t in model.tokens]
    text = json.dumps(databags(model.sim))
    assert [t for t in model.tokens + raw if t in text] == []


def test_each_sealed_token_opens_with_its_joiners_key_and_no_other(model):
    """2.9 (no Juju secrets): each token the issuer sealed opens with its joiner's private key, read
    from the joiner's machine (its charm directory), to a token LXD issued; with any other unit's
    key, or named for another unit, it does not open. 3.x/4.x seal nothing (Juju secrets carry them)."""
    if model.profile != "juju29":
        assert model.sealed == []
        return
    sim = model.sim
    assert len(model.sealed) >= 4  # one per joiner (a fresh one when a token waited past half its life)
    keys = {f"lxd-cluster/{u}": unit_key.key_path(sim.charm_dir(u)).read_bytes() for u in sim.units}
    assert all(unit_key.key_path(sim.charm_dir(u)).stat().st_mode & 0o777 == 0o600 for u in sim.units)
    for value, recipient in model.sealed:
        assert sealing.unseal(value, keys[recipient], recipient) in model.tokens
        for other, key in keys.items():
            if other != recipient:
                with pytest.raises(sealing.SealError):
                    sealing.unseal(value, key, recipient)
                with pytest.raises(sealing.SealError):
                    sealing.unseal(value, keys[recipient], other)


def test_launch_with_and_without_a_target(model):
    model.cluster.lab.import_image(model.cluster.member(0))
    auto = model.run(model.sim.leader, "launch", "name=auto0", "image=busybox")
    assert auto.ok, auto.failure
    assert auto.results["location"].startswith("lxd-cluster-")
    pinned = model.run(1, "launch", "name=pinned", "image=busybox", "target=lxd-cluster-3")
    assert pinned.ok, pinned.failure
    assert model.instances(2) == {"auto0": auto.results["location"], "pinned": "lxd-cluster-3"}


def test_remove_node_with_evacuate(model):
    leader = model.sim.leader
    assert model.run(leader, "launch", "name=held", "image=busybox", "target=lxd-cluster-2").ok
    refused = model.run(leader, "remove-node", "name=lxd-cluster-2")
    assert "still has instances" in refused.failure, refused.failure
    before = model.instances(leader)
    removed = model.run(leader, "remove-node", "name=lxd-cluster-2", "evacuate=true")
    assert removed.ok, removed.failure
    after = model.instances(leader)
    assert sorted(after) == sorted(before) and "lxd-cluster-2" not in after.values()


def test_force_remove_of_a_dead_host(model):
    sim, dead = model.sim, 3  # holds "pinned"; not the leader
    assert sim.leader != dead
    model.cluster.lab.kill(model.cluster.member(dead))
    t0 = time.monotonic()
    while model.members(sim.leader).get("lxd-cluster-3") != "Offline":
        assert time.monotonic() - t0 < 90, "lxd-cluster-3 never went offline"
        time.sleep(1)
    sim.vanish(dead)
    sim.settle()
    forced = model.run(sim.leader, "force-remove", "name=lxd-cluster-3", "confirm=true")
    assert forced.ok, forced.failure
    assert set(model.members(sim.leader)) == {"lxd-cluster-0", "lxd-cluster-1", "lxd-cluster-4"}


def test_a_related_client_is_restricted_to_its_own_project(model, tmp_path):
    sim = model.sim
    crt, key = client_certificate(tmp_path, "runner")
    relate = "juju relate" if model.profile == "juju29" else "juju integrate"
    rid = sim.cli(f"{relate} lxd-cluster:lxd-cluster runner")
    sim.set_remote_data(rid, {"certificate": crt.read_text()})
    sim.settle()
    provided = sim.provided[rid]
    server_pem = tmp_path / "cluster.crt"
    server_pem.write_text(provided["certificate"])
    endpoint = json.loads(provided["endpoints"])[0]
    assert tls_client(endpoint, crt, key, server_pem, project="runner").instances.all() == []
    with pytest.raises(LXDAPIException) as forbidden:
        tls_client(endpoint, crt, key, server_pem).instances.all()  # the default project
    assert forbidden.value.response.status_code == 403


def test_scale_in_with_remove_unit(model):
    sim = model.sim
    leaving = next(u for u in sorted(sim.statuses()) if u != sim.leader)
    sim.cli(f"juju remove-unit lxd-cluster/{leaving}")
    sim.settle()
    assert not sim.units[leaving].alive
    assert f"lxd-cluster-{leaving}" not in model.members(sim.leader)
    assert len(model.members(sim.leader)) == 2


def test_no_hook_called_a_tool_its_juju_lacks(model):
    assert model.sim.missing_tool_calls == []
