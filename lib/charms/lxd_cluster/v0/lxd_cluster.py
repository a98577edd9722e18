"""Become a trusted client of an LXD cluster run by the `lxd-cluster` charm.

The requirer publishes a client certificate (and, optionally, the LXD projects it is restricted
to); the provider's leader adds that certificate to the cluster's trust store and publishes the
cluster's endpoints (every member's https address), the cluster certificate and its SHA-256
fingerprint. When the relation goes, the certificate leaves the trust store.

Fetch it with `charmcraft fetch-lib charms.lxd_cluster.v0.lxd_cluster`, declare the endpoint
in metadata.yaml:

    requires:
      lxd-cluster:
        interface: lxd_cluster
        limit: 1

and use it like this (the example the library's tests run):

```python
import ops

from charms.lxd_cluster.v0.lxd_cluster import LXDClusterRequirer


class RunnerCharm(ops.CharmBase):
    def __init__(self, framework: ops.Framework):
        super().__init__(framework)
        self.lxd = LXDClusterRequirer(
            self,
            certificate=self.client_certificate(),  # PEM of this app's client certificate
            # projects=["ci"],  # optional: restrict it to these (existing) LXD projects
        )
        framework.observe(self.lxd.on.cluster_available, self._on_cluster_available)
        framework.observe(self.lxd.on.cluster_gone, self._on_cluster_gone)

    def client_certificate(self) -> str:
        return open("/etc/runner/lxd-client.crt").read()

    def _on_cluster_available(self, event):
        info = event.info  # ClusterEndpoints: endpoints, certificate, fingerprint
        # e.g. pylxd.Client(endpoint=info.endpoints[0], cert=(crt, key), verify=<file of info.certificate>)
        self.unit.status = ops.ActiveStatus(f"LXD cluster at {info.endpoints[0]}")

    def _on_cluster_gone(self, event):
        self.unit.status = ops.BlockedStatus("no LXD cluster: relate to lxd-cluster")
```

The provider side (`LXDClusterProvider`) lives in the lxd-cluster charm: it emits
`client_requested` / `client_gone` and the charm answers with `publish()`; it makes no LXD call.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import ssl
from collections.abc import Iterable

import ops

# The unique Charmhub library identifier, never change it
LIBID = "736d2a0ac0d14f83937523aeaad0fc71"
# Increment this major API version when introducing breaking changes
LIBAPI = 0
# Increment this PATCH version before using `charmcraft publish-lib` or reset to 0 if you are
# raising the major API version
LIBPATCH = 1

DEFAULT_RELATION = "lxd-cluster"


class DataError(ValueError):
    """A databag's content is unusable; the message says what is wrong."""


def fingerprint_of(pem: str) -> str:
    """SHA-256 of a PEM certificate's DER, lower-case hex (as LXD prints fingerprints)."""
    try:
        return hashlib.sha256(ssl.PEM_cert_to_DER_cert(pem.strip() + "\n")).hexdigest()
    except (ValueError, TypeError) as e:
        raise DataError(f"not a PEM certificate: {e}") from None


@dataclasses.dataclass(frozen=True)
class ClientRequest:
    """The requirer's application databag: who wants to be trusted, restricted to what."""

    certificate: str
    projects: tuple[str, ...] = ()

    @property
    def fingerprint(self) -> str:
        return fingerprint_of(self.certificate)

    def dump(self) -> dict[str, str]:
        data = {"certificate": self.certificate}
        if self.projects:
            data["projects"] = json.dumps(list(self.projects))
        return data

    @classmethod
    def load(cls, data: dict[str, str]) -> ClientRequest:
        if not data.get("certificate"):
            raise DataError("the requirer published no certificate")
        try:
            projects = json.loads(data.get("projects", "[]"))
        except ValueError:
            raise DataError("projects is not a JSON list") from None
        if not isinstance(projects, list) or not all(isinstance(p, str) and p for p in projects):
            raise DataError("projects must be a list of project names")
        request = cls(data["certificate"], tuple(projects))
        request.fingerprint  # noqa: B018 - validates the PEM
        return request


@dataclasses.dataclass(frozen=True)
class ClusterEndpoints:
    """The provider's application databag: where the cluster is and how to verify it."""

    endpoints: tuple[str, ...]  # https://HOST:PORT of every member
    certificate: str  # cluster certificate, PEM
    fingerprint: str  # its SHA-256
    client_fingerprint: str = ""  # the requirer certificate the provider trusted
    error: str = ""  # why the provider refused the request, if it did

    def dump(self) -> dict[str, str]:
        return {
            "endpoints": json.dumps(list(self.endpoints)),
            "certificate": self.certificate,
            "fingerprint": self.fingerprint,
            "client-fingerprint": self.client_fingerprint,
            "error": self.error,
        }

    @classmethod
    def load(cls, data: dict[str, str]) -> ClusterEndpoints:
        if data.get("error"):
            return cls((), "", "", "", data["error"])
        missing = [k for k in ("endpoints", "certificate", "fingerprint") if not data.get(k)]
        if missing:
            raise DataError(f"provider data is missing {', '.join(missing)}")
        try:
            endpoints = tuple(json.loads(data["endpoints"]))
        except ValueError:
            raise DataError("endpoints is not a JSON list") from None
        if fingerprint_of(data["certificate"]) != data["fingerprint"]:
            raise DataError("the cluster certificate does not match its fingerprint")
        return cls(endpoints, data["certificate"], data["fingerprint"], data.get("client-fingerprint", ""))


# -- requirer ----------------------------------------------------------------------------------
class ClusterAvailableEvent(ops.EventBase):
    def __init__(self, handle: ops.Handle, info: ClusterEndpoints):
        super().__init__(handle)
        self.info = info

    def snapshot(self) -> dict:
        return {"info": json.dumps(self.info.dump())}

    def restore(self, snapshot: dict) -> None:
        self.info = ClusterEndpoints.load(json.loads(snapshot["info"]))


class ClusterGoneEvent(ops.EventBase):
    pass


class RequirerEvents(ops.ObjectEvents):
    cluster_available = ops.EventSource(ClusterAvailableEvent)
    cluster_gone = ops.EventSource(ClusterGoneEvent)


class LXDClusterRequirer(ops.Object):
    """Publishes this application's client certificate; says when the cluster trusts it."""

    on = RequirerEvents()  # type: ignore[reportAssignmentType]

    def __init__(
        self,
        charm: ops.CharmBase,
        certificate: str,
        projects: Iterable[str] = (),
        relation_name: str = DEFAULT_RELATION,
    ):
        super().__init__(charm, relation_name)
        self.charm = charm
        self.relation_name = relation_name
        self.request = ClientRequest(certificate, tuple(projects))
        events = charm.on[relation_name]
        for event in (events.relation_joined, events.relation_changed, charm.on.leader_elected):
            self.framework.observe(event, self._on_changed)
        self.framework.observe(events.relation_broken, self._on_broken)

    @property
    def info(self) -> ClusterEndpoints | None:
        """The cluster's endpoints once our certificate is trusted, else None."""
        relation = self.charm.model.get_relation(self.relation_name)
        if relation is None or relation.app is None:
            return None
        try:
            info = ClusterEndpoints.load(dict(relation.data[relation.app]))
        except DataError:
            return None
        if info.error or info.client_fingerprint != self.request.fingerprint:
            return None
        return info

    def _on_changed(self, event: ops.EventBase) -> None:
        relation = self.charm.model.get_relation(self.relation_name)
        if relation is None:
            return
        if self.charm.unit.is_leader():
            relation.data[self.charm.app].update(self.request.dump())
        info = self.info
        if info is not None:
            self.on.cluster_available.emit(info)

    def _on_broken(self, event: ops.RelationBrokenEvent) -> None:
        self.on.cluster_gone.emit()


# -- provider ----------------------------------------------------------------------------------
class ClientRequestedEvent(ops.RelationEvent):
    """A requirer asks to be trusted (or changed what it asks)."""


class ClientGoneEvent(ops.RelationEvent):
    pass


class ProviderEvents(ops.ObjectEvents):
    client_requested = ops.EventSource(ClientRequestedEvent)
    client_gone = ops.EventSource(ClientGoneEvent)


class LXDClusterProvider(ops.Object):
    """The cluster side: relays requests to the charm, publishes what the charm answers."""

    on = ProviderEvents()  # type: ignore[reportAssignmentType]

    def __init__(self, charm: ops.CharmBase, relation_name: str = DEFAULT_RELATION):
        super().__init__(charm, relation_name)
        self.charm = charm
        self.relation_name = relation_name
        events = charm.on[relation_name]
        self.framework.observe(events.relation_changed, self._on_changed)
        self.framework.observe(events.relation_broken, self._on_broken)

    @property
    def relations(self) -> list[ops.Relation]:
        return list(self.charm.model.relations[self.relation_name])

    def _on_changed(self, event: ops.RelationChangedEvent) -> None:
        if self.charm.unit.is_leader():
            self.on.client_requested.emit(event.relation, app=event.app, unit=event.unit)

    def _on_broken(self, event: ops.RelationBrokenEvent) -> None:
        if self.charm.unit.is_leader():
            self.on.client_gone.emit(event.relation, app=event.app, unit=event.unit)

    @staticmethod
    def request_of(relation: ops.Relation) -> ClientRequest:
        """The requirer's validated request; DataError says what is wrong with it."""
        if relation.app is None:
            raise DataError("the requirer application is not known yet")
        return ClientRequest.load(dict(relation.data[relation.app]))

    def publish(self, relation: ops.Relation, info: ClusterEndpoints) -> None:
        relation.data[self.charm.app].update(info.dump())
