"""metrics.py: the metrics client certificate, the scrape job, the metrics address, LXD's trust store."""

from __future__ import annotations

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from cryptography.x509.oid import ExtendedKeyUsageOID
from fake_lxd import FakeLXD

from metrics import (
    generate_certificate,
    metrics_address,
    scrape_job,
    server_name_of,
    trust_metrics_certificate,
    untrust_metrics_certificate,
)
from tests.certs import x509_pem


def server_pem(*dns: str) -> str:
    """A certificate as LXD makes its cluster certificate: CN lxd, DNS name of the host, loopback IP."""
    return x509_pem("lxd", dns=dns)


def test_the_client_certificate_is_a_client_certificate_whose_key_matches():
    cert_pem, key_pem = generate_certificate("juju-lxd-cluster-metrics")
    cert = x509.load_pem_x509_certificate(cert_pem.encode())
    key = load_pem_private_key(key_pem.encode(), None)
    assert cert.public_key().public_numbers() == key.public_key().public_numbers()
    assert cert.subject.rfc4514_string() == "CN=juju-lxd-cluster-metrics"
    usage = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    assert "PRIVATE KEY" not in cert_pem and "PRIVATE KEY" in key_pem


def test_two_certificates_differ():
    assert generate_certificate("a")[1] != generate_certificate("a")[1]


@pytest.mark.parametrize(
    "dns, expected", [(("vm", "other"), "vm"), ((), "")], ids=["first DNS name", "no SAN: no server_name"]
)
def test_server_name_is_the_first_dns_name_of_the_cluster_certificate(dns, expected):
    assert server_name_of(server_pem(*dns)) == expected


@pytest.mark.parametrize(
    "https, port, expected",
    [("10.0.0.1:8443", 8444, "10.0.0.1:8444"), ("[fd00::1]:8443", 9100, "[fd00::1]:9100")],
)
def test_the_metrics_address_is_on_the_host_of_the_https_address(https, port, expected):
    assert metrics_address(https, port) == expected


def test_the_scrape_job_lists_every_member_over_https_verified_against_the_cluster_certificate():
    ca = server_pem("vm")
    job = scrape_job({"m1": "10.0.0.2:8444", "m0": "10.0.0.1:8444"}, ca)
    assert job["scheme"] == "https" and job["metrics_path"] == "/1.0/metrics"
    assert job["static_configs"] == [
        {"targets": ["10.0.0.1:8444"], "labels": {"lxd_member": "m0"}},
        {"targets": ["10.0.0.2:8444"], "labels": {"lxd_member": "m1"}},
    ]
    assert job["tls_config"] == {"ca_file": ca, "server_name": "vm"}


@pytest.mark.parametrize("cert, key", [("C", ""), ("", "K")])
def test_the_scrape_job_carries_a_client_certificate_only_with_its_key(cert, key):
    """prometheus-k8s refuses a tls_config with one of cert_file/key_file (ConfigError)."""
    tls = scrape_job({"m0": "a:1"}, server_pem(), cert, key)["tls_config"]
    assert "cert_file" not in tls and "key_file" not in tls


def test_trusting_the_metrics_certificate_is_idempotent_and_undone(cluster_pem):
    lxd = FakeLXD(cluster_pem)
    cert, _ = generate_certificate("m")
    assert trust_metrics_certificate(lxd, "juju-lxd-cluster-metrics", cert) is True
    assert trust_metrics_certificate(lxd, "juju-lxd-cluster-metrics", cert) is False
    assert [(r["name"], r["type"]) for r in lxd.metrics_certs.values()] == [("juju-lxd-cluster-metrics", "metrics")]
    lxd.trusted["juju-lxd-cluster-metrics-client"] = ("ab" * 32, ())  # a client of the same name prefix
    assert untrust_metrics_certificate(lxd, "juju-lxd-cluster-metrics") is True
    assert lxd.metrics_certs == {} and untrust_metrics_certificate(lxd, "juju-lxd-cluster-metrics") is False
    assert "juju-lxd-cluster-metrics-client" in lxd.trusted
