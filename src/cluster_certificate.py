"""The cluster certificate: signed by a CA over `tls-certificates`, or self-signed.

The leader asks the provider for one certificate naming every unit's address (IP SANs). The
library keeps the private key and the certificate in Juju secrets of the application (APP mode)
and renews the certificate before it expires. The leader checks what the provider sent, then
installs it on every member at once with LXD's PUT /1.0/cluster/certificate. The member the charm
reaches forwards the pair to every other member. Each member writes cluster.crt/cluster.key and
reloads its network endpoint: lxd-5.0.2 lxd/api_cluster.go:2107-2184, lxd-5.21.7
lxd/api_cluster.go:2278-2310 and 2313-2446.

When the relation goes, the charm makes a new self-signed pair and installs it the same way.
LXD makes no new one by itself: each member would make its own on restart, and they would differ.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlparse

import ops
from charmlibs.interfaces.tls_certificates import (
    CertificateRequestAttributes,
    ProviderCertificate,
    TLSCertificatesRequiresV4,
)
from charms.lxd_cluster.v0.lxd_cluster import fingerprint_of
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization

from metrics import generate_certificate
from models import ServerInfo, UnitInfo
from workload import LXD

logger = logging.getLogger(__name__)
CERTIFICATES = "certificates"  # the tls-certificates relation


def requested_ips(relation: ops.Relation | None, unit: ops.Unit) -> list[str]:
    """Every unit's address on the cluster binding, as its databag says. A unit that announced itself
    is named before it joins, so its certificate is ready when it is a member."""
    if relation is None:
        return []
    units = [unit, *relation.units]
    infos = [UnitInfo.load(relation.data[u]) for u in units]
    return sorted({_host(f"https://{i.address}") for i in infos if i.address and not i.left})


def certificate_requests(app_name: str, ips: list[str]) -> list[CertificateRequestAttributes]:
    """One certificate for the whole cluster, named after the application: clients check the IP SANs;
    members check each other by the first DNS SAN ("always use network certificate's DNS name",
    lxd-5.0.2 lxd/cluster/tls.go:46-50, lxd-5.21.7 lxd/cluster/tls.go:49-52), so a joiner whose address
    the certificate does not name yet still joins."""
    if not ips:
        return []
    return [CertificateRequestAttributes(common_name=app_name, sans_dns=[app_name], sans_ip=ips)]


def _pem(obj: object) -> str:
    """The library's PEM strings end without a newline; PEM files (and LXD's own) end with one."""
    return f"{str(obj).strip()}\n"


def _host(url: str) -> str:
    return urlparse(url).hostname or ""


def _sans(cert: x509.Certificate) -> tuple[set[str], list[str]]:
    """Its IP SANs, and its DNS SANs in order."""
    try:
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return set(), []
    return {str(ip) for ip in names.get_values_for_type(x509.IPAddress)}, names.get_values_for_type(x509.DNSName)


def signed_by(certificate: str, ca: str) -> bool:
    """Did the CA `ca` (PEM) sign `certificate` (PEM) directly?"""
    if not (certificate and ca):
        return False
    try:
        cert = x509.load_pem_x509_certificate(certificate.encode())
        cert.verify_directly_issued_by(x509.load_pem_x509_certificate(ca.encode()))
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def check_certificate(
    provided: ProviderCertificate, private_key: str, member_ips: Iterable[str], now: datetime.datetime
) -> str:
    """Why the provider's certificate cannot be the cluster's ("" when it can)."""
    cert = x509.load_pem_x509_certificate(str(provided.certificate).encode())
    key = serialization.load_pem_private_key(private_key.encode(), password=None)
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    if cert.public_key().public_bytes(serialization.Encoding.DER, spki) != key.public_key().public_bytes(
        serialization.Encoding.DER, spki
    ):
        return "its key is not the one the charm asked with"
    if now >= cert.not_valid_after_utc:
        return f"it expired on {cert.not_valid_after_utc:%Y-%m-%d %H:%M} UTC"
    if now < cert.not_valid_before_utc:
        return f"it is not valid before {cert.not_valid_before_utc:%Y-%m-%d %H:%M} UTC"
    ips, dns = _sans(cert)
    if missing := sorted(set(member_ips) - ips):
        return f"its SANs miss member address {', '.join(missing)}"
    if not dns:  # members would check each other's address, which a joiner's is not before renewal
        return "it has no DNS SAN (LXD members verify each other by the first one)"
    if not signed_by(str(provided.certificate), str(provided.ca)):
        return "the CA it came with did not sign it (intermediate CAs are not supported)"
    return ""


@dataclass(frozen=True)
class InUse:
    """The certificate the cluster serves after this hook, and the CA that signed it ("" self-signed)."""

    info: ServerInfo
    ca: str


class ClusterCertificate:
    """The leader's side: what the provider sent, checked, installed; or back to self-signed."""

    def __init__(self, model: ops.Model, lxd: LXD, requirer: TLSCertificatesRequiresV4 | None):
        """requirer is None where Juju has no secrets (2.9): the library keeps its key in them."""
        self.model, self.lxd, self.requirer = model, lxd, requirer
        self.problem = ""  # a Blocked reason: what the provider sent cannot be used (nothing was changed)
        self.note = ""  # what the cluster waits for (it serves meanwhile)

    def converge(self, info: ServerInfo, published_ca: str) -> InUse:
        """Install the provider's certificate when it is new and sound; without the relation, replace
        a CA-signed certificate with a self-signed one. Returns what the cluster serves now."""
        relation = self.model.get_relation(CERTIFICATES)
        member_ips = [_host(m.url) for m in self.lxd.members()]
        if relation is None:
            if not signed_by(info.certificate, published_ca):
                return InUse(info, "")
            # as LXD makes its own (EC P-384, ten years: lxd-5.0.2 shared/cert.go:310-348), with the DNS SAN
            # members check and the members' addresses for clients that check host names
            certificate, key = generate_certificate(self.model.app.name, dns=self.model.app.name, ips=member_ips)
            self.lxd.update_cluster_certificate(certificate, key)
            logger.info("the certificates relation is gone: installed a new self-signed cluster certificate")
            return InUse(self.lxd.info(), "")
        provider = relation.app.name if relation.app else "the provider"
        if self.requirer is None:  # Juju 2.9: no secrets for the library's key; the cluster keeps its own
            self.note = (
                f"{CERTIFICATES}: this Juju has no secrets (3.0.3 and later have them): "
                f"{provider}'s certificate is not used"
            )
            return InUse(info, published_ca if signed_by(info.certificate, published_ca) else "")
        provided = self._provided()
        private_key = self.requirer.private_key
        ca = next((_pem(p.ca) for p in provided if signed_by(info.certificate, str(p.ca))), "")
        ca = ca or (published_ca if signed_by(info.certificate, published_ca) else "")
        if not provided or private_key is None:
            self.note = f"waiting for the cluster certificate from {provider}"
            return InUse(info, ca)
        newest = provided[-1]
        if fingerprint_of(str(newest.certificate)) == fingerprint_of(info.certificate):
            return InUse(info, _pem(newest.ca))
        now = datetime.datetime.now(datetime.timezone.utc)
        if reason := check_certificate(newest, str(private_key), member_ips, now):
            self.problem = (
                f"the certificate from {provider} is not installed: {reason}: have {provider} issue a new one"
            )
            logger.error(self.problem)
            return InUse(info, ca)
        self.lxd.update_cluster_certificate(_pem(newest.certificate), _pem(private_key))
        logger.info(
            "installed the cluster certificate %s from %s", fingerprint_of(str(newest.certificate))[:12], provider
        )
        return InUse(self.lxd.info(), _pem(newest.ca))

    def _provided(self) -> list[ProviderCertificate]:
        """The provider's answers to the requests in the charm's databag now, whatever their key: the
        library leaves out one whose key does not match, the charm says why it does not install it."""
        asked = {str(r.certificate_signing_request) for r in self.requirer.get_csrs_from_requirer_relation_data()}
        provided = self.requirer.get_provider_certificates()
        return [p for p in provided if str(p.certificate_signing_request) in asked and not p.revoked]
