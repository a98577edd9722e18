"""Invalid configurations and the option each error must name (shared by config and charm tests)."""

from __future__ import annotations

from pathlib import Path

import yaml

OPTIONS = yaml.safe_load((Path(__file__).parents[2] / "config.yaml").read_text())["options"]
# What Juju gives a charm nobody configured: every option's default.
DEFAULTS = {k: v["default"] for k, v in OPTIONS.items() if "default" in v}

BAD_CONFIG = [
    ({"storage-driver": "ceph"}, "storage-driver"),
    ({"storage-driver": "ZFS"}, "storage-driver"),
    ({"storage-driver": ""}, "storage-driver"),
    ({"storage-device": "vdb"}, "storage-device"),
    ({"storage-device": "dev/vdb"}, "storage-device"),
    ({"storage-device": "/tmp/disk.img"}, "storage-device"),
    ({"storage-driver": "dir", "storage-device": "/dev/vdb"}, "storage-device"),
    ({"storage-size": "lots"}, "storage-size"),
    ({"storage-size": "0GiB"}, "storage-size"),
    ({"storage-size": "20 GiB"}, "storage-size"),
    ({"storage-size": "-5GiB"}, "storage-size"),
    ({"bridge": "br 0"}, "bridge"),
    ({"bridge": "br0;reboot"}, "bridge"),
    ({"bridge": "b" * 16}, "bridge"),  # IFNAMSIZ: at most 15 characters
    ({"bridge": ""}, "bridge"),
    ({"network-mode": "ovn"}, "network-mode"),
    ({"network-mode": "Bridged"}, "network-mode"),
    ({"managed-bridge-subnet": "10.9.0.0/24"}, "managed-bridge-subnet"),  # a network, not a gateway
    ({"managed-bridge-subnet": "10.9.0.1"}, "managed-bridge-subnet"),
    ({"managed-bridge-subnet": "fd00::1/64"}, "managed-bridge-subnet"),
    ({"snap-channel": "5.21/stable/a/b"}, "snap-channel"),
    ({"snap-channel": "5.21/nightly"}, "snap-channel"),
    ({"snap-channel": "5.21 /stable"}, "snap-channel"),
    ({"snap-channel": "/stable"}, "snap-channel"),
    ({"cluster-port": 0}, "cluster-port"),
    ({"cluster-port": 70000}, "cluster-port"),
    ({"cluster-port": 65536}, "cluster-port"),
    ({"cluster-port": -1}, "cluster-port"),
    ({"cluster-port": "abc"}, "cluster-port"),
    ({"cluster-port": True}, "cluster-port"),
    ({"cluster-port": None}, "cluster-port"),
    ({"maas-api-url": "maas:5240", "maas-api-key": "secret:abc"}, "maas-api-url"),
    ({"maas-api-url": "ftp://maas/MAAS", "maas-api-key": "secret:abc"}, "maas-api-url"),
    ({"maas-api-url": "http:///MAAS", "maas-api-key": "secret:abc"}, "maas-api-url"),
    ({"maas-api-url": "http://maas/MAAS", "maas-api-key": "abc:def:ghi"}, "maas-api-key"),
    ({"maas-api-url": "http://maas/MAAS"}, "maas-api-key"),
    ({"maas-api-key": "secret:abc"}, "maas-api-url"),
    ({"maas-subnet-ipv4": "bad subnet"}, "maas-subnet-ipv4"),
    ({"maas-subnet-ipv6": "lab\nv6"}, "maas-subnet-ipv6"),
    ({"maas-subnet-ipv6": "x" * 254}, "maas-subnet-ipv6"),
    ({"network-mode": "macvlan", "maas-subnet-ipv4": "lab"}, "maas-subnet-ipv4"),  # bridged only
    ({"network-mode": "fan", "maas-subnet-ipv6": "lab6"}, "maas-subnet-ipv6"),
    ({"nagios_context": "my site"}, "nagios_context"),  # a Nagios host name: no spaces
    ({"nagios_context": ""}, "nagios_context"),
    ({"nagios_servicegroups": "lxd,ops!"}, "nagios_servicegroups"),
    ({"client-access": "root"}, "client-access"),
    ({"client-access": ""}, "client-access"),
    ({"join-token-expiry": ""}, "join-token-expiry"),  # every token expires
    ({"join-token-expiry": "0H"}, "join-token-expiry"),
    ({"join-token-expiry": "1h"}, "join-token-expiry"),  # LXD's units are case-sensitive: H hours, m months
    ({"client-token-expiry": "1 H"}, "client-token-expiry"),
    ({"client-token-expiry": "never"}, "client-token-expiry"),
    ({"lxd-http-proxy": "squid.internal:3128"}, "lxd-http-proxy"),  # no scheme
    ({"lxd-https-proxy": "ftp://squid.internal:3128"}, "lxd-https-proxy"),
    ({"lxd-https-proxy": "http://bob:hunter2hunter2@squid:99999"}, "lxd-https-proxy"),  # port out of range
    ({"lxd-http-proxy": "http://squid:3128/some/path"}, "lxd-http-proxy"),
    ({"lxd-no-proxy": "localhost, bad host"}, "lxd-no-proxy"),
]


def case_id(case: tuple[dict, str]) -> str:
    return ",".join(f"{k}={v!r}"[:40] for k, v in case[0].items())
