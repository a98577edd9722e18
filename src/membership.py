"""Membership: bootstrap, join, the join credentials a member issues, and the issuer hand-over."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import re
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import ops
from charms.lxd_cluster.v0.lxd_cluster import fingerprint_of as certificate_fingerprint

from config import CharmConfig, shown
from juju_features import has_secrets
from models import PEER, ClusterInfo, JoinOffer, JoinQueue, ServerInfo, UnitInfo, server_name_of, unit_number
from network import join_member_config
from preflight import prepare_device
from preseed import (
    JoinCredential,
    MaasSettings,
    PoolSpec,
    bootstrap_preseed,
    https_address,
    join_preseed,
    server_config,
)
from redaction import redact_text
from status import Stop
from unit_key import private_key
from workload import LXD, LXDError

if TYPE_CHECKING:
    from issuing import Issuer

logger = logging.getLogger(__name__)
BACKOFF = (0, 30, 60, 120, 300, 600, 1800)  # seconds before the next try after 1, 2, ... transient failures
MEMBERSHIP = "membership"  # label of each unit's membership secret
RETRY_BLOCKED = 3600  # a permanent failure is tried again after this long (or at once on a config change)


def failure_fix(error: str, config: CharmConfig) -> str:
    """The fix for an LXD error whose cause is known ("" when it is not)."""
    lowered = error.lower()
    if "address already in use" in lowered:
        return (
            f"cluster-port {config.cluster_port} is taken on this machine: stop the service on it "
            "or set cluster-port to a free port"
        )
    if "mkfs" in lowered or "already contains" in lowered or "existing filesystem" in lowered:
        return "the storage device holds old data: set wipe-storage-device=true or choose an empty device"
    return ""


def _same_failure(a: str, b: str) -> bool:
    """The same LXD error, whatever token, address or number it quotes."""
    norm = lambda text: re.sub(r"[0-9a-f]{8,}|\d+", "#", text.lower())  # noqa: E731
    return bool(a) and norm(a) == norm(b)


def config_digest(config: CharmConfig) -> str:
    return hashlib.sha256(repr(config).encode()).hexdigest()[:12]


def check_port(config: CharmConfig, address: str) -> None:
    """A member's address cannot move: cluster-port must stay the port it listens on."""
    port = address.rsplit(":", 1)[-1]
    if port != str(config.cluster_port):
        raise Stop(
            ops.BlockedStatus(
                f"cluster-port is fixed once a member has joined (this member listens on {port}): "
                f"set cluster-port back to {port}"
            )
        )


class Membership:
    """This unit's place in the cluster, kept in the peer relation `relation`. charm_dir holds the
    unit's sealing key (unit_key.py), used where Juju has no secrets (2.9)."""

    def __init__(self, model: ops.Model, lxd: LXD, relation: ops.Relation, charm_dir: Path):
        self.model, self.lxd, self.relation, self.charm_dir = model, lxd, relation, charm_dir
        self.unit, self.app = model.unit, model.app
        self.secrets = has_secrets(model)  # Juju 3.x/4.x; 2.9: sealed credentials, membership in the databag

    @property
    def server_name(self) -> str:
        return server_name_of(self.unit.name)

    def peer_units(self) -> dict[str, UnitInfo]:
        return {unit.name: UnitInfo.load(self.relation.data[unit]) for unit in self.relation.units}

    def announce(self, me: UnitInfo, info: ServerInfo, config: CharmConfig) -> UnitInfo:
        """Say in this unit's databag who it is and where: what the issuer needs to let it join
        (on Juju 2.9 also the public key its credential is sealed to: a new one if the key file went)."""
        if self.secrets:
            member_secret, seal_key = me.member_secret or self._membership_secret().get_info().id, ""  # made once
        else:
            from sealing import public_key  # Juju 2.9

            member_secret, seal_key = "", public_key(private_key(self.charm_dir))
        announced = replace(
            me,
            server_name=self.server_name,
            address=https_address(self.address(), config.cluster_port),
            lxd_version=info.version,
            member_secret=member_secret,
            announced=me.announced or str(int(time.time())),
            seal_key=seal_key,
        )
        announced.dump(self.relation.data[self.unit])
        return announced

    @contextlib.contextmanager
    def held_while_blocked(self, me: UnitInfo) -> Iterator[None]:
        """Checks after the announcement: a unit they block is out of the join queue until they pass."""
        bag = self.relation.data[self.unit]
        try:
            yield
        except Stop as stop:
            if isinstance(stop.status, ops.BlockedStatus) and not me.join_held:
                replace(me, join_held="yes").dump(bag)
            raise
        if me.join_held:
            replace(UnitInfo.load(bag), join_held="").dump(bag)

    # -- membership, told through a secret ------------------------------------------------
    # Only the next joiner needs it: a databag write runs a hook on every peer, a new revision only on readers.
    # Juju 2.9 has no secrets: the unit databag's `member` says it, and relation-changed carries it.
    def _membership_secret(self, secret_id: str = "") -> ops.Secret:
        """This unit's membership secret, by its id (a label lookup Juju refuses before it exists)."""
        if secret_id:
            try:
                return self.model.get_secret(id=secret_id)
            except ops.SecretNotFoundError:
                pass
        secret = self.unit.add_secret({"member": "no"}, label=MEMBERSHIP, description="LXD cluster membership")
        secret.grant(self.relation)  # nothing secret in it: whether this unit is a cluster member
        return secret

    def record_membership(self) -> None:
        me = UnitInfo.load(self.relation.data[self.unit])
        if not self.secrets:
            if me.member != "yes":
                replace(me, member="yes").dump(self.relation.data[self.unit])
            return
        secret = self._membership_secret(me.member_secret)
        if not me.member_secret:
            replace(me, member_secret=secret.get_info().id).dump(self.relation.data[self.unit])
        if secret.get_content(refresh=True).get("member") != "yes":
            secret.set_content({"member": "yes"})

    def member_of(self, unit: UnitInfo, track: bool = False) -> bool:
        """Is a peer a cluster member? track: Juju tells this unit (secret-changed) when that changes."""
        if unit.member or not unit.member_secret or not self.secrets:
            return bool(unit.member)  # Juju 2.9, or written by an earlier version of this charm
        try:
            secret = self.model.get_secret(id=unit.member_secret)
            content = secret.get_content(refresh=True) if track else secret.peek_content()
        except (ops.SecretNotFoundError, ops.ModelError):
            return False
        return content.get("member") == "yes"

    def address(self) -> str:
        binding = self.model.get_binding(PEER)
        address = binding.network.bind_address if binding else None
        if address is None:
            raise Stop(ops.WaitingStatus("waiting for an address on the cluster binding"))
        return str(address)

    def maas(self, config: CharmConfig) -> MaasSettings | None:
        if not (config.maas_enabled or config.maas_subnet_ipv4 or config.maas_subnet_ipv6):
            return None
        key = config.maas_api_key  # the key itself where Juju has no user secrets
        if config.maas_api_key_secret:
            try:
                key = self.model.get_secret(id=config.maas_api_key_secret).get_content(refresh=True)["key"]
            except (ops.SecretNotFoundError, ops.ModelError, KeyError):
                raise Stop(
                    ops.BlockedStatus(
                        "cannot read the maas-api-key secret (key `key`): juju grant-secret <secret> lxd-cluster"
                    )
                ) from None
        return MaasSettings(config.maas_api_url, key, config.maas_subnet_ipv4, config.maas_subnet_ipv6)

    # -- bootstrap and join ---------------------------------------------------------------
    def bootstrap(self, config: CharmConfig, pool: PoolSpec) -> str:
        """Form the cluster here: a bootstrap preseed on a fresh LXD, or (with consent) adopt one in use.
        Returns what an adoption kept, for status ("" after a bootstrap)."""
        from adoption import adopt, adopted_status, describe, refuse_adoption  # once per application

        inventory = self.lxd.inventory()
        if inventory.initialised:  # never overwritten: its instances rely on its default profile
            if refusal := refuse_adoption(inventory, config.adopt_existing_lxd):
                raise Stop(ops.BlockedStatus(refusal))
            found = describe(inventory)
            self.unit.status = ops.MaintenanceStatus(f"adopting the existing LXD ({found})")
            prepare_device(self.lxd, config, pool)
            adopt(self.lxd, inventory, self.server_name, https_address(self.address(), config.cluster_port), pool)
            logger.info("adopted the existing LXD as %s, keeping %s", self.server_name, found)
            return adopted_status(found, self.server_name)
        self.unit.status = ops.MaintenanceStatus("bootstrapping the LXD cluster")
        prepare_device(self.lxd, config, pool)
        preseed = bootstrap_preseed(
            server_name=self.server_name,
            address=self.address(),
            port=config.cluster_port,
            pool=pool,
            bridge=config.bridge,
            images_auto_update=config.images_auto_update,
            maas=self.maas(config),
            with_nic=config.network_mode == "bridged",  # other modes: instance_network makes it next
        )
        try:
            self.lxd.apply_preseed(preseed)
        except LXDError as e:
            fix = failure_fix(str(e), config) or "fix the cause on this machine (LXD's log has more)"
            raise Stop(ops.BlockedStatus(f"bootstrap failed: {shown(str(e), 200)[1:-1]}: {fix}")) from None
        logger.info("bootstrapped LXD cluster as %s", self.server_name)
        return ""

    def offer_for_me(self, cluster: ClusterInfo) -> tuple[JoinOffer | None, list[JoinOffer]]:
        """The credential offered to this unit, by the leader (app databag) or the issuing member,
        and the offers queued before it."""
        data = self.relation.data
        bags = [data[self.app]] + [data[u] for u in self.relation.units if u.name == cluster.issuer]
        for bag in bags:
            queue = JoinQueue.load(bag).offers
            for i, offer in enumerate(queue):
                if offer.join_unit == self.unit.name and offer.join_secret:
                    return offer, queue[:i]
        return None, []

    def turn(self, cluster: ClusterInfo, ahead: list[JoinOffer]) -> str:
        """The unit this one waits for before it joins ("" when it is its turn): the nearest unit
        queued before it that is still on its way in. LXD takes one join at a time."""
        units = {u.name: UnitInfo.load(self.relation.data[u]) for u in self.relation.units}
        for offer in reversed(ahead):
            unit = units.get(offer.join_unit)
            if unit is None:  # not seen yet (or gone: then the issuer drops its offer and this unit hears of it)
                return offer.join_unit
            if unit.left or unit.join_blocked or unit.join_held or unit.join_failed == offer.join_id:
                continue  # out of the chain until it gets a new credential (queued after this one)
            if self.member_of(unit, track=True):
                return ""  # it joined after everyone before it
            return offer.join_unit
        return ""

    def join(
        self, config: CharmConfig, cluster: ClusterInfo, pool: PoolSpec, offer: JoinOffer, interface: str = ""
    ) -> None:
        """Join with the cluster's own pool driver and network (config follows the cluster's here)."""
        credential = JoinCredential(self._credential(offer))
        if certificate_fingerprint(cluster.certificate) != cluster.fingerprint:
            raise Stop(
                ops.BlockedStatus("the published cluster certificate does not match its fingerprint: not joining")
            )
        if credential.fingerprint != cluster.fingerprint:  # issued before the cluster certificate changed
            raise Stop(
                ops.WaitingStatus("the join credential names an older cluster certificate: waiting for a new one")
            )
        self.unit.status = ops.MaintenanceStatus(f"joining the LXD cluster at {cluster.cluster_address}")
        prepare_device(self.lxd, config, pool)
        preseed = join_preseed(
            server_name=self.server_name,
            address=self.address(),
            port=config.cluster_port,
            cluster_address=cluster.cluster_address,
            cluster_certificate=cluster.certificate,
            credential=credential,
            pool=pool,
            network_config=join_member_config(cluster.network, interface),
        )
        mine = self.relation.data[self.unit]
        try:
            self.lxd.apply_preseed(preseed)
        except LXDError as e:
            if not self._joined_anyway():  # `lxd init` may time out after the join went through
                # LXD's words go to the databag every unit reads: never the credential they may quote
                self._join_failed(UnitInfo.load(mine), offer, redact_text(str(e), [credential.value]), config)
            logger.warning("lxd init said %s, but this server is a member now", e)
        self.record_membership()  # the next in line joins on this
        replace(UnitInfo.load(mine), **_NO_FAILURE).dump(mine)
        logger.info("joined the LXD cluster at %s", cluster.cluster_address)

    def _credential(self, offer: JoinOffer) -> str:
        """The join token of an offer: from its Juju secret, or (Juju 2.9) opened with this unit's key. A
        sealed token that does not open (changed, or sealed to another key) is reported as a failed
        credential: the issuer seals a fresh one to the key this unit publishes."""
        from sealing import SealError, is_sealed, unseal  # once per joiner

        if not is_sealed(offer.join_secret):
            try:
                return self.model.get_secret(id=offer.join_secret).get_content(refresh=True)["value"]
            except (ops.SecretNotFoundError, ops.ModelError):
                raise Stop(ops.WaitingStatus("waiting for access to the join credential")) from None
        try:
            return unseal(offer.join_secret, private_key(self.charm_dir), self.unit.name)
        except SealError as e:
            mine = self.relation.data[self.unit]
            error = f"the sealed join credential does not open with this unit's key ({e})"
            replace(UnitInfo.load(mine), join_failed=offer.join_id, join_error=error).dump(mine)
            logger.warning("%s: asking for a fresh one", error)
            raise Stop(ops.WaitingStatus(f"{error}: waiting for a fresh one")) from None

    def _joined_anyway(self) -> bool:
        try:
            return self.lxd.info().clustered and self.server_name in {m.server_name for m in self.lxd.members()}
        except LXDError:
            return False

    def _join_failed(self, me: UnitInfo, offer: JoinOffer, error: str, config: CharmConfig) -> None:
        """Record a failed join: a known cause or the same error twice is permanent (Blocked, no new
        credential until fixed); anything else is retried with backoff, one credential per try."""
        attempts = int(me.join_attempts or 0) + 1
        now = int(time.time())
        fix = failure_fix(error, config)
        permanent = bool(fix) or _same_failure(me.join_error, error)
        retry = now + BACKOFF[min(attempts - 1, len(BACKOFF) - 1)]
        failed = replace(
            me,
            join_failed=offer.join_id,
            join_error=error[:500],
            join_attempts=str(attempts),
            join_retry="" if permanent else str(retry),
            join_blocked=f"{now}:{config_digest(config)}" if permanent else "",
        )
        failed.dump(self.relation.data[self.unit])
        logger.error("join failed (attempt %d): %s", attempts, error)
        if permanent:
            raise Stop(ops.BlockedStatus(_blocked_message(failed, config)))
        raise Stop(ops.WaitingStatus(f"join failed (attempt {attempts}), trying again: {shown(error, 200)[1:-1]}"))

    def join_gate(self, me: UnitInfo, config: CharmConfig) -> None:
        """After a failed join: stay Blocked on a permanent failure until the config changes or an
        hour passed; wait out the backoff of a transient one."""
        now = time.time()
        if me.join_blocked:
            since, _, digest = me.join_blocked.partition(":")
            if digest == config_digest(config) and now - float(since or 0) < RETRY_BLOCKED:
                raise Stop(ops.BlockedStatus(_blocked_message(me, config)))
            replace(me, join_blocked="", join_error="").dump(self.relation.data[self.unit])  # try once more
            logger.info("trying to join again after: %s", me.join_error)
        elif me.join_retry and now < float(me.join_retry):
            when = time.strftime("%H:%M:%S UTC", time.gmtime(float(me.join_retry)))
            raise Stop(
                ops.WaitingStatus(
                    f"join failed (attempt {me.join_attempts}), next try at {when}: {shown(me.join_error, 200)[1:-1]}"
                )
            )

    # -- once a member --------------------------------------------------------------------
    def as_member(
        self, config: CharmConfig, info: ServerInfo, cluster: ClusterInfo, me: UnitInfo, ca: str, recorded: bool = False
    ) -> str:
        """Record the membership (unless `recorded` by an earlier hook of this unit); the leader publishes
        the cluster (its certificate, and ca, the CA that signed it) and applies its config; the issuer
        hands out the next join credential. Returns the address this member listens on."""
        # the published certificate is LXD's own, as the leader read it: the same text, the same fingerprint
        same = cluster.formed and info.certificate == cluster.certificate
        fingerprint = cluster.fingerprint if same else certificate_fingerprint(info.certificate)
        listed = self.lxd.members()
        if cluster.formed and fingerprint != cluster.fingerprint:
            if f"https://{cluster.cluster_address}" not in {m.url for m in listed}:
                raise Stop(
                    ops.BlockedStatus(
                        f"this LXD is a member of another cluster ({fingerprint[:12]}): "
                        "remove it from that cluster first"
                    )
                )
            if not self.unit.is_leader():  # the leader replaced the cluster certificate and publishes it
                raise Stop(ops.WaitingStatus("the cluster certificate changed: waiting for the leader to publish it"))
        if self.secrets and (not me.member_secret or me.member):  # from Juju 2.9 or an earlier version
            me = replace(self.announce(me, info, config), member="", **_NO_FAILURE)
            me.dump(self.relation.data[self.unit])
        if not recorded:
            self.record_membership()
        # LXD cannot move a member's address: publish the one it has, whatever the option says
        members = {m.server_name for m in listed}
        own = next((m for m in listed if m.server_name == self.server_name), None)
        address = own.url.removeprefix("https://") if own and ":" in own.url[8:] else ""
        address = address or https_address(self.address(), config.cluster_port)
        if not self.unit.is_leader():
            mine = self.relation.data[self.unit]
            if cluster.issuer == self.unit.name:  # the leader is not a member: this unit issues
                self._issuer(info).serve(cluster, members, mine, self.unit, config)
            elif JoinQueue.load(mine).offers:  # it issued before: not any more
                self._issuer(info).withdraw(mine)
            return address
        cluster = replace(
            cluster,
            cluster_address=address,
            certificate=info.certificate,
            fingerprint=fingerprint,
            ca=ca,
            lxd_version=info.version,
            bootstrap_unit=cluster.bootstrap_unit or self.unit.name,
        )
        cluster.dump(self.relation.data[self.app])
        changed = self.lxd.update_config(
            server_config(images_auto_update=config.images_auto_update, maas=self.maas(config))
        )
        if changed:
            logger.info("cluster configuration updated: %s", ", ".join(changed))
        cluster = self.appoint_issuer(cluster, leader_is_member=True)
        self._issuer(info).serve(cluster, members, self.relation.data[self.app], self.app, config)
        return address

    def _issuer(self, info: ServerInfo) -> Issuer:
        from issuing import Issuer  # the issuing member's: the others' settled hooks never import it

        return Issuer(self.model, self.lxd, self.relation, info)

    # -- join credentials -----------------------------------------------------------------
    def appoint_issuer(self, cluster: ClusterInfo, leader_is_member: bool) -> ClusterInfo:
        """The leader issues join credentials when it is a member; otherwise the lowest-numbered
        member unit does (a new leader that has not joined yet must not wait for itself)."""
        if leader_is_member:
            issuer = self.unit.name
        else:
            members = [n for n, u in self.peer_units().items() if self.member_of(u)]
            issuer = min(members, key=unit_number, default="")
            # offers the leader made as a member are void, and their app-owned secrets go with them: the
            # member issuer's own `join-<name>` secrets could not share their labels (Juju refuses a unit
            # secret whose label an app secret of its application holds, state/secrets.go:1290-1380)
            from issuing import remove_join_secret

            bag = self.relation.data[self.app]
            for offer in JoinQueue.load(bag).offers:
                remove_join_secret(self.model, server_name_of(offer.join_unit))
            JoinQueue().dump(bag)
        if issuer != cluster.issuer:
            cluster = replace(cluster, issuer=issuer)
            cluster.dump(self.relation.data[self.app])
        return cluster


_NO_FAILURE = dict(join_failed="", join_error="", join_attempts="", join_retry="", join_blocked="")


def _blocked_message(me: UnitInfo, config: CharmConfig) -> str:
    fix = failure_fix(me.join_error, config) or (
        "fix the cause on this machine; the unit tries again within an hour, or at once when the config changes"
    )
    return f"join failed ({me.join_attempts or 1}x): {shown(me.join_error, 200)[1:-1]}: {fix}"
