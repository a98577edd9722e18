"""Sealing a credential to one unit's key: what carries join tokens on Juju 2.9, which has no secrets.

Each unit keeps an X25519 private key on its own machine and publishes the public key. The sender
makes an ephemeral X25519 key per credential, derives a key from the shared secret with HKDF-SHA256
and encrypts with ChaCha20-Poly1305; the recipient's unit name, its public key and the ephemeral
public key are the associated data, so a sealed value opens only for that unit, with that key, and
any changed byte is refused. What a databag reader (a peer, the controller, a backup) sees is
`sealed:` + base64 of: version byte, recipient public key, ephemeral public key, nonce, ciphertext.
Pure: no I/O, no ops.
"""

from __future__ import annotations

import base64
import binascii
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

PREFIX = "sealed:"
VERSION = b"\x01"
_KEY, _NONCE = 32, 12
_INFO = b"lxd-cluster sealed credential v1"
_RAW = serialization.Encoding.Raw, serialization.PublicFormat.Raw


class SealError(ValueError):
    """A sealed value that does not open with this key for this unit (tampered, or sealed to another)."""


def new_private_key() -> bytes:
    """A fresh X25519 private key, raw (32 bytes)."""
    return X25519PrivateKey.generate().private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )


def public_key(private: bytes) -> str:
    """The public key of a raw private key, base64: what a unit publishes."""
    return base64.b64encode(X25519PrivateKey.from_private_bytes(private).public_key().public_bytes(*_RAW)).decode()


def is_sealed(value: str) -> bool:
    return value.startswith(PREFIX)


def seal(plaintext: str, recipient_public: str, recipient: str) -> str:
    """plaintext sealed so that only `recipient` (a unit name), holding the key of recipient_public, opens it."""
    to = _public_bytes(recipient_public)
    ephemeral = X25519PrivateKey.generate()
    epk = ephemeral.public_key().public_bytes(*_RAW)
    key = _derive(ephemeral.exchange(X25519PublicKey.from_public_bytes(to)), to, epk)
    nonce = os.urandom(_NONCE)
    ciphertext = ChaCha20Poly1305(key).encrypt(nonce, plaintext.encode(), _aad(recipient, to, epk))
    return PREFIX + base64.b64encode(VERSION + to + epk + nonce + ciphertext).decode()


def sealed_to(sealed: str) -> str:
    """The public key (base64) a sealed value names as its recipient's ("" when it is malformed)."""
    blob = _decode(sealed)
    return base64.b64encode(blob[1 : 1 + _KEY]).decode() if blob else ""


def unseal(sealed: str, private: bytes, recipient: str) -> str:
    """The plaintext, or SealError when it was sealed to another key or unit, or was changed."""
    blob = _decode(sealed)
    if not blob:
        raise SealError("not a sealed value of this version")
    to, epk = blob[1 : 1 + _KEY], blob[1 + _KEY : 1 + 2 * _KEY]
    nonce, ciphertext = blob[1 + 2 * _KEY : 1 + 2 * _KEY + _NONCE], blob[1 + 2 * _KEY + _NONCE :]
    mine = X25519PrivateKey.from_private_bytes(private)
    if mine.public_key().public_bytes(*_RAW) != to:
        raise SealError("sealed to another key")
    key = _derive(mine.exchange(X25519PublicKey.from_public_bytes(epk)), to, epk)
    try:
        return ChaCha20Poly1305(key).decrypt(nonce, ciphertext, _aad(recipient, to, epk)).decode()
    except (InvalidTag, UnicodeDecodeError):
        raise SealError("does not open: changed, or sealed to another unit") from None


def _derive(shared: bytes, to: bytes, epk: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=_KEY, salt=epk + to, info=_INFO).derive(shared)


def _aad(recipient: str, to: bytes, epk: bytes) -> bytes:
    return b"\x00".join((_INFO, recipient.encode(), to, epk))


def _public_bytes(encoded: str) -> bytes:
    try:
        raw = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != _KEY:
        raise SealError("the recipient's public key is malformed")
    return raw


def _decode(sealed: str) -> bytes:
    """The envelope's bytes, b"" when it is not one (a tag of 16 bytes at least follows the header)."""
    if not is_sealed(sealed):
        return b""
    try:
        blob = base64.b64decode(sealed[len(PREFIX) :], validate=True)
    except (binascii.Error, ValueError):
        return b""
    return blob if blob[:1] == VERSION and len(blob) >= 1 + 2 * _KEY + _NONCE + 16 else b""
