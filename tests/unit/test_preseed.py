"""Golden tests of the generated preseeds: exactly what `lxd init --preseed` receives."""

from __future__ import annotations

import copy

import pytest
import yaml

from preseed import (
    REDACTED,
    JoinCredential,
    MaasSettings,
    PoolSpec,
    bootstrap_preseed,
    https_address,
    join_preseed,
    redacted,
)

PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
NIC = {"name": "eth0", "nictype": "bridged", "parent": "br0", "type": "nic"}


def expected_bootstrap(driver: str, pool_config: dict, config_extra: dict | None = None, nic=None) -> dict:
    return {
        "config": {"core.https_address": "10.0.0.1:8443", "images.auto_update_interval": "6",
                   **(config_extra or {})},
        "cluster": {"server_name": "lxd-cluster-0", "enabled": True},
        "storage_pools": [
            {"name": "local", "driver": driver, "description": "lxd-cluster pool", "config": pool_config}
        ],
        "profiles": [
            {
                "name": "default",
                "description": "Default LXD profile (lxd-cluster)",
                "config": {},
                "devices": {"root": {"path": "/", "pool": "local", "type": "disk"}, "eth0": nic or NIC},
            }
        ],
    }


@pytest.mark.parametrize(
    "pool, pool_config",
    [
        (PoolSpec("zfs", source="/dev/vdb"), {"source": "/dev/vdb"}),
        (PoolSpec("btrfs", source="/dev/loop3"), {"source": "/dev/loop3"}),
        (PoolSpec("lvm", source="/dev/sdb"), {"source": "/dev/sdb"}),
        (PoolSpec("zfs", size="20GiB"), {"size": "20GiB"}),
        (PoolSpec("dir", size="20GiB"), {}),  # a dir pool has no size: it lives in LXD's directory
    ],
)
def test_bootstrap_preseed_per_driver(pool, pool_config):
    got = bootstrap_preseed(server_name="lxd-cluster-0", address="10.0.0.1", port=8443, pool=pool, bridge="br0")
    assert got == expected_bootstrap(pool.driver, pool_config)


def test_bootstrap_preseed_with_maas_and_no_image_updates():
    maas = MaasSettings("http://maas:5240/MAAS", "consumer:token:secret", "lab-v4", "lab-v6")
    got = bootstrap_preseed(
        server_name="lxd-cluster-0", address="10.0.0.1", port=8443, pool=PoolSpec("zfs", source="/dev/vdb"),
        bridge="br0", images_auto_update=False, maas=maas,
    )
    assert got == expected_bootstrap(
        "zfs", {"source": "/dev/vdb"},
        {"images.auto_update_interval": "0", "maas.api.url": "http://maas:5240/MAAS",
         "maas.api.key": "consumer:token:secret"},
        nic={**NIC, "maas.subnet.ipv4": "lab-v4", "maas.subnet.ipv6": "lab-v6"},
    )


def test_bootstrap_preseed_brackets_ipv6_and_uses_the_port():
    got = bootstrap_preseed(server_name="m", address="fd00::5", port=9443, pool=PoolSpec("dir"), bridge="lxdbr1")
    assert got["config"]["core.https_address"] == "[fd00::5]:9443"
    assert got["profiles"][0]["devices"]["eth0"]["parent"] == "lxdbr1"


@pytest.mark.parametrize(
    "credential, key",
    [(JoinCredential("token", "eyJ0b2tlbiI6MX0="), "cluster_token"),
     (JoinCredential("password", "s3cret-pass"), "cluster_password")],
)
def test_join_preseed_carries_own_address_own_device_and_the_credential(credential, key):
    got = join_preseed(
        server_name="lxd-cluster-2", address="10.0.0.3", port=8443, cluster_address="10.0.0.1:8443",
        cluster_certificate=PEM, credential=credential, pool=PoolSpec("zfs", source="/dev/vdc"),
    )
    assert got == {
        "cluster": {
            "enabled": True,
            "server_name": "lxd-cluster-2",
            "server_address": "10.0.0.3:8443",
            "cluster_address": "10.0.0.1:8443",
            "cluster_certificate": PEM,
            key: credential.value,
            "member_config": [
                {"entity": "storage-pool", "name": "local", "key": "source", "value": "/dev/vdc"}
            ],
        }
    }


def test_join_preseed_for_dir_has_no_member_config_and_loop_pools_pass_size():
    common = dict(server_name="m2", address="10.0.0.3", port=8443, cluster_address="10.0.0.1:8443",
                  cluster_certificate=PEM, credential=JoinCredential("token", "t"))
    assert "member_config" not in join_preseed(pool=PoolSpec("dir", size="20GiB"), **common)["cluster"]
    loop = join_preseed(pool=PoolSpec("btrfs", size="5GiB"), **common)["cluster"]["member_config"]
    assert loop == [{"entity": "storage-pool", "name": "local", "key": "size", "value": "5GiB"}]


def test_redacted_hides_every_credential_and_leaves_the_input_alone():
    join = join_preseed(
        server_name="m2", address="10.0.0.3", port=8443, cluster_address="10.0.0.1:8443",
        cluster_certificate=PEM, credential=JoinCredential("password", "hunter2-long"),
        pool=PoolSpec("dir"),
    )
    boot = bootstrap_preseed(server_name="m", address="10.0.0.1", port=8443, pool=PoolSpec("dir"),
                             bridge="br0", maas=MaasSettings("http://m/MAAS", "maas-key-value"))
    originals = copy.deepcopy((join, boot))
    assert redacted(join)["cluster"]["cluster_password"] == REDACTED
    assert redacted(boot)["config"]["maas.api.key"] == REDACTED
    assert "hunter2-long" not in yaml.safe_dump(redacted(join))
    assert (join, boot) == originals


def test_credential_repr_never_shows_the_value():
    assert "topsecret" not in repr(JoinCredential("token", "topsecret"))
    assert "maas-key-value" not in repr(MaasSettings("http://m/MAAS", "maas-key-value"))


def test_preseed_survives_yaml_round_trip():
    got = join_preseed(
        server_name="m2", address="10.0.0.3", port=8443, cluster_address="10.0.0.1:8443",
        cluster_certificate=PEM, credential=JoinCredential("token", "abc=="), pool=PoolSpec("zfs", source="/dev/vdb"),
    )
    assert yaml.safe_load(yaml.safe_dump(got)) == got


def test_https_address_leaves_host_names_alone():
    assert https_address("node1.maas", 8443) == "node1.maas:8443"
