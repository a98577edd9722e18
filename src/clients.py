"""The `lxd-cluster` client relation: trust each related client for its projects only, publish where the cluster is."""

from __future__ import annotations

import logging

import ops
from charms.lxd_cluster.v0.lxd_cluster import ClusterEndpoints, DataError, LXDClusterProvider, fingerprint_of

from access import AccessError, ensure_projects, grant_for
from config import CharmConfig
from models import ServerInfo
from status import Stop
from workload import LXD, LXDError

logger = logging.getLogger(__name__)


def client_name(relation: ops.Relation) -> str:
    """The trust-store name of a related client: tied to the relation."""
    return f"juju-{relation.app.name if relation.app else 'client'}-{relation.id}"


def serve_clients(lxd: LXD, provider: LXDClusterProvider, info: ServerInfo, config: CharmConfig, ca: str) -> None:
    """Trust each related client's certificate for the projects it may use; publish where the cluster is,
    the certificate it serves and the CA that signed it (ca, "" when self-signed).

    A client naming no projects gets what client-access allows (by default its own project); one
    client's bad request is answered in its databag and never blocks the cluster.
    """
    relations = provider.relations
    if not relations:
        return
    fingerprint = fingerprint_of(info.certificate)
    endpoints = tuple(m.url for m in lxd.members())
    trusted = lxd.trusted_clients()
    for relation in relations:
        name = client_name(relation)
        if relation.app is None or not relation.data[relation.app].get("certificate"):
            continue  # nothing asked yet
        try:
            request = provider.request_of(relation)
            grant = grant_for(request.projects, relation.app.name, config.client_access)
            current = trusted.get(name)
            if current is None or (current.fingerprint, current.grant) != (request.fingerprint, grant):
                ensure_projects(lxd, grant or (), create="" if request.projects else relation.app.name)
                if current is not None:
                    lxd.untrust_client(current.fingerprint)
                lxd.trust_client(name, request.certificate, grant)
                scope = f"projects {', '.join(grant)}" if grant is not None else "every project (client-access=admin)"
                logger.info("trusted client certificate %s (%s) for %s", name, request.fingerprint[:12], scope)
        except (DataError, AccessError, LXDError) as e:
            logger.warning("not trusting %s: %s", name, e)
            if name in trusted and not isinstance(e, LXDError):  # it asks for what it may not have: no access
                lxd.untrust_client(trusted[name].fingerprint)
            reason = f"LXD: {e}" if isinstance(e, LXDError) else str(e)
            provider.publish(relation, ClusterEndpoints((), "", "", error=reason))
            continue
        answer = ClusterEndpoints(
            endpoints, info.certificate, fingerprint, request.fingerprint, projects=grant or (), ca=ca
        )
        provider.publish(relation, answer)


def forget_client(lxd: LXD, relation: ops.Relation) -> None:
    """A client relation is gone: remove its certificate from the trust store."""
    name = client_name(relation)
    try:
        client = lxd.trusted_clients().get(name)
        if client:
            lxd.untrust_client(client.fingerprint)
            logger.info("removed client certificate %s", name)
    except LXDError as e:
        raise Stop(ops.BlockedStatus(f"could not remove client certificate {name}: {e}")) from None
