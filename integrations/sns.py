"""AWS SNS's HTTPS deliveries, believed only when verified as AWS documents it: each signed field
on lines of its own, signed with the key of a certificate fetched over HTTPS from an AWS host only
(kept a day in the cache by its URL); and the visit to a SubscribeURL that confirms a subscription.
What the messages mean is the incidents' business (incidents.inbound)."""

import base64
import binascii
import hashlib
import logging
import re
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import requests
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from django.core.cache import cache

from portal import clock
from portal.errors import OutsideError

logger = logging.getLogger(__name__)

# Outside calls (the signing certificate, the SubscribeURL) wait no longer than this.
FETCH_TIMEOUT = 5
# A signing certificate never changes at its URL (AWS rotates to a new one), so it is kept a day.
CERTIFICATE_CACHE_SECONDS = 24 * 3600
CERTIFICATE_MAX_BYTES = 64 * 1024

# The fields each type of SNS message signs, in the order of the string to sign.
_CONFIRMATION = ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type")
SIGNED_FIELDS = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "SubscriptionConfirmation": _CONFIRMATION,
    "UnsubscribeConfirmation": _CONFIRMATION,
}
OPTIONAL_FIELDS = {"Subject"}
SIGNATURE_HASHES = {"1": hashes.SHA1, "2": hashes.SHA256}


class NotBelieved(Exception):
    """The message cannot be believed to come from AWS; `code` names why, for the answer."""

    def __init__(self, message: str, code: str):
        super().__init__(message)
        self.message, self.code = message, code


def timestamp(value: str) -> datetime:
    """An ISO 8601 time with its zone, in UTC (ValueError for anything else)."""
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        raise ValueError(value)
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise ValueError(value) from None


def verify(message: dict[str, Any], *, hosts: Iterable[str], max_age: timedelta) -> None:
    """Refuses a message unsigned, signed longer than `max_age` ago (a replay, not a delivery), or
    whose signature does not match the certificate AWS serves at its SigningCertURL (on one of
    `hosts`). The message's Timestamp is a time already (see `timestamp`)."""
    signature, version, cert_url = (
        message.get(f) for f in ("Signature", "SignatureVersion", "SigningCertURL")
    )
    if not all(isinstance(value, str) and value for value in (signature, version, cert_url)):
        raise NotBelieved(
            "The message is not signed (it needs Signature, SignatureVersion and SigningCertURL): ignored.",
            "bad_signature",
        )
    assert isinstance(signature, str) and isinstance(version, str) and isinstance(cert_url, str)
    if version not in SIGNATURE_HASHES:
        raise NotBelieved(
            f"SignatureVersion {version!r} is not one SNS uses (1 or 2): the message is ignored.",
            "bad_signature",
        )
    if clock.now() - timestamp(message["Timestamp"]) > max_age:
        age = "an hour" if max_age == timedelta(hours=1) else f"{int(max_age.total_seconds() // 60)} minutes"
        raise NotBelieved(
            f"The message was signed at {message['Timestamp']}, more than {age} ago: ignored.", "stale"
        )
    check_url(url=cert_url, field="SigningCertURL", hosts=hosts)
    if not re.fullmatch(r"/SimpleNotificationService-[A-Za-z0-9]+\.pem", urlsplit(cert_url).path):
        raise NotBelieved(
            f"The SigningCertURL {cert_url} is not where SNS keeps its certificates "
            "(/SimpleNotificationService-<id>.pem): the message is ignored.",
            "untrusted_url",
        )
    certificate = _certificate(cert_url)
    now = clock.now()
    if not certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc:
        raise NotBelieved(
            f"The signing certificate at {cert_url} is not valid now: ignored.", "bad_signature"
        )
    key = certificate.public_key()
    try:
        raw = base64.b64decode(signature, validate=True)
        if not isinstance(key, rsa.RSAPublicKey):
            raise InvalidSignature
        key.verify(raw, _string_to_sign(message), padding.PKCS1v15(), SIGNATURE_HASHES[version]())
    except (binascii.Error, InvalidSignature):
        raise NotBelieved(
            "The signature does not match AWS's signing certificate: the message is ignored.", "bad_signature"
        ) from None


def _string_to_sign(message: dict[str, Any]) -> bytes:
    """Each signed field's name and value on lines of their own, in AWS's order (Subject only when
    present)."""
    lines = []
    for field in SIGNED_FIELDS[message["Type"]]:
        if message.get(field) is not None:
            lines += [field, message[field]]
    return "".join(f"{line}\n" for line in lines).encode()


def check_url(*, url: str, field: str, hosts: Iterable[str]) -> None:
    """Refuses a URL that is not https on one of `hosts` (`*` stands for one label of a name)."""
    parts = urlsplit(url)
    if parts.scheme != "https":
        raise NotBelieved(f"The {field} {url} is not https: the message is ignored.", "untrusted_url")
    # A plain host (and port): no user part or escapes that one URL parser reads otherwise than another.
    plain = re.fullmatch(r"([a-z0-9.-]+)(:[0-9]{1,5})?", parts.netloc.lower())
    host = plain.group(1) if plain else ""
    if not any(_host_matches(host=host, pattern=pattern) for pattern in hosts):
        raise NotBelieved(
            f"The {field} {url} is not on a host SNS_CERT_HOSTS allows: the message is ignored.",
            "untrusted_url",
        )


def _host_matches(*, host: str, pattern: str) -> bool:
    """`*` stands for one label of a host name (`sns.*.amazonaws.com` is sns.eu-west-1.amazonaws.com,
    never sns.bucket.s3.amazonaws.com)."""
    regex = r"\.".join(
        "[a-z0-9-]+" if label == "*" else re.escape(label) for label in pattern.lower().split(".")
    )
    return re.fullmatch(regex, host) is not None


def _certificate(url: str) -> x509.Certificate:
    """The signing certificate at the URL, fetched once and kept (by URL) in the cache. A cache
    that cannot be read is a miss, one that cannot be written keeps nothing: the certificate is
    fetched again next time."""
    key = "sns-certificate:" + hashlib.sha256(url.encode()).hexdigest()
    try:
        pem = cache.get(key)
    except Exception:  # the cache's own errors depend on its backend (Redis: ConnectionError)
        logger.warning("sns: the certificate cache could not be read", exc_info=True)
        pem = None
    fetched = pem is None
    if fetched:
        try:
            response = requests.get(url, timeout=FETCH_TIMEOUT, allow_redirects=False)
        except requests.RequestException as exc:
            raise NotBelieved(
                f"The signing certificate could not be fetched from {url} ({exc.__class__.__name__}).",
                "certificate_unavailable",
            ) from None
        if response.status_code != 200 or len(response.content) > CERTIFICATE_MAX_BYTES:
            raise NotBelieved(
                f"The signing certificate could not be fetched from {url} (HTTP {response.status_code}).",
                "certificate_unavailable",
            )
        pem = response.content
    try:
        certificate = x509.load_pem_x509_certificate(pem)
    except ValueError:
        raise NotBelieved(
            f"{url} does not serve a PEM certificate: the message is ignored.", "certificate_unavailable"
        ) from None
    if fetched:
        try:
            cache.set(key, pem, CERTIFICATE_CACHE_SECONDS)
        except Exception:  # as above
            logger.warning("sns: the certificate cache could not be written", exc_info=True)
    return certificate


def confirm_subscription(url: str) -> None:
    """Visits the SubscribeURL, which confirms the subscription; an OutsideError when AWS did not
    answer, or did not confirm."""
    try:
        response = requests.get(url, timeout=FETCH_TIMEOUT, allow_redirects=False)
    except requests.RequestException as exc:
        raise OutsideError(
            f"AWS could not be reached to confirm the subscription ({exc.__class__.__name__}).",
            transient=True,
        ) from None
    if response.status_code != 200:
        raise OutsideError(f"AWS did not confirm the subscription (HTTP {response.status_code}).")
