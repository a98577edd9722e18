"""Every configuration option is validated into one readable error naming the option."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from config import CharmConfig, ConfigError, load_config

OPTIONS = yaml.safe_load((Path(__file__).parents[2] / "config.yaml").read_text())["options"]
DEFAULTS = {k: v["default"] for k, v in OPTIONS.items() if "default" in v}


def test_defaults_of_config_yaml_are_valid_and_match_the_typed_defaults():
    assert load_config(DEFAULTS) == CharmConfig()


@pytest.mark.parametrize(
    "changes",
    [
        {"storage-driver": "btrfs", "storage-device": "/dev/vdb"},
        {"storage-driver": "lvm", "storage-size": "50GiB"},
        {"storage-driver": "dir"},
        {"snap-channel": "latest/edge"},
        {"snap-channel": "5.0/stable/hotfix-1"},
        {"snap-channel": "5.21"},
        {"cluster-port": 9443},
        {"bridge": "lxdbr0"},
        {"maas-api-url": "https://maas.example:5240/MAAS", "maas-api-key": "secret:cq1b2c3d4e5f"},
        {"maas-subnet-ipv4": "lab-subnet", "maas-subnet-ipv6": "fd00::/64"},
    ],
)
def test_valid_values_are_accepted(changes):
    load_config({**DEFAULTS, **changes})


@pytest.mark.parametrize(
    "changes, option",
    [
        ({"storage-driver": "ceph"}, "storage-driver"),
        ({"storage-driver": "ZFS"}, "storage-driver"),
        ({"storage-device": "vdb"}, "storage-device"),
        ({"storage-device": "/tmp/disk.img"}, "storage-device"),
        ({"storage-size": "lots"}, "storage-size"),
        ({"storage-size": "0GiB"}, "storage-size"),
        ({"bridge": "br 0"}, "bridge"),
        ({"bridge": "a-very-long-bridge-name"}, "bridge"),
        ({"snap-channel": "5.21/stable/a/b"}, "snap-channel"),
        ({"snap-channel": "5.21/nightly"}, "snap-channel"),
        ({"snap-channel": "5.21 /stable"}, "snap-channel"),
        ({"cluster-port": 0}, "cluster-port"),
        ({"cluster-port": 70000}, "cluster-port"),
        ({"cluster-port": "abc"}, "cluster-port"),
        ({"cluster-port": True}, "cluster-port"),
        ({"maas-api-url": "maas:5240", "maas-api-key": "secret:abc"}, "maas-api-url"),
        ({"maas-api-url": "ftp://maas/MAAS", "maas-api-key": "secret:abc"}, "maas-api-url"),
        ({"maas-api-url": "http://maas/MAAS", "maas-api-key": "abc:def:ghi"}, "maas-api-key"),
        ({"maas-api-url": "http://maas/MAAS"}, "maas-api-key"),
        ({"maas-api-key": "secret:abc"}, "maas-api-url"),
        ({"maas-subnet-ipv4": "bad subnet"}, "maas-subnet-ipv4"),
    ],
)
def test_bad_values_raise_an_error_naming_the_option(changes, option):
    with pytest.raises(ConfigError) as error:
        load_config({**DEFAULTS, **changes})
    assert option in str(error.value)


def test_a_plain_text_maas_key_is_not_echoed_in_the_error():
    with pytest.raises(ConfigError) as error:
        load_config({**DEFAULTS, "maas-api-url": "http://maas/MAAS", "maas-api-key": "abc:def:ghi"})
    assert "abc:def:ghi" not in str(error.value)
