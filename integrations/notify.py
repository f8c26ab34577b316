"""The notification channels: e-mail through Django's mail backend, Slack through slack_sdk,
PagerDuty through its Events API v2. Each is a transport of the kernel's outbox (portal.notify),
registered by config.wiring.

No database access here; the delivery task decides what to send and records the outcome. A channel
without credentials (no EMAIL_URL, no SLACK_BOT_TOKEN, no PAGERDUTY_ROUTING_KEY) only logs what it
would have sent.
"""

import json
import logging
import smtplib

import requests
from django.conf import settings
from django.core.mail import send_mail
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackRequestError

from portal.notify import DeliveryError, TransientDeliveryError

logger = logging.getLogger(__name__)

TRANSIENT_SLACK_ERRORS = {
    "ratelimited",
    "service_unavailable",
    "request_timeout",
    "internal_error",
    "fatal_error",
}


def pagerduty(*, recipient: str, subject: str, body: str) -> bool:
    """One event on PagerDuty's Events API v2: the body is {"event_action", "severity", "source",
    "links"}; the dedup key (the recipient) ties an incident's trigger, acknowledgement and
    resolution together."""
    dedup_key, summary, wanted = recipient, subject, json.loads(body)
    action = wanted["event_action"]
    if not settings.NOTIFY_PAGERDUTY_ENABLED:
        logger.info("PagerDuty not configured; would %s %s: %s", action, dedup_key, summary)
        return False
    message = {"routing_key": settings.PAGERDUTY_ROUTING_KEY, "event_action": action, "dedup_key": dedup_key}
    if action == "trigger":
        message["payload"] = {"summary": summary, "severity": wanted["severity"], "source": wanted["source"]}
        message["links"] = wanted.get("links", [])
    try:
        # The setting has a default: never unset, whatever its type says.
        url = settings.PAGERDUTY_EVENTS_URL
        response = requests.post(url, json=message, timeout=10)
    except requests.RequestException as exc:
        raise TransientDeliveryError(f"PagerDuty unreachable: {exc}") from exc
    if response.status_code == 429 or response.status_code >= 500:
        raise TransientDeliveryError(f"PagerDuty answered {response.status_code}")
    if response.status_code >= 400:
        raise DeliveryError(f"PagerDuty refused the event ({response.status_code}): {response.text[:300]}")
    return True


def email(*, recipient: str, subject: str, body: str) -> bool:
    if not settings.NOTIFY_EMAIL_ENABLED:
        logger.info("e-mail not configured; would send to %s: %s", recipient, subject)
        return False
    try:
        send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [recipient])
    except (smtplib.SMTPRecipientsRefused, smtplib.SMTPSenderRefused, smtplib.SMTPAuthenticationError) as exc:
        raise DeliveryError(f"the mail server refused the message: {exc}") from exc
    except smtplib.SMTPResponseException as exc:
        if 400 <= exc.smtp_code < 500:
            raise TransientDeliveryError(f"the mail server said try later: {exc}") from exc
        raise DeliveryError(f"the mail server refused the message: {exc}") from exc
    except OSError as exc:  # connection refused, timeouts, disconnects (SMTPException is one too)
        raise TransientDeliveryError(f"mail server unreachable: {exc}") from exc
    return True


def slack_client() -> WebClient:
    # SLACK_API_URL has a default: never unset, whatever its type says.
    base_url = settings.SLACK_API_URL
    return WebClient(token=settings.SLACK_BOT_TOKEN, base_url=base_url, timeout=10)


def slack(*, recipient: str, subject: str, body: str) -> bool:
    if not settings.NOTIFY_SLACK_ENABLED:
        logger.info("Slack not configured; would post to %s: %s", recipient, subject)
        return False
    try:
        slack_client().chat_postMessage(channel=recipient, text=f"*{subject}*\n{body}")
    except SlackApiError as exc:
        status = exc.response.status_code
        error = (
            exc.response.get("error", "unknown_error")
            if isinstance(exc.response.data, dict)
            else f"HTTP {status}"
        )
        if status == 429 or status >= 500 or error in TRANSIENT_SLACK_ERRORS:
            raise TransientDeliveryError(f"Slack said {error}") from exc
        raise DeliveryError(f"Slack refused the message: {error}") from exc
    except (SlackRequestError, OSError) as exc:
        raise TransientDeliveryError(f"Slack unreachable: {exc}") from exc
    return True
