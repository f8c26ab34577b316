"""CloudWatch's alarm notifications, as SNS brings them: read whole before anything is written,
and an alarm's trouble told on one open incident (two messages of one alarm at once take turns)."""

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeGuard

from django.db import connection

from catalogue.models import Service
from incidents.inbound.common import Refused, refuse_nul
from integrations.sns import timestamp
from portal import clock

ALARM_STATES = ("ALARM", "OK", "INSUFFICIENT_DATA")
# Any constant works; with the alarm's name it names the lock that keeps one open incident an alarm.
_ALARM_LOCK_KEY = 0x616C61  # "ala"


@dataclass(frozen=True)
class Alarm:
    """The part of CloudWatch's alarm notification that incidents use."""

    name: str
    description: str
    state: str
    reason: str
    changed_at: datetime
    began_at: datetime


def alarm_of(text: str) -> Alarm:
    """CloudWatch's alarm notification (the SNS message's own JSON), read whole before anything is
    written. The trouble began a period times the evaluation periods before the alarm fired (a
    composite alarm has no trigger: when it fired), never later than now."""

    def refuse(what: str) -> Refused:
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
    changed = body.get("StateChangeTime")
    if not isinstance(changed, str):
        raise refuse("StateChangeTime is not a time")
    try:
        changed_at = timestamp(changed)
    except ValueError:
        raise refuse("StateChangeTime is not a time") from None
    began_at = changed_at
    trigger = body.get("Trigger")
    if isinstance(trigger, dict):
        period, periods = trigger.get("Period"), trigger.get("EvaluationPeriods")
        if _count(period) and _count(periods):
            try:
                began_at = changed_at - timedelta(seconds=period * periods)
            except OverflowError:  # a StateChangeTime at the very start of the calendar
                began_at = changed_at
    description, reason = body.get("AlarmDescription"), body.get("NewStateReason")
    refuse_nul(
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


def _count(value: object) -> TypeGuard[int]:
    """A whole number CloudWatch could have given (a period, a number of periods)."""
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value < 10**6


def services_named_in(alarm_name: str) -> list[Service]:
    lowered = alarm_name.lower()
    return [service for service in Service.objects.all() if service.name.lower() in lowered]


def alarm_lock(name: str) -> None:
    """Two messages of one alarm at once still open one incident: they take turns (on PostgreSQL
    an advisory transaction lock by the alarm's name; SQLite's transactions take turns already)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", [_ALARM_LOCK_KEY, name])
