#!/usr/bin/env bash
# Packs the charm with charmcraft from PyPI, in destructive mode on this host, as root:
#   bash scripts/pack.sh [--charmcraft 4.5.0] [--platform ubuntu@22.04:amd64] [--out build]
# prints the path of the .charm. On an Ubuntu workstation `charmcraft pack --platform ...` does
# the same in a clean build container; this script is for hosts without one (CI, this Debian lab).
# charmcraft refuses a host that is not the platform's Ubuntu: on any other host the platform's
# os-release is bind-mounted over /etc/os-release for charmcraft's process tree only
# (`unshare -m`). The venv inside the .charm is then built with THIS host's python3: such a
# .charm is right for a host with the same Python (the packed-hook tests here), not for Ubuntu.
set -euo pipefail
cd "$(dirname "$0")/.."
version=4.5.0
platform=ubuntu@22.04:amd64
out=build
while [ $# -gt 0 ]; do
  case "$1" in
    --charmcraft) version=$2; shift 2 ;;
    --platform) platform=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    *) echo "usage: $0 [--charmcraft VERSION] [--platform ubuntu@XX.YY:ARCH] [--out DIR]" >&2; exit 2 ;;
  esac
done
[ "$(id -u)" = 0 ] || { echo "run as root: destructive mode apt-installs the build packages" >&2; exit 1; }

# charmcraft imports Debian's python3-apt: its venv is made by the system python3 with system site
# packages, and gets its own pyOpenSSL over Debian's older one (which breaks on newer cryptography).
need=()
for pkg in python3-apt python3-venv python3-pip git; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
venv=${CHARMCRAFT_VENVS:-/var/cache/lxd-cluster}/charmcraft-$version
if ! "$venv/bin/charmcraft" version >/dev/null 2>&1; then
  echo "pack: installing charmcraft $version into $venv" >&2
  rm -rf "$venv"
  /usr/bin/python3 -m venv --system-site-packages "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check "charmcraft==$version" 2>&1 | grep -v "^WARNING: Location" >&2 || true
  "$venv/bin/pip" install -q --disable-pip-version-check --ignore-installed pyopenssl 2>&1 | grep -v "^WARNING: Location" >&2 || true
  "$venv/bin/charmcraft" version >/dev/null
fi

# Pack a copy of what git tracks (plus untracked, not ignored files): never a stale build dir.
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir "$work/project"
git ls-files -co --exclude-standard -z | tar --null -cf - -T - | tar -xf - -C "$work/project"

series=${platform#ubuntu@}
series=${series%%:*}
. /etc/os-release
run_charmcraft=("$venv/bin/charmcraft" pack --destructive-mode --platform "$platform")
# the system python3 builds the charm's venv, whatever python3 comes first on the caller's PATH
export PATH=/usr/sbin:/usr/bin:/sbin:/bin CRAFT_BUILD_ENVIRONMENT=host
if [ "${ID:-}" = ubuntu ] && [ "${VERSION_ID:-}" = "$series" ]; then
  (cd "$work/project" && "${run_charmcraft[@]}") >"$work/pack.log" 2>&1 || { tail -40 "$work/pack.log" >&2; exit 1; }
else
  codename=$([ "$series" = 22.04 ] && echo jammy || { [ "$series" = 24.04 ] && echo noble || echo unknown; })
  printf 'NAME="Ubuntu"\nID=ubuntu\nID_LIKE=debian\nVERSION_ID="%s"\nVERSION_CODENAME=%s\nUBUNTU_CODENAME=%s\nPRETTY_NAME="Ubuntu %s"\n' \
    "$series" "$codename" "$codename" "$series" >"$work/os-release"
  echo "pack: $platform on $PRETTY_NAME: the venv is built with $(/usr/bin/python3 --version)" >&2
  unshare -m sh -c 'mount --bind "$1" /etc/os-release && shift && cd "$0" && exec "$@"' \
    "$work/project" "$work/os-release" "${run_charmcraft[@]}" >"$work/pack.log" 2>&1 \
    || { tail -40 "$work/pack.log" >&2; exit 1; }
fi
mkdir -p "$out"
charm=$(cd "$work/project" && ls ./*.charm)
mv "$work/project/$charm" "$out/"
realpath "$out/${charm#./}"
