#!/usr/bin/env bash
# The main job: installs what it needs, then the LXD clustering primer, formed by the charm's
# own code on real LXD daemons on this machine (see demo/primer.py).
#   bash scripts/demo.sh --packed   # the same walkthrough on the packed .charm: every hook its own dispatch
#                                   # (LXD_CLUSTER_CHARM=<.charm> to play one packed beforehand)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if [[ " $* " == *" --packed "* && -z "${LXD_CLUSTER_CHARM:-}" ]]; then
  echo "demo: packing the charm (scripts/pack.sh, a few minutes the first time)" >&2
  LXD_CLUSTER_CHARM=$(bash scripts/pack.sh --out "$(mktemp -d)" | tail -1)
  export LXD_CLUSTER_CHARM
fi
exec python3 demo/primer.py "$@"
