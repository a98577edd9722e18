"""The charm on a real Juju model (pytest-operator). Skips without a controller (see conftest).

Run: `CHARM_PATH=./lxd-cluster_ubuntu@24.04-amd64.charm tox -e integration` (without CHARM_PATH
the charm is packed with `charmcraft pack`). A Juju 2.9 or 3.x controller: LXD_CLUSTER_JUJU picks
the python-libjuju that serves it (conftest).
- Machines: on an LXD cloud the units need virtual machines (LXD does not nest its clusters in
  containers): `virt-type=virtual-machine` is added there. LXD_CLUSTER_CONSTRAINTS adds more.
- Bridge: the default profile needs an existing host bridge. LXD_CLUSTER_BRIDGE names one the
  cloud's machines have (e.g. br0 on a MAAS host configured for it); without it each machine gets
  an unmanaged bridge `br0` before the unit lands (instances then have no outside network, which
  these tests do not need).
- Storage `local` where the cloud has a block-storage pool (LXD_CLUSTER_STORAGE, e.g. "ebs,20G"
  on AWS, "lxd,20G" on an LXD cloud with VMs); otherwise pools are loop-backed.
"""

from __future__ import annotations

import json
import os
import shlex

import pytest

from tests.integration.controller import controller_version, juju_args

APP = "lxd-cluster"
TIMEOUT = 40 * 60
BRIDGE = os.environ.get("LXD_CLUSTER_BRIDGE", "")


async def juju(ops_test, *args: str) -> str:
    """A juju command whose failure fails the test with juju's own words, typed as 3.x's client
    takes it and rewritten for a 2.9 controller (conftest.juju_args)."""
    code, out, err = await ops_test.juju(*juju_args(list(args), controller_version()))
    assert code == 0, f"juju {shlex.join(args)} exited {code}: {err or out}"
    return out


async def run(ops_test, unit, action: str, **params) -> dict:
    action_obj = await unit.run_action(action, **params)
    result = await action_obj.wait()
    assert result.status == "completed", (action, await task_message(ops_test, action_obj.entity_id))
    return result.results


async def run_failing(ops_test, unit, action: str, **params) -> str:
    """The failure text as the operator reads it: `juju show-task <id>`."""
    action_obj = await unit.run_action(action, **params)
    result = await action_obj.wait()
    assert result.status == "failed", (action, result.results)
    return await task_message(ops_test, action_obj.entity_id)


async def task_message(ops_test, task_id: str) -> str:
    task = json.loads(await juju(ops_test, "show-task", task_id, "--format=json"))
    return str(task.get("message") or task.get("results", {}).get("message") or json.dumps(task))


async def leader(ops_test):
    for unit in ops_test.model.applications[APP].units:
        if await unit.is_leader_from_status():
            return unit
    raise AssertionError("no leader")


async def members(ops_test) -> list[dict]:
    return json.loads((await run(ops_test, await leader(ops_test), "cluster-list"))["members"])


async def instances(ops_test) -> dict[str, str]:
    """name -> member, through `lxc list` on the leader's machine."""
    unit = await leader(ops_test)
    out = await unit.ssh("sudo lxc list --format json")
    return {i["name"]: i["location"] for i in json.loads(out)}


async def constraints(ops_test) -> list[str]:
    model = json.loads(await juju(ops_test, "show-model", ops_test.model_full_name, "--format=json"))
    cloud_type = next(iter(model.values())).get("type", "")
    wanted = ["virt-type=virtual-machine"] if cloud_type == "lxd" else []
    wanted += os.environ.get("LXD_CLUSTER_CONSTRAINTS", "").split()
    return ["--constraints", " ".join(wanted)] if wanted else []


@pytest.fixture(scope="module")
def base(charm_path) -> str:
    """The base the packed charm is for: lxd-cluster_ubuntu@24.04-amd64.charm -> ubuntu@24.04."""
    return charm_path.name.removeprefix("lxd-cluster_").rsplit("-", 1)[0]


async def add_machines(ops_test, base: str, count: int) -> list[str]:
    """New machines for new units, each with a bridge for the default profile."""
    before = set(ops_test.model.machines)
    await juju(ops_test, "add-machine", "-n", str(count), "--base", base, *await constraints(ops_test))
    await ops_test.model.block_until(
        lambda: (
            len(set(ops_test.model.machines) - before) == count
            and all(ops_test.model.machines[m].agent_status == "started" for m in set(ops_test.model.machines) - before)
        ),
        timeout=TIMEOUT,
    )
    new = sorted(set(ops_test.model.machines) - before, key=int)
    if not BRIDGE:
        for machine in new:
            await juju(
                ops_test,
                "exec",
                "--machine",
                machine,
                "--",
                "sudo ip link add br0 type bridge && sudo ip link set br0 up",
            )
    return new


def bridge_config() -> list[str]:
    return ["--config", f"bridge={BRIDGE or 'br0'}"]


@pytest.mark.abort_on_fail
async def test_deploy_three_units_forms_one_cluster(ops_test, charm_path, base):
    machines = await add_machines(ops_test, base, 3)
    args = [
        "deploy",
        str(charm_path),
        APP,
        "-n",
        "3",
        "--to",
        ",".join(machines),
        "--base",
        base,
        "--config",
        f"storage-driver={os.environ.get('LXD_CLUSTER_DRIVER', 'zfs')}",
        *bridge_config(),
    ]
    if os.environ.get("LXD_CLUSTER_STORAGE"):
        args += ["--storage", f"local={os.environ['LXD_CLUSTER_STORAGE']}"]
    await juju(ops_test, *args)
    await ops_test.model.wait_for_idle(apps=[APP], status="active", timeout=TIMEOUT)
    rows = await members(ops_test)
    assert len(rows) == 3
    assert all(r["state"] == "ONLINE" and r["message"] == "Fully operational" for r in rows)
    for unit in ops_test.model.applications[APP].units:
        assert " of 3 " in unit.workload_status_message and "fully operational" in unit.workload_status_message
    # every member opened its API and metrics ports for `juju expose`
    status = json.loads(await juju(ops_test, "status", APP, "--format", "json"))
    for unit in status["applications"][APP]["units"].values():
        assert sorted(unit.get("open-ports", [])) == ["8443/tcp", "8444/tcp"], unit


async def test_launch_spreads_and_targets(ops_test):
    unit = await leader(ops_test)
    for i in range(3):
        await run(ops_test, unit, "launch", name=f"c{i}", image="ubuntu:24.04")
    placed = await instances(ops_test)
    assert len({placed[f"c{i}"] for i in range(3)}) == 3
    target = (await members(ops_test))[1]["name"]
    result = await run(ops_test, unit, "launch", name="pinned", image="ubuntu:24.04", target=target)
    assert result["location"] == target


async def test_remove_node_refuses_with_instances_then_evacuates(ops_test, base):
    unit = await leader(ops_test)
    machines = await add_machines(ops_test, base, 2)
    await juju(ops_test, "add-unit", APP, "-n", "2", "--to", ",".join(machines))
    await ops_test.model.wait_for_idle(apps=[APP], status="active", timeout=TIMEOUT, wait_for_exact_units=5)
    assert len(await members(ops_test)) == 5
    before = await instances(ops_test)
    own = f"{APP}-{unit.name.split('/')[1]}"
    holder = next(loc for loc in before.values() if loc != own)
    message = await run_failing(ops_test, unit, "remove-node", name=holder)
    assert "still has instances" in message
    await run(ops_test, unit, "evacuate", name=holder)
    await run(ops_test, unit, "restore", name=holder)
    result = await run(ops_test, unit, "remove-node", name=holder, evacuate=True)
    assert result["lost"] == "none"
    assert sorted(await instances(ops_test)) == sorted(before)


async def test_remove_unit_with_instances_loses_none(ops_test):
    before = await instances(ops_test)
    lead = await leader(ops_test)
    departing = next(
        u
        for u in ops_test.model.applications[APP].units
        if u.name != lead.name and f"{APP}-{u.name.split('/')[1]}" in before.values()
    )
    await juju(ops_test, "remove-unit", departing.name, "--no-prompt")
    await ops_test.model.wait_for_idle(apps=[APP], status="active", timeout=TIMEOUT)
    assert sorted(await instances(ops_test)) == sorted(before)


async def test_forced_unit_removal_leaves_a_stale_member_that_force_remove_clears(ops_test):
    lead = await leader(ops_test)
    victim = next(u for u in ops_test.model.applications[APP].units if u.name != lead.name)
    name = f"{APP}-{victim.name.split('/')[1]}"
    await juju(ops_test, "remove-machine", victim.machine.id, "--force", "--no-wait", "--no-prompt")
    await ops_test.model.block_until(lambda: "stale member" in lead.workload_status_message, timeout=600)
    result = await run(ops_test, lead, "force-remove", name=name, confirm=True)
    assert "wipe" in result["next-step"]
    assert name not in [r["name"] for r in await members(ops_test)]


async def test_leader_removal_elects_a_new_leader_and_no_second_cluster(ops_test):
    old = await leader(ops_test)
    count = len(await members(ops_test))
    await juju(ops_test, "remove-unit", old.name, "--no-prompt")
    await ops_test.model.wait_for_idle(apps=[APP], status="active", timeout=TIMEOUT)
    rows = await members(ops_test)
    assert len(rows) == count - 1
    for unit in ops_test.model.applications[APP].units:
        assert f" of {count - 1} " in unit.workload_status_message


async def test_config_changes_apply_cluster_wide_and_bad_values_block(ops_test):
    application = ops_test.model.applications[APP]
    await application.set_config({"images-auto-update": "false"})
    await ops_test.model.wait_for_idle(apps=[APP], status="active", timeout=TIMEOUT)
    unit = await leader(ops_test)
    assert (await unit.ssh("sudo lxc config get images.auto_update_interval")).strip() == "0"
    await application.set_config({"storage-driver": "ceph"})
    await ops_test.model.wait_for_idle(apps=[APP], status="blocked", timeout=600)
    assert "storage-driver" in unit.workload_status_message
    await application.set_config({"storage-driver": os.environ.get("LXD_CLUSTER_DRIVER", "zfs")})
    await ops_test.model.wait_for_idle(apps=[APP], status="active", timeout=600)
