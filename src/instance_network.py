"""The instances' network and the storage facts once the cluster exists: what each option means
after deploy (network-mode and bridge applied cluster-wide once every member can take them;
storage-driver and the size of an existing pool fixed), and what a joiner must follow."""

from __future__ import annotations

import dataclasses
import ipaddress
import logging

import ops

from cluster_network import (
    default_nic,
    drop_unused_networks,
    ensure_network,
    host_facts,
    network_ready,
    pool_facts,
    set_default_nic,
)
from config import CharmConfig, size_bytes
from models import PEER, ClusterInfo, server_name_of
from network import NETWORK_NAMES, NetworkChoice, missing, parse_choice
from status import Stop
from workload import LXD, LXDError

logger = logging.getLogger(__name__)
CHECKED, MISSING, INTERFACE = "network-checked", "network-missing", "network-interface"


def as_the_cluster_has_it(config: CharmConfig, cluster: ClusterInfo) -> CharmConfig:
    """A joiner follows the cluster's actual pool driver, pool size and network, whatever the options say."""
    if not cluster.formed:
        return config
    changes: dict[str, str] = {}
    if cluster.pool_driver:
        changes.update(storage_driver=cluster.pool_driver, storage_size=cluster.pool_size or config.storage_size)
    mode, name = parse_choice(cluster.network)
    if mode:
        changes.update(network_mode=mode, bridge=name if mode == "bridged" else config.bridge)
    return dataclasses.replace(config, **changes)


class InstanceNetwork:
    """This unit's view of the instances' network, kept in the peer relation `relation`."""

    def __init__(self, model: ops.Model, lxd: LXD, relation: ops.Relation):
        self.model, self.lxd, self.relation = model, lxd, relation

    def interface(self) -> tuple[str, str]:
        """The interface carrying the cluster binding address, and its subnet (from network-get)."""
        binding = self.model.get_binding(PEER)
        network = binding.network if binding else None
        if network is None:
            return "", ""
        for nic in network.interfaces:
            if nic.address == network.bind_address and nic.name:
                subnet = nic.subnet or ipaddress.ip_network(f"{nic.address}/32")
                return nic.name, str(subnet)
        return "", ""

    def check(self, config: CharmConfig) -> str:
        """Can this host take the chosen network? Recorded for the leader; returns what is missing."""
        choice = config.network
        interface, underlay = self.interface()
        lacking = missing(choice, host_facts(self.lxd, choice, interface, underlay))
        bag = self.relation.data[self.model.unit]
        found = {CHECKED: choice.key, MISSING: lacking, INTERFACE: interface}
        if changed := {k: v for k, v in found.items() if bag.get(k, "") != v}:  # each write is a round trip
            bag.update(changed)
        return lacking

    def checked(self, config: CharmConfig) -> bool:
        """This unit checked the chosen network, and nothing was missing (its databag says so)."""
        bag = self.relation.data[self.model.unit]
        return bag.get(CHECKED) == config.network.key and not bag.get(MISSING)

    def preflight(self, config: CharmConfig) -> None:
        """Before bootstrap or join: Blocked with what is missing, nothing changed."""
        if lacking := self.check(config):
            raise Stop(ops.BlockedStatus(lacking))

    def as_member(self, config: CharmConfig, steady: bool = False) -> None:
        """Every member checks itself; the leader applies the choice once every member can take it,
        and publishes what a joiner must follow. Options fixed once the cluster exists block here.
        In a steady hook (a peer's, update-status) a settled member asks LXD nothing here: the others check."""
        if steady and self._settled(config):
            return
        lacking = self.check(config)
        if self.model.unit.is_leader():  # membership has just republished: read it again
            self._apply(config, ClusterInfo.load(self.relation.data[self.model.app]))
        elif lacking:
            raise Stop(ops.BlockedStatus(f"{lacking}; eth0 stays as it is on every member"))
        self._check_fixed(config)

    def _settled(self, config: CharmConfig) -> bool:
        """This unit checked the chosen network, the cluster applied that choice, and the pool options are
        the ones the cluster published. The binding is not asked again (network-get): when the machine's
        addresses change Juju runs config-changed before anything else, and that hook checks
        (juju internal/worker/uniter/resolver.go nextOp: addressesHashChanged -> hooks.ConfigChanged)."""
        choice = config.network
        cluster = ClusterInfo.load(self.relation.data[self.model.app])
        checked = self.checked(config)
        size_kept = not cluster.pool_size or size_bytes(cluster.pool_size) == size_bytes(config.storage_size)
        return checked and cluster.network == choice.key and cluster.pool_driver == config.storage_driver and size_kept

    def _apply(self, config: CharmConfig, cluster: ClusterInfo) -> None:
        choice = config.network
        nic = choice.nic(config.maas_subnet_ipv4, config.maas_subnet_ipv6)
        if default_nic(self.lxd) != nic or not network_ready(self.lxd, choice):
            self._wait_for_every_member(choice, cluster)
            try:
                changes = []
                if choice.network:
                    interfaces = {m: bag.get(INTERFACE, "") for m, bag in self._member_bags().items()}
                    changes += ensure_network(self.lxd, choice, interfaces, self.interface()[1])
                if set_default_nic(self.lxd, nic):
                    changes.append(f"default profile eth0 -> {choice.key}")
                changes += [f"dropped unused network {n}" for n in drop_unused_networks(self.lxd, choice.network)]
            except LXDError as e:
                raise Stop(ops.BlockedStatus(f"network-mode {choice.mode} could not be applied: {e}")) from None
            logger.info("instances' network: %s", "; ".join(changes))
        driver, size = pool_facts(self.lxd, server_name_of(self.model.unit.name))
        published = dataclasses.replace(cluster, network=choice.key, pool_driver=driver, pool_size=size)
        published.dump(self.relation.data[self.model.app])

    def _member_bags(self) -> dict[str, ops.RelationDataContent]:
        """The databags of the units whose LXD is a cluster member, by member name."""
        members = {m.server_name for m in self.lxd.members()}
        units = [self.model.unit, *self.relation.units]
        return {server_name_of(u.name): self.relation.data[u] for u in units if server_name_of(u.name) in members}

    def _wait_for_every_member(self, choice: NetworkChoice, cluster: ClusterInfo) -> None:
        """Nothing changes until every member unit said it can take the choice."""
        bags = self._member_bags()
        refused = [f"{name}: {bag.get(MISSING)}" for name, bag in sorted(bags.items()) if bag.get(MISSING)]
        unchecked = sorted(n for n, bag in bags.items() if bag.get(CHECKED) != choice.key)
        if not (refused or unchecked):
            return
        if not cluster.network:  # what joiners follow meanwhile: eth0 as it is
            driver, size = pool_facts(self.lxd, server_name_of(self.model.unit.name))
            current = dataclasses.replace(cluster, network=_key_of(default_nic(self.lxd)), pool_driver=driver)
            dataclasses.replace(current, pool_size=size).dump(self.relation.data[self.model.app])
        if refused:
            raise Stop(
                ops.BlockedStatus(
                    f"network-mode {choice.mode} cannot work on every member (nothing changed): " + "; ".join(refused)
                )
            )
        raise Stop(ops.WaitingStatus(f"waiting for {', '.join(unchecked)} to check network-mode {choice.mode}"))

    def _check_fixed(self, config: CharmConfig) -> None:
        driver, size = pool_facts(self.lxd, server_name_of(self.model.unit.name))
        if driver and driver != config.storage_driver:
            raise Stop(
                ops.BlockedStatus(
                    f"storage-driver is fixed once the cluster exists (it is {driver}): set storage-driver={driver}"
                )
            )
        if size and size_bytes(size) != size_bytes(config.storage_size):
            raise Stop(
                ops.BlockedStatus(
                    f"storage-size is fixed once the cluster exists (it is {size}): set storage-size={size}"
                )
            )


def _key_of(nic: dict[str, str]) -> str:
    """The published key of an eth0 the charm did not set up (an adopted LXD's, say)."""
    if nic.get("network"):
        return next((f"{m}:{n}" for m, n in NETWORK_NAMES.items() if n == nic["network"]), "")
    return f"bridged:{nic['parent']}" if nic.get("nictype") == "bridged" and nic.get("parent") else ""
