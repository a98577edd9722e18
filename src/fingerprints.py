"""Fingerprints: the SHA-256 LXD prints for a certificate, and the one a join token carries. Pure."""

from __future__ import annotations

import base64
import hashlib
import json
import ssl


def certificate_fingerprint(pem: str) -> str:
    """SHA-256 of the certificate's DER, lower-case hex, as LXD prints fingerprints."""
    return hashlib.sha256(ssl.PEM_cert_to_DER_cert(pem)).hexdigest()


def token_fingerprint(token: str) -> str:
    """The cluster certificate fingerprint a join token carries ("" for a malformed token: it matches none)."""
    try:
        return str(json.loads(base64.b64decode(token))["fingerprint"])
    except (ValueError, KeyError, TypeError):
        return ""
