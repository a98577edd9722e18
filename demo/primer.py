#!/usr/bin/env python3
"""The LXD clustering primer, reproduced by the charm on real LXD daemons on this machine.

Starts three LXD daemons (one network namespace each, no route out, a btrfs pool on a loop
device each), plays `juju deploy lxd-cluster -n 3` with the unchanged charm, then prints what
the primer's operator saw: `lxc cluster list`, the storage pool, the default profile, and a
busybox container started on every member; then the primer's walkthrough through the charm's
actions: add a member, launch three auto-placed containers and one with a target, exec from
another member, remove-node (refused, then with evacuate), and force-remove of a dead member.
Everything is removed at the end.

    bash scripts/demo.sh            # as root; installs what it needs first
    bash scripts/demo.sh --keep     # leave the lab up (then: python3 -m tests.harness.lab down)
    bash scripts/demo.sh --packed   # every hook run by the packed .charm's own dispatch (LXD_CLUSTER_CHARM)
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "lib"), str(ROOT)]

from tests.harness.cluster import add_units, form  # noqa: E402
from tests.harness.juju import JujuSim  # noqa: E402
from tests.harness.lab import Lab, require_root_and_lxd  # noqa: E402


def say(text: str) -> None:
    print(f"\n==> {text}", flush=True)


def run(sim: JujuSim, uid: int, action: str, expect_failure: bool = False, **params):
    outcome = sim.run_action(uid, action, **params)
    if expect_failure:
        assert outcome.failure, f"{action} should have been refused"
        return outcome.failure
    if outcome.failure:
        raise SystemExit(f"{action} failed: {outcome.failure}")
    return outcome.results


def instance_rows(cluster) -> list[dict]:
    return json.loads(cluster.lxc(0, "list", "--format", "json").stdout)


def cluster_rows(cluster) -> list[dict]:
    return json.loads(cluster.lxc(0, "cluster", "list", "--format", "json").stdout)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=3)
    parser.add_argument("--driver", choices=["btrfs", "dir"], default="btrfs")
    parser.add_argument("--keep", action="store_true", help="leave the lab running")
    parser.add_argument(
        "--packed",
        action="store_true",
        help="run every hook through the packed .charm named by LXD_CLUSTER_CHARM (scripts/demo.sh packs one)",
    )
    args = parser.parse_args()
    require_root_and_lxd()
    logging.disable(logging.WARNING)  # the charm's and ops' own logging; the demo prints what matters

    # LAB_PREFIX/LAB_NET: a lab beside another one on this machine (as the tests take them)
    lab = Lab(prefix=os.environ.get("LAB_PREFIX", "lxdlab"), net=os.environ.get("LAB_NET", "10.250.0"))
    sim_kw = {}
    units = tempfile.TemporaryDirectory(prefix="lxd-cluster-units-")  # each packed unit's charm directory
    if args.packed:
        from tests.packed.packed_context import lab_context_factory

        charm = Path(os.environ["LXD_CLUSTER_CHARM"])
        say(f"the packed charm {charm.name}: every hook of every unit is its own `dispatch` process")
        sim_kw["context_factory"] = lab_context_factory(charm, Path(units.name), lab)
    try:
        say(
            f"juju deploy lxd-cluster -n {args.members}  (storage-driver={args.driver}; "
            "each unit's Juju storage `local` is its own loop device)"
        )
        t0 = time.monotonic()
        cluster = form(lab, args.members, driver=args.driver, **sim_kw)
        total = time.monotonic() - t0
        for uid in cluster.sim.units:
            m = cluster.member(uid)
            role = "bootstrap" if uid == cluster.sim.leader else "join"
            print(
                f"  lxd-cluster/{uid}: {role:9} on {m.name} ({m.address}, pool on "
                f"{m.loop or 'dir'}) {cluster.hook_seconds(uid):5.1f} s   status: "
                f"{cluster.sim.units[uid].status.message}"
            )
        print(f"  formed in {cluster.seconds:.1f} s ({cluster.hooks} hooks); with daemon start-up {total:.1f} s")

        say("lxc cluster list")
        print(cluster.lxc(1, "cluster", "list").stdout, end="")
        say("lxc storage show local")
        print(cluster.lxc(0, "storage", "show", "local").stdout, end="")
        say("lxc profile show default")
        print(cluster.lxc(0, "profile", "show", "default").stdout, end="")

        sim = cluster.sim
        lab.import_image(cluster.member(0))
        say("juju add-unit lxd-cluster  (a fourth host joins; the primer keeps at least three)")
        add_units(cluster, 1, loop_devices=args.driver != "dir")
        print(run(sim, sim.leader, "cluster-list")["table"])

        say("juju run lxd-cluster/leader launch name=cN image=busybox   (x3, auto-placed)")
        for i in range(1, 4):
            r = run(sim, sim.leader, "launch", name=f"c{i}", image="busybox")
            print(f"  {r['name']}: {r['status']} on {r['location']}")
        say("juju run lxd-cluster/1 launch name=pinned image=busybox target=lxd-cluster-3")
        r = run(sim, 1, "launch", name="pinned", image="busybox", target="lxd-cluster-3")
        print(f"  {r['name']}: {r['status']} on {r['location']}")
        say("lxc exec pinned -- ip -o addr   (through member lxd-cluster-1's API; pinned is on lxd-cluster-3)")
        print(cluster.lxc(1, "exec", "pinned", "--", "ip", "-o", "addr").stdout, end="")
        print(cluster.lxc(1, "list", "-c", "nsL", "-f", "compact").stdout, end="")

        leader_member = f"lxd-cluster-{sim.leader}"
        holder = next(
            i["location"] for i in instance_rows(cluster) if i["location"] not in (leader_member, "lxd-cluster-3")
        )
        say(f"juju run lxd-cluster/leader remove-node name={holder}   (it still has instances)")
        print("  refused:", run(sim, sim.leader, "remove-node", name=holder, expect_failure=True))
        say(f"juju run lxd-cluster/leader remove-node name={holder} evacuate=true")
        r = run(sim, sim.leader, "remove-node", name=holder, evacuate=True)
        print(
            f"  moved: {r['moved']}; instances before {r['instances-before']}, after "
            f"{r['instances-after']}, lost: {r['lost']}"
        )
        print(run(sim, sim.leader, "cluster-list")["table"])
        say("juju remove-unit lxd-cluster/1   (its member was removed; the unit goes too)")
        sim.remove_unit(1)
        sim.settle()

        dead = "lxd-cluster-3"
        on_dead = sorted(i["name"] for i in instance_rows(cluster) if i["location"] == dead)
        say(f"{dead}'s host dies (kill -9 of its LXD) and its unit is gone (juju remove-unit --force)")
        lab.kill(cluster.member(3))
        sim.vanish(3)
        t0 = time.monotonic()
        while time.monotonic() - t0 < 90:
            if {m["server_name"]: m["status"] for m in cluster_rows(cluster)}.get(dead) == "Offline":
                break
            time.sleep(1)
        print(f"  {dead} OFFLINE after {time.monotonic() - t0:.0f} s; instances on it: {', '.join(on_dead)}")
        sim.update_status()
        sim.settle()
        print("  lxd-cluster/0 status:", sim.units[0].status.message)
        say(f"juju run lxd-cluster/leader force-remove name={dead} confirm=true")
        before = len(instance_rows(cluster))
        r = run(sim, sim.leader, "force-remove", name=dead, confirm=True)
        print(
            f"  removed {r['removed']}; instances before {before}, after {len(instance_rows(cluster))}; "
            f"lost with the dead host: {r['lost-instances']}\n  {r['next-step']}"
        )
        sim.update_status()
        sim.settle()
        for uid, unit in sim.units.items():
            if unit.alive:
                print(f"  lxd-cluster/{uid} status: {unit.status.message}")
        print(run(sim, sim.leader, "cluster-list")["table"])
        print(cluster.lxc(0, "list", "-c", "nsL", "-f", "compact").stdout, end="")

        ok = all(
            getattr(u.status, "name", "") == "active" and "fully operational" in u.status.message
            for u in cluster.sim.units.values()
            if u.alive
        )
        say("all members ONLINE, fully operational" if ok else "NOT all members are operational")
        return 0 if ok else 1
    finally:
        if args.keep:
            say(f"lab left running under {lab.root}; remove it with: python3 -m tests.harness.lab down")
        else:
            lab.down()
            units.cleanup()


if __name__ == "__main__":
    sys.exit(main())
