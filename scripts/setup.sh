#!/usr/bin/env bash
# Installs what the demo and the tests need on Debian/Ubuntu, as root. Idempotent and quiet.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "run as root: the lab starts LXD daemons and network namespaces" >&2; exit 1; }
need=()
# python3-openssl and python3-yaml: the packed-charm tests run hooks on the system python3 as a
# Juju machine has it (Debian's older pyOpenSSL included)
# prometheus: a real Prometheus scrapes the lab in tests/functional/test_observability.py (run by the
# test itself on 127.0.0.1; Debian's service is never started: policy-rc.d, no systemd in CI)
# dnsmasq-base and iptables: LXD's DHCP and NAT for network-mode managed-bridge (tests/functional/test_networks.py)
for pkg in lxd lxd-client btrfs-progs busybox-static dnsmasq-base iptables iproute2 util-linux python3-openssl python3-yaml prometheus; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  echo "setup: apt-get install ${need[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
python3 -m pip install -q --disable-pip-version-check -r requirements-dev.txt
