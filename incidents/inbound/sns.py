"""CloudWatch alarms through an AWS SNS HTTPS subscription. Only the topics SNS_TOPIC_ARNS lists
are taken, and only messages verified as AWS signs them (integrations.sns); each message acted on
once, by its MessageId."""

import json
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction

from incidents import services
from incidents.inbound.alarms import alarm_lock, alarm_of, services_named_in
from incidents.inbound.common import Outcome, Refused, refuse_nul
from incidents.models import Incident, IncidentStatus, TimelineEntry
from integrations import sns
from portal.errors import OutsideError
from portal.models import InboundDelivery
from portal.services import audit_record, inbound_once

# An SNS message signed longer ago than this is a replay, not a delivery.
SNS_MAX_AGE = timedelta(hours=1)


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


def _sns_message(body: bytes) -> dict[str, Any]:
    """The body as an SNS message: JSON with every field its type signs."""
    try:
        message = json.loads(body)
    except (ValueError, RecursionError):
        raise Refused(400, "The body is not JSON: SNS posts a JSON message.", "invalid") from None
    if not isinstance(message, dict) or message.get("Type") not in sns.SIGNED_FIELDS:
        raise Refused(
            400,
            "This is not an SNS message: its Type is one of " + ", ".join(sns.SIGNED_FIELDS) + ".",
            "invalid",
        )
    missing = [
        field
        for field in sns.SIGNED_FIELDS[message["Type"]]
        if not isinstance(message.get(field), str)
        and not (field in sns.OPTIONAL_FIELDS and message.get(field) is None)
    ]
    if missing:
        raise Refused(
            400, f"This is not an SNS {message['Type']}: it has no {', '.join(missing)}.", "invalid"
        )
    refuse_nul(
        what=f"The SNS {message['Type']}",
        texts={field: message.get(field) for field in sns.SIGNED_FIELDS[message["Type"]]},
    )
    if not message["MessageId"] or len(message["MessageId"]) > 200:
        raise Refused(400, "The message's MessageId is empty or longer than 200 characters.", "invalid")
    try:
        sns.timestamp(message["Timestamp"])
    except ValueError:
        raise Refused(
            400, f"The message's Timestamp {message['Timestamp']!r} is not a time.", "invalid"
        ) from None
    return message


def _sns_verify(message: dict[str, Any]) -> None:
    """Refuses (403) a message from a topic not taken here, unsigned, stale, or whose signature
    does not match the certificate AWS serves at its SigningCertURL."""
    if message["TopicArn"] not in settings.SNS_TOPIC_ARNS:
        raise Refused(
            403, f"The topic {message['TopicArn']} is not one SNS_TOPIC_ARNS lists: ignored.", "topic_refused"
        )
    try:
        sns.verify(message, hosts=settings.SNS_CERT_HOSTS, max_age=SNS_MAX_AGE)
    except sns.NotBelieved as refused:
        raise Refused(403, refused.message, refused.code) from None


def _sns_subscription_confirm(message: dict[str, Any]) -> Outcome:
    """Confirms the subscription by visiting its SubscribeURL (on an AWS host too), then keeps it."""
    url = message["SubscribeURL"]
    try:
        sns.check_url(url=url, field="SubscribeURL", hosts=settings.SNS_CERT_HOSTS)
    except sns.NotBelieved as refused:
        raise Refused(403, refused.message, refused.code) from None
    if InboundDelivery.objects.filter(
        source=InboundDelivery.Source.SNS, delivery_id=message["MessageId"]
    ).exists():
        return Outcome(200, "Subscription confirmation already received.")
    try:
        sns.confirm_subscription(url)
    except OutsideError as error:
        raise Refused(502, str(error), "confirmation_failed") from None
    if not _sns_confirmation_keep(message=message, action="sns.subscribe"):
        return Outcome(200, "Subscription confirmation already received.")
    return Outcome(200, f"Subscribed to {message['TopicArn']}.")


def _sns_unsubscribe(message: dict[str, Any]) -> Outcome:
    if not _sns_confirmation_keep(message=message, action="sns.unsubscribe"):
        return Outcome(200, "Unsubscribe confirmation already received.")
    return Outcome(200, f"Unsubscribed from {message['TopicArn']}.")


def _sns_confirmation_keep(*, message: dict[str, Any], action: str) -> bool:
    """Keeps a subscription's or unsubscription's confirmation once, with its audit event, in one
    transaction; False when it was received before."""
    with transaction.atomic():
        received = inbound_once(
            source=InboundDelivery.Source.SNS, delivery_id=message["MessageId"], kind=message["Type"]
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


def _sns_notification(message: dict[str, Any]) -> Outcome:
    """An alarm going to ALARM declares an incident, or tells the one it opened and that is not
    resolved yet; back to OK tells that one too (people resolve it); INSUFFICIENT_DATA is kept only."""
    alarm = alarm_of(message["Message"])
    with transaction.atomic():
        received = inbound_once(
            source=InboundDelivery.Source.SNS,
            delivery_id=message["MessageId"],
            kind=f"{message['Type']} {alarm.state}",
        )
        if received is None:
            return Outcome(200, "Notification already received.")
        alarm_lock(alarm.name)
        incident = (
            Incident.objects.select_for_update(no_key=True)
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
                services=services_named_in(alarm.name),
                started_at=alarm.began_at,
            )
            done = f"{incident.number} declared."
        elif alarm.state == "ALARM" and incident is not None:  # the one the alarm opened
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
        received.acted_on(incident)
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
