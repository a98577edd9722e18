"""Join credentials: the issuer hands every waiting unit its own credential at once, in its own secret.

Tokens first, joins chained (as MicroCloud does): one issuer hook issues a credential per waiting
unit and fixes the order in its databag; each joiner then joins once the unit before it is a member
(membership.py), so LXD never sees two joins at once and the issuer is out of the join loop.
A token waiting for its turn is re-issued (same secret, new content) once half its lifetime has
passed, so it never expires in the queue.
On Juju 2.9 (no secrets) the queue entry carries the token itself, sealed to the public key the
joiner published (sealing.py): only that unit's private key, on its machine, opens it.
"""

from __future__ import annotations

import datetime
import logging
import time
import uuid

import ops
from charms.lxd_cluster.v0.lxd_cluster import fingerprint_of as certificate_fingerprint

from access import token_age
from config import CharmConfig, expiry_seconds
from juju_features import has_secrets
from models import ClusterInfo, JoinOffer, JoinQueue, ServerInfo, UnitInfo, server_name_of, unit_number
from preseed import JoinCredential
from sealing import seal, sealed_to
from workload import LXD, LXDError

logger = logging.getLogger(__name__)
STRAGGLER = 60  # seconds the issuer waits for units Juju is still bringing up before it issues without them


def issue_credential(lxd: LXD, info: ServerInfo, server_name: str) -> JoinCredential:
    """A join token (preflight.check_inputs refuses an LXD without them before it forms a cluster)."""
    if not info.supports("clustering_join_token"):
        raise LXDError(no_tokens(info))
    return JoinCredential(lxd.issue_join_token(server_name))


def no_tokens(info: ServerInfo) -> str:
    return (
        f"LXD {info.version} has no join tokens (API extension clustering_join_token): "
        "install LXD 5.0 or later (snap-channel=5.21/stable)"
    )


class Issuer:
    """The member that issues join credentials: the leader, or a member unit when it is not one."""

    def __init__(self, model: ops.Model, lxd: LXD, relation: ops.Relation, info: ServerInfo):
        self.model, self.lxd, self.relation, self.info = model, lxd, relation, info
        self.sealing = not has_secrets(model)  # Juju 2.9: tokens sealed to each joiner's key, in the queue

    def waiting(self, cluster: ClusterInfo, members: set[str]) -> dict[str, UnitInfo]:
        """Units that announced themselves, are not members, and may get a credential now."""
        peers = {unit.name: UnitInfo.load(self.relation.data[unit]) for unit in self.relation.units}
        return {
            name: unit
            for name, unit in peers.items()
            if unit.server_name
            and unit.address
            and unit.server_name not in members
            and unit.server_name not in cluster.removed.split()
            and not unit.left
            and not unit.join_blocked  # a permanent failure: no new credential until it is fixed
            and not unit.join_held  # Blocked before joining (its inputs, its network, an LXD in use)
            and float(unit.join_retry or 0) <= time.time()  # backing off: serve the others meanwhile
            and unit.lxd_version in ("", cluster.lxd_version)  # another LXD version: it is Blocked, not joining
            and (unit.seal_key or not self.sealing)  # nothing to seal its token to yet
        }

    def batch_ready(self, waiting: dict[str, UnitInfo]) -> bool:
        """Issue once for every unit Juju is bringing up (goal state), not once per unit as each
        appears: each issue costs every peer a hook. A unit that is slow to appear holds the others
        back at most STRAGGLER seconds."""
        peers = [UnitInfo.load(self.relation.data[u]) for u in self.relation.units]
        if len(peers) + 1 >= self.model.app.planned_units() and all(p.server_name for p in peers):
            return True
        return any(time.time() - float(u.announced or 0) >= STRAGGLER for u in waiting.values())

    def serve(
        self,
        cluster: ClusterInfo,
        members: set[str],
        bag: ops.RelationDataContent,
        owner: ops.Application | ops.Unit,
        config: CharmConfig,
    ) -> None:
        """Issue a credential to every waiting unit that has none; drop those nobody can use."""
        waiting = self.waiting(cluster, members)
        queue = JoinQueue.load(bag).offers
        live = [
            o
            for o in queue
            if o.join_unit in waiting
            and waiting[o.join_unit].join_failed != o.join_id
            # sealed to a key the joiner no longer has (it re-keyed): a fresh one, sealed to the new key
            and (not self.sealing or sealed_to(o.join_secret) == waiting[o.join_unit].seal_key)
        ]
        joined = [o for o in queue if o not in live and server_name_of(o.join_unit) in members]
        # departed, removed, blocked or backing off (a unit whose join failed gets a new token in the same secret)
        dead = [o for o in queue if o not in live and o not in joined and o.join_unit not in waiting]
        if not live and self._offers_elsewhere(bag, waiting):
            self.withdraw(bag)
            return  # the previous issuer's credentials are still outstanding: its chain runs first
        live, resealed = self._refresh(live, waiting, config)
        offered = {o.join_unit for o in live}
        names = [name for name in sorted(waiting, key=unit_number) if name not in offered]
        if names and not self.batch_ready(waiting):
            names = []
        # entries of units that joined stay until the next batch (their token is used up): removing
        # them at once would cost every peer a hook; their secrets go at once (that costs nobody a hook)
        for offer in joined:
            self.drop(server_name_of(offer.join_unit))
        if not (dead or names or resealed):
            return
        for offer in dead + joined:
            self.drop(server_name_of(offer.join_unit))
        new = [self._issue(name, waiting[name], owner) for name in names]
        JoinQueue.of(live + new).dump(bag)

    def _issue(self, name: str, unit: UnitInfo, owner: ops.Application | ops.Unit) -> JoinOffer:
        credential = issue_credential(self.lxd, self.info, unit.server_name)
        if self.sealing:
            logger.info("issued a join token for %s, sealed to its key", name)
            return JoinOffer(name, seal(credential.value, unit.seal_key, name), uuid.uuid4().hex[:12])
        content = {"kind": "token", "value": credential.value}
        label = f"join-{unit.server_name}"
        try:
            secret = self.model.get_secret(label=label)
            secret.set_content(content)
        except ops.SecretNotFoundError:
            secret = owner.add_secret(content, label=label, description=f"LXD join credential for {name}")
            if isinstance(owner, ops.Unit):  # only the joiner may read it
                secret.grant(self.relation, unit=self.model.get_unit(name))
        logger.info("issued a join token for %s", name)
        return JoinOffer(name, secret.get_info().id, uuid.uuid4().hex[:12])

    def _refresh(
        self, live: list[JoinOffer], waiting: dict[str, UnitInfo], config: CharmConfig
    ) -> tuple[list[JoinOffer], bool]:
        """A token still waiting for its turn is re-issued once half its lifetime passed (LXD's own
        record of when it was made; re-issuing cancels the old one): a long formation never hands a
        joiner an expired token. So is one that names an earlier cluster certificate (the joiner checks
        the certificate against it), where tokens travel in secrets (a CA-signed certificate needs them
        too: on Juju 2.9 the certificate never changes). Same secret, new revision: no databag write;
        sealed (Juju 2.9): a new sealed value in the queue, which the issuer writes (returns the offers
        and whether it must)."""
        if not live:
            return live, False
        if not self.sealing:
            self._reissue_for_the_certificate(live, waiting)
        names = {waiting[o.join_unit].server_name: o for o in live}
        now = datetime.datetime.now(datetime.timezone.utc)
        half = expiry_seconds(config.join_token_expiry) / 2
        resealed: dict[str, JoinOffer] = {}
        for token in self.lxd.pending_tokens():
            if token.kind != "join" or token.name not in names or token_age(token.created_at, now) < half:
                continue
            if self.sealing:
                offer = names[token.name]
                value = seal(self.lxd.issue_join_token(token.name), waiting[offer.join_unit].seal_key, offer.join_unit)
                resealed[offer.join_unit] = JoinOffer(offer.join_unit, value, offer.join_id)
            else:
                try:
                    secret = self.model.get_secret(label=f"join-{token.name}")
                except ops.SecretNotFoundError:
                    continue
                secret.set_content({"kind": "token", "value": self.lxd.issue_join_token(token.name)})
            logger.info("re-issued the join token for %s before it expires", token.name)
        return [resealed.get(o.join_unit, o) for o in live], bool(resealed)

    def _reissue_for_the_certificate(self, live: list[JoinOffer], waiting: dict[str, UnitInfo]) -> None:
        """Re-issue each waiting token that names an earlier cluster certificate (same secret, new revision)."""
        current = certificate_fingerprint(self.info.certificate)
        for offer in live:
            try:
                secret = self.model.get_secret(id=offer.join_secret)
                if JoinCredential(secret.get_content(refresh=True)["value"]).fingerprint in ("", current):
                    continue
            except (ops.SecretNotFoundError, KeyError):
                continue
            name = waiting[offer.join_unit].server_name
            secret.set_content({"kind": "token", "value": self.lxd.issue_join_token(name)})
            logger.info("re-issued the join token for %s: the cluster certificate changed", name)

    def _offers_elsewhere(self, bag: ops.RelationDataContent, waiting: dict[str, UnitInfo]) -> bool:
        """Is a credential from another issuer still outstanding for a unit that has not joined?"""
        bags = [self.relation.data[self.model.app]] + [self.relation.data[u] for u in self.relation.units]
        return any(b is not bag and any(o.join_unit in waiting for o in JoinQueue.load(b).offers) for b in bags)

    def withdraw(self, bag: ops.RelationDataContent) -> None:
        """A unit that stopped being the issuer removes its offers and their credentials."""
        queue = JoinQueue.load(bag).offers
        for offer in queue:
            self.drop(server_name_of(offer.join_unit))
        if queue:
            JoinQueue().dump(bag)

    def drop(self, server_name: str) -> None:
        remove_join_secret(self.model, server_name)


def remove_join_secret(model: ops.Model, server_name: str) -> bool:
    """Remove the join credential for server_name that this unit (or, as the leader, the app) owns
    (a sealed one, on Juju 2.9, lives only in the queue that drops it)."""
    if not has_secrets(model):
        return False
    try:
        model.get_secret(label=f"join-{server_name}").remove_all_revisions()
    except ops.SecretNotFoundError:
        return False
    return True
