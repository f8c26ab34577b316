"""What outside services tell incidents: CloudWatch alarms through an AWS SNS HTTPS subscription,
and acknowledgements and resolutions made on PagerDuty (its V3 webhooks).

Nothing is believed before it is verified: an SNS message by its topic, which SNS_TOPIC_ARNS lists,
and its signature, checked as AWS documents it against the certificate fetched over HTTPS from an
AWS host only; a PagerDuty event by the HMAC of the shared secret. A message that cannot be
verified is refused and leaves nothing behind. Every message acted on is kept by its own id
(`ReceivedMessage`), so a delivery sent twice is acted on once, and everything one message does is
written in one transaction and audited: the incident services audit what they do, and each kept
message has one audit event of its own that says what it did."""

import base64
import binascii
import hashlib
import hmac
import json
import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import requests
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from django.conf import settings
from django.core.cache import cache
from django.db import IntegrityError, connection, transaction

from catalogue.models import Service
from incidents import services
from incidents.models import Incident, IncidentStatus, ReceivedMessage, TimelineEntry
from portal import clock
from portal.services import audit_record

logger = logging.getLogger(__name__)

# An SNS message signed longer ago than this is a replay, not a delivery.
SNS_MAX_AGE = timedelta(hours=1)
# Outside calls (the signing certificate, the SubscribeURL) wait no longer than this.
FETCH_TIMEOUT = 5
# A signing certificate never changes at its URL (AWS rotates to a new one), so it is kept a day.
CERTIFICATE_CACHE_SECONDS = 24 * 3600
CERTIFICATE_MAX_BYTES = 64 * 1024

# The fields each type of SNS message signs, in the order of the string to sign.
SIGNED_FIELDS = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "SubscriptionConfirmation": (
        "Message",
        "MessageId",
        "SubscribeURL",
        "Timestamp",
        "Token",
        "TopicArn",
        "Type",
    ),
    "UnsubscribeConfirmation": (
        "Message",
        "MessageId",
        "SubscribeURL",
        "Timestamp",
        "Token",
        "TopicArn",
        "Type",
    ),
}
OPTIONAL_FIELDS = {"Subject"}
SIGNATURE_HASHES = {"1": hashes.SHA1, "2": hashes.SHA256}
ALARM_STATES = ("ALARM", "OK", "INSUFFICIENT_DATA")

# What each PagerDuty event brings back, and the service that does it.
PAGERDUTY_ACTS = {
    "incident.acknowledged": (IncidentStatus.ACKNOWLEDGED, services.incident_acknowledge),
    "incident.resolved": (IncidentStatus.RESOLVED, services.incident_resolve),
}
DEDUP_KEY = re.compile(r"greenlight-inc-([0-9]{6,12})")
# Any constant works; with the alarm's name it names the lock that keeps one open incident an alarm.
_ALARM_LOCK_KEY = 0x616C61  # "ala"


class Refused(Exception):
    """The message is not taken: `status` (400 malformed, 401/403 not believed, 502 AWS did not
    answer, 503 not configured) and a sentence a person understands."""

    def __init__(self, status: int, message: str, code: str):
        super().__init__(message)
        self.status, self.message, self.code = status, message, code


@dataclass(frozen=True)
class Outcome:
    """What a message did, as the sender is answered."""

    status: int
    detail: str


@dataclass(frozen=True)
class Alarm:
    """The part of CloudWatch's alarm notification that incidents use."""

    name: str
    description: str
    state: str
    reason: str
    changed_at: datetime
    began_at: datetime


# AWS SNS


def sns_receive(body: bytes) -> Outcome:
    """Verifies one message SNS posted and acts on it: a subscription is confirmed, an alarm's
    notification declares an incident or tells the open one. Only the topics SNS_TOPIC_ARNS lists
    are taken: AWS signs any account's topic, and a subscription to someone else's is confirmed here
    by no one."""
    if not settings.SNS_TOPIC_ARNS:
        raise Refused(
            503,
            "Set SNS_TOPIC_ARNS to the topics your CloudWatch alarms notify to take their messages.",
            "not_configured",
        )
    message = _sns_message(body)
    _sns_verify(message)
    if message["Type"] == "Notification":
        return _sns_notification(message)
    if message["Type"] == "SubscriptionConfirmation":
        return _sns_subscription_confirm(message)
    return _sns_unsubscribe(message)


def _sns_message(body: bytes) -> dict:
    """The body as an SNS message: JSON with every field its type signs."""
    try:
        message = json.loads(body)
    except (ValueError, RecursionError):
        raise Refused(400, "The body is not JSON: SNS posts a JSON message.", "invalid") from None
    if not isinstance(message, dict) or message.get("Type") not in SIGNED_FIELDS:
        raise Refused(
            400,
            "This is not an SNS message: its Type is one of " + ", ".join(SIGNED_FIELDS) + ".",
            "invalid",
        )
    missing = [
        field
        for field in SIGNED_FIELDS[message["Type"]]
        if not isinstance(message.get(field), str)
        and not (field in OPTIONAL_FIELDS and message.get(field) is None)
    ]
    if missing:
        raise Refused(
            400, f"This is not an SNS {message['Type']}: it has no {', '.join(missing)}.", "invalid"
        )
    _refuse_nul(
        what=f"The SNS {message['Type']}",
        texts={field: message.get(field) for field in SIGNED_FIELDS[message["Type"]]},
    )
    if not message["MessageId"] or len(message["MessageId"]) > 200:
        raise Refused(400, "The message's MessageId is empty or longer than 200 characters.", "invalid")
    try:
        _timestamp(message["Timestamp"])
    except ValueError:
        raise Refused(
            400, f"The message's Timestamp {message['Timestamp']!r} is not a time.", "invalid"
        ) from None
    return message


def _timestamp(value: str) -> datetime:
    """An ISO 8601 time with its zone, in UTC (ValueError for anything else)."""
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        raise ValueError(value)
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise ValueError(value) from None


def _sns_verify(message: dict) -> None:
    """Refuses (403) a message from a topic not taken here, unsigned, stale, or whose signature
    does not match the certificate AWS serves at its SigningCertURL."""
    if message["TopicArn"] not in settings.SNS_TOPIC_ARNS:
        raise Refused(
            403, f"The topic {message['TopicArn']} is not one SNS_TOPIC_ARNS lists: ignored.", "topic_refused"
        )
    signature, version, cert_url = (
        message.get(f) for f in ("Signature", "SignatureVersion", "SigningCertURL")
    )
    if not all(isinstance(value, str) and value for value in (signature, version, cert_url)):
        raise Refused(
            403,
            "The message is not signed (it needs Signature, SignatureVersion and SigningCertURL): ignored.",
            "bad_signature",
        )
    if version not in SIGNATURE_HASHES:
        raise Refused(
            403,
            f"SignatureVersion {version!r} is not one SNS uses (1 or 2): the message is ignored.",
            "bad_signature",
        )
    if clock.now() - _timestamp(message["Timestamp"]) > SNS_MAX_AGE:
        raise Refused(
            403, f"The message was signed at {message['Timestamp']}, more than an hour ago: ignored.", "stale"
        )
    _aws_url(url=cert_url, field="SigningCertURL")
    certificate = _certificate(cert_url)
    now = clock.now()
    if not certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc:
        raise Refused(
            403, f"The signing certificate at {cert_url} is not valid now: ignored.", "bad_signature"
        )
    key = certificate.public_key()
    try:
        raw = base64.b64decode(signature, validate=True)
        if not isinstance(key, rsa.RSAPublicKey):
            raise InvalidSignature
        key.verify(raw, _string_to_sign(message), padding.PKCS1v15(), SIGNATURE_HASHES[version]())
    except (binascii.Error, InvalidSignature):
        raise Refused(
            403,
            "The signature does not match AWS's signing certificate: the message is ignored.",
            "bad_signature",
        ) from None


def _string_to_sign(message: dict) -> bytes:
    """Each signed field's name and value on lines of their own, in AWS's order (Subject only when
    present)."""
    lines = []
    for field in SIGNED_FIELDS[message["Type"]]:
        if message.get(field) is not None:
            lines += [field, message[field]]
    return "".join(f"{line}\n" for line in lines).encode()


def _aws_url(*, url: str, field: str) -> None:
    """Refuses (403) a URL that is not https on a host SNS_CERT_HOSTS allows."""
    parts = urlsplit(url)
    if parts.scheme != "https":
        raise Refused(403, f"The {field} {url} is not https: the message is ignored.", "untrusted_url")
    # A plain host (and port): no user part or escapes that one URL parser reads otherwise than another.
    plain = re.fullmatch(r"([a-z0-9.-]+)(:[0-9]{1,5})?", parts.netloc.lower())
    host = plain.group(1) if plain else ""
    if not any(_host_matches(host=host, pattern=pattern) for pattern in settings.SNS_CERT_HOSTS):
        raise Refused(
            403,
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
            raise Refused(
                403,
                f"The signing certificate could not be fetched from {url} ({exc.__class__.__name__}).",
                "certificate_unavailable",
            ) from None
        if response.status_code != 200 or len(response.content) > CERTIFICATE_MAX_BYTES:
            answer = f"HTTP {response.status_code}"
            raise Refused(
                403,
                f"The signing certificate could not be fetched from {url} ({answer}).",
                "certificate_unavailable",
            )
        pem = response.content
    try:
        certificate = x509.load_pem_x509_certificate(pem)
    except ValueError:
        raise Refused(
            403, f"{url} does not serve a PEM certificate: the message is ignored.", "certificate_unavailable"
        ) from None
    if fetched:
        try:
            cache.set(key, pem, CERTIFICATE_CACHE_SECONDS)
        except Exception:  # as above
            logger.warning("sns: the certificate cache could not be written", exc_info=True)
    return certificate


def _sns_subscription_confirm(message: dict) -> Outcome:
    """Confirms the subscription by visiting its SubscribeURL (on an AWS host too), then keeps it."""
    url = message["SubscribeURL"]
    _aws_url(url=url, field="SubscribeURL")
    if ReceivedMessage.objects.filter(
        source=ReceivedMessage.Source.SNS, message_id=message["MessageId"]
    ).exists():
        return Outcome(200, "Subscription confirmation already received.")
    try:
        response = requests.get(url, timeout=FETCH_TIMEOUT, allow_redirects=False)
    except requests.RequestException as exc:
        raise Refused(
            502,
            f"AWS could not be reached to confirm the subscription ({exc.__class__.__name__}).",
            "confirmation_failed",
        ) from None
    if response.status_code != 200:
        raise Refused(
            502, f"AWS did not confirm the subscription (HTTP {response.status_code}).", "confirmation_failed"
        )
    if not _sns_confirmation_keep(message=message, action="sns.subscribe"):
        return Outcome(200, "Subscription confirmation already received.")
    return Outcome(200, f"Subscribed to {message['TopicArn']}.")


def _sns_unsubscribe(message: dict) -> Outcome:
    if not _sns_confirmation_keep(message=message, action="sns.unsubscribe"):
        return Outcome(200, "Unsubscribe confirmation already received.")
    return Outcome(200, f"Unsubscribed from {message['TopicArn']}.")


def _sns_confirmation_keep(*, message: dict, action: str) -> bool:
    """Keeps a subscription's or unsubscription's confirmation once, with its audit event, in one
    transaction; False when it was received before."""
    with transaction.atomic():
        received = _received_once(
            source=ReceivedMessage.Source.SNS, message_id=message["MessageId"], kind=message["Type"]
        )
        if received is None:
            return False
        audit_record(
            actor=None,
            action=action,
            target=received,
            after={"topic": message["TopicArn"], "message_id": message["MessageId"]},
        )
    return True


def _sns_notification(message: dict) -> Outcome:
    """An alarm going to ALARM declares an incident, or tells the one it opened and that is not
    resolved yet; back to OK tells that one too (people resolve it); INSUFFICIENT_DATA is kept only."""
    alarm = _alarm(message["Message"])
    with transaction.atomic():
        received = _received_once(
            source=ReceivedMessage.Source.SNS,
            message_id=message["MessageId"],
            kind=f"{message['Type']} {alarm.state}",
        )
        if received is None:
            return Outcome(200, "Notification already received.")
        _alarm_lock(alarm.name)
        incident = (
            Incident.objects.select_for_update()
            .filter(alarm=alarm.name)
            .exclude(status=IncidentStatus.RESOLVED)
            .order_by("-pk")
            .first()
        )
        told = {"alarm": alarm.name, "state": alarm.state, "message_id": message["MessageId"]}
        if alarm.state == "ALARM" and incident is None:
            incident = services.incident_declare(
                actor=None,
                source=Incident.Source.ALARM,
                alarm=alarm.name,
                title=f"{alarm.name}: {alarm.description}" if alarm.description else f"{alarm.name} in alarm",
                severity=settings.SNS_ALARM_SEVERITY,
                summary=alarm.reason,
                services=_services_named_in(alarm.name),
                started_at=alarm.began_at,
            )
            done = f"{incident.number} declared."
        elif alarm.state == "ALARM":
            words = f"{alarm.name} fired again" + (f": {alarm.reason}" if alarm.reason else ".")
            services.timeline_add(incident, TimelineEntry.Kind.ALARM, words, **told)
            done = f"{incident.number} is open: told it fired again."
        elif alarm.state == "OK" and incident is not None:
            words = f"{alarm.name} is back to OK" + (f": {alarm.reason}" if alarm.reason else ".")
            services.timeline_add(incident, TimelineEntry.Kind.ALARM, words, **told)
            done = f"{incident.number} told the alarm is back to OK."
        else:
            incident = None
            done = f"{alarm.name} is {alarm.state}: kept."
        received.incident = incident
        received.save(update_fields=["incident"])
        audit_record(
            actor=None,
            action="sns.notification",
            target=incident or received,
            after={
                **told,
                "topic": message["TopicArn"],
                "incident": incident.number if incident else None,
                "done": done,
            },
        )
    return Outcome(200, done)


def _alarm(text: str) -> Alarm:
    """CloudWatch's alarm notification (the SNS message's own JSON), read whole before anything is
    written. The trouble began a period times the evaluation periods before the alarm fired (a
    composite alarm has no trigger: when it fired), never later than now."""

    def refuse(what: str):
        return Refused(400, f"The notification is not a CloudWatch alarm: {what}.", "invalid")

    try:
        body = json.loads(text)
    except (ValueError, RecursionError):
        raise refuse("its Message is not JSON") from None
    if not isinstance(body, dict):
        raise refuse("its Message is not a JSON object")
    name = body.get("AlarmName")
    if not isinstance(name, str) or not name.strip():
        raise refuse("AlarmName is missing")
    if len(name) > 255:
        raise refuse("AlarmName is longer than CloudWatch's 255 characters")
    if body.get("NewStateValue") not in ALARM_STATES:
        raise refuse(f"NewStateValue is one of {', '.join(ALARM_STATES)}")
    try:
        changed_at = _timestamp(body.get("StateChangeTime"))
    except (TypeError, ValueError):
        raise refuse("StateChangeTime is not a time") from None
    began_at = changed_at
    trigger = body.get("Trigger")
    if isinstance(trigger, dict):
        period, periods = trigger.get("Period"), trigger.get("EvaluationPeriods")
        if all(isinstance(n, int) and not isinstance(n, bool) and 0 < n < 10**6 for n in (period, periods)):
            try:
                began_at = changed_at - timedelta(seconds=period * periods)
            except OverflowError:  # a StateChangeTime at the very start of the calendar
                began_at = changed_at
    description, reason = body.get("AlarmDescription"), body.get("NewStateReason")
    _refuse_nul(
        what="The alarm", texts={"AlarmName": name, "AlarmDescription": description, "NewStateReason": reason}
    )
    return Alarm(
        name=name.strip(),
        description=description.strip() if isinstance(description, str) else "",
        state=body["NewStateValue"],
        reason=reason.strip() if isinstance(reason, str) else "",
        changed_at=changed_at,
        began_at=min(began_at, clock.now()),
    )


def _services_named_in(alarm_name: str) -> list[Service]:
    lowered = alarm_name.lower()
    return [service for service in Service.objects.all() if service.name.lower() in lowered]


def _alarm_lock(name: str) -> None:
    """Two messages of one alarm at once still open one incident: they take turns (on PostgreSQL
    an advisory transaction lock by the alarm's name; SQLite's transactions take turns already)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", [_ALARM_LOCK_KEY, name])


def _refuse_nul(*, what: str, texts: dict) -> None:
    """Refuses (400) a message with a NUL character in a text it brings: PostgreSQL keeps none in
    a text or JSON column, and neither AWS nor PagerDuty sends one."""
    named = [name for name, text in texts.items() if isinstance(text, str) and "\x00" in text]
    if named:
        raise Refused(
            400,
            f"{what} has a NUL character in {', '.join(named)}: the portal keeps no such text.",
            "invalid",
        )


def _received_once(*, source: str, message_id: str, kind: str) -> ReceivedMessage | None:
    """Keeps the message in the caller's transaction; None when it was received before."""
    try:
        with transaction.atomic():
            return ReceivedMessage.objects.create(
                source=source, message_id=message_id, kind=kind[:100], received_at=clock.now()
            )
    except IntegrityError:
        return None


# PagerDuty


def pagerduty_receive(*, body: bytes, signatures: str) -> Outcome:
    """Verifies one V3 webhook and brings an acknowledgement or resolution made on PagerDuty back
    to the incident whose dedup key it carries (PagerDuty knows already: nothing is paged back)."""
    secret = settings.PAGERDUTY_WEBHOOK_SECRET
    if not secret:
        raise Refused(503, "Set PAGERDUTY_WEBHOOK_SECRET to take PagerDuty's webhooks.", "not_configured")
    expected = ("v1=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()).encode()
    given = [part.strip().encode("utf-8", "replace") for part in signatures.split(",")]
    if not any(hmac.compare_digest(expected, signature) for signature in given):
        raise Refused(
            401, "The signature does not match the webhook's secret: the event is ignored.", "bad_signature"
        )
    event = _pagerduty_event(body)
    if event["event_type"] not in PAGERDUTY_ACTS:
        return Outcome(202, f"{event['event_type']} ignored.")
    status, act = PAGERDUTY_ACTS[event["event_type"]]
    agent = event.get("agent") if isinstance(event.get("agent"), dict) else {}
    who = agent.get("summary") if isinstance(agent.get("summary"), str) and agent["summary"] else "someone"
    incident_key = event["data"].get("incident_key")
    with transaction.atomic():
        incident = _incident_for_key(incident_key)
        if incident is None:
            return Outcome(202, f"No incident here has the key {incident_key!r}: ignored.")
        received = _received_once(
            source=ReceivedMessage.Source.PAGERDUTY, message_id=event["id"], kind=event["event_type"]
        )
        if received is None:
            return Outcome(200, "Event already received.")
        if incident.can_transition_to(status):
            incident = act(actor=None, incident=incident, by=f"{who} on PagerDuty", paged=True)
            done = f"{incident.number} {incident.get_status_display().lower()} by {who} on PagerDuty."
        else:
            done = f"{incident.number} is {incident.get_status_display().lower()} already: nothing to do."
        received.incident = incident
        received.save(update_fields=["incident"])
        audit_record(
            actor=None,
            action="pagerduty.event",
            target=incident,
            after={"event": event["event_type"], "event_id": event["id"], "by": who, "done": done},
        )
    return Outcome(200, done)


def _pagerduty_event(body: bytes) -> dict:
    """The webhook's `event`: an id, a type, and for an incident's events the incident as `data`."""
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError):
        raise Refused(400, "The body is not JSON: PagerDuty posts a JSON event.", "invalid") from None
    event = payload.get("event") if isinstance(payload, dict) else None
    if not isinstance(event, dict):
        raise Refused(400, "This is not a PagerDuty V3 webhook: it has no event object.", "invalid")
    for field in ("id", "event_type"):
        if not isinstance(event.get(field), str) or not event[field] or len(event[field]) > 200:
            raise Refused(400, f"This is not a PagerDuty V3 webhook: event.{field} is missing.", "invalid")
    agent = event.get("agent")
    _refuse_nul(
        what="The PagerDuty event",
        texts={
            "event.id": event["id"],
            "event.event_type": event["event_type"],
            "event.agent.summary": agent.get("summary") if isinstance(agent, dict) else None,
        },
    )
    if event["event_type"] in PAGERDUTY_ACTS and not isinstance(event.get("data"), dict):
        raise Refused(400, f"A {event['event_type']} event carries its incident as event.data.", "invalid")
    return event


def _incident_for_key(key) -> Incident | None:
    """The incident whose PagerDuty dedup key (`greenlight-inc-000042`) this is, if any, locked."""
    match = DEDUP_KEY.fullmatch(key) if isinstance(key, str) else None
    if match is None:
        return None
    incident = Incident.objects.select_for_update().filter(pk=int(match.group(1))).first()
    return incident if incident is not None and incident.dedup_key == key else None
