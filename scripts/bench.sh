#!/usr/bin/env bash
# Benchmarks (issue: charm vs by-hand ratios): installs what it needs, writes docs/benchmarks.md
# and docs/formation.png. About 10 minutes on 2 cores; --quick for a short run.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
[ -x /usr/bin/time ] || { apt-get update -qq && apt-get install -y -qq time >/dev/null; }
python3 -m pip install -q --disable-pip-version-check matplotlib
exec python3 bench/run.py "$@"
