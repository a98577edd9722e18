#!/usr/bin/env python3
"""The LXD clustering primer, reproduced by the charm on real LXD daemons on this machine.

Starts three LXD daemons (one network namespace each, no route out, a btrfs pool on a loop
device each), plays `juju deploy lxd-cluster -n 3` with the unchanged charm, then prints what
the primer's operator saw: `lxc cluster list`, the storage pool, the default profile, and a
busybox container started on every member. Everything is removed at the end.

    bash scripts/demo.sh            # as root; installs what it needs first
    bash scripts/demo.sh --keep     # leave the lab up (then: python3 -m tests.harness.lab down)
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "lib"), str(ROOT)]

from tests.harness.cluster import form  # noqa: E402
from tests.harness.lab import Lab, require_root_and_lxd  # noqa: E402


def say(text: str) -> None:
    print(f"\n==> {text}", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=3)
    parser.add_argument("--driver", choices=["btrfs", "dir"], default="btrfs")
    parser.add_argument("--keep", action="store_true", help="leave the lab running")
    args = parser.parse_args()
    require_root_and_lxd()

    lab = Lab(prefix="lxdlab")
    try:
        say(f"juju deploy lxd-cluster -n {args.members}  (storage-driver={args.driver}; "
            "each unit's Juju storage `local` is its own loop device)")
        t0 = time.monotonic()
        cluster = form(lab, args.members, driver=args.driver)
        total = time.monotonic() - t0
        for uid in cluster.sim.units:
            m = cluster.member(uid)
            role = "bootstrap" if uid == cluster.sim.leader else "join"
            print(f"  lxd-cluster/{uid}: {role:9} on {m.name} ({m.address}, pool on "
                  f"{m.loop or 'dir'}) {cluster.hook_seconds(uid):5.1f} s   status: "
                  f"{cluster.sim.units[uid].status.message}")
        print(f"  formed in {cluster.seconds:.1f} s ({cluster.hooks} hooks); "
              f"with daemon start-up {total:.1f} s")

        say("lxc cluster list")
        print(cluster.lxc(1, "cluster", "list").stdout, end="")
        say("lxc storage show local")
        print(cluster.lxc(0, "storage", "show", "local").stdout, end="")
        say("lxc profile show default")
        print(cluster.lxc(0, "profile", "show", "default").stdout, end="")

        say("lxc launch busybox cN --target <member>  (one container on every member)")
        lab.import_image(cluster.member(0))
        for uid in cluster.sim.units:
            name = f"lxd-cluster-{uid}"
            cluster.lxc(0, "launch", "busybox", f"c{uid}", "--target", name, "-q")
        print(cluster.lxc(0, "list", "-c", "nsL", "-f", "compact").stdout, end="")

        ok = all(
            getattr(u.status, "name", "") == "active" and "fully operational" in u.status.message
            for u in cluster.sim.units.values()
        )
        say("all members ONLINE, fully operational" if ok else "NOT all members are operational")
        return 0 if ok else 1
    finally:
        if args.keep:
            say(f"lab left running under {lab.root}; remove it with: python3 -m tests.harness.lab down")
        else:
            lab.down()


if __name__ == "__main__":
    sys.exit(main())
