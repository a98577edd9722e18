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
