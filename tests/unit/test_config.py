"""Every configuration option is validated into one readable error naming the option."""

from __future__ import annotations

import pytest
from config_cases import BAD_CONFIG, DEFAULTS, OPTIONS, case_id

from config import CharmConfig, ConfigError, load_config


def test_defaults_of_config_yaml_are_valid_and_match_the_typed_defaults():
    assert load_config(DEFAULTS) == CharmConfig()


def test_every_option_of_config_yaml_has_a_typed_field():
    fields = set(CharmConfig.__dataclass_fields__)
    for option in OPTIONS:
        name = option.replace("-", "_")
        assert name in fields or f"{name}_secret" in fields, option


def test_an_empty_config_gives_the_defaults():
    assert load_config({}) == CharmConfig()


@pytest.mark.parametrize(
    "changes, expected",
    [
        (
            {"storage-driver": "btrfs", "storage-device": "/dev/vdb"},
            {"storage_driver": "btrfs", "storage_device": "/dev/vdb"},
        ),
        ({"storage-driver": "lvm", "storage-size": "50GiB"}, {"storage_driver": "lvm", "storage_size": "50GiB"}),
        ({"storage-driver": "dir"}, {"storage_driver": "dir"}),
        ({"storage-device": "/dev/disk/by-id/virtio-data"}, {"storage_device": "/dev/disk/by-id/virtio-data"}),
        ({"storage-size": "500M"}, {"storage_size": "500M"}),
        ({"storage-size": "1TB"}, {"storage_size": "1TB"}),
        ({"wipe-storage-device": True}, {"wipe_storage_device": True}),
        ({"images-auto-update": False}, {"images_auto_update": False}),
        ({"snap-channel": "latest/edge"}, {"snap_channel": "latest/edge"}),
        ({"client-access": "admin"}, {"client_access": "admin"}),
        (
            {"join-token-expiry": "30M", "client-token-expiry": "1d 12H"},
            {"join_token_expiry": "30M", "client_token_expiry": "1d 12H"},
        ),
        ({"snap-channel": "5.0/stable/hotfix-1"}, {"snap_channel": "5.0/stable/hotfix-1"}),
        ({"snap-channel": "5.21"}, {"snap_channel": "5.21"}),
        ({"snap-channel": "candidate"}, {"snap_channel": "candidate"}),
        ({"cluster-port": 9443}, {"cluster_port": 9443}),
        ({"cluster-port": 1}, {"cluster_port": 1}),
        ({"cluster-port": 65535}, {"cluster_port": 65535}),
        ({"bridge": "lxdbr0"}, {"bridge": "lxdbr0"}),
        ({"bridge": "b" * 15}, {"bridge": "b" * 15}),
        ({"bridge": " br1 "}, {"bridge": "br1"}),  # stray spaces from a shell are forgiven
        (
            {"maas-api-url": "https://maas.example:5240/MAAS", "maas-api-key": "secret:cq1b2c3d4e5f"},
            {"maas_api_url": "https://maas.example:5240/MAAS", "maas_api_key_secret": "secret:cq1b2c3d4e5f"},
        ),
        (
            {"maas-subnet-ipv4": "lab-subnet", "maas-subnet-ipv6": "fd00::/64"},
            {"maas_subnet_ipv4": "lab-subnet", "maas_subnet_ipv6": "fd00::/64"},
        ),
    ],
)
def test_valid_values_are_accepted_and_typed(changes, expected):
    got = load_config({**DEFAULTS, **changes})
    for field, value in expected.items():
        assert getattr(got, field) == value


def test_maas_subnets_outside_bridged_mode_name_both_fixes():
    with pytest.raises(ConfigError) as error:
        load_config({**DEFAULTS, "network-mode": "managed-bridge", "maas-subnet-ipv4": "a", "maas-subnet-ipv6": "b"})
    assert str(error.value) == (
        "maas-subnet-ipv4 and maas-subnet-ipv6 apply only to network-mode bridged (eth0 on a host bridge): "
        "unset maas-subnet-ipv4 and maas-subnet-ipv6, or set network-mode=bridged"
    )


def test_maas_is_enabled_only_with_a_url():
    assert not load_config(DEFAULTS).maas_enabled
    assert not load_config({**DEFAULTS, "maas-subnet-ipv4": "lab"}).maas_enabled
    assert load_config({**DEFAULTS, "maas-api-url": "http://m/MAAS", "maas-api-key": "secret:x"}).maas_enabled


@pytest.mark.parametrize("changes, option", BAD_CONFIG, ids=[case_id(c) for c in BAD_CONFIG])
def test_bad_values_raise_an_error_naming_the_option(changes, option):
    with pytest.raises(ConfigError) as error:
        load_config({**DEFAULTS, **changes})
    assert option in str(error.value)


def test_a_plain_text_maas_key_is_not_echoed_in_the_error():
    with pytest.raises(ConfigError) as error:
        load_config({**DEFAULTS, "maas-api-url": "http://maas/MAAS", "maas-api-key": "abc:def:ghi"})
    assert "abc:def:ghi" not in str(error.value)
    assert "juju add-secret" in str(error.value)  # says how to do it right


def test_an_error_says_how_to_fix_it():
    with pytest.raises(ConfigError, match="zfs, btrfs, lvm, dir"):
        load_config({**DEFAULTS, "storage-driver": "ceph"})


@pytest.mark.parametrize(
    "url",
    ["http://admin:hunter2@maas:5240/MAAS", "https://token@maas/MAAS", "http://:pw@maas/MAAS", "http://u:p@[::1]/MAAS"],
)
def test_a_maas_url_with_credentials_is_refused_and_not_echoed(url):
    """Issue 13, item 6: LXD shows maas.api.url to every trusted client."""
    with pytest.raises(ConfigError) as error:
        load_config({**DEFAULTS, "maas-api-url": url, "maas-api-key": "secret:abc"})
    assert "must not carry credentials" in str(error.value) and "maas-api-key" in str(error.value)
    assert "hunter2" not in str(error.value) and "token" not in str(error.value)


@pytest.mark.parametrize("url", ["http://[::1/MAAS", "http://maas:99999/MAAS", "http://maas:port/MAAS"])
def test_a_maas_url_python_cannot_parse_is_a_config_error_not_a_crash(url):
    with pytest.raises(ConfigError, match="maas-api-url"):
        load_config({**DEFAULTS, "maas-api-url": url, "maas-api-key": "secret:abc"})


@pytest.mark.parametrize("option", ["storage-device", "storage-size", "bridge", "snap-channel", "maas-subnet-ipv4"])
def test_a_long_value_is_cut_short_in_the_error(option):
    value = "/dev/" + "x" * 4096 if option == "storage-device" else "x" * 4096 + " y"
    with pytest.raises(ConfigError) as error:
        load_config({**DEFAULTS, option: value})
    assert option in str(error.value) and len(str(error.value)) < 300


@pytest.mark.parametrize("option", ["storage-device", "bridge", "maas-subnet-ipv6", "snap-channel"])
def test_control_characters_are_refused(option):
    with pytest.raises(ConfigError, match=f"{option} contains control characters"):
        load_config({**DEFAULTS, option: "/dev/vd\x00b"})
