"""CloudWatch alarms through SNS: only a message whose signature AWS's certificate verifies
counts; an alarm declares one incident measured from the alarm's own time, tells the open one when
it fires again or is back to OK, and a delivery sent twice is acted on once."""

import json
import socket
from datetime import timedelta

import pytest
from rest_framework.test import APIClient

from incidents import services
from incidents.models import Incident
from portal import clock
from portal.models import AuditEvent, InboundDelivery, Notification
from tests.factories import ServiceFactory
from tests.incidents.sns_server import TOPIC, FakeSNS, alarm, rsa_key

pytestmark = pytest.mark.django_db

URL = "/api/v1/webhooks/sns/"
OTHER_TOPIC = "arn:aws:sns:eu-west-1:210987654321:someone-elses-alarms"


@pytest.fixture
def sns(tmp_path, settings, monkeypatch):
    """AWS's side on a local TLS server the portal trusts and may fetch certificates from."""
    fake = FakeSNS(tmp_path)
    settings.SNS_CERT_HOSTS = [*settings.SNS_CERT_HOSTS, "127.0.0.1"]
    settings.SNS_TOPIC_ARNS = [TOPIC]
    settings.SNS_ALARM_SEVERITY = "P1"
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(fake.ca_bundle))
    yield fake
    fake.close()


def post(message):
    """Posts as SNS does: the JSON as text/plain, its type in a header too."""
    body = message if isinstance(message, bytes) else json.dumps(message).encode()
    kind = message.get("Type", "") if isinstance(message, dict) else ""
    return APIClient().post(
        URL, body, content_type="text/plain; charset=UTF-8", HTTP_X_AMZ_SNS_MESSAGE_TYPE=kind
    )


def alarm_message(sns, name="checkout-5xx", state="ALARM", *, changed_at=None, version="1", **fields):
    changed_at = changed_at or clock.now() - timedelta(minutes=2)
    return sns.message(
        message=alarm(name, state, changed_at=changed_at, **fields), version=version, timestamp=clock.now()
    )


def texts(incident) -> list[str]:
    return list(incident.timeline.values_list("text", flat=True))


@pytest.mark.parametrize("version", ["1", "2"])
def test_a_signed_alarm_declares_one_incident_from_the_alarms_own_time(sns, version):
    checkout, _ = ServiceFactory(name="checkout"), ServiceFactory(name="search")
    fired = (clock.now() - timedelta(minutes=2, seconds=1)).replace(microsecond=123000)
    response = post(
        alarm_message(sns, "Checkout-5xx-high", changed_at=fired, period=60, periods=3, version=version)
    )

    assert response.status_code == 200, response.json()
    (incident,) = Incident.objects.all()
    assert response.json()["detail"] == f"{incident.number} declared."
    assert (incident.source, incident.alarm, incident.severity) == ("alarm", "Checkout-5xx-high", "P1")
    assert incident.title == "Checkout-5xx-high: Checkout answers 5xx"
    assert incident.summary.startswith("Threshold Crossed: 3 datapoints")
    assert list(incident.services.all()) == [checkout]
    assert incident.declared_by is None and incident.status == "triggered"
    assert incident.started_at == fired - timedelta(minutes=3)  # 60 s x 3 periods before it fired
    assert incident.detected_at - incident.started_at >= timedelta(minutes=5)
    pages = Notification.objects.filter(channel="pagerduty", recipient=incident.dedup_key)
    assert [json.loads(p.body)["event_action"] for p in pages] == ["trigger"]
    received = InboundDelivery.objects.get()
    assert (received.source, received.kind, received.object_type, received.object_id) == (
        "sns",
        "Notification ALARM",
        "incidents.incident",
        str(incident.pk),
    )
    assert set(AuditEvent.objects.values_list("action", flat=True)) == {
        "incident.declare",
        "sns.notification",
    }
    assert AuditEvent.objects.get(action="sns.notification").object_id == str(incident.pk)


def test_the_same_message_delivered_again_is_acted_on_once(sns):
    message = alarm_message(sns)
    assert post(message).status_code == 200
    again = post(message)
    assert again.status_code == 200 and again.json()["detail"] == "Notification already received."
    assert Incident.objects.count() == 1 and InboundDelivery.objects.count() == 1
    assert Notification.objects.filter(channel="pagerduty").count() == 1
    assert AuditEvent.objects.filter(action="sns.notification").count() == 1


def test_an_alarm_firing_again_or_back_to_ok_tells_the_open_incident(sns, sre):
    post(alarm_message(sns, "checkout-5xx"))
    incident = Incident.objects.get()
    again = post(alarm_message(sns, "checkout-5xx"))
    assert again.json()["detail"] == f"{incident.number} is open: told it fired again."
    services.incident_acknowledge(actor=sre, incident=incident)
    ok = post(alarm_message(sns, "checkout-5xx", "OK", NewStateReason="Threshold Crossed: back under."))
    assert ok.status_code == 200
    post(alarm_message(sns, "checkout-5xx", "INSUFFICIENT_DATA"))

    assert Incident.objects.count() == 1
    incident.refresh_from_db()
    assert incident.status == "acknowledged"  # back to OK resolves nothing: people do
    said = texts(incident)
    assert said[2].startswith("checkout-5xx fired again: Threshold Crossed")
    assert said[-1] == "checkout-5xx is back to OK: Threshold Crossed: back under."
    assert list(incident.timeline.filter(kind="alarm").values_list("text", flat=True)) == [said[2], said[-1]]
    assert Notification.objects.filter(channel="pagerduty", recipient=incident.dedup_key).count() == 2
    kept = InboundDelivery.objects.order_by("pk")
    assert [m.kind for m in kept] == [
        "Notification ALARM",
        "Notification ALARM",
        "Notification OK",
        "Notification INSUFFICIENT_DATA",
    ]
    assert [m.object_id for m in kept] == [str(incident.pk)] * 3 + [""]
    assert AuditEvent.objects.filter(action="sns.notification").count() == 4


def test_an_alarm_after_its_incident_was_resolved_declares_a_new_one(sns, sre, settings):
    post(alarm_message(sns, "checkout-5xx"))
    first = Incident.objects.get()
    services.incident_resolve(actor=sre, incident=first, note="Fixed")
    settings.SNS_ALARM_SEVERITY = "P2"
    post(alarm_message(sns, "checkout-5xx"))
    second = Incident.objects.exclude(pk=first.pk).get()
    assert (second.alarm, second.severity, second.status) == ("checkout-5xx", "P2", "triggered")


def test_an_ok_without_an_open_incident_is_kept_only(sns):
    response = post(alarm_message(sns, "checkout-5xx", "OK"))
    assert response.status_code == 200 and response.json()["detail"] == "checkout-5xx is OK: kept."
    assert not Incident.objects.exists()
    assert InboundDelivery.objects.get().object_id == ""


def test_an_alarm_without_a_trigger_began_when_it_fired_never_after_now(sns):
    fired = (clock.now() - timedelta(minutes=1)).replace(microsecond=0)
    post(alarm_message(sns, "composite-checkout", changed_at=fired, Trigger=None))
    assert Incident.objects.get(alarm="composite-checkout").started_at == fired

    before = clock.now()
    post(alarm_message(sns, "clock-skewed", changed_at=clock.now() + timedelta(minutes=10)))
    skewed = Incident.objects.get(alarm="clock-skewed")
    assert before <= skewed.started_at <= skewed.detected_at


def test_the_signing_certificate_is_fetched_once_and_kept(sns):
    post(alarm_message(sns, "checkout-5xx"))
    post(alarm_message(sns, "search-latency"))
    assert Incident.objects.count() == 2
    assert sns.certificate_fetches() == 1


def test_the_signing_certificate_is_fetched_again_when_the_cache_cannot_be_reached(sns, settings):
    with socket.socket() as probe:  # a port nothing listens on once the probe is closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings.CACHES = {"default": {**settings.CACHES["default"], "LOCATION": f"redis://127.0.0.1:{port}/0"}}
    assert post(alarm_message(sns, "checkout-5xx")).status_code == 200
    assert post(alarm_message(sns, "search-latency")).status_code == 200
    assert Incident.objects.count() == 2
    assert sns.certificate_fetches() == 2  # nothing could be kept: each message fetched it


def _other_key(sns, message):
    message["Signature"] = sns.sign(message, key=rsa_key("someone-else"))


def _tampered(sns, message):
    message["Message"] = message["Message"].replace("checkout-5xx", "everything-down")


def _unsigned(sns, message):
    del message["Signature"]


def _lookalike_host(sns, message):
    message["SigningCertURL"] = "https://sns.eu-west-1.amazonaws.com.attacker.example/cert.pem"
    message["Signature"] = sns.sign(message)


def _bucket_on_aws(sns, message):
    message["SigningCertURL"] = "https://sns.evil.s3.amazonaws.com/cert.pem"
    message["Signature"] = sns.sign(message)


def _user_part(sns, message):
    message["SigningCertURL"] = "https://sns.eu-west-1.amazonaws.com@attacker.example/cert.pem"


def _http_certificate(sns, message):
    message["SigningCertURL"] = sns.certificate_url.replace("https://", "http://")
    message["Signature"] = sns.sign(message)


def _other_path_on_the_host(sns, message):
    """A file on an allowed host that is not one of SNS's certificates (a bucket's, an upload)."""
    message["SigningCertURL"] = sns.certificate_url.rsplit("/", 1)[0] + "/uploads/cert.pem"
    message["Signature"] = sns.sign(message)


def _stale(sns, message):
    message["Timestamp"] = (clock.now() - timedelta(minutes=61)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    message["Signature"] = sns.sign(message)


def _certificate_missing(sns, message):
    sns.certificate_status = 404


def _unknown_version(sns, message):
    message["SignatureVersion"] = "3"


@pytest.mark.parametrize(
    "forge, says, fetched",
    [
        (_other_key, "signature does not match AWS's signing certificate", 1),
        (_tampered, "signature does not match AWS's signing certificate", 1),
        (_unsigned, "is not signed", 0),
        (_lookalike_host, "is not on a host SNS_CERT_HOSTS allows", 0),
        (_bucket_on_aws, "is not on a host SNS_CERT_HOSTS allows", 0),
        (_user_part, "is not on a host SNS_CERT_HOSTS allows", 0),
        (_http_certificate, "is not https", 0),
        (_other_path_on_the_host, "is not where SNS keeps its certificates", 0),
        (_stale, "more than an hour ago", 0),
        (_certificate_missing, "could not be fetched", 1),
        (_unknown_version, "is not one SNS uses", 0),
    ],
)
def test_a_forged_or_unverifiable_message_is_refused_and_leaves_nothing(sns, forge, says, fetched):
    message = alarm_message(sns, "checkout-5xx")
    forge(sns, message)
    response = post(message)
    assert response.status_code == 403, response.json()
    assert says in response.json()["detail"]
    assert not Incident.objects.exists() and not InboundDelivery.objects.exists()
    assert not AuditEvent.objects.exists() and not Notification.objects.exists()
    assert sns.certificate_fetches() == fetched


def test_a_topic_not_listed_is_refused_when_topics_are_listed(sns, settings):
    settings.SNS_TOPIC_ARNS = ["arn:aws:sns:eu-west-1:123456789012:other-alarms"]
    response = post(alarm_message(sns))
    assert response.status_code == 403 and "not one SNS_TOPIC_ARNS lists" in response.json()["detail"]
    assert not Incident.objects.exists() and not InboundDelivery.objects.exists()

    settings.SNS_TOPIC_ARNS = ["arn:aws:sns:eu-west-1:123456789012:other-alarms", TOPIC]
    assert post(alarm_message(sns)).status_code == 200
    assert Incident.objects.count() == 1


def test_without_topics_listed_sns_is_not_configured(sns, settings):
    settings.SNS_TOPIC_ARNS = []
    for message in (
        alarm_message(sns),
        sns.message(
            "SubscriptionConfirmation", message="You have chosen to subscribe.", timestamp=clock.now()
        ),
    ):
        response = post(message)
        assert response.status_code == 503 and response.json()["code"] == "not_configured"
        assert "Set SNS_TOPIC_ARNS" in response.json()["detail"]
    assert not Incident.objects.exists() and not InboundDelivery.objects.exists()
    assert not AuditEvent.objects.exists() and not Notification.objects.exists()
    assert sns.requests == []


def test_a_subscription_to_a_topic_not_listed_is_refused_and_never_confirmed(sns):
    message = sns.message(
        "SubscriptionConfirmation",
        message="You have chosen to subscribe.",
        timestamp=clock.now(),
        topic=OTHER_TOPIC,
    )
    response = post(message)
    assert response.status_code == 403 and response.json()["code"] == "topic_refused"
    assert f"The topic {OTHER_TOPIC} is not one SNS_TOPIC_ARNS lists" in response.json()["detail"]
    assert sns.requests == []  # neither the certificate nor the SubscribeURL
    assert not InboundDelivery.objects.exists() and not AuditEvent.objects.exists()


def test_a_subscription_is_confirmed_by_visiting_its_subscribe_url(sns):
    message = sns.message(
        "SubscriptionConfirmation", message="You have chosen to subscribe.", timestamp=clock.now()
    )
    response = post(message)
    assert response.status_code == 200 and response.json()["detail"] == f"Subscribed to {TOPIC}."
    confirmations = [path for path in sns.requests if "Action=ConfirmSubscription" in path]
    assert confirmations == [message["SubscribeURL"].removeprefix(sns.url)]
    received = InboundDelivery.objects.get()
    assert (received.source, received.delivery_id, received.kind) == (
        "sns",
        message["MessageId"],
        "SubscriptionConfirmation",
    )
    event = AuditEvent.objects.get(action="sns.subscribe")
    assert event.actor_id is None and event.after["topic"] == TOPIC


def test_a_subscribe_url_off_aws_or_unanswered_confirms_nothing(sns):
    elsewhere = sns.message(
        "SubscriptionConfirmation",
        message="You have chosen to subscribe.",
        timestamp=clock.now(),
        SubscribeURL="https://attacker.example/?Action=ConfirmSubscription",
    )
    response = post(elsewhere)
    assert response.status_code == 403 and "SubscribeURL" in response.json()["detail"]

    sns.confirm_status = 500
    response = post(sns.message("SubscriptionConfirmation", message="Subscribe.", timestamp=clock.now()))
    assert response.status_code == 502 and "did not confirm" in response.json()["detail"]
    assert not InboundDelivery.objects.exists() and not AuditEvent.objects.exists()


def test_an_unsubscribe_confirmation_is_kept(sns):
    message = sns.message("UnsubscribeConfirmation", message="You have unsubscribed.", timestamp=clock.now())
    response = post(message)
    assert response.status_code == 200
    assert InboundDelivery.objects.get().kind == "UnsubscribeConfirmation"
    assert AuditEvent.objects.filter(action="sns.unsubscribe").count() == 1
    assert not [path for path in sns.requests if "Action=" in path]


def _nul_in_message_id(sns):
    return sns.message(
        message=alarm("checkout-5xx", changed_at=clock.now()), timestamp=clock.now(), MessageId="6f0c5a2e\x00"
    )


def _nul_in_topic(sns):
    return sns.message(
        message=alarm("checkout-5xx", changed_at=clock.now()), timestamp=clock.now(), topic=TOPIC + "\x00"
    )


@pytest.mark.parametrize(
    "message, says",
    [
        (_nul_in_message_id, "The SNS Notification has a NUL character in MessageId"),
        (_nul_in_topic, "The SNS Notification has a NUL character in TopicArn"),
        (lambda sns: alarm_message(sns, "checkout\x005xx"), "The alarm has a NUL character in AlarmName"),
        (lambda sns: alarm_message(sns, AlarmDescription="5xx\x00"), "in AlarmDescription"),
        (lambda sns: alarm_message(sns, NewStateReason="\x00"), "in NewStateReason"),
    ],
    ids=["MessageId", "TopicArn", "AlarmName", "AlarmDescription", "NewStateReason"],
)
def test_a_message_with_a_nul_character_is_a_400_and_leaves_nothing(sns, message, says):
    response = post(message(sns))
    assert response.status_code == 400 and says in response.json()["detail"]
    assert not Incident.objects.exists() and not InboundDelivery.objects.exists()
    assert not AuditEvent.objects.exists() and not Notification.objects.exists()


UNSIGNED = {
    "Type": "Notification",
    "MessageId": "6f0c5a2e",
    "TopicArn": TOPIC,
    "Message": "{}",
    "Timestamp": "2024-01-01T00:00:00.000Z",
}


@pytest.mark.parametrize(
    "body, says",
    [
        (b"not json at all", "not JSON"),
        (b"[1, 2]", "not an SNS message"),
        (json.dumps({"Type": "Gossip", "Message": "hi"}).encode(), "not an SNS message"),
        (
            json.dumps({"Type": "Notification", "Message": "hi"}).encode(),
            "it has no MessageId, Timestamp, TopicArn",
        ),
        (b"\xff\xfe", "not JSON"),
        (b"[" * 100_000, "not JSON"),
        (json.dumps({**UNSIGNED, "Timestamp": "yesterday"}).encode(), "Timestamp 'yesterday' is not a time"),
        (json.dumps({**UNSIGNED, "Timestamp": "0001-01-01T00:00:00+14:00"}).encode(), "is not a time"),
        (json.dumps({**UNSIGNED, "Subject": 42}).encode(), "it has no Subject"),
    ],
)
def test_a_body_that_is_not_an_sns_message_is_a_400(sns, body, says):
    response = post(body)
    assert response.status_code == 400 and says in response.json()["detail"]
    assert not InboundDelivery.objects.exists() and not AuditEvent.objects.exists()


def _alarm_json(**fields) -> str:
    return json.dumps(
        {"AlarmName": "x", "NewStateValue": "ALARM", "StateChangeTime": "2024-01-01T00:00Z", **fields}
    )


@pytest.mark.parametrize(
    "message, says",
    [
        ("plain words", "its Message is not JSON"),
        (_alarm_json(NewStateValue="PANIC"), "NewStateValue is one of ALARM, OK, INSUFFICIENT_DATA"),
        (_alarm_json(AlarmName=None), "AlarmName is missing"),
        (_alarm_json(AlarmName="  "), "AlarmName is missing"),
        (_alarm_json(StateChangeTime="yesterday"), "StateChangeTime is not a time"),
        (_alarm_json(StateChangeTime="2024-01-01T00:00:00"), "StateChangeTime is not a time"),
        (_alarm_json(StateChangeTime="0001-01-01T00:00:00+14:00"), "StateChangeTime is not a time"),
        (_alarm_json(AlarmName="x" * 256), "AlarmName is longer than CloudWatch's 255 characters"),
    ],
)
def test_a_signed_notification_that_is_not_a_cloudwatch_alarm_is_a_400(sns, message, says):
    response = post(sns.message(message=message, timestamp=clock.now()))
    assert response.status_code == 400 and says in response.json()["detail"]
    assert not Incident.objects.exists() and not InboundDelivery.objects.exists()
