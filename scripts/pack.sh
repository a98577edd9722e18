#!/usr/bin/env bash
# Packs the charm with charmcraft from PyPI, in destructive mode on this host, as root:
#   bash scripts/pack.sh [--charmcraft 4.5.0] [--platform ubuntu@22.04:amd64] [--out build]
# prints the path of the .charm. On an Ubuntu workstation `charmcraft pack --platform ...` does
# the same in a clean build container; this script is for hosts without one (CI, this Debian lab).
# charmcraft refuses a host that is not the platform's Ubuntu: on any other host the platform's
# os-release is bind-mounted over /etc/os-release for charmcraft's process tree only
# (`unshare -m`). The venv inside the .charm is built with the platform's own CPython (3.10 for
# ubuntu@22.04, 3.12 for ubuntu@24.04; scripts/platform_python.py finds it in pyenv or on PATH),
# so its wheels are the ones those machines import. Where this host has no such Python it says
# so and falls back to the host's python3: that .charm is then only right for this host.
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
# charmcraft's charm builder makes the charm's venv with the first python3 on PATH
# (charmcraft/charm_builder.py, _install_dependencies: `python3 -m venv`) and copies its
# site-packages to venv/: that python3 is the platform's CPython. charmcraft itself keeps running
# from its own venv (the system python3 with python3-apt).
if python=$(/usr/bin/python3 scripts/platform_python.py "$platform"); then
  built_with="CPython $("$python" -c 'import platform; print(platform.python_version())') ($python), the Python of ubuntu@$series"
elif [ $? = 1 ]; then
  python=/usr/bin/python3
  built_with="the host's $("$python" --version) ($python), NOT the Python of ubuntu@$series: this .charm's compiled wheels do not import there"
  echo "pack: falling back to $built_with" >&2
else
  exit 2
fi
mkdir "$work/python"
ln -s "$python" "$work/python/python3"
export PATH=$work/python:/usr/sbin:/usr/bin:/sbin:/bin CRAFT_BUILD_ENVIRONMENT=host
if [ "${ID:-}" = ubuntu ] && [ "${VERSION_ID:-}" = "$series" ]; then
  (cd "$work/project" && "${run_charmcraft[@]}") >"$work/pack.log" 2>&1 || { tail -40 "$work/pack.log" >&2; exit 1; }
else
  codename=$([ "$series" = 22.04 ] && echo jammy || { [ "$series" = 24.04 ] && echo noble || echo unknown; })
  printf 'NAME="Ubuntu"\nID=ubuntu\nID_LIKE=debian\nVERSION_ID="%s"\nVERSION_CODENAME=%s\nUBUNTU_CODENAME=%s\nPRETTY_NAME="Ubuntu %s"\n' \
    "$series" "$codename" "$codename" "$series" >"$work/os-release"
  unshare -m sh -c 'mount --bind "$1" /etc/os-release && shift && cd "$0" && exec "$@"' \
    "$work/project" "$work/os-release" "${run_charmcraft[@]}" >"$work/pack.log" 2>&1 \
    || { tail -40 "$work/pack.log" >&2; exit 1; }
fi
mkdir -p "$out"
charm=$(cd "$work/project" && ls ./*.charm)
mv "$work/project/$charm" "$out/"
echo "pack: ${charm#./} for $platform on $PRETTY_NAME: venv/ built with $built_with" >&2
realpath "$out/${charm#./}"
