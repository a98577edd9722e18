#!/usr/bin/env bash
# The test command: installs what it needs, then the unit and functional tests (real LXD
# daemons) and the integration tests (which skip without a Juju controller).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
[ $# -gt 0 ] || set -- tests/unit tests/functional tests/integration
exec python3 -m pytest -p no:cacheprovider "$@"
