"""Typed charm configuration: one validation pass, one readable error naming the option and the fix."""

from __future__ import annotations

import dataclasses
import ipaddress
import re
from collections.abc import Callable, Mapping

from network import MODES, NetworkChoice
from proxy import OPTIONS as PROXY_OPTIONS
from proxy import ProxyError, ProxySettings, option_proxy, split_url

STORAGE_DRIVERS = ("zfs", "btrfs", "lvm", "dir")
# track/risk[/branch], or a bare track or risk: 5.21/stable, latest/edge, 5.0/stable/hotfix-1, stable
_CHANNEL = re.compile(
    r"^(?:(?:[a-z0-9][a-z0-9.\-]*)/)?(?:stable|candidate|beta|edge)(?:/[a-z0-9][a-z0-9.\-]*)?$"
    r"|^[0-9][a-z0-9.\-]*$|^latest$"
)
_SIZE = re.compile(r"^[1-9][0-9]*(?:[KMGTPE]i?B|[KMGTPE])?$")
_INTERFACE = re.compile(r"^[A-Za-z0-9_.\-]{1,15}$")  # Linux IFNAMSIZ - 1
_SUBNET_NAME = re.compile(r"^[A-Za-z0-9_.:/\-]{1,253}$")
# LXD's expiry syntax (core.remote_token_expiry, cluster.join_token_expiry): "30M", "1H 30M", "2d"
_EXPIRY_PART = re.compile(r"^([0-9]+)(S|M|H|d|w|m|y)$")
EXPIRY_SECONDS = {"S": 1, "M": 60, "H": 3600, "d": 86400, "w": 604800, "m": 2592000, "y": 31536000}
CLIENT_ACCESS = ("own-project", "refuse", "admin")
_SIZE_UNITS = {"": 1, "K": 1000, "M": 1000**2, "G": 1000**3, "T": 1000**4, "P": 1000**5, "E": 1000**6}


_NAGIOS_NAME = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")  # no Nagios illegal_object_name_chars, no space
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
SHOWN = 48  # at most this much of a bad value goes into a status message


class ConfigError(ValueError):
    """A configuration value is unusable; the message names the option and the fix."""


def shown(value: object, limit: int = SHOWN) -> str:
    """A value quoted for a status message, cut short: a 4 KiB value is never echoed whole."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[: limit - 4]}...{text[-1]} ({len(str(value))} characters)"


@dataclasses.dataclass(frozen=True)
class CharmConfig:
    storage_driver: str = "zfs"
    storage_device: str = ""
    storage_size: str = "20GiB"
    wipe_storage_device: bool = False
    bridge: str = "br0"
    network_mode: str = "bridged"
    managed_bridge_subnet: str = "auto"
    snap_channel: str = "5.21/stable"
    images_auto_update: bool = True
    maas_api_url: str = ""
    maas_api_key_secret: str = ""  # a Juju secret URI (Juju 3.3 and later)
    maas_api_key: str = ""  # the key itself, where Juju has no user secrets (2.9, 3.0-3.2)
    maas_subnet_ipv4: str = ""
    maas_subnet_ipv6: str = ""
    cluster_port: int = 8443
    metrics_port: int = 8444
    metrics_key_in_relation_data: bool = False
    adopt_existing_lxd: bool = False
    client_access: str = "own-project"  # what a related application that names no projects gets
    join_token_expiry: str = "1H"
    client_token_expiry: str = "1H"
    lxd_http_proxy: str = ""  # may hold a password: never shown (proxy.py)
    lxd_https_proxy: str = ""
    lxd_no_proxy: str = ""
    production_tuning: bool = True
    # read by charmhelpers' NRPE helper itself (config-get); checked here so a bad one blocks
    nagios_context: str = "juju"
    nagios_servicegroups: str = ""

    @property
    def proxy_options(self) -> ProxySettings | None:
        """LXD's proxy from the lxd-*-proxy options (checked by load_config), None when none is set."""
        values = (self.lxd_http_proxy, self.lxd_https_proxy, self.lxd_no_proxy)
        return option_proxy(dict(zip(PROXY_OPTIONS.values(), values, strict=True)))

    @property
    def network(self) -> NetworkChoice:
        return NetworkChoice(self.network_mode, self.bridge, self.managed_bridge_subnet)

    @property
    def maas_enabled(self) -> bool:
        return bool(self.maas_api_url)

    @property
    def maas_options(self) -> list[str]:
        """The MAAS options that are set (each needs LXD's maas_network API extension)."""
        given = {
            "maas-api-url": self.maas_api_url,
            "maas-api-key": self.maas_api_key_secret or self.maas_api_key,
            "maas-subnet-ipv4": self.maas_subnet_ipv4,
            "maas-subnet-ipv6": self.maas_subnet_ipv6,
        }
        return [option for option, value in given.items() if value]

    def without_maas(self) -> CharmConfig:
        """This configuration with no MAAS option: what an LXD without MAAS integration gets."""
        return dataclasses.replace(
            self, maas_api_url="", maas_api_key_secret="", maas_api_key="", maas_subnet_ipv4="", maas_subnet_ipv6=""
        )

    @property
    def maas_key_note(self) -> str:
        """For status where the MAAS key is plain config (a secret URI, the only way from Juju 3.3 on, is
        the default and says nothing)."""
        return "maas-api-key: the key itself in config (this Juju has no user secrets)" if self.maas_api_key else ""


def load_config(raw: Mapping[str, object], user_secrets: bool = True) -> CharmConfig:
    """Validate Juju config (hyphenated keys) into a CharmConfig, or raise ConfigError.
    user_secrets: the running Juju has user secrets (3.3 and later; juju_features.has_user_secrets)."""

    def text(key: str, default: str = "") -> str:
        value = raw.get(key, default)
        value = "" if value is None else str(value).strip()
        if _CONTROL.search(value):
            raise ConfigError(f"{key} contains control characters (a newline, a tab, NUL): set it to a plain value")
        return value

    driver = text("storage-driver", "zfs")
    if driver not in STORAGE_DRIVERS:
        raise ConfigError(
            f"storage-driver {shown(driver)} is not supported: set it to one of {', '.join(STORAGE_DRIVERS)}"
        )

    device = text("storage-device")
    if device and not device.startswith("/dev/"):
        raise ConfigError(
            f"storage-device {shown(device)} is not a device path: give a block device such as /dev/vdb, "
            "or leave it empty for a loop-backed pool"
        )

    if len(device) > 255:  # longer than any path udev or LXD gives a disk; os.stat fails past 4095
        raise ConfigError(f"storage-device is {len(device)} characters long: give a block device path such as /dev/vdb")

    if device and driver == "dir":
        raise ConfigError(
            "storage-device is for zfs, btrfs or lvm: storage-driver dir keeps its pool in LXD's own "
            "directory; unset storage-device or choose another driver"
        )

    size = text("storage-size", "20GiB")
    if not _SIZE.match(size):
        raise ConfigError(f"storage-size {shown(size)} is not a size: use a value such as 20GiB")

    bridge = text("bridge", "br0")
    if not _INTERFACE.match(bridge):
        raise ConfigError(
            f"bridge {shown(bridge)} is not a valid interface name: name an existing host bridge such as br0"
        )

    mode = text("network-mode", "bridged")
    if mode not in MODES:
        raise ConfigError(f"network-mode {shown(mode)} is not supported: set it to one of {', '.join(MODES)}")
    subnet = text("managed-bridge-subnet", "auto")
    if subnet != "auto":
        try:
            gateway = ipaddress.IPv4Interface(subnet)
        except ValueError:
            gateway = None
        if gateway is None or "/" not in subnet or gateway.ip == gateway.network.network_address:
            raise ConfigError(
                f"managed-bridge-subnet {shown(subnet)} is not a gateway address: use ADDRESS/PREFIX such as "
                "10.120.0.1/24, or auto"
            )

    channel = text("snap-channel", "5.21/stable")
    if not _CHANNEL.match(channel):
        raise ConfigError(
            f"snap-channel {shown(channel)} is malformed: use track/risk such as 5.21/stable or latest/edge"
        )

    port = _port(raw, "cluster-port", 8443)
    metrics_port = _port(raw, "metrics-port", 8444)
    if metrics_port == port:
        raise ConfigError(f"metrics-port {metrics_port} is cluster-port too: give LXD's metrics their own port")

    maas_url = text("maas-api-url")
    if maas_url:
        _check_maas_url(maas_url)
    maas_key = text("maas-api-key")
    key_secret, key_plain = (maas_key, "") if maas_key.startswith("secret:") else ("", maas_key)
    if key_secret and not user_secrets:
        raise ConfigError(
            "maas-api-key holds a secret URI, but this Juju has no user secrets (Juju 3.3 and later have them): "
            "set maas-api-key to the MAAS API key itself"
        )
    if key_plain and user_secrets:  # where Juju can keep it in a secret, it is never plain config
        raise ConfigError(
            "maas-api-key must be a Juju secret URI, not the key itself: "
            "juju add-secret maas-key key=<API key>; juju grant-secret maas-key lxd-cluster; "
            "juju config lxd-cluster maas-api-key=<secret URI>"
        )
    if bool(maas_url) != bool(maas_key):
        missing = "maas-api-key" if maas_url else "maas-api-url"
        raise ConfigError(f"MAAS integration needs both maas-api-url and maas-api-key: set {missing}")

    subnets = {k: text(k) for k in ("maas-subnet-ipv4", "maas-subnet-ipv6")}
    for key, value in subnets.items():
        if value and not _SUBNET_NAME.match(value):
            raise ConfigError(f"{key} {shown(value)} is not a MAAS subnet name: give the subnet's name in MAAS")
    if mode != "bridged" and (given := [key for key, value in subnets.items() if value]):
        raise ConfigError(
            f"{' and '.join(given)} apply only to network-mode bridged (eth0 on a host bridge): "
            f"unset {' and '.join(given)}, or set network-mode=bridged"
        )

    access = text("client-access", "own-project")
    if access not in CLIENT_ACCESS:
        raise ConfigError(f"client-access {access!r} is not supported: set it to one of {', '.join(CLIENT_ACCESS)}")
    expiries = {k: text(k, "1H") for k in ("join-token-expiry", "client-token-expiry")}
    for key, value in expiries.items():
        if expiry_seconds(value) <= 0:
            raise ConfigError(f"{key} {value!r} is not a lifetime: use LXD's syntax such as 30M, 1H or 1d (not 0)")

    proxies = {option: text(option) for option in PROXY_OPTIONS.values()}
    try:
        option_proxy(proxies)
    except ProxyError as e:
        raise ConfigError(str(e)) from None

    return CharmConfig(
        storage_driver=driver,
        storage_device=device,
        storage_size=size,
        wipe_storage_device=bool(raw.get("wipe-storage-device", False)),
        bridge=bridge,
        network_mode=mode,
        managed_bridge_subnet=subnet,
        snap_channel=channel,
        images_auto_update=bool(raw.get("images-auto-update", True)),
        maas_api_url=maas_url,
        maas_api_key_secret=key_secret,
        maas_api_key=key_plain,
        maas_subnet_ipv4=subnets["maas-subnet-ipv4"],
        maas_subnet_ipv6=subnets["maas-subnet-ipv6"],
        cluster_port=port,
        metrics_port=metrics_port,
        metrics_key_in_relation_data=raw.get("metrics-key-in-relation-data") is True,
        adopt_existing_lxd=bool(raw.get("adopt-existing-lxd", False)),
        client_access=access,
        join_token_expiry=expiries["join-token-expiry"],
        client_token_expiry=expiries["client-token-expiry"],
        lxd_http_proxy=proxies["lxd-http-proxy"],
        lxd_https_proxy=proxies["lxd-https-proxy"],
        lxd_no_proxy=proxies["lxd-no-proxy"],
        production_tuning=raw.get("production-tuning", True) is not False,
        **_nagios_names(text),
    )


def _nagios_names(text: Callable[..., str]) -> dict[str, str]:
    """nagios_context names the host in Nagios, nagios_servicegroups its groups: Nagios object names."""
    context = text("nagios_context", "juju")
    groups = text("nagios_servicegroups")
    given = (("nagios_context", context, [context]), ("nagios_servicegroups", groups, groups.split(",")))
    for key, value, names in given:
        if (value or key == "nagios_context") and not all(_NAGIOS_NAME.match(n.strip()) for n in names):
            raise ConfigError(
                f"{key} {shown(value)} is not a Nagios name: use letters, digits, '-', '_' and '.'"
                + (", names separated by commas" if key == "nagios_servicegroups" else "")
            )
    return {"nagios_context": context, "nagios_servicegroups": groups}


def _port(raw: Mapping[str, object], key: str, default: int) -> int:
    value = raw.get(key, default)
    try:
        port = int(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        port = -1
    if isinstance(value, bool) or not 1 <= port <= 65535:
        raise ConfigError(f"{key} {shown(value)} is out of range: use a port from 1 to 65535")
    return port


def expiry_seconds(value: str) -> int:
    """Seconds of an LXD expiry such as "1H 30M" (months 30 days, years 365), 0 if malformed."""
    parts = [_EXPIRY_PART.match(p) for p in value.split(" ")] if value else [None]
    if not all(parts):
        return 0
    return sum(int(m.group(1)) * EXPIRY_SECONDS[m.group(2)] for m in parts)  # type: ignore[union-attr]


def size_bytes(value: str) -> int:
    """Bytes of an LXD size such as 20GiB, 2G or 1073741824 (0 if malformed)."""
    match = re.match(r"^([0-9]+)(?:([KMGTPE])(i?)B?)?$", value.strip())
    if not match:
        return 0
    number, unit, binary = match.groups()
    if binary:
        return int(number) * 1024 ** (" KMGTPE".index(unit))
    return int(number) * _SIZE_UNITS[unit or ""]


def _check_maas_url(url: str) -> None:
    """http(s)://HOST[:PORT]/PATH and no credentials: LXD shows maas.api.url to every trusted client."""
    parsed = split_url(url)
    host = parsed.hostname if parsed is not None else None
    if parsed is not None and (parsed.username is not None or parsed.password is not None or "@" in parsed.netloc):
        raise ConfigError(  # never echo it: what precedes @ is a credential
            "maas-api-url must not carry credentials (user:password@): LXD shows maas.api.url to every "
            "trusted client; give http(s)://HOST[:PORT]/MAAS and put the API key in maas-api-key"
        )
    if parsed is None or parsed.scheme not in ("http", "https") or not host:
        shown_url = shown(url) if "@" not in url else "(not shown: it holds '@')"
        raise ConfigError(f"maas-api-url {shown_url} is malformed: use http(s)://HOST[:PORT]/MAAS")
