"""Before any change: LXD installed and answering, every input usable, a used device wiped only with consent."""

from __future__ import annotations

import logging

import ops

from config import CharmConfig, shown
from models import ServerInfo
from preseed import PoolSpec
from status import Stop
from workload import DRIVER_PACKAGES, LXD, ClientUnavailable, LXDError

logger = logging.getLogger(__name__)


def ensure_lxd(lxd: LXD, unit: ops.Unit, config: CharmConfig, announced_version: str = "") -> ServerInfo:
    """Wait for LXD to answer (lxd_package.PackageStep has installed it, or found it installed). The
    workload version is set in the hook that announced it: Juju keeps it, so a hook whose unit databag
    says the same version does not set it again."""
    try:
        info = lxd.info()
    except ClientUnavailable as e:  # waiting would not mend it
        raise Stop(ops.BlockedStatus(str(e))) from None
    except LXDError:  # not up yet (just installed, or restarting): wait for it once
        try:
            lxd.wait_ready(timeout=30)
            info = lxd.info()
        except LXDError as e:
            raise Stop(ops.WaitingStatus(f"waiting for the LXD daemon: {e}")) from None
    if info.version != announced_version:
        unit.set_workload_version(info.version)
    return info


def pool_spec(charm: ops.CharmBase, config: CharmConfig) -> PoolSpec:
    """Juju storage `local` first, the storage-device option second, else a loop-backed pool."""
    attached = charm.model.storages.get("local") if "local" in charm.meta.storages else None
    if attached:
        return PoolSpec(config.storage_driver, source=str(attached[0].location))
    if config.storage_device:
        return PoolSpec(config.storage_driver, source=config.storage_device)
    return PoolSpec(config.storage_driver, size=config.storage_size)


def maas_refusal(config: CharmConfig, info: ServerInfo) -> str:
    """Why the MAAS options cannot apply to this LXD ("" when they can, or none is set): LXD 6.8 removed
    MAAS integration, the maas_network API extension with it (lxd-6.8 shared/version/api.go; lxd-6.9
    lxd/patches.go:125 config_remove_maas_keys deletes maas.* from the server config and NICs)."""
    if not config.maas_options or info.supports("maas_network"):
        return ""
    options = config.maas_options
    return (
        f"LXD {info.version} has no MAAS integration (API extension maas_network, removed in LXD 6.8): "
        f"unset {', '.join(options)} (juju config lxd-cluster --reset {','.join(options)})"
    )


def check_inputs(lxd: LXD, config: CharmConfig, info: ServerInfo, pool: PoolSpec) -> None:
    """Bad inputs block before anything is changed."""
    if info.storage_drivers is not None and config.storage_driver not in info.storage_drivers:
        package = DRIVER_PACKAGES[config.storage_driver]
        usable = ", ".join(d for d in DRIVER_PACKAGES if d in info.storage_drivers)
        raise Stop(
            ops.BlockedStatus(
                f"storage driver {config.storage_driver} is not available to LXD: install "
                f"{package} (and its kernel module), or set storage-driver to one of: {usable}"
            )
        )
    if not info.supports("clustering_join_token"):
        from issuing import no_tokens

        raise Stop(ops.BlockedStatus(no_tokens(info)))
    if refusal := maas_refusal(config, info):
        raise Stop(ops.BlockedStatus(refusal))
    if pool.source and config.storage_driver == "dir":
        raise Stop(
            ops.BlockedStatus(
                "storage-driver dir keeps its pool in LXD's own directory, not on the Juju storage "
                "`local`: choose zfs, btrfs or lvm, or deploy without that storage"
            )
        )
    if pool.source:
        _check_device(lxd, config, pool.source)


def _check_device(lxd: LXD, config: CharmConfig, source: str) -> None:
    device = lxd.inspect_device(source)
    path = shown(source)[1:-1]
    if device.error:
        raise Stop(ops.BlockedStatus(f"storage device {path} cannot be used ({device.error}): fix storage-device"))
    if not device.exists:
        raise Stop(ops.BlockedStatus(f"storage device {path} does not exist: fix storage-device"))
    if not device.is_block:
        raise Stop(ops.BlockedStatus(f"{path} is not a block device: fix storage-device"))
    if device.mounted:
        raise Stop(
            ops.BlockedStatus(
                f"{path} is mounted (or a partition of it, or a swap on it): unmount it or fix storage-device"
            )
        )
    if device.signatures and not config.wipe_storage_device:
        found = ", ".join(device.signatures)
        raise Stop(
            ops.BlockedStatus(
                f"{path} holds {found}: set wipe-storage-device=true to erase it, or choose an empty device"
            )
        )


def prepare_device(lxd: LXD, config: CharmConfig, pool: PoolSpec) -> None:
    """Erase the device right before LXD uses it, only with the operator's consent."""
    if pool.source and config.wipe_storage_device:
        if lxd.inspect_device(pool.source).signatures:
            logger.warning("erasing %s (wipe-storage-device=true)", pool.source)
            lxd.wipe_device(pool.source)
