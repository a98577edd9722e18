#!/usr/bin/env bash
# The test command: installs what it needs, then the unit and functional tests (real LXD
# daemons), the packed-charm tests (charmcraft packs the .charm, its dispatch runs the hooks on a
# real LXD daemon) and the integration tests (which skip without a Juju controller).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
[ $# -gt 0 ] || set -- tests/unit tests/functional tests/packed tests/integration
exec python3 -m pytest -p no:cacheprovider "$@"
