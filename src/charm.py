"""lxd-cluster: the Juju leader bootstraps an LXD cluster, every other unit joins it.

Every event runs one idempotent reconcile: install LXD, check the inputs, then bootstrap (leader,
once per application), join (others, one at a time, with a credential from a Juju secret), or,
once a member, publish what joiners need and issue the next credential. Status is computed in
collect-status. This module only wires events to that flow and to the actions; each step lives in
its own module, every LXD call in workload.py.
"""

from __future__ import annotations

import logging
import os
from dataclasses import replace
from typing import TYPE_CHECKING

import ops
from charms.lxd_cluster.v0.lxd_cluster import LXDClusterProvider

from access import secure_tokens
from config import CharmConfig, ConfigError, load_config, shown
from instance_network import InstanceNetwork, as_the_cluster_has_it
from juju_features import has_secrets, has_user_secrets
from lxd_package import PackageStep
from membership import Membership, check_port
from models import CERTIFICATES, PEER, ClusterInfo, ServerInfo, UnitInfo, server_name_of
from nagios import NRPE_RELATION, publish_checks
from observability import DASHBOARD_RELATION, LOGGING_RELATION, METRICS_RELATION, Observability
from preflight import check_inputs, ensure_lxd, maas_refusal, pool_spec
from preseed import PoolSpec
from proxy import ProxyError, ProxySettings, apply_to_lxd, apply_to_snapd, lxd_proxy, model_proxy
from redaction import guard
from snap import LXDSnap, SnapError
from status import Stop, member_status
from tuning import HostTuning, TuningError
from workload import LXD, ClientUnavailable, LXDError

if TYPE_CHECKING:  # imported where used: pydantic and cryptography cost a settled hook ~0.1 s
    from charmlibs.interfaces.tls_certificates import CertificateRequestAttributes, TLSCertificatesRequiresV4

    from cluster_certificate import ClusterCertificate

logger = logging.getLogger(__name__)
# a unit Juju is removing runs its relation-broken hooks first, while it may still be the leader
LEAVING = ops.MaintenanceStatus(
    "this unit is being removed: it leaves the cluster and acts for the application no more"
)


class DepartureFailed(Exception):
    """Fails the hook on purpose: Juju holds the removal and retries; the message says what to do."""


class LXDClusterCharm(ops.CharmBase):
    # this unit's own memory, kept by ops on the machine: digests of the proxy values it gave snapd, and
    # what it already told Juju (membership recorded, ports opened), so a settled hook does not say it again
    _stored = ops.StoredState()

    def __init__(self, framework: ops.Framework):
        super().__init__(framework)
        self._stored.set_default(snapd_proxy={}, member=False, ports=[])
        self.redactor = guard(self.model)  # secrets read feed it; status, logs, action output pass it
        if not str(key := self.config.get("maas-api-key") or "").startswith("secret:"):
            self.redactor.remember({"maas-api-key": key})  # the key itself (no user secrets: Juju < 3.3)
        self.lxd = LXD()  # the one place the charm gets its LXD (unit tests inject a fake here)
        self.snap = LXDSnap()  # snapd (unit tests put a fake snapd and `snap` command in its way)
        self.tuning = HostTuning(self.app.name)
        self._outcome: ops.StatusBase | None = None
        self._proxy = ProxySettings()  # the model's, read at the start of each reconcile
        self._tuning_note = ""  # sysctls another charm holds at its own value
        self._nagios_problem = ""
        peer = self.on[PEER]
        # the cluster certificate from a CA: the tls-certificates library (pydantic, cryptography) keeps the
        # key and certificate in app secrets; made first, so it renews its request (a unit's new address)
        # before the charm reconciles on that event. Made only where a CA is related (or in that relation's
        # hooks), and not for update-status, which none of its handlers observe (_cluster_certificate)
        self._requirer: TLSCertificatesRequiresV4 | None = None
        self.cluster_certificate: ClusterCertificate | None = None  # the leader's, once it looked
        if has_secrets(self.model) and self._certificates_hook_or_related():
            self._requirer = self._tls_requirer()
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
        framework.observe(self.on["local"].storage_detaching, self._on_storage_detaching)
        framework.observe(self.on.collect_unit_status, self._on_collect_unit_status)
        self.clients = LXDClusterProvider(self)
        framework.observe(self.clients.on.client_requested, self._reconcile)
        framework.observe(self.clients.on.client_gone, self._on_client_gone)
        self.observability = Observability(self, self.lxd)
        for event in ("relation_created", "relation_changed", "relation_broken"):
            framework.observe(getattr(self.on[CERTIFICATES], event), self._reconcile)
        for relation in (METRICS_RELATION, DASHBOARD_RELATION, LOGGING_RELATION, NRPE_RELATION):
            for event in ("relation_joined", "relation_changed", "relation_broken"):
                framework.observe(getattr(self.on[relation], event), self._reconcile)
        for action in self.meta.actions:  # each in actions.yaml; actions.py is imported when one runs
            framework.observe(self.on[action].action, self._on_action)

    # -- the flow -------------------------------------------------------------------------
    def _reconcile(self, event: ops.EventBase) -> None:
        # the only reconcile a unit Juju is removing runs (worker/uniter/resolver.go: a dying unit runs
        # storage-detaching, relation-departed/-broken, stop, remove): it issues, upgrades, untrusts nothing
        if isinstance(event, ops.RelationBrokenEvent) and self._being_removed():
            self._outcome = LEAVING
            return
        # hooks that may bring news of the host, its LXD or the options check them all again; the peers'
        # hooks (their databags, their secrets) and update-status check only what is not settled, and a
        # joiner checks everything again right before it joins
        self._peer_news = isinstance(event, ops.SecretChangedEvent) or (
            isinstance(event, ops.RelationEvent) and event.relation.name == PEER
        )
        self._steady = self._peer_news or isinstance(event, ops.UpdateStatusEvent)
        try:
            config = load_config(self.config, user_secrets=has_user_secrets(self.model))
        except ConfigError:
            return  # collect-status reports it; nothing is touched
        try:
            self._converge(config)
        except Stop as stop:
            self._outcome = stop.status
        except LXDError as e:
            self._outcome = ops.BlockedStatus(str(e) if isinstance(e, ClientUnavailable) else f"LXD: {e}")

    def _converge(self, config: CharmConfig) -> None:
        self._prepare_host(config)  # before anything is downloaded: the proxy snapd needs, the host's limits
        # snapd decides what is installed: install, hold, catch up, or this unit's turn in an upgrade
        step = PackageStep(
            self.snap,
            self.unit,
            self.app,
            self.model.get_relation(PEER),
            self._lxd_initialised,
            self._is_member,
            cluster_members=self._cluster_members,
        )
        if (status := step.ensure(config.snap_channel, config.maas_options)) is not None:
            raise Stop(status)
        relation = self.model.get_relation(PEER)
        me = UnitInfo.load(relation.data[self.unit]) if relation else UnitInfo()
        info = ensure_lxd(self.lxd, self.unit, config, announced_version=me.lxd_version)
        if relation is None:
            raise Stop(ops.WaitingStatus("waiting for the cluster peer relation"))
        membership = Membership(self.model, self.lxd, relation, self.charm_dir)
        if not info.clustered:  # who and where it is needs nothing the leader published: said first
            me = membership.announce(me, info, config)
        cluster = ClusterInfo.load(relation.data[self.app])

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
            self._as_member(membership, config, info, cluster, me)
            return
        if server_name_of(self.unit.name) in cluster.removed.split():
            raise Stop(
                ops.BlockedStatus(
                    "removed from the cluster by action: juju remove-unit this unit "
                    "(its LXD must be wiped before it can join again)"
                )
            )

        config = as_the_cluster_has_it(config, cluster)  # a joiner follows the cluster, not changed options
        pool = pool_spec(self, config)
        network = InstanceNetwork(self.model, self.lxd, relation)
        checked = not self._steady or me.join_held or not network.checked(config)
        if checked:  # a peer's news changes nothing on this host: a joiner that passed waits unchecked
            self._check_joiner(membership, me, config, info, pool, network, cluster)
        me = UnitInfo.load(relation.data[self.unit])

        if not cluster.formed and self.unit.is_leader():
            if any(membership.member_of(peer) for peer in membership.peer_units().values()):
                raise Stop(ops.WaitingStatus("a peer is already a cluster member: waiting for it"))
            if not checked:  # the host may have changed since: everything again before LXD is changed
                self._check_joiner(membership, me, config, info, pool, network, cluster)
            if adopted := membership.bootstrap(config, pool):
                self._outcome = ops.ActiveStatus(adopted)
            self._as_member(membership, config, self.lxd.info(), cluster, me)
            return
        if not cluster.formed:
            raise Stop(ops.WaitingStatus("waiting for the leader to bootstrap the cluster"))
        if self.unit.is_leader():  # a leader that is not a member: a member unit issues for it
            cluster = membership.appoint_issuer(cluster, leader_is_member=False)
        membership.join_gate(me, config)  # a failed join: blocked, or backing off
        offer, ahead = membership.offer_for_me(cluster)
        if offer is None:
            raise Stop(ops.WaitingStatus("waiting for a join credential (joins go one at a time)"))
        if me.join_failed and me.join_failed == offer.join_id:
            raise Stop(
                ops.WaitingStatus(f"join failed, waiting for a new credential: {shown(me.join_error, 200)[1:-1]}")
            )
        if before := membership.turn(cluster, ahead):
            raise Stop(ops.WaitingStatus(f"waiting for {before} to join first (joins go one at a time)"))
        if not checked:  # the host may have changed since: everything again before LXD is changed
            self._check_joiner(membership, me, config, info, pool, network, cluster)
        membership.join(config, cluster, pool, offer, interface=network.interface()[0])

    def _check_joiner(
        self,
        membership: Membership,
        me: UnitInfo,
        config: CharmConfig,
        info: ServerInfo,
        pool: PoolSpec,
        network: InstanceNetwork,
        cluster: ClusterInfo,
    ) -> None:
        """Inputs, device, network and (a joiner's) what LXD holds, before this unit bootstraps or joins."""
        from adoption import refuse_join

        with membership.held_while_blocked(me):  # announced: a Blocked unit must not hold up the queue
            check_inputs(self.lxd, config, info, pool)
            network.preflight(config)
            if refusal := cluster.formed and refuse_join(self.lxd.inventory()):  # joining would erase it
                raise Stop(ops.BlockedStatus(refusal))

    def _as_member(
        self, membership: Membership, config: CharmConfig, info: ServerInfo, cluster: ClusterInfo, me: UnitInfo
    ) -> None:
        """A member publishes, issues and opens its port; the leader keeps tokens short-lived, serves clients.
        MAAS options this LXD cannot take are left out of everything (LXD has none of them then) and
        end the hook Blocked, once the rest has converged."""
        maas_refused = maas_refusal(config, info)
        if maas_refused:
            config = config.without_maas()
        ca = ""
        if self.unit.is_leader():  # before the next join token is issued
            secure_tokens(self.lxd, config, info)
            apply_to_lxd(self.lxd, lxd_proxy(self._proxy, config.proxy_options))  # cluster-wide keys
            if self.model.relations[CERTIFICATES] or cluster.ca:  # else self-signed, as LXD made it
                in_use = self._cluster_certificate().converge(info, cluster.ca)  # joiners, clients get it now
                info, ca = in_use.info, in_use.ca
        address = membership.as_member(config, info, cluster, me, ca, recorded=self._stored.member)
        self._stored.member = True
        ports = [int(address.rsplit(":", 1)[-1]), config.metrics_port]  # for `juju expose`: API, metrics
        if list(self._stored.ports) != ports:  # set_ports asks Juju what is open first: a round trip
            self.unit.set_ports(*ports)
            self._stored.ports = ports
        if self.unit.is_leader() and self.clients.relations:  # clients.py imported only where used
            from clients import serve_clients

            serve_clients(self.lxd, self.clients, info, config, ca)
        self.observability.as_member(config, info, address, self._peer_news)
        # the nrpe subordinate on this machine runs the checks; they change only with its relation or config
        if not self._steady and self.model.relations[NRPE_RELATION]:  # its relation's hooks, config-changed
            self._nagios_problem = publish_checks(self.lxd.socket)
        check_port(config, address)
        InstanceNetwork(self.model, self.lxd, membership.relation).as_member(config, self._steady)
        if maas_refused:
            raise Stop(ops.BlockedStatus(maas_refused))

    def _prepare_host(self, config: CharmConfig) -> None:
        """The model's proxy reaches snapd (where there is one) and production tuning this machine; a
        proxy variable that does not parse stops everything, unchanged."""
        try:
            self._proxy = model_proxy(os.environ)
        except ProxyError as e:
            raise Stop(ops.BlockedStatus(f"{e}: fix the model's proxy (juju model-config)")) from None
        self.redactor.remember(self._proxy.credentials())
        if options := config.proxy_options:
            self.redactor.remember(options.credentials())
        if self.snap.package().snapd:
            try:
                self._stored.snapd_proxy = apply_to_snapd(self.snap, self._proxy, self._stored.snapd_proxy)
            except SnapError as e:
                raise Stop(ops.BlockedStatus(f"snapd refused the model's proxy: {e}")) from None
        try:
            if not config.production_tuning:
                self.tuning.remove()
            elif held := self.tuning.apply():
                self._tuning_note = f"kept another charm's {', '.join(held)}"
        except TuningError as e:
            raise Stop(ops.BlockedStatus(str(e))) from None

    def _is_member(self) -> bool:
        relation = self.model.get_relation(PEER)
        if relation is None:
            return False
        me = UnitInfo.load(relation.data[self.unit])
        return Membership(self.model, self.lxd, relation, self.charm_dir).member_of(me)

    def _lxd_initialised(self) -> bool:
        return self.lxd.inventory().initialised

    def _cluster_members(self) -> set[str] | None:
        """The cluster's member names; None while LXD does not answer (mid-upgrade, an upgraded member
        serves nothing until every member runs the new version)."""
        try:
            return {m.server_name for m in self.lxd.members()}
        except LXDError:
            return None

    def _certificates_hook_or_related(self) -> bool:
        """The library has work only where a CA is related, or in that relation's own hooks (its
        relation-broken, when Juju no longer lists it); never in update-status, which it does not observe."""
        dispatch = os.environ.get("JUJU_DISPATCH_PATH", "")
        if dispatch == "hooks/update-status":
            return False
        return dispatch.startswith(f"hooks/{CERTIFICATES}-") or bool(self.model.relations[CERTIFICATES])

    def _tls_requirer(self) -> TLSCertificatesRequiresV4:
        from charmlibs.interfaces.tls_certificates import Mode, TLSCertificatesRequiresV4

        requirer = TLSCertificatesRequiresV4(
            self,
            CERTIFICATES,
            certificate_requests=self._certificate_requests,
            mode=Mode.APP,
            refresh_events=[self.on[PEER].relation_changed, self.on[PEER].relation_departed],
        )
        self.framework.observe(requirer.on.certificate_available, self._reconcile)
        return requirer

    def _cluster_certificate(self) -> ClusterCertificate:
        """The leader's view of the cluster certificate (Juju 2.9, no secrets: the library is never made)."""
        from cluster_certificate import ClusterCertificate

        if self._requirer is None and has_secrets(self.model) and self.model.get_relation(CERTIFICATES):
            self._requirer = self._tls_requirer()  # update-status with a CA related
        self.cluster_certificate = ClusterCertificate(self.model, self.lxd, self._requirer)
        return self.cluster_certificate

    def _certificate_requests(self, _capabilities: object) -> list[CertificateRequestAttributes]:
        """What the leader asks the CA for: one certificate with every unit's address (read per hook)."""
        from cluster_certificate import certificate_requests, requested_ips

        return certificate_requests(self.app.name, requested_ips(self.model.get_relation(PEER), self.unit))

    def _being_removed(self) -> bool:
        from goal_state import goal_state  # relation-broken hooks only

        return self.unit.name in goal_state().dying

    # -- scale-in and clients -------------------------------------------------------------
    def _on_peer_departed(self, event: ops.RelationDepartedEvent) -> None:
        if event.departing_unit == self.unit:
            self._leave()
        else:
            self._reconcile(event)

    def _on_storage_detaching(self, _: ops.StorageDetachingEvent) -> None:
        """The pool `local` lives on this storage: the member leaves (instances moved) before it goes,
        whichever of this and relation-departed Juju runs first."""
        self._leave()

    def _leave(self) -> None:
        from action_checks import ActionError
        from departure import LeaveError, advice, leave

        name = server_name_of(self.unit.name)
        relation = self.model.get_relation(PEER)
        if relation and UnitInfo.load(relation.data[self.unit]).left:
            return  # left in an earlier hook (LXD may be restarting as a standalone server now)
        try:
            leave(self.lxd, name, self.app.planned_units(), self.app.name)
            if relation:
                replace(UnitInfo.load(relation.data[self.unit]), left="yes", member="").dump(relation.data[self.unit])
        except (LXDError, ActionError, LeaveError) as e:
            # a failed leave fails the hook: Juju keeps the unit, its machine and instances, and
            # retries; swallowed into a status, Juju would remove the machine with them
            message = self.redactor.text(advice(name, self.unit.name, e))  # status, log and the failed hook
            logger.error(message)
            self.unit.status = ops.BlockedStatus(message)  # status-set is immediate: it outlives the failed hook
            raise DepartureFailed(message) from None

    def _on_client_gone(self, event: ops.RelationEvent) -> None:
        """The client relation is removed: its certificate leaves the trust store. Not when only this
        unit is leaving it (Juju breaks every relation of a unit it removes): the client stays trusted."""
        if self._being_removed():
            self._outcome = LEAVING
            return
        try:
            from clients import forget_client

            forget_client(self.lxd, event.relation)
        except Stop as stop:
            self._outcome = stop.status

    # -- actions --------------------------------------------------------------------------
    def _on_action(self, event: ops.ActionEvent) -> None:
        """Failures become event.fail with the reason (LXD's own words where LXD refused)."""
        from action_checks import ActionError
        from actions import ClusterActions

        action = event.handle.kind.removesuffix("_action").replace("_", "-")
        try:
            ClusterActions(self.model, self.lxd).handlers[action](event)
        except (ActionError, LXDError) as e:
            event.fail(str(e))

    # -- status ---------------------------------------------------------------------------
    def _on_collect_unit_status(self, event: ops.CollectStatusEvent) -> None:
        try:
            config = load_config(self.config, user_secrets=has_user_secrets(self.model))
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
        status = member_status(members, self.unit, self.app, self.model.get_relation(PEER))
        # the cluster serves; its logs do not reach Loki, Prometheus has no key, the MAAS key is plain
        # config, it serves the certificate it has, another charm holds a sysctl
        certificate = self.cluster_certificate
        notes = [self.observability.logging_problem, self.observability.metrics_problem]
        notes.append(certificate.note if certificate else "")
        if self.unit.is_leader():
            notes.append(config.maas_key_note)
        notes += [self._tuning_note, self._nagios_problem]  # Nagios gets no checks from this host
        if notes := [n for n in notes if n]:
            status = type(status)("; ".join([status.message, *notes]))
        if certificate and certificate.problem:  # nothing was changed: the cluster serves the certificate it had
            status = ops.BlockedStatus(certificate.problem)
        event.add_status(status)
