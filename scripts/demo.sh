#!/usr/bin/env bash
# The main job: installs what it needs, then the LXD clustering primer, formed by the charm's
# own code on real LXD daemons on this machine (see demo/primer.py).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec python3 demo/primer.py "$@"
