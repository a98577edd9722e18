"""Before any change: LXD installed and answering, every input usable, a used device wiped only with consent."""

from __future__ import annotations

import pytest
from ops import testing
from states import ctx, make_state

from models import DeviceState


# -- LXD installed and answering -------------------------------------------------------------------
def test_lxd_not_installed_and_no_snap_blocks(lxd, host):
    (host.bin / "lxd").unlink()  # no snapd, no LXD binary
    out = ctx().run(ctx().on.install(), make_state(leader=True))
    assert out.unit_status == testing.BlockedStatus(
        "LXD is not installed and snapd is not available to install it: install snapd, or an LXD package"
    )
    assert lxd.mutations() == [] and host.calls == []


def test_daemon_not_answering_waits(lxd):
    lxd.ready = False
    out = ctx().run(ctx().on.update_status(), make_state(leader=True))
    assert out.unit_status.name == "waiting"


def test_lxd_not_answering_is_waiting_and_says_why(lxd):
    lxd.ready = False
    out = ctx().run(ctx().on.update_status(), make_state(leader=True))
    assert out.unit_status == testing.WaitingStatus(
        "waiting for the LXD daemon: Daemon still not running after 30s timeout"
    )
    assert lxd.mutations() == []


def test_workload_version_is_lxds_version(lxd, cluster_pem):
    lxd.version = "5.0.3"
    out = ctx(1).run(ctx(1).on.update_status(), make_state(ip="10.0.0.2"))
    assert out.workload_version == "5.0.3"


# -- inputs ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "setup, words",
    [
        (lambda f: f.storage_drivers.discard("zfs"), "zfsutils-linux"),
        (lambda f: f.networks.pop("br0"), "bridge br0 does not exist"),
        (lambda f: f.networks.update(br0="physical"), "not a bridge"),
    ],
)
def test_preflight_blocks_before_anything_changes(lxd, setup, words):
    setup(lxd)
    out = ctx().run(ctx().on.install(), make_state(leader=True))
    assert out.unit_status.name == "blocked" and words in out.unit_status.message
    assert lxd.mutations() == []


@pytest.mark.parametrize("driver, package", [("zfs", "zfsutils-linux"), ("btrfs", "btrfs-progs"), ("lvm", "lvm2")])
def test_a_driver_lxd_cannot_use_blocks_naming_the_package(lxd, driver, package):
    lxd.storage_drivers = {"dir"}
    out = ctx().run(ctx().on.install(), make_state(leader=True, config={"storage-driver": driver}))
    assert out.unit_status.name == "blocked"
    assert package in out.unit_status.message and "dir" in out.unit_status.message
    assert lxd.mutations() == []


def test_a_missing_bridge_is_named(lxd):
    out = ctx().run(ctx().on.install(), make_state(leader=True, config={"bridge": "br7"}))
    assert out.unit_status == testing.BlockedStatus(
        "bridge br7 does not exist: create it, set bridge, or choose another network-mode"
    )
    assert lxd.mutations() == []


def test_maas_on_an_lxd_without_maas_support_blocks(lxd):
    lxd.extensions.discard("maas_network")
    key = testing.Secret({"key": "k"}, owner=None)
    out = ctx().run(
        ctx().on.install(),
        make_state(leader=True, secrets=[key], config={"maas-api-url": "http://maas/MAAS", "maas-api-key": key.id}),
    )
    assert out.unit_status.name == "blocked" and "MAAS" in out.unit_status.message
    assert lxd.mutations() == []


def test_maas_subnets_alone_on_an_lxd_without_maas_support_block_before_bootstrap(lxd):
    """LXD 6.8+ refuses eth0's maas.subnet.* (lxd-6.9 lxd/device/config/devices.go:75): the bootstrap would fail."""
    lxd.extensions.discard("maas_network")
    out = ctx().run(ctx().on.install(), make_state(leader=True, config={"maas-subnet-ipv4": "lab"}))
    assert out.unit_status.name == "blocked" and "unset maas-subnet-ipv4" in out.unit_status.message
    assert lxd.preseeds == [] and lxd.mutations() == []


def test_an_lxd_without_join_tokens_is_refused_before_bootstrap(lxd):
    lxd.extensions.discard("clustering_join_token")
    out = ctx().run(ctx().on.install(), make_state(leader=True))
    assert out.unit_status.name == "blocked" and "clustering_join_token" in out.unit_status.message
    assert lxd.preseeds == [] and lxd.mutations() == []


# -- storage devices -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "device, words",
    [
        (DeviceState("/dev/vdb", exists=False), "does not exist"),
        (DeviceState("/dev/vdb", exists=True, is_block=False), "not a block device"),
        (DeviceState("/dev/vdb", exists=True, is_block=True, mounted=True), "is mounted"),
        (DeviceState("/dev/vdb", exists=True, is_block=True, signatures=("ext4",)), "wipe-storage-device=true"),
    ],
)
def test_unusable_devices_block_and_are_never_touched(lxd, device, words):
    lxd.devices["/dev/vdb"] = device
    out = ctx().run(ctx().on.install(), make_state(leader=True, config={"storage-device": "/dev/vdb"}))
    assert out.unit_status.name == "blocked" and words in out.unit_status.message
    assert lxd.wiped == [] and lxd.preseeds == []


def test_with_consent_a_used_device_is_wiped_then_used(lxd):
    lxd.devices["/dev/vdb"] = DeviceState("/dev/vdb", exists=True, is_block=True, signatures=("btrfs",))
    ctx().run(
        ctx().on.install(), make_state(leader=True, config={"storage-device": "/dev/vdb", "wipe-storage-device": True})
    )
    assert lxd.wiped == ["/dev/vdb"]
    assert lxd.preseeds[0]["storage_pools"][0]["config"] == {"source": "/dev/vdb"}
    assert lxd.calls.index("wipe_device") < lxd.calls.index("apply_preseed")


def test_an_empty_device_is_not_wiped_even_with_consent(lxd):
    lxd.devices["/dev/vdb"] = DeviceState("/dev/vdb", exists=True, is_block=True)
    ctx().run(
        ctx().on.install(), make_state(leader=True, config={"storage-device": "/dev/vdb", "wipe-storage-device": True})
    )
    assert lxd.wiped == [] and len(lxd.preseeds) == 1


def test_juju_storage_wins_over_the_configured_device(lxd):
    storage = testing.Storage("local")
    context = ctx()
    location = str(storage.get_filesystem(context))
    lxd.devices[location] = DeviceState(location, exists=True, is_block=True)
    context.run(
        context.on.storage_attached(storage),
        make_state(leader=True, storages=[storage], config={"storage-device": "/dev/vdb"}),
    )
    assert lxd.preseeds[0]["storage_pools"][0]["config"] == {"source": location}


def test_a_juju_storage_device_with_a_signature_is_refused_without_consent(lxd):
    storage = testing.Storage("local")
    context = ctx()
    location = str(storage.get_filesystem(context))
    lxd.devices[location] = DeviceState(location, exists=True, is_block=True, signatures=("zfs_member",))
    out = context.run(context.on.storage_attached(storage), make_state(leader=True, storages=[storage]))
    assert out.unit_status.name == "blocked" and "zfs_member" in out.unit_status.message
    assert lxd.wiped == [] and lxd.preseeds == []


@pytest.mark.parametrize("juju_storage", [False, True])
def test_a_dir_pool_is_never_given_a_block_device(lxd, juju_storage):
    storage = testing.Storage("local")
    context = ctx()
    device = str(storage.get_filesystem(context)) if juju_storage else "/dev/vdb"
    lxd.devices[device] = DeviceState(device, exists=True, is_block=True, signatures=("ext4",))
    context.run(
        context.on.install(),
        make_state(
            leader=True,
            storages=[storage] if juju_storage else [],
            config={
                "storage-driver": "dir",
                "wipe-storage-device": True,
                **({} if juju_storage else {"storage-device": device}),
            },
        ),
    )
    assert all("source" not in p["storage_pools"][0]["config"] for p in lxd.preseeds)
    assert lxd.wiped == []


@pytest.mark.parametrize("error", ["Not a directory", "File name too long"])
def test_a_device_path_that_cannot_be_looked_at_blocks_with_the_reason_and_the_fix(lxd, error):
    """Issue 13, item 4: an OSError from os.stat used to crash config-changed."""
    path = "/dev/vdb/x"
    lxd.devices[path] = DeviceState(path, exists=False, error=error)
    out = ctx().run(ctx().on.config_changed(), make_state(leader=True, config={"storage-device": path}))
    assert out.unit_status == testing.BlockedStatus(
        f"storage device {path} cannot be used ({error}): fix storage-device"
    )
    assert lxd.mutations() == []


def test_a_leader_whose_checks_passed_checks_its_device_again_before_it_bootstraps(lxd):
    """Its checks passed in an earlier hook (its databag says so) and the bootstrap comes with a peer's
    hook: a filesystem written on the device since is found before LXD is changed, nothing is touched."""
    from states import REL, announced

    lxd.devices["/dev/vdb"] = DeviceState("/dev/vdb", exists=True, is_block=True, signatures=("ext4",))
    mine = announced(0, **{"network-checked": "bridged:br0", "network-interface": "eth0"})
    state = make_state(leader=True, unit=mine, peers={1: announced(1)}, config={"storage-device": "/dev/vdb"})
    out = ctx().run(ctx().on.relation_changed(state.get_relation(REL), remote_unit=1), state)
    assert out.unit_status.name == "blocked" and "wipe-storage-device=true" in out.unit_status.message
    assert lxd.wiped == [] and lxd.preseeds == []
