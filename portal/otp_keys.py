"""Second factors at rest: authenticator keys sealed, backup codes kept as keyed digests, both
with OTP_ENCRYPTION_KEY, which lives outside the database (its earlier values, OTP_PREVIOUS_KEYS,
still open what they sealed). Whoever reads the database, a replica or a backup gets neither a
working authenticator nor a usable backup code.

A sealed key is `s1:<key id>:<nonce, AES-256-GCM ciphertext and tag, base64url>`: 74 characters,
within django-otp's 80-character key column. A backup code's digest is HMAC-SHA256 over the device
and the code, 16 hex characters (64 bits, unguessable without the key), within its 16-character
token column.
"""

import base64
import binascii
import hashlib
import hmac
import os
import re

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings

SEALED = re.compile(r"^s1:([0-9a-f]{6}):([A-Za-z0-9_-]{64})$")
DIGEST = re.compile(r"^[0-9a-f]{16}$")
_AAD = b"greenlight totp key"


class UnsealError(Exception):
    """A sealed key that no configured OTP key opens (the key was rotated out, or the value edited)."""


def _secrets() -> list[str]:
    return [settings.OTP_ENCRYPTION_KEY, *settings.OTP_PREVIOUS_KEYS]


def _derived(secret: str, purpose: str) -> bytes:
    return hashlib.sha256(f"greenlight|{purpose}|{secret}".encode()).digest()


def _key_id(secret: str) -> str:
    return hashlib.sha256(_derived(secret, "id")).hexdigest()[:6]


def is_sealed(stored: str) -> bool:
    return bool(SEALED.match(stored or ""))


def sealed_with_current_key(stored: str) -> bool:
    match = SEALED.match(stored or "")
    return match is not None and match.group(1) == _key_id(settings.OTP_ENCRYPTION_KEY)


def reseal(stored: str) -> str:
    """The key sealed with the current OTP key (an unsealed one, or one sealed with an older key)."""
    return seal(unseal(stored).hex())


def seal(hex_key: str) -> str:
    """An authenticator key (django-otp's hex) sealed with the current OTP key."""
    secret = settings.OTP_ENCRYPTION_KEY
    nonce = os.urandom(12)
    sealed = AESGCM(_derived(secret, "totp")).encrypt(nonce, binascii.unhexlify(hex_key), _AAD)
    return f"s1:{_key_id(secret)}:{base64.urlsafe_b64encode(nonce + sealed).decode()}"


def unseal(stored: str) -> bytes:
    """The key's bytes: opened with the OTP key that sealed it, or an unsealed hex key as it is."""
    match = SEALED.match(stored or "")
    if match is None:
        return binascii.unhexlify(stored.encode())
    key_id, payload = match.groups()
    blob = base64.urlsafe_b64decode(payload)
    for secret in _secrets():
        if _key_id(secret) == key_id:
            try:
                return AESGCM(_derived(secret, "totp")).decrypt(blob[:12], blob[12:], _AAD)
            except InvalidTag:
                break
    raise UnsealError("An authenticator key is sealed with an OTP key that is no longer configured.")


def backup_digest(device_id: int, code: str, secret: str | None = None) -> str:
    """What is stored for a backup code of this device (with the current OTP key by default)."""
    key = _derived(secret or settings.OTP_ENCRYPTION_KEY, "backup")
    return hmac.new(key, f"{device_id}:{code.strip().lower()}".encode(), hashlib.sha256).hexdigest()[:16]


def backup_digests(device_id: int, code: str) -> list[str]:
    """The digests a typed code may be stored under: one per configured OTP key."""
    return [backup_digest(device_id, code, secret) for secret in _secrets()]
