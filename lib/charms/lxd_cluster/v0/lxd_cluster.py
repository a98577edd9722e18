"""Become a trusted client of an LXD cluster run by the `lxd-cluster` charm.

The requirer publishes a client certificate and, optionally, the LXD projects it needs; the
provider's leader checks the certificate (an X.509 certificate, valid now, usable for TLS client
authentication), adds it to the cluster's trust store **restricted to those projects**, and
publishes the cluster's endpoints (every member's https address), the cluster certificate, its
SHA-256 fingerprint, the CA that signed it (when the cluster's certificate comes from a CA) and the
projects the client may use. When the relation goes, the certificate
leaves the trust store.

A requirer that names no projects gets what the cluster's operator allows with the provider's
`client-access` option: by default a project named after the requirer application (the provider
creates it, with LXD's `restricted=true`), never full access unless the operator chose `admin`.
`ClusterEndpoints.projects` says what was granted (empty: unrestricted).

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
            # projects=["ci"],  # optional: these (existing) LXD projects; default: one named after this app
        )
        framework.observe(self.lxd.on.cluster_available, self._on_cluster_available)
        framework.observe(self.lxd.on.cluster_gone, self._on_cluster_gone)

    def client_certificate(self) -> str:
        return open("/etc/runner/lxd-client.crt").read()

    def _on_cluster_available(self, event):
        info = event.info  # ClusterEndpoints: endpoints, certificate, fingerprint, ca, projects
        # verify the server against info.trust_anchor: the CA when there is one, else the certificate, e.g.
        # requests.get(info.endpoints[0] + "/1.0", cert=(crt, key), verify=<file of info.trust_anchor>);
        # pylxd pins a fingerprint instead: pylxd.Client(..., verify=<file of info.certificate>)
        self.unit.status = ops.ActiveStatus(f"LXD cluster at {info.endpoints[0]}")

    def _on_cluster_gone(self, event):
        self.unit.status = ops.BlockedStatus("no LXD cluster: relate to lxd-cluster")
```

The provider side (`LXDClusterProvider`) lives in the lxd-cluster charm: it emits
`client_requested` / `client_gone` and the charm answers with `publish()`; it makes no LXD call.

Databags. Requirer application: `certificate` (PEM, one certificate, no private key), `projects`
(JSON list, optional). Provider application: `endpoints` (JSON list), `certificate`, `fingerprint`,
`client-fingerprint` (the requirer certificate it trusted), `projects` (JSON list the trust is
restricted to, empty or absent: unrestricted; since LIBPATCH 2), `ca` (PEM of the CA that signed the
cluster certificate, absent when it is self-signed; since LIBPATCH 3), `error` (why it refused).
`certificate` and `fingerprint` are always those of the certificate the cluster serves now: a client
of an older LIBPATCH that pins the fingerprint keeps working when the certificate changes, once it
reads the new one. The provider publishes a new certificate in the same hook that installs it.

Certificates are parsed as X.509 with `cryptography` (PYDEPS); the fingerprint is the SHA-256 of
the DER, as LXD prints it. `check_client_certificate()` is the provider's check before it trusts.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
from collections.abc import Iterable
from typing import TYPE_CHECKING

import ops

if TYPE_CHECKING:  # cryptography is imported where a certificate is parsed: most hooks parse none
    from cryptography import x509

# The unique Charmhub library identifier, never change it
LIBID = "736d2a0ac0d14f83937523aeaad0fc71"
# Increment this major API version when introducing breaking changes
LIBAPI = 0
# Increment this PATCH version before using `charmcraft publish-lib` or reset to 0 if you are
# raising the major API version
LIBPATCH = 3

PYDEPS = ["cryptography"]

DEFAULT_RELATION = "lxd-cluster"


class DataError(ValueError):
    """A databag's content is unusable; the message says what is wrong."""


def load_certificate(pem: str) -> x509.Certificate:
    """Exactly one X.509 certificate in PEM, and no private key; DataError says what is wrong."""
    if not isinstance(pem, str) or "-----BEGIN CERTIFICATE-----" not in pem:
        raise DataError("not a PEM certificate: no BEGIN CERTIFICATE block")
    if "PRIVATE KEY" in pem:
        raise DataError("the PEM holds a private key: send only the certificate")
    if pem.count("-----BEGIN CERTIFICATE-----") != 1:
        raise DataError("not a PEM certificate: give exactly one certificate")
    from cryptography import x509

    try:
        return x509.load_pem_x509_certificate(pem.strip().encode() + b"\n")
    except (ValueError, TypeError) as e:
        raise DataError(f"not a PEM certificate: not an X.509 certificate ({e})") from None


def fingerprint_of(pem: str) -> str:
    """SHA-256 of an X.509 certificate's DER, lower-case hex (as LXD prints fingerprints)."""
    from cryptography.hazmat.primitives import hashes

    return load_certificate(pem).fingerprint(hashes.SHA256()).hex()


def check_client_certificate(pem: str, now: datetime.datetime | None = None) -> str:
    """A certificate LXD can trust as a client: valid now, and usable for TLS client authentication.

    Returns its fingerprint; DataError gives the reason it is refused.
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import ExtendedKeyUsageOID

    cert = load_certificate(pem)
    now = now or datetime.datetime.now(datetime.timezone.utc)
    if now > cert.not_valid_after_utc:
        raise DataError(f"the certificate expired on {cert.not_valid_after_utc:%Y-%m-%d %H:%M} UTC: issue a new one")
    if now < cert.not_valid_before_utc:
        raise DataError(f"the certificate is not valid before {cert.not_valid_before_utc:%Y-%m-%d %H:%M} UTC")
    try:
        usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
        if not usage.digital_signature:
            raise DataError("its key usage lacks digitalSignature: it cannot authenticate a TLS client")
    except x509.ExtensionNotFound:
        pass
    try:
        extended = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        if not {ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE} & set(extended):
            raise DataError("its extended key usage does not include clientAuth: it cannot authenticate a TLS client")
    except x509.ExtensionNotFound:
        pass
    except ValueError as e:  # a malformed extension
        raise DataError(f"the certificate has a malformed extension: {e}") from None
    return cert.fingerprint(hashes.SHA256()).hex()


def _projects(data: dict[str, str]) -> tuple[str, ...]:
    try:
        projects = json.loads(data.get("projects") or "[]")
    except ValueError:
        raise DataError("projects is not a JSON list") from None
    if not isinstance(projects, list) or not all(isinstance(p, str) and p for p in projects):
        raise DataError("projects must be a list of project names")
    return tuple(projects)


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
        """The request as the provider reads it: the certificate checked with check_client_certificate."""
        if not data.get("certificate"):
            raise DataError("the requirer published no certificate")
        request = cls(data["certificate"], _projects(data))
        check_client_certificate(request.certificate)
        return request


@dataclasses.dataclass(frozen=True)
class ClusterEndpoints:
    """The provider's application databag: where the cluster is and how to verify it."""

    endpoints: tuple[str, ...]  # https://HOST:PORT of every member
    certificate: str  # cluster certificate, PEM
    fingerprint: str  # its SHA-256
    client_fingerprint: str = ""  # the requirer certificate the provider trusted
    error: str = ""  # why the provider refused the request, if it did
    projects: tuple[str, ...] = ()  # the projects the client is restricted to; empty: unrestricted
    ca: str = ""  # PEM of the CA that signed the cluster certificate; empty: it is self-signed

    @property
    def trust_anchor(self) -> str:
        """The PEM a client verifies the cluster against: the CA when there is one, else the certificate."""
        return self.ca or self.certificate

    def dump(self) -> dict[str, str]:
        return {
            "endpoints": json.dumps(list(self.endpoints)),
            "certificate": self.certificate,
            "fingerprint": self.fingerprint,
            "client-fingerprint": self.client_fingerprint,
            "error": self.error,
            "projects": json.dumps(list(self.projects)) if self.projects else "",
            "ca": self.ca,
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
        client = data.get("client-fingerprint", "")
        ca = data.get("ca", "")
        if ca:
            load_certificate(ca)
        return cls(endpoints, data["certificate"], data["fingerprint"], client, projects=_projects(data), ca=ca)


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
