"""The one check of an HMAC-SHA256 signature that inbound webhooks carry (GitHub's
`X-Hub-Signature-256: sha256=<hex>`, PagerDuty's `X-PagerDuty-Signature: v1=<hex>[, v1=<hex>]`,
several while a secret is rotated), compared in constant time; and the signature the portal's own
outbound webhook (the webhook deployer) carries, over its time and body."""

import hashlib
import hmac
from collections.abc import Iterable


def hmac_hex(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def signed_with(*, secret: str, body: bytes, given: Iterable[str], prefix: str) -> bool:
    """Whether any of the signatures `given` (each `prefix` + hex) is the body's under `secret`."""
    expected = (prefix + hmac_hex(secret, body)).encode()
    return any(
        hmac.compare_digest(expected, signature.strip().encode("utf-8", "replace")) for signature in given
    )


def timestamped(*, secret: str, body: bytes, at: int) -> str:
    """`t=<unix seconds>,v1=<hex>`, the HMAC-SHA256 of `<t>.<body>` under `secret` (Stripe's shape):
    the receiver recomputes it, and refuses an old `t`, so a request caught on the way can be
    neither altered nor sent again later."""
    return f"t={at},v1={hmac_hex(secret, str(at).encode() + b'.' + body)}"
