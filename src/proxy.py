"""The model's HTTP proxy, for LXD (cluster-wide core.proxy_* keys) and for snapd (system proxy.*).

Juju exports the model's proxy settings (juju-http-proxy, juju-https-proxy, juju-no-proxy) to every
hook as JUJU_CHARM_HTTP_PROXY, JUJU_CHARM_HTTPS_PROXY and JUJU_CHARM_NO_PROXY, always, empty when
unset (juju/juju worker/uniter/runner/context/context.go HookVars: "Some of these will be empty,
but that is fine, better to explicitly export them as empty"). The options lxd-http-proxy,
lxd-https-proxy and lxd-no-proxy replace the three for LXD alone: when any of them is set, LXD gets
those three and nothing of the model's. snapd follows the model, but only in the options the charm
set itself or found empty: Juju's own snap-http-proxy/snap-https-proxy model keys reach snapd through
the machine agent (juju/juju worker/proxyupdater/proxyupdater.go handleSnapProxyValues, `snap set
system proxy.http=... proxy.https=...`), and a value they (or an operator) set is left alone.

A proxy URL may carry a user and password: the charm hands them to the redactor (redaction.py) and
never shows a URL itself, only which setting holds one. No ops import here.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import SplitResult, urlsplit

logger = logging.getLogger(__name__)

MODEL_VARIABLES = {
    "http": "JUJU_CHARM_HTTP_PROXY",
    "https": "JUJU_CHARM_HTTPS_PROXY",
    "no_proxy": "JUJU_CHARM_NO_PROXY",
}
OPTIONS = {"http": "lxd-http-proxy", "https": "lxd-https-proxy", "no_proxy": "lxd-no-proxy"}
# LXD's server keys, cluster-wide (lxd/cluster/config/config.go: lxd-5.0.2:271-273, lxd-5.21.7:471-489,
# lxd-6.9:481-499); applied at once (lxd-5.0.2 lxd/api_1.0.go:712-717 -> daemon_config.go
# daemonConfigSetProxy) to every download the daemon makes: image pulls from a remote LXD or simplestreams
# server go through shared.ProxyFromConfig (lxd-5.0.2 lxd/daemon_images.go:83, shared/proxy.go:54-184), which
# never proxies localhost or a loopback address and takes "*" in core.proxy_ignore_hosts as "no host"
LXD_KEYS = {"http": "core.proxy_http", "https": "core.proxy_https", "no_proxy": "core.proxy_ignore_hosts"}
# snapd's system options (snapd overlord/configstate/configcore/proxy.go init: supportedConfigurations
# core.proxy.http, .https, .ftp, .no-proxy, .store); snapd uses them for its own store downloads
SNAPD_KEYS = {"http": "proxy.http", "https": "proxy.https", "no_proxy": "proxy.no-proxy"}
_HOST_LIST = re.compile(r"^[A-Za-z0-9_.:/*\-\[\]]+$")  # one entry of a no-proxy list


class ProxyError(ValueError):
    """A proxy setting does not parse; the message names the option or variable, never the value."""


@dataclasses.dataclass(frozen=True)
class ProxySettings:
    http: str = ""
    https: str = ""
    no_proxy: str = ""
    source: str = "model"  # model (Juju's model config) or options (lxd-*-proxy)

    def lxd_config(self) -> dict[str, str]:
        """LXD's server keys; an empty value unsets the key (the model's proxy was cleared)."""
        return {LXD_KEYS[field]: getattr(self, field) for field in LXD_KEYS}

    def snapd_config(self) -> dict[str, str]:
        return {SNAPD_KEYS[field]: getattr(self, field) for field in SNAPD_KEYS}

    def credentials(self) -> dict[str, str]:
        """What of these URLs is secret, for the redactor: each URL that holds a user or password,
        and its USER:PASSWORD."""
        found: dict[str, str] = {}
        for field in ("http", "https"):
            parts = urlsplit(getattr(self, field))
            if parts.username is not None or parts.password is not None:
                found[f"{field}-proxy-url"] = getattr(self, field)
                found[f"{field}-proxy-userinfo"] = parts.netloc.rpartition("@")[0]
        return found


def split_url(value: str) -> SplitResult | None:
    """value split as a URL, None where it does not parse (a port that is not a number in range)."""
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number in range
    except ValueError:
        return None
    return parts


def check_url(name: str, value: str) -> None:
    """http(s)://[USER[:PASSWORD]@]HOST[:PORT][/], or ProxyError naming `name` (never the value:
    it may hold a password)."""
    parts = split_url(value)
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname or parts.path not in ("", "/"):
        raise ProxyError(
            f"{name} is not a proxy URL (not shown: it may hold a password): "
            "use http://HOST:PORT (with USER:PASSWORD@ before HOST where the proxy asks for one)"
        )


def check_hosts(name: str, value: str) -> None:
    """A comma-separated list of hosts, domains, addresses or CIDRs (LXD's and Go's NO_PROXY form)."""
    entries = [e.strip() for e in value.split(",")]
    if any(e and not _HOST_LIST.match(e) for e in entries):
        raise ProxyError(
            f"{name} is not a list of hosts: give comma-separated names, domains, addresses or CIDRs "
            "such as localhost,.internal,10.0.0.0/8"
        )


def _checked(values: Mapping[str, str], names: Mapping[str, str], source: str) -> ProxySettings:
    for field in ("http", "https"):
        if values[field]:
            check_url(names[field], values[field])
    check_hosts(names["no_proxy"], values["no_proxy"])
    return ProxySettings(values["http"], values["https"], values["no_proxy"], source)


def model_proxy(environ: Mapping[str, str]) -> ProxySettings:
    """The model's proxy as Juju hands it to this hook (ProxyError names the variable)."""
    values = {field: environ.get(variable, "").strip() for field, variable in MODEL_VARIABLES.items()}
    return _checked(values, MODEL_VARIABLES, "model")


def option_proxy(options: Mapping[str, str]) -> ProxySettings | None:
    """The lxd-*-proxy options, None when none is set (LXD follows the model then)."""
    values = {field: options.get(option, "") for field, option in OPTIONS.items()}
    if not any(values.values()):
        return None
    return _checked(values, OPTIONS, "options")


def lxd_proxy(model: ProxySettings, options: ProxySettings | None) -> ProxySettings:
    return options if options is not None else model


def digest(value: str) -> str:
    """What the charm remembers of a value it gave snapd (not the value: it may hold a password)."""
    return hashlib.sha256(value.encode()).hexdigest()


def snapd_plan(
    current: Mapping[str, str], wanted: Mapping[str, str], ours: Mapping[str, str]
) -> tuple[dict[str, str], list[str]]:
    """The snapd options to change (an empty value unsets one), and those left because someone else
    set them: an option is the charm's to change when unset or holding what the charm set (ours:
    option -> digest of the value the charm set)."""
    changes, foreign = {}, []
    for key, value in wanted.items():
        now = current.get(key, "")
        if now == value:
            continue
        if now and ours.get(key) != digest(now):
            foreign.append(key)
        else:
            changes[key] = value
    return changes, foreign


def apply_to_snapd(snap: Any, settings: ProxySettings, ours: Mapping[str, str]) -> dict[str, str]:
    """snapd's proxy options follow settings where the charm set them or found them empty (snap:
    snap.LXDSnap); returns what to remember of what the charm set (option -> digest)."""
    changes, foreign = snapd_plan(snap.system_proxy(), settings.snapd_config(), ours)
    if foreign:
        logger.info("snapd %s set by another (Juju's snap-*-proxy or an operator): left", ", ".join(foreign))
    if not changes:
        return dict(ours)
    snap.set_system(changes)
    logger.info("snapd proxy follows the model: %s", ", ".join(sorted(changes)))
    remembered = {k: v for k, v in ours.items() if k not in changes}
    remembered.update({k: digest(v) for k, v in changes.items() if v})
    return remembered


def apply_to_lxd(lxd: Any, settings: ProxySettings) -> None:
    """The leader sets LXD's cluster-wide proxy keys (an empty value unsets one); logs keys, not values."""
    if changed := lxd.update_config(settings.lxd_config()):
        logger.info("LXD proxy (from the %s) updated: %s", settings.source, ", ".join(changed))
