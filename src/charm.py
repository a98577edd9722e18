#!/usr/bin/env python3
"""lxd-cluster: the Juju leader bootstraps an LXD cluster, every other unit joins it.

Every event runs one idempotent reconcile: install LXD, check the inputs, then bootstrap (leader,
once per application), join (others, one at a time, with a credential from a Juju secret), or,
once a member, publish what joiners need and issue the next credential. Status is computed in
collect-status. All LXD calls live in workload.py, preseeds are built in preseed.py.
"""

from __future__ import annotations

import json
import logging
import secrets
import uuid
from collections.abc import Callable
from dataclasses import replace

import ops
import yaml
from charms.lxd_cluster.v0.lxd_cluster import ClusterEndpoints, DataError, LXDClusterProvider, fingerprint_of

from actions import (
    MIN_MEMBERS,
    ActionError,
    check_known_member,
    check_removal,
    parse_launch,
    pick_target,
)
from adoption import adopt, adopted_status, describe, refuse_adoption, refuse_join
from config import CharmConfig, ConfigError, load_config
from lxd_package import PackageStep
from peers import PEER, ClusterInfo, JoinOffer, UnitInfo, server_name_of, unit_number
from preseed import (
    REDACTED,
    JoinCredential,
    MaasSettings,
    PoolSpec,
    bootstrap_preseed,
    https_address,
    join_preseed,
    server_config,
)
from snap import LXDSnap
from workload import (
    DRIVER_PACKAGES,
    LXD,
    ClientUnavailable,
    LXDError,
    Member,
    ServerInfo,
    certificate_fingerprint,
    token_fingerprint,
)

logger = logging.getLogger(__name__)


def client_name(relation: ops.Relation) -> str:
    """The trust-store name of a related client: tied to the relation."""
    return f"juju-{relation.app.name if relation.app else 'client'}-{relation.id}"


def format_table(rows: list[dict[str, str]]) -> str:
    """The primer's `lxc cluster list` table."""
    if not rows:
        return ""
    keys = list(rows[0])
    widths = {k: max(len(k), *(len(str(r[k])) for r in rows)) for k in keys}
    line = "+" + "+".join("-" * (widths[k] + 2) for k in keys) + "+"
    out = [line, "|" + "|".join(f" {k.upper():<{widths[k]}} " for k in keys) + "|", line]
    out += ["|" + "|".join(f" {str(r[k]):<{widths[k]}} " for k in keys) + "|" for r in rows]
    return "\n".join(out + [line])


class Stop(Exception):
    """Ends a reconcile with the status that says why (and what to do)."""

    def __init__(self, status: ops.StatusBase):
        super().__init__(status.message)
        self.status = status


class LXDClusterCharm(ops.CharmBase):
    def __init__(self, framework: ops.Framework):
        super().__init__(framework)
        self.lxd = LXD()
        self.snap = LXDSnap()
        self._outcome: ops.StatusBase | None = None
        peer = self.on[PEER]
        for event in (
            self.on.install,
            self.on.start,
            self.on.config_changed,
            self.on.upgrade_charm,
            self.on.update_status,
            self.on.leader_elected,
            self.on.secret_changed,
            self.on["local"].storage_attached,
            peer.relation_created,
            peer.relation_joined,
            peer.relation_changed,
        ):
            framework.observe(event, self._reconcile)
        framework.observe(peer.relation_departed, self._on_peer_departed)
        framework.observe(self.on.collect_unit_status, self._on_collect_unit_status)
        self.clients = LXDClusterProvider(self)
        framework.observe(self.clients.on.client_requested, self._reconcile)
        framework.observe(self.clients.on.client_gone, self._on_client_gone)
        self._actions: dict[str, Callable[[ops.ActionEvent], None]] = {
            "launch": self._launch,
            "remove-node": self._remove_node,
            "force-remove": self._force_remove,
            "cluster-list": self._cluster_list,
            "show-preseed": self._show_preseed,
            "add-trusted-client": self._add_trusted_client,
            "remove-trusted-client": self._remove_trusted_client,
            "evacuate": lambda event: self._member_state(event, "evacuate"),
            "restore": lambda event: self._member_state(event, "restore"),
        }
        for action in self._actions:
            framework.observe(self.on[action].action, self._on_action)

    # -- the flow -------------------------------------------------------------------------
    def _reconcile(self, _: ops.EventBase) -> None:
        try:
            config = load_config(self.config)
        except ConfigError:
            return  # collect-status reports it; nothing is touched
        try:
            self._converge(config)
        except Stop as stop:
            self._outcome = stop.status
        except LXDError as e:
            self._outcome = ops.BlockedStatus(f"LXD: {e}")

    def _converge(self, config: CharmConfig) -> None:
        info = self._ensure_lxd(config)
        relation = self.model.get_relation(PEER)
        if relation is None:
            raise Stop(ops.WaitingStatus("waiting for the cluster peer relation"))
        cluster = ClusterInfo.load(relation.data[self.app])
        me = UnitInfo.load(relation.data[self.unit])

        # the leader publishes the version (after an LXD refresh, its own new one); others follow it
        republishes = self.unit.is_leader() and info.clustered
        if cluster.lxd_version and cluster.lxd_version != info.version and not republishes:
            raise Stop(
                ops.BlockedStatus(
                    f"LXD {info.version} here but the cluster runs {cluster.lxd_version}: "
                    f"install LXD {cluster.lxd_version} on this machine"
                )
            )

        if info.clustered:
            self._as_member(config, info, relation, cluster, me)
            return
        if server_name_of(self.unit.name) in cluster.removed.split():
            raise Stop(
                ops.BlockedStatus(
                    "removed from the cluster by action: juju remove-unit this unit "
                    "(its LXD must be wiped before it can join again)"
                )
            )

        pool = self._pool_spec(config)
        self._preflight(config, info, pool)
        me = self._announce(relation, me, info, config)

        if not cluster.formed and self.unit.is_leader():
            if any(peer.is_member for peer in self._peer_units(relation).values()):
                raise Stop(ops.WaitingStatus("a peer is already a cluster member: waiting for it"))
            self._bootstrap(config, info, pool)
            self._as_member(config, self.lxd.info(), relation, cluster, me)
            return
        if not cluster.formed:
            raise Stop(ops.WaitingStatus("waiting for the leader to bootstrap the cluster"))
        if refusal := refuse_join(self.lxd.inventory()):
            raise Stop(ops.BlockedStatus(refusal))
        if self.unit.is_leader():  # a leader that is not a member: a member unit issues for it
            cluster = self._appoint_issuer(relation, cluster, leader_is_member=False)
        offer = self._offer_for_me(relation, cluster)
        if offer is None:
            raise Stop(ops.WaitingStatus("waiting for a join credential (joins go one at a time)"))
        if me.join_failed and me.join_failed == offer.join_id:
            raise Stop(ops.WaitingStatus(f"join failed, waiting for a new credential: {me.join_error}"))
        self._join(config, relation, cluster, pool, offer)

    def _ensure_lxd(self, config: CharmConfig) -> ServerInfo:
        # snapd decides what is installed; install, hold, catch up or take this unit's upgrade turn
        step = PackageStep(
            self.snap, self.unit, self.app, self.model.get_relation(PEER), lambda: self.lxd.inventory().initialised
        )
        if (status := step.ensure(config.snap_channel)) is not None:
            raise Stop(status)
        try:
            info = self.lxd.info()
        except ClientUnavailable as e:  # waiting would not mend it
            raise Stop(ops.BlockedStatus(str(e))) from None
        except LXDError:  # not up yet (just installed, or restarting): wait for it once
            try:
                self.lxd.wait_ready(timeout=30)
                info = self.lxd.info()
            except LXDError as e:
                raise Stop(ops.WaitingStatus(f"waiting for the LXD daemon: {e}")) from None
        self.unit.set_workload_version(info.version)
        return info

    def _pool_spec(self, config: CharmConfig) -> PoolSpec:
        """Juju storage `local` first, the storage-device option second, else a loop-backed pool."""
        attached = self.model.storages.get("local") if "local" in self.meta.storages else None
        if attached:
            return PoolSpec(config.storage_driver, source=str(attached[0].location))
        if config.storage_device:
            return PoolSpec(config.storage_driver, source=config.storage_device)
        return PoolSpec(config.storage_driver, size=config.storage_size)

    def _preflight(self, config: CharmConfig, info: ServerInfo, pool: PoolSpec) -> None:
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
        if config.maas_enabled and not info.supports("maas_network"):
            raise Stop(ops.BlockedStatus("this LXD has no MAAS support: unset maas-api-url"))
        kind = self.lxd.network_type(config.bridge)
        if kind is None:
            raise Stop(
                ops.BlockedStatus(f"bridge {config.bridge} does not exist: create it or set bridge")
            )
        if kind != "bridge":
            raise Stop(
                ops.BlockedStatus(f"{config.bridge} is a {kind} interface, not a bridge: set bridge")
            )
        if pool.source and config.storage_driver == "dir":
            raise Stop(
                ops.BlockedStatus(
                    "storage-driver dir keeps its pool in LXD's own directory, not on the Juju storage "
                    "`local`: choose zfs, btrfs or lvm, or deploy without that storage"
                )
            )
        if pool.source:
            self._check_device(config, pool.source)

    def _check_device(self, config: CharmConfig, path: str) -> None:
        device = self.lxd.inspect_device(path)
        if not device.exists:
            raise Stop(ops.BlockedStatus(f"storage device {path} does not exist: fix storage-device"))
        if not device.is_block:
            raise Stop(ops.BlockedStatus(f"{path} is not a block device: fix storage-device"))
        if device.mounted:
            raise Stop(ops.BlockedStatus(f"{path} is mounted: unmount it or choose another device"))
        if device.signatures and not config.wipe_storage_device:
            found = ", ".join(device.signatures)
            raise Stop(
                ops.BlockedStatus(
                    f"{path} holds {found}: set wipe-storage-device=true to erase it, "
                    "or choose an empty device"
                )
            )

    def _prepare_device(self, config: CharmConfig, pool: PoolSpec) -> None:
        """Erase the device right before LXD uses it, only with the operator's consent."""
        if pool.source and config.wipe_storage_device:
            if self.lxd.inspect_device(pool.source).signatures:
                logger.warning("erasing %s (wipe-storage-device=true)", pool.source)
                self.lxd.wipe_device(pool.source)

    def _announce(
        self, relation: ops.Relation, me: UnitInfo, info: ServerInfo, config: CharmConfig
    ) -> UnitInfo:
        announced = UnitInfo(
            server_name=server_name_of(self.unit.name),
            address=https_address(self._address(), config.cluster_port),
            lxd_version=info.version,
            member=me.member,
            join_failed=me.join_failed,
            join_error=me.join_error,
        )
        announced.dump(relation.data[self.unit])
        return announced

    def _address(self) -> str:
        binding = self.model.get_binding(PEER)
        address = binding.network.bind_address if binding else None
        if address is None:
            raise Stop(ops.WaitingStatus("waiting for an address on the cluster binding"))
        return str(address)

    # -- bootstrap and join ---------------------------------------------------------------
    def _bootstrap(self, config: CharmConfig, info: ServerInfo, pool: PoolSpec) -> None:
        inventory = self.lxd.inventory()
        if inventory.initialised:  # an LXD in use: adopted with consent, never overwritten
            if refusal := refuse_adoption(inventory, config.adopt_existing_lxd):
                raise Stop(ops.BlockedStatus(refusal))
            self.unit.status = ops.MaintenanceStatus(f"adopting the existing LXD ({describe(inventory)})")
            self._prepare_device(config, pool)
            adopt(self.lxd, inventory, server_name_of(self.unit.name),
                  https_address(self._address(), config.cluster_port), pool)
            self._outcome = ops.ActiveStatus(adopted_status(describe(inventory), server_name_of(self.unit.name)))
            logger.info("%s", self._outcome.message)
            return
        self.unit.status = ops.MaintenanceStatus("bootstrapping the LXD cluster")
        self._prepare_device(config, pool)
        preseed = bootstrap_preseed(
            server_name=server_name_of(self.unit.name),
            address=self._address(),
            port=config.cluster_port,
            pool=pool,
            bridge=config.bridge,
            images_auto_update=config.images_auto_update,
            maas=self._maas(config),
        )
        try:
            self.lxd.apply_preseed(preseed)
        except LXDError as e:
            raise Stop(ops.BlockedStatus(f"bootstrap failed: {e}")) from None
        logger.info("bootstrapped LXD cluster as %s", server_name_of(self.unit.name))

    def _offer_for_me(self, relation: ops.Relation, cluster: ClusterInfo) -> JoinOffer | None:
        """The credential offered to this unit, by the leader (app databag) or the issuing member."""
        bags = [relation.data[self.app]] + [relation.data[u] for u in relation.units if u.name == cluster.issuer]
        for bag in bags:
            offer = JoinOffer.load(bag)
            if offer.join_unit == self.unit.name and offer.join_secret:
                return offer
        return None

    def _join(
        self, config: CharmConfig, relation: ops.Relation, cluster: ClusterInfo, pool: PoolSpec, offer: JoinOffer
    ) -> None:
        try:
            content = self.model.get_secret(id=offer.join_secret).get_content(refresh=True)
        except (ops.SecretNotFoundError, ops.ModelError):
            raise Stop(ops.WaitingStatus("waiting for access to the join credential")) from None
        credential = JoinCredential(content["kind"], content["value"])  # type: ignore[arg-type]
        if certificate_fingerprint(cluster.certificate) != cluster.fingerprint or (
            credential.kind == "token" and token_fingerprint(credential.value) != cluster.fingerprint
        ):
            raise Stop(
                ops.BlockedStatus(
                    "the published cluster certificate does not match its fingerprint: not joining"
                )
            )
        self.unit.status = ops.MaintenanceStatus(f"joining the LXD cluster at {cluster.cluster_address}")
        self._prepare_device(config, pool)
        preseed = join_preseed(
            server_name=server_name_of(self.unit.name),
            address=self._address(),
            port=config.cluster_port,
            cluster_address=cluster.cluster_address,
            cluster_certificate=cluster.certificate,
            credential=credential,
            pool=pool,
        )
        mine = relation.data[self.unit]
        try:
            self.lxd.apply_preseed(preseed)
        except LXDError as e:
            failed = replace(UnitInfo.load(mine), join_failed=offer.join_id, join_error=str(e))
            failed.dump(mine)
            raise Stop(ops.WaitingStatus(f"join failed, waiting for a new credential: {e}")) from None
        replace(UnitInfo.load(mine), member=cluster.fingerprint, join_failed="", join_error="").dump(mine)
        logger.info("joined the LXD cluster at %s", cluster.cluster_address)

    # -- once a member --------------------------------------------------------------------
    def _as_member(
        self,
        config: CharmConfig,
        info: ServerInfo,
        relation: ops.Relation,
        cluster: ClusterInfo,
        me: UnitInfo,
    ) -> None:
        fingerprint = certificate_fingerprint(info.certificate)
        if cluster.formed and fingerprint != cluster.fingerprint:
            raise Stop(
                ops.BlockedStatus(
                    f"this LXD is a member of another cluster ({fingerprint[:12]}): "
                    "remove it from that cluster first"
                )
            )
        if me.member != fingerprint:
            me = self._announce(relation, me, info, config)
            replace(me, member=fingerprint, join_failed="", join_error="").dump(relation.data[self.unit])
        # LXD cannot move a member's address: publish the one it has, whatever the option says
        own = next((m for m in self.lxd.members() if m.server_name == server_name_of(self.unit.name)), None)
        address = own.url.removeprefix("https://") if own and ":" in own.url[8:] else ""
        address = address or https_address(self._address(), config.cluster_port)
        if not self.unit.is_leader():
            if cluster.issuer == self.unit.name:  # the leader is not a member: this unit issues
                self._serve_joiners(info, relation, cluster, relation.data[self.unit], self.unit)
            else:
                self._withdraw_offer(info, relation.data[self.unit])
            self._check_port(config, address)
            return
        cluster = replace(
            cluster,
            cluster_address=address,
            certificate=info.certificate,
            fingerprint=fingerprint,
            lxd_version=info.version,
            bootstrap_unit=cluster.bootstrap_unit or self.unit.name,
        )
        cluster.dump(relation.data[self.app])
        changed = self.lxd.update_config(
            server_config(images_auto_update=config.images_auto_update, maas=self._maas(config))
        )
        if changed:
            logger.info("cluster configuration updated: %s", ", ".join(changed))
        cluster = self._appoint_issuer(relation, cluster, leader_is_member=True)
        self._serve_joiners(info, relation, cluster, relation.data[self.app], self.app)
        self._serve_clients(info, fingerprint)
        self._check_port(config, address)

    @staticmethod
    def _check_port(config: CharmConfig, address: str) -> None:
        port = address.rsplit(":", 1)[-1]
        if port != str(config.cluster_port):
            raise Stop(
                ops.BlockedStatus(
                    f"cluster-port is fixed once a member has joined (this member listens on {port}): "
                    f"set cluster-port back to {port}"
                )
            )

    def _peer_units(self, relation: ops.Relation) -> dict[str, UnitInfo]:
        return {unit.name: UnitInfo.load(relation.data[unit]) for unit in relation.units}

    def _appoint_issuer(self, relation: ops.Relation, cluster: ClusterInfo, leader_is_member: bool) -> ClusterInfo:
        """The leader issues join credentials when it is a member; otherwise the lowest-numbered
        member unit does (a new leader that has not joined yet must not wait for itself)."""
        if leader_is_member:
            issuer = self.unit.name
        else:
            members = [n for n, u in self._peer_units(relation).items() if u.member == cluster.fingerprint]
            issuer = min(members, key=unit_number, default="")
            JoinOffer().dump(relation.data[self.app])  # an offer the leader made as a member is void
        if issuer != cluster.issuer:
            cluster = replace(cluster, issuer=issuer)
            cluster.dump(relation.data[self.app])
        return cluster

    def _serve_joiners(
        self,
        info: ServerInfo,
        relation: ops.Relation,
        cluster: ClusterInfo,
        bag: ops.RelationDataContent,
        owner: ops.Application | ops.Unit,
    ) -> None:
        """Hand one join credential at a time to the next unit waiting to join."""
        members = {m.server_name for m in self.lxd.members()}
        waiting = {
            name: unit
            for name, unit in self._peer_units(relation).items()
            if unit.server_name
            and unit.address
            and unit.server_name not in members
            and unit.server_name not in cluster.removed.split()
        }
        offer = JoinOffer.load(bag)
        current = offer.join_unit
        if current and current in waiting and waiting[current].join_failed != offer.join_id:
            return  # its credential is still outstanding
        if current and current not in waiting:
            self._drop_credential(info, server_name_of(current))
            current = ""
        if not current and self._offer_elsewhere(relation, bag, waiting):
            JoinOffer().dump(bag)
            return  # the previous issuer's credential is still outstanding: one join at a time
        nxt = current or min(waiting, key=unit_number, default="")
        if not nxt:
            JoinOffer().dump(bag)
            return
        credential = self._issue_credential(info, waiting[nxt].server_name)
        content = {"kind": credential.kind, "value": credential.value}
        label = f"join-{waiting[nxt].server_name}"
        try:
            secret = self.model.get_secret(label=label)
            secret.set_content(content)
        except ops.SecretNotFoundError:
            secret = owner.add_secret(content, label=label, description=f"LXD join credential for {nxt}")
            if isinstance(owner, ops.Unit):
                secret.grant(relation)  # the joiner reads it over the peer relation
        JoinOffer(nxt, secret.get_info().id, uuid.uuid4().hex[:12]).dump(bag)
        logger.info("issued a join %s for %s", credential.kind, nxt)

    def _offer_elsewhere(
        self, relation: ops.Relation, bag: ops.RelationDataContent, waiting: dict[str, UnitInfo]
    ) -> bool:
        """Is a credential from another issuer still outstanding for a unit that has not joined?"""
        bags = [relation.data[self.app]] + [relation.data[u] for u in relation.units]
        return any(b is not bag and JoinOffer.load(b).join_unit in waiting for b in bags)

    def _withdraw_offer(self, info: ServerInfo, bag: ops.RelationDataContent) -> None:
        """A unit that stopped being the issuer removes its offer and its credential."""
        offer = JoinOffer.load(bag)
        if offer.join_unit:
            self._drop_credential(info, server_name_of(offer.join_unit))
            JoinOffer().dump(bag)

    def _issue_credential(self, info: ServerInfo, server_name: str) -> JoinCredential:
        if info.supports("clustering_join_token"):
            return JoinCredential("token", self.lxd.issue_join_token(server_name))
        password = secrets.token_urlsafe(24)
        self.lxd.set_trust_password(password)
        return JoinCredential("password", password)

    def _drop_credential(self, info: ServerInfo, server_name: str) -> None:
        try:
            self.model.get_secret(label=f"join-{server_name}").remove_all_revisions()
        except ops.SecretNotFoundError:
            pass
        if not info.supports("clustering_join_token"):
            self.lxd.set_trust_password("")

    def _maas(self, config: CharmConfig) -> MaasSettings | None:
        if not (config.maas_enabled or config.maas_subnet_ipv4 or config.maas_subnet_ipv6):
            return None
        key = ""
        if config.maas_api_key_secret:
            try:
                key = self.model.get_secret(id=config.maas_api_key_secret).get_content(refresh=True)["key"]
            except (ops.SecretNotFoundError, ops.ModelError, KeyError):
                raise Stop(
                    ops.BlockedStatus(
                        "cannot read the maas-api-key secret (key `key`): "
                        "juju grant-secret <secret> lxd-cluster"
                    )
                ) from None
        return MaasSettings(config.maas_api_url, key, config.maas_subnet_ipv4, config.maas_subnet_ipv6)

    # -- trusted clients (lib/charms/lxd_cluster/v0) ---------------------------------------
    def _serve_clients(self, info: ServerInfo, fingerprint: str) -> None:
        """Trust each related client's certificate; publish where the cluster is."""
        relations = self.clients.relations
        if not relations:
            return
        endpoints = tuple(m.url for m in self.lxd.members())
        trusted = self.lxd.trusted_clients()
        for relation in relations:
            name = client_name(relation)
            try:
                request = self.clients.request_of(relation)
            except DataError as e:
                if relation.app and relation.data[relation.app].get("certificate"):
                    logger.warning("not trusting %s: %s", name, e)
                    self.clients.publish(relation, ClusterEndpoints((), "", "", error=str(e)))
                continue
            if trusted.get(name) != request.fingerprint:
                try:
                    if name in trusted:
                        self.lxd.untrust_client(trusted[name])
                    self.lxd.trust_client(name, request.certificate, request.projects)
                except LXDError as e:  # one client's bad request must not block the cluster
                    logger.warning("not trusting %s: %s", name, e)
                    self.clients.publish(relation, ClusterEndpoints((), "", "", error=f"LXD: {e}"))
                    continue
                logger.info("trusted client certificate %s (%s)", name, request.fingerprint[:12])
            self.clients.publish(
                relation, ClusterEndpoints(endpoints, info.certificate, fingerprint, request.fingerprint)
            )

    def _on_client_gone(self, event: ops.RelationEvent) -> None:
        name = client_name(event.relation)
        try:
            fingerprint = self.lxd.trusted_clients().get(name)
            if fingerprint:
                self.lxd.untrust_client(fingerprint)
                logger.info("removed client certificate %s", name)
        except LXDError as e:
            self._outcome = ops.BlockedStatus(f"could not remove client certificate {name}: {e}")

    def _add_trusted_client(self, event: ops.ActionEvent) -> None:
        name = str(event.params.get("name", "")).strip()
        pem = str(event.params.get("certificate", "")).strip()
        projects = tuple(event.params.get("projects", []))
        if not name:
            raise ActionError("name is required: how the client shows in `lxc config trust list`")
        if pem:
            try:
                fingerprint = fingerprint_of(pem)
            except DataError as e:
                raise ActionError(f"certificate is unusable: {e}") from None
        self._require_member()
        if name in self.lxd.trusted_clients():
            raise ActionError(f"a client named {name} is trusted already: remove it first")
        if pem:
            self.lxd.trust_client(name, pem + "\n", projects)
            event.set_results({"name": name, "fingerprint": fingerprint})
        else:
            event.set_results({"name": name, "token": self.lxd.issue_client_token(name)})

    def _remove_trusted_client(self, event: ops.ActionEvent) -> None:
        name = str(event.params.get("name", "")).strip()
        self._require_member()
        trusted = self.lxd.trusted_clients()
        if name not in trusted:
            raise ActionError(f"no trusted client named {name!r}: trusted are {', '.join(sorted(trusted)) or 'none'}")
        self.lxd.untrust_client(trusted[name])
        event.set_results({"removed": name, "fingerprint": trusted[name]})

    # -- scale-in --------------------------------------------------------------------------
    def _on_peer_departed(self, event: ops.RelationDepartedEvent) -> None:
        if event.departing_unit == self.unit:
            try:
                self._leave()
            except (LXDError, ActionError) as e:
                self._outcome = ops.BlockedStatus(f"could not leave the cluster: {e}")
            return
        self._reconcile(event)

    def _leave(self) -> None:
        """`juju remove-unit`: move this member's instances away, then leave while alive."""
        if not self.lxd.info().clustered:
            return
        name = server_name_of(self.unit.name)
        members = self.lxd.members()
        if [m.server_name for m in members] == [name]:
            logger.warning("%s is the last member: the cluster stays on this machine", name)
            return
        mine = self.lxd.instances(location=name)
        if mine:
            self._move_off(name, members, [i.name for i in mine], logger.info)
        self.lxd.remove_member(name)
        logger.info("%s left the cluster", name)

    def _move_off(
        self, name: str, members: list[Member], instances: list[str], log: Callable[[str], object]
    ) -> dict[str, str]:
        """Move instances off member `name`, each to the online member with fewest instances."""
        counts = {m.server_name: 0 for m in members if m.server_name != name and m.status == "Online"}
        for instance in self.lxd.instances():
            if instance.location in counts:
                counts[instance.location] += 1
        moved = {}
        for instance in instances:
            target = pick_target(counts)
            log(f"moving {instance} from {name} to {target}")
            self.lxd.move_instance(instance, target)
            counts[target] += 1
            moved[instance] = target
        return moved

    # -- actions ---------------------------------------------------------------------------
    def _on_action(self, event: ops.ActionEvent) -> None:
        """Failures become event.fail with the reason (LXD's own words where LXD refused)."""
        action = event.handle.kind.removesuffix("_action").replace("_", "-")
        try:
            self._actions[action](event)
        except (ActionError, LXDError) as e:
            event.fail(str(e))

    def _require_member(self, leader: bool = False) -> list[Member]:
        if leader and not self.unit.is_leader():
            raise ActionError("run this action on the leader: juju run lxd-cluster/leader ...")
        if not self.lxd.info().clustered:
            raise ActionError("this unit is not a cluster member yet: run the action on a member")
        return self.lxd.members()

    def _launch(self, event: ops.ActionEvent) -> None:
        request = parse_launch(event.params)
        members = self._require_member()
        if request.target.startswith("@"):
            if not self.lxd.group_exists(request.target[1:]):
                raise ActionError(f"no cluster group named {request.target[1:]!r}")
        elif request.target:
            check_known_member(request.target, [m.server_name for m in members])
        if any(i.name == request.name for i in self.lxd.instances()):
            raise ActionError(f"an instance named {request.name} exists already: choose another name")
        if not request.remote and not self.lxd.image_exists(request.image):
            raise ActionError(
                f"no image {request.image!r} in the cluster's image store: import it "
                "(lxc image import) or name a remote image such as ubuntu:24.04"
            )
        event.log(f"launching {request.name} from {request.image} on {request.target or 'a member LXD picks'}")
        instance = self.lxd.launch(
            request.name, request.source, request.target, request.profiles, request.config
        )
        event.set_results(
            {
                "name": instance.name,
                "location": instance.location,
                "status": instance.status,
                "ipv4": ", ".join(instance.ipv4),
                "ipv6": ", ".join(instance.ipv6),
            }
        )

    def _remove_node(self, event: ops.ActionEvent) -> None:
        name = str(event.params.get("name", ""))
        members = self._require_member(leader=True)
        if name == server_name_of(self.unit.name):
            raise ActionError(
                f"{name} is the leader's own member: use juju remove-unit {self.unit.name}, "
                "which moves its instances and leaves the cluster"
            )
        names = [m.server_name for m in members]
        on_member = [i.name for i in self.lxd.instances(location=name)] if name in names else []
        check_removal(name, names, on_member, event.params)
        before = sorted(i.name for i in self.lxd.instances())
        moved = self._move_off(name, members, on_member, event.log) if on_member else {}
        event.log(f"removing {name} from the cluster")
        self.lxd.remove_member(name)
        self._record_removed(name)
        after = sorted(i.name for i in self.lxd.instances())
        lost = sorted(set(before) - set(after))
        event.set_results(
            {
                "removed": name,
                "moved": ", ".join(f"{i}->{t}" for i, t in moved.items()) or "none",
                "instances-before": len(before),
                "instances-after": len(after),
                "lost": ", ".join(lost) or "none",
            }
        )

    def _force_remove(self, event: ops.ActionEvent) -> None:
        name = str(event.params.get("name", ""))
        if event.params.get("confirm") is not True:
            raise ActionError(
                f"force-remove deletes {name or 'the member'} and its instances from the cluster "
                "database without asking it: run again with confirm=true"
            )
        members = self._require_member(leader=True)
        check_known_member(name, [m.server_name for m in members])
        row = next(m for m in members if m.server_name == name)
        if row.status == "Online":
            raise ActionError(f"{name} is online: use remove-node, which moves its instances first")
        lost = sorted(i.name for i in self.lxd.instances(location=name))
        event.log(f"force-removing {name} ({row.status}: {row.message})")
        self.lxd.remove_member(name, force=True)
        self._record_removed(name)
        event.set_results(
            {
                "removed": name,
                "lost-instances": ", ".join(lost) or "none",
                "next-step": f"wipe LXD on the host of {name} (snap remove --purge lxd, or reinstall "
                "the machine) before it can join a cluster again",
            }
        )

    def _record_removed(self, name: str) -> None:
        """Remember a member removed by action, so its unit never tries to join again."""
        relation = self.model.get_relation(PEER)
        if relation is None:
            return
        cluster = ClusterInfo.load(relation.data[self.app])
        replace(cluster, removed=" ".join(sorted(set(cluster.removed.split()) | {name}))).dump(
            relation.data[self.app]
        )

    def _cluster_list(self, event: ops.ActionEvent) -> None:
        members = self._require_member()
        rows = [
            {
                "name": m.server_name,
                "url": m.url,
                "database": m.database_role,
                "state": m.status.upper(),
                "message": m.message,
            }
            for m in members
        ]
        event.set_results({"table": format_table(rows), "members": json.dumps(rows)})

    def _show_preseed(self, event: ops.ActionEvent) -> None:
        reveal = event.params.get("reveal") is True
        server_name = str(event.params.get("server-name", "")).strip()
        address = str(event.params.get("address", "")).strip()
        source = str(event.params.get("storage-source", "")).strip()
        if not server_name or not address:
            raise ActionError("server-name and address are required: the new host's name and its IP")
        config = load_config(self.config)
        members = self._require_member(leader=reveal)
        if server_name in [m.server_name for m in members]:
            raise ActionError(f"{server_name} is a member already: choose the new host's name")
        relation = self.model.get_relation(PEER)
        cluster = ClusterInfo.load(relation.data[self.app]) if relation else ClusterInfo()
        if not cluster.formed:
            raise ActionError("the cluster is not published yet: wait for the leader")
        info = self.lxd.info()
        credential = (
            self._issue_credential(info, server_name) if reveal else JoinCredential("token", REDACTED)
        )
        preseed = join_preseed(
            server_name=server_name,
            address=address,
            port=config.cluster_port,
            cluster_address=cluster.cluster_address,
            cluster_certificate=cluster.certificate,
            credential=credential,
            pool=PoolSpec(config.storage_driver, source=source, size="" if source else config.storage_size),
        )
        event.set_results({"preseed": yaml.safe_dump(preseed, sort_keys=False)})

    def _member_state(self, event: ops.ActionEvent, action: str) -> None:
        name = str(event.params.get("name", ""))
        members = self._require_member()
        check_known_member(name, [m.server_name for m in members])
        event.log(f"{action} {name}")
        self.lxd.set_member_state(name, action)
        row = next(m for m in self.lxd.members() if m.server_name == name)
        instances = self.lxd.instances(location=name)
        event.set_results(
            {
                "name": name,
                "state": row.status.upper(),
                "instances": ", ".join(f"{i.name} ({i.status})" for i in instances) or "none",
            }
        )

    # -- status ---------------------------------------------------------------------------
    def _on_collect_unit_status(self, event: ops.CollectStatusEvent) -> None:
        try:
            load_config(self.config)
        except ConfigError as e:
            event.add_status(ops.BlockedStatus(str(e)))
            return
        if self._outcome is not None:
            event.add_status(self._outcome)
            return
        try:
            members = self.lxd.members()
        except LXDError as e:
            event.add_status(ops.WaitingStatus(f"LXD not answering: {e}"))
            return
        event.add_status(self._member_status(members))

    def _member_status(self, members: list[Member]) -> ops.StatusBase:
        name = server_name_of(self.unit.name)
        mine = next((m for m in members if m.server_name == name), None)
        if mine is None:
            return ops.WaitingStatus("not a cluster member yet")
        role = mine.database_role if mine.database_role != "-" else "no database role"
        message = f"member {name} of {len(members)} ({role}), {mine.message.lower()}"
        down = sorted(m.server_name for m in members if m.status.lower() != "online")
        if down:
            message += f"; not online: {', '.join(down)}"
        relation = self.model.get_relation(PEER)
        units = {name} | {server_name_of(u.name) for u in relation.units} if relation else {name}
        stale = sorted(m.server_name for m in members if m.server_name not in units and m.status != "Online")
        if stale:
            message += f"; stale member {', '.join(stale)} has no unit: run force-remove"
        if len(members) < MIN_MEMBERS and self.app.planned_units() <= len(members):
            message += f"; fewer than {MIN_MEMBERS} members: no database redundancy"
        if mine.status.lower() == "evacuated":
            return ops.MaintenanceStatus(message)
        return ops.ActiveStatus(message)


if __name__ == "__main__":  # pragma: nocover
    ops.main(LXDClusterCharm)
