"""LXD's metrics endpoint: the metrics client certificate, core.metrics_address, the scrape job.

No ops import: observability.py decides what to publish, this module makes the certificate and
talks to LXD (through the LXD object's REST helper) and builds the prometheus_scrape job.
"""

from __future__ import annotations

import base64
import datetime
import ssl
from collections.abc import Iterable
from typing import Any

from charms.lxd_cluster.v0.lxd_cluster import fingerprint_of as certificate_fingerprint

from workload import LXD

METRICS_PATH = "/1.0/metrics"
CERTIFICATE_VALID_DAYS = 3650


def generate_certificate(common_name: str, dns: str = "", ips: Iterable[str] = ()) -> tuple[str, str]:
    """A self-signed EC P-384 client certificate and its key, both PEM (as `lxc` makes them). With a DNS
    name (and addresses) as SANs, a server certificate too: the cluster's own (cluster_certificate.py)."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key = ec.generate_private_key(ec.SECP384R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    usages = (
        [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH] if dns else [ExtendedKeyUsageOID.CLIENT_AUTH]
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=CERTIFICATE_VALID_DAYS))
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
    )
    if dns:
        names = [x509.DNSName(dns), *(x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips)]
        cert = cert.add_extension(x509.SubjectAlternativeName(names), critical=False)
    cert = cert.sign(key, hashes.SHA384())
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return cert.public_bytes(serialization.Encoding.PEM).decode(), key_pem


def server_name_of(pem: str) -> str:
    """The first DNS name of a server certificate: LXD's cluster certificate names the bootstrap
    host, not the members' addresses, so a scraper verifies it under this name."""
    from cryptography import x509

    cert = x509.load_pem_x509_certificate(pem.encode())
    try:
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return ""
    dns = names.get_values_for_type(x509.DNSName)
    return dns[0] if dns else ""


def metrics_address(https_address: str, port: int) -> str:
    """HOST:PORT of the metrics listener: the host of the member's https address (HOST:PORT,
    [V6]:PORT), its own port."""
    return f"{https_address.rpartition(':')[0]}:{port}"


def serve_metrics(lxd: LXD, address: str) -> list[str]:
    """Set this member's core.metrics_address (a member-local key); returns the keys changed. Only once
    it is a member: LXD 5.0's metrics listener keeps the certificate it was made with (on clustering,
    NetworkUpdateCert reconfigures the network and cluster listeners only, lxd-5.0.2
    lxd/endpoints/network.go:136-150; 5.21 adds metrics, lxd-5.21.7 network.go:136-147), so set in the
    bootstrap preseed or before a join it serves the server's own certificate, which no scraper trusts
    (seen on the lab's 5.0.2: tests/functional/test_observability.py)."""
    return lxd.update_config({"core.metrics_address": address})


def trust_metrics_certificate(lxd: LXD, name: str, pem: str) -> bool:
    """Trust pem as a `metrics` certificate (it can read /1.0/metrics and nothing else).
    Idempotent; returns whether it was added now."""
    fingerprint = certificate_fingerprint(pem)
    rows = lxd._api("get", "certificates", params={"recursion": 1})["metadata"] or []
    if any(r.get("fingerprint") == fingerprint for r in rows):
        return False
    der = base64.b64encode(ssl.PEM_cert_to_DER_cert(pem)).decode()
    lxd._api("post", "certificates", json={"type": "metrics", "name": name, "certificate": der})
    return True


def scrape_job(
    targets: dict[str, str],
    ca: str,
    client_certificate: str = "",
    client_key: str = "",
    job_name: str = "lxd",
) -> dict[str, Any]:
    """One prometheus_scrape job: every member's metrics address (labelled with its member name),
    https verified against the cluster certificate under its DNS name; the client certificate and
    key only when both are given (the scraper needs both or neither)."""
    tls: dict[str, Any] = {"ca_file": ca}
    if name := server_name_of(ca):
        tls["server_name"] = name
    if client_certificate and client_key:
        tls.update(cert_file=client_certificate, key_file=client_key)
    return {
        "job_name": job_name,
        "metrics_path": METRICS_PATH,
        "scheme": "https",
        "static_configs": [
            {"targets": [address], "labels": {"lxd_member": member}} for member, address in sorted(targets.items())
        ],
        "tls_config": tls,
    }


def untrust_metrics_certificate(lxd: LXD, name: str) -> bool:
    """Remove the `metrics` certificates named name from the trust store; returns whether one was."""
    rows = lxd._api("get", "certificates", params={"recursion": 1})["metadata"] or []
    ours = [r["fingerprint"] for r in rows if r.get("type") == "metrics" and r.get("name") == name]
    for fingerprint in ours:
        lxd._api("delete", f"certificates/{fingerprint}")
    return bool(ours)
