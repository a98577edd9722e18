"""Real X.509 certificates for tests: made by openssl or cryptography, never a fixed string."""

from __future__ import annotations

import datetime
import subprocess
from pathlib import Path


def self_signed_pem(directory: Path, cn: str) -> str:
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-subj",
            f"/CN={cn}",
            "-days",
            "1",
            "-keyout",
            str(directory / "key.pem"),
            "-out",
            str(directory / "cert.pem"),
        ],
        check=True,
        capture_output=True,
    )
    return (directory / "cert.pem").read_text()


def x509_pem(
    cn: str = "client",
    days: tuple[float, float] = (-1, 1),
    key_usage: dict[str, bool] | None = None,
    extended: tuple[str, ...] | None = None,
    dns: tuple[str, ...] = (),
) -> str:
    """A self-signed certificate valid from days[0] to days[1] around now, with the usages given;
    with dns, subject alternative names as LXD gives its own: those DNS names and 127.0.0.1."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now + datetime.timedelta(days=days[0]))
        .not_valid_after(now + datetime.timedelta(days=days[1]))
    )
    if key_usage is not None:
        flags = dict.fromkeys(
            (
                "digital_signature",
                "content_commitment",
                "key_encipherment",
                "data_encipherment",
                "key_agreement",
                "key_cert_sign",
                "crl_sign",
                "encipher_only",
                "decipher_only",
            ),
            False,
        )
        builder = builder.add_extension(x509.KeyUsage(**{**flags, **key_usage}), critical=True)
    if extended is not None:
        oids = [getattr(ExtendedKeyUsageOID, e) for e in extended]
        builder = builder.add_extension(x509.ExtendedKeyUsage(oids), critical=False)
    if dns:
        sans = [x509.DNSName(d) for d in dns] + [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    cert = builder.sign(key, hashes.SHA256())
    return cert.public_bytes(serialization.Encoding.PEM).decode()


class TestCA:
    """A certificate authority playing a `tls-certificates` provider: it answers the requirer's CSRs in
    the provider's application databag as the interface documents it (charmlibs tls_certificates
    `_ProviderApplicationData`: `certificates`, a JSON list of {ca, certificate_signing_request,
    certificate, chain})."""

    __test__ = False  # not a pytest class

    def __init__(self, cn: str = "Test CA"):
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        self.key = ec.generate_private_key(ec.SECP256R1())
        self.name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
        now = datetime.datetime.now(datetime.timezone.utc)
        cert = (
            x509.CertificateBuilder()
            .subject_name(self.name)
            .issuer_name(self.name)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=365))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True)
            .sign(self.key, hashes.SHA256())
        )
        self.pem = cert.public_bytes(serialization.Encoding.PEM).decode()

    def sign(
        self,
        csr_pem: str,
        days: tuple[float, float] = (-1, 30),
        ips: tuple[str, ...] | None = None,
        dns: tuple[str, ...] | None = None,
        other_key: bool = False,
    ) -> str:
        """A certificate for the CSR: its subject and SANs (or `ips`, `dns`), valid days[0]..days[1]
        around now; other_key: for a key that is not the CSR's (a provider's mistake)."""
        import ipaddress

        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec

        csr = x509.load_pem_x509_csr(csr_pem.encode())
        san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        if ips is None:
            ips = tuple(str(ip) for ip in san.get_values_for_type(x509.IPAddress))
        if dns is None:
            dns = tuple(san.get_values_for_type(x509.DNSName))
        public_key = ec.generate_private_key(ec.SECP256R1()).public_key() if other_key else csr.public_key()
        now = datetime.datetime.now(datetime.timezone.utc)
        cert = (
            x509.CertificateBuilder()
            .subject_name(csr.subject)
            .issuer_name(self.name)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now + datetime.timedelta(days=days[0]))
            .not_valid_after(now + datetime.timedelta(days=days[1]))
            .add_extension(
                x509.SubjectAlternativeName(
                    [*(x509.DNSName(d) for d in dns), *(x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips)]
                ),
                critical=False,
            )
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(self.key, hashes.SHA256())
        )
        return cert.public_bytes(serialization.Encoding.PEM).decode()

    @staticmethod
    def csrs(requirer_app_data: dict[str, str]) -> list[str]:
        """The CSRs in the requirer's application databag (`certificate_signing_requests`)."""
        import json

        rows = json.loads(requirer_app_data.get("certificate_signing_requests") or "[]")
        return [row["certificate_signing_request"] for row in rows]

    def answer(self, *issued: tuple[str, str]) -> dict[str, str]:
        """The provider's application databag for (csr, certificate) pairs."""
        import json

        rows = [
            {"ca": self.pem, "certificate_signing_request": csr, "certificate": cert, "chain": [cert, self.pem]}
            for csr, cert in issued
        ]
        return {"certificates": json.dumps(rows)}
