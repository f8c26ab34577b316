"""The public status page: what customers see (the services on it, public incidents and their
updates in public words, scheduled maintenance, 90 days of history and uptime), the e-mail
subscriptions and their limits, the kept page served while fresh, and the last good copy served
when the database is down or slow."""

import re
from datetime import UTC, timedelta

import pytest
from django.core.cache import cache
from django.db import OperationalError, connection, transaction
from django.test.utils import CaptureQueriesContext

from incidents import services, status, status_subscriptions
from incidents.models import StatusSubscriber, TimelineEntry
from incidents.tasks import status_subscribers_purge, status_update_send
from portal import clock
from portal.models import AuditEvent, Notification
from tests.factories import (
    ApprovalPolicyFactory,
    EnvironmentFactory,
    ServiceFactory,
    approved_change,
)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _no_kept_page():
    """Each test starts with no copy of the page kept, as a fresh installation."""
    cache.delete(status.CACHE_KEY)
    yield
    cache.delete(status.CACHE_KEY)


@pytest.fixture
def eager_tasks(monkeypatch):
    """The worker's part, run here as tasks are queued."""
    from config.celery import app

    monkeypatch.setitem(app.conf, "task_always_eager", True)


def on_page(name, **fields):
    """A service shown on the status page."""
    return ServiceFactory(name=name, on_status_page=True, **fields)


def declare(actor, title, severity, *, public=True, services_=(), **fields):
    """Declared under the same public title as its own, unless the test gives another."""
    fields.setdefault("public_title", title if public else "")
    with transaction.atomic():
        return services.incident_declare(
            actor=actor, title=title, severity=severity, public=public, services=list(services_), **fields
        )


def service_row(page: str, name: str) -> str:
    """The service's entry on the page, from its name to the end of its item."""
    start = page.index(f'<span class="status-service-name">{name}</span>')
    return page[start : page.index("</li>\n", page.index('class="status-visually-hidden"', start))]


def refused(execute, sql, params, many, context):
    raise OperationalError("connection to server at 127.0.0.1 failed: Connection refused")


def test_the_page_opens_without_signing_in(client, sre):
    on_page("web")
    response = client.get("/status/")
    assert response.status_code == 200
    page = response.content.decode()
    assert "All systems operational" in page
    assert "Operational" in service_row(page, "web")
    assert 'href="/logout/"' not in page and "Sign out" not in page  # no portal chrome

    client.force_login(sre)  # signed in, second factor still to come: the public page all the same
    assert client.get("/incidents/").status_code == 302
    assert client.get("/status/").status_code == 200


def test_a_public_p1_shows_its_service_in_partial_outage_with_its_public_updates_only(client, developer, sre):
    checkout = on_page("checkout")
    on_page("web")
    incident = declare(
        sre,
        "Payments fail at checkout",
        "P1",
        services_=[checkout],
        summary="Card vault on db-7 is full",
    )
    services.incident_acknowledge(actor=sre, incident=incident, note="db-7 disk full")
    with transaction.atomic():
        services.incident_note(actor=developer, incident=incident, text="Internal: ping Bob about db-7")
        services.incident_note(
            actor=sre,
            incident=incident,
            text="Identified — A full disk on the payments database; we are freeing space.",
            public=True,
        )
        services.timeline_add(
            incident, TimelineEntry.Kind.NOTE, "Card payments work again in the EU.", public=True
        )
    services.incident_mitigate(actor=sre, incident=incident, note="Moved the vault to db-8")

    page = client.get("/status/").content.decode()

    assert "Payments fail at checkout" in page
    assert "Partial outage" in service_row(page, "checkout")
    assert "Operational" in service_row(page, "web")
    assert "Partial outage</span> Monitoring · Affects checkout" in page
    updates = [
        "<strong>Monitoring</strong> — A fix is in place and we are watching the results.",
        "<strong>Update</strong> — Card payments work again in the EU.",
        "<strong>Update</strong> — Identified — A full disk on the payments database; we are freeing space.",
        "<strong>Investigating</strong> — We are looking into the problem.",
    ]
    assert all(update in page for update in updates)
    assert [page.index(update) for update in updates] == sorted(page.index(update) for update in updates)
    for unsaid in (
        developer.display_name,
        sre.display_name,
        "ping Bob",
        "db-7 disk full",
        "db-8",
        "PagerDuty",
        incident.number,
        "P1 declared",
        "Acknowledged",
    ):
        assert unsaid not in page


def test_an_acknowledged_incident_still_reads_investigating_with_no_word_of_the_step(client, sre):
    checkout = on_page("checkout")
    incident = declare(sre, "Payments fail at checkout", "P1", services_=[checkout])
    services.incident_acknowledge(actor=sre, incident=incident, note="db-7 disk full")

    page = client.get("/status/").content.decode()

    assert "Partial outage</span> Investigating · Affects checkout" in page
    assert page.count("<strong>Investigating</strong>") == 1  # the declaration; the step is not told
    assert "db-7" not in page and "Identified" not in page


def test_only_the_services_on_the_status_page_are_named(client, developer, sre):
    from changes.services import change_schedule

    policy = ApprovalPolicyFactory(
        name="One approval", min_approvals=1, min_code_owner_approvals=0, required_sign_offs=[]
    )
    production = EnvironmentFactory(name="prod-eu", is_production=True, approval_policy=policy)
    checkout = on_page("checkout", environments=[production])
    ledger = ServiceFactory(name="ledger-internal", environments=[production])
    both = declare(sre, "Payments fail at checkout", "P1", services_=[checkout, ledger])
    declare(sre, "Bookkeeping lags", "P2", services_=[ledger])
    start = (clock.now() + timedelta(days=2)).replace(minute=0, second=0, microsecond=0)
    internal = approved_change(developer, production, title="Reindex the ledger", services=[ledger])
    mixed = approved_change(developer, production, title="Move both", services=[ledger, checkout])
    with transaction.atomic():
        change_schedule(actor=developer, change=internal, start=start, end=start + timedelta(hours=1))
        later = start + timedelta(hours=3)
        change_schedule(actor=developer, change=mixed, start=later, end=later + timedelta(hours=1))

    page = client.get("/status/").content.decode()

    assert "ledger-internal" not in page
    assert re.findall(r'class="status-service-name">([^<]*)<', page) == ["checkout"]
    assert "Partial outage</span> Investigating · Affects checkout</p>" in page
    assert "Degraded performance</span> Investigating</p>" in page  # no services named
    assert "Bookkeeping lags" in page
    assert f"{start + timedelta(hours=1):%H:%M} UTC · Affects our services" in page
    assert f"{later + timedelta(hours=1):%H:%M} UTC · Affects checkout" in page
    assert [s.name for s in status.status_page_build().services] == ["checkout"]
    assert both.services.count() == 2


def test_an_internal_incident_is_not_on_the_page(client, sre):
    web = on_page("web")
    declare(sre, "Secret database meltdown", "P0", public=False, services_=[web])

    page = client.get("/status/").content.decode()

    assert "Secret database meltdown" not in page
    assert "All systems operational" in page
    row = service_row(page, "web")
    assert "Operational" in row and "100.00% uptime" in row


def test_scheduled_maintenance_comes_from_a_scheduled_production_change(client, developer):
    from changes.services import change_schedule

    policy = ApprovalPolicyFactory(
        name="One approval", min_approvals=1, min_code_owner_approvals=0, required_sign_offs=[]
    )
    production = EnvironmentFactory(name="prod-eu", is_production=True, approval_policy=policy)
    staging = EnvironmentFactory(name="staging-eu", is_production=False, approval_policy=policy)
    api = on_page("api", environments=[production])
    start = (clock.now() + timedelta(days=2)).replace(minute=0, second=0, microsecond=0)
    soon = approved_change(developer, production, title="Rotate the vault master key", services=[api])
    tested = approved_change(developer, staging, title="Try the new vault", services=[api])
    later = approved_change(developer, production, title="Move to the new region", services=[api])
    with transaction.atomic():
        change_schedule(actor=developer, change=soon, start=start, end=start + timedelta(hours=1))
        change_schedule(actor=developer, change=tested, start=start, end=start + timedelta(hours=1))
        far = start + timedelta(days=20)
        change_schedule(actor=developer, change=later, start=far, end=far + timedelta(hours=1))

    page = client.get("/status/").content.decode()

    assert page.count("<strong>Scheduled maintenance</strong>") == 1
    window = f"{start:%a %-d %b %Y, %H:%M}–{start + timedelta(hours=1):%H:%M} UTC"
    assert f"{window} · Affects api" in page
    for internal in (
        "Rotate the vault master key",
        soon.number,
        "Try the new vault",
        "Move to the new region",
    ):
        assert internal not in page


def test_uptime_and_history_come_from_a_resolved_public_p0(client, sre):
    api = on_page("api")
    on_page("web")
    clock.shift(-timedelta(days=10))
    outage = declare(sre, "The API answers 503", "P0", services_=[api])
    clock.shift(timedelta(hours=1))
    inside = declare(sre, "API errors in the EU", "P1", services_=[api])  # within the P0: counted once
    clock.shift(timedelta(hours=1))
    services.incident_resolve(actor=sre, incident=inside)
    hidden = declare(sre, "Internal batch jobs down", "P0", public=False, services_=[api])
    clock.shift(timedelta(hours=19, minutes=36))  # 21 h 36 min in all: 1 % of 90 days
    with transaction.atomic():
        services.incident_note(
            actor=sre, incident=outage, text="We failed over to the standby database.", public=True
        )
    services.incident_resolve(actor=sre, incident=outage, note="Promoted db-2 by hand")
    services.incident_resolve(actor=sre, incident=hidden)
    clock.reset()
    outage.refresh_from_db()

    page = client.get("/status/").content.decode()

    assert "99.00% uptime" in service_row(page, "api")
    assert "100.00% uptime" in service_row(page, "web")
    assert "Operational" in service_row(page, "api")  # resolved: nothing active
    past = page[page.index("Past incidents") :]
    assert "The API answers 503" in past and "API errors in the EU" in past
    assert "We failed over to the standby database." in past and "after 21 h 36 min" in past
    assert "<strong>Resolved</strong> — This incident has been resolved." in past
    assert "Promoted db-2" not in page and "Internal batch jobs down" not in page

    built = status.status_page_build()
    history = {s.name: s for s in built.services}
    down = {d.day for d in history["api"].days if d.state == status.DayState.OUTAGE}
    began, ended = outage.detected_at.astimezone(UTC), outage.resolved_at.astimezone(UTC)
    assert down == {began.date(), ended.date()}
    assert sum((d.downtime for d in history["api"].days), timedelta(0)) == ended - began
    assert len(history["api"].days) == 90 and history["api"].days[-1].day == clock.now().date()
    assert {d.state for d in history["web"].days} == {status.DayState.OPERATIONAL}


def test_subscribers_confirm_receive_public_updates_and_unsubscribe(
    client, sre, eager_tasks, settings, django_capture_on_commit_callbacks
):
    settings.PUBLIC_URL = "https://greenlight.example.com"
    checkout = on_page("checkout")
    ledger = ServiceFactory(name="ledger-internal")

    response = client.post("/status/subscribe/", {"email": " Reader@Example.com "})
    assert response.status_code == 302 and response["Location"] == "/status/?subscribed=1#subscribe"
    assert (
        "a link to confirm the subscription is on its way"
        in client.get(response["Location"]).content.decode()
    )
    subscriber = StatusSubscriber.objects.get()
    assert subscriber.email == "reader@example.com" and subscriber.confirmed_at is None
    confirmation = Notification.objects.get(recipient="reader@example.com")
    assert confirmation.channel == "email" and confirmation.subject == status_subscriptions.CONFIRM_SUBJECT
    sent = re.search(r"https://greenlight\.example\.com(/status/confirm/([^/\s]+)/)", confirmation.body)
    assert sent and sent[2].startswith(f"{subscriber.token}.")  # with when it was sent, signed

    again = client.post("/status/subscribe/", {"email": "reader@example.com"})
    assert again.status_code == 302 and again["Location"] == response["Location"]
    assert (
        Notification.objects.filter(recipient="reader@example.com").count() == 1
    )  # not resent within the hour

    with django_capture_on_commit_callbacks(execute=True):
        declare(sre, "Checkout is slow", "P2", services_=[checkout])
    assert Notification.objects.filter(recipient="reader@example.com").count() == 1  # not confirmed yet

    link = sent[1]
    assert "Confirm my subscription" in client.get(link).content.decode()
    subscriber.refresh_from_db()
    assert subscriber.confirmed_at is None  # following the link alone confirms nothing
    assert "You are subscribed" in client.post(link).content.decode()
    subscriber.refresh_from_db()
    assert subscriber.confirmed_at is not None

    with django_capture_on_commit_callbacks(execute=True):
        incident = declare(sre, "Payments fail at checkout", "P1", services_=[checkout, ledger])
        services.incident_acknowledge(actor=sre, incident=incident, note="db-7 disk full")
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        services.incident_note(
            actor=sre, incident=incident, text="A full disk on the payments database: fixing.", public=True
        )
    mails = Notification.objects.filter(recipient="reader@example.com").exclude(pk=confirmation.pk)
    assert sorted(mails.values_list("subject", flat=True)) == [
        "Investigating: Payments fail at checkout",
        "Update: Payments fail at checkout",
    ]
    update = mails.get(subject__startswith="Update")
    assert "Update: A full disk on the payments database: fixing." in update.body
    assert "Partial outage · Affects checkout\n" in update.body  # not the internal service
    farewell = re.search(
        r"https://greenlight\.example\.com(/status/unsubscribe/[^/\s]+/)", update.body
    ).group(1)
    assert farewell.split("/")[3].startswith(f"{subscriber.token}.")  # with when it was sent, signed
    assert sre.display_name not in update.body
    assert update.status == Notification.Status.LOGGED  # delivered (logged: no mail server here)
    assert not any("db-7" in body or "ledger" in body for body in mails.values_list("body", flat=True))
    said = incident.timeline.filter(kind=TimelineEntry.Kind.LINK, data__has_key="status_update")
    assert [e.text for e in said] == ["Status page update e-mailed to 1 subscriber."] * 2
    assert all(not e.public for e in said)

    entry = incident.timeline.get(kind=TimelineEntry.Kind.NOTE, public=True)
    assert status_update_send.apply(args=[entry.pk]).get() == 0  # sent already: not again
    acknowledged = incident.timeline.get(kind=TimelineEntry.Kind.STATUS)
    assert not acknowledged.public and status_update_send.apply(args=[acknowledged.pk]).get() == 0
    assert mails.count() == 2

    assert "Stop status updates?" in client.get(farewell).content.decode()
    assert "You are unsubscribed" in client.post(farewell).content.decode()
    assert not StatusSubscriber.objects.exists()
    assert client.post(farewell).status_code == 404

    with django_capture_on_commit_callbacks(execute=True):
        services.incident_resolve(actor=sre, incident=incident)
    assert mails.count() == 2

    events = AuditEvent.objects.filter(action__startswith="status_subscriber.").order_by("id")
    assert [e.action for e in events] == [
        "status_subscriber.subscribe",
        "status_subscriber.confirm",
        "status_subscriber.unsubscribe",
    ]
    assert {e.object_repr for e in events} == {"r•••@example.com"}  # the address masked
    assert {e.actor_name for e in events} == {"Greenlight"}


def test_without_a_public_url_the_confirmation_link_is_the_address_asked_through(client, settings):
    settings.PUBLIC_URL = None
    settings.ALLOWED_HOSTS = ["status.example.org"]
    client.post("/status/subscribe/", {"email": "reader@example.com"}, HTTP_HOST="status.example.org")
    token = StatusSubscriber.objects.get().token
    body = Notification.objects.get(recipient="reader@example.com").body
    assert f"http://status.example.org/status/confirm/{token}." in body


def test_a_public_update_is_queued_for_subscribers_only_when_it_commits(
    sre, django_capture_on_commit_callbacks
):
    def told(callbacks) -> int:
        return len([c for c in callbacks if c.__qualname__.startswith("timeline_add.")])

    with django_capture_on_commit_callbacks() as callbacks:
        with pytest.raises(RuntimeError), transaction.atomic():
            declare(sre, "Rolled back with the transaction", "P1")
            raise RuntimeError("rolled back")
        internal = declare(sre, "Internal only", "P1", public=False)
    assert told(callbacks) == 0
    with django_capture_on_commit_callbacks() as callbacks:
        declare(sre, "Search is down", "P1")
    assert told(callbacks) == 1
    assert internal.timeline.filter(public=True).count() == 0


@pytest.mark.parametrize(
    ("email", "said"),
    [
        ("not-an-address", "Enter a valid email address."),
        ("", "Enter your e-mail address."),
        ("a" * 250 + "@example.com", "Ensure this value has at most 254 characters"),
    ],
)
def test_a_bad_address_is_a_400_on_the_page(client, email, said):
    response = client.post("/status/subscribe/", {"email": email})
    assert response.status_code == 400
    page = response.content.decode()
    assert said in page and 'aria-invalid="true"' in page and "Get updates by e-mail" in page
    assert not StatusSubscriber.objects.exists() and not Notification.objects.exists()


def test_an_unknown_link_is_a_404_on_the_status_layout(client):
    for path in ("/status/confirm/no-such-token/", "/status/unsubscribe/no-such-token/"):
        for method in (client.get, client.post):
            response = method(path)
            assert response.status_code == 404 and "This link is not valid" in response.content.decode()


def test_with_the_database_down_the_last_copy_is_served_with_its_time(client, sre):
    web = on_page("web")
    declare(sre, "Checkout fails", "P1", services_=[web])
    assert client.get("/status/").status_code == 200
    kept = status.status_page_kept()
    declare(sre, "Search is slow", "P2", services_=[web])
    status.status_page_forget()  # as the declaration does once it commits

    with connection.execute_wrapper(refused):
        response = client.get("/status/")

    assert response.status_code == 200
    page = response.content.decode()
    assert f"as of {kept.built_at.astimezone(UTC):%a %-d %b %Y, %H:%M} UTC" in page
    assert "Checkout fails" in page and "Search is slow" not in page
    fresh = client.get("/status/").content.decode()
    assert "Search is slow" in fresh and "as of" not in fresh


def test_a_signed_in_person_is_served_the_copy_too_while_the_database_is_down(client, sre):
    from tests.conftest import verified_login

    declare(sre, "Checkout fails", "P1")
    signed_in = verified_login(client, sre)
    assert signed_in.get("/status/").status_code == 200
    status.status_page_forget()
    with connection.execute_wrapper(refused):
        response = signed_in.get("/status/")
    assert response.status_code == 200 and "as of" in response.content.decode()


def test_with_the_database_down_and_no_copy_the_answer_is_a_plain_503(client, sre):
    declare(sre, "Checkout fails", "P1")

    with connection.execute_wrapper(refused):
        response = client.get("/status/")
        subscribing = client.post("/status/subscribe/", {"email": "reader@example.com"})

    assert response.status_code == 503
    assert "The status cannot be read right now." in response.content.decode()
    assert "Checkout fails" not in response.content.decode()
    assert subscribing.status_code == 503


def test_a_slow_database_is_cut_short_and_the_last_copy_served(client, sre, monkeypatch):
    declare(sre, "Checkout fails", "P1")
    with CaptureQueriesContext(connection) as queries:
        assert client.get("/status/").status_code == 200
    assert any("statement_timeout" in q["sql"] for q in queries.captured_queries)
    status.status_page_forget()

    monkeypatch.setattr(status, "STATEMENT_TIMEOUT_MS", 100)

    def slow(execute, sql, params, many, context):
        if sql.lstrip().upper().startswith("SELECT"):
            execute("SELECT pg_sleep(5)", None, False, context)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(slow):
        response = client.get("/status/")

    assert response.status_code == 200
    page = response.content.decode()
    assert "as of" in page and "Checkout fails" in page


def test_the_query_count_stays_flat_as_services_and_incidents_grow(client, developer, sre):
    from changes.services import change_schedule

    policy = ApprovalPolicyFactory(
        name="One approval", min_approvals=1, min_code_owner_approvals=0, required_sign_offs=[]
    )
    production = EnvironmentFactory(name="prod-eu", is_production=True, approval_policy=policy)
    start = (clock.now() + timedelta(days=1)).replace(minute=0, second=0, microsecond=0)

    def grow(n: int, offset: int):
        for i in range(n):
            service = on_page(f"svc-{offset + i}", environments=[production])
            incident = declare(
                sre, f"Trouble {offset + i}", ["P0", "P1", "P2", "P3"][i % 4], services_=[service]
            )
            services.incident_acknowledge(actor=sre, incident=incident, note="Found it.")
            if i % 2:
                services.incident_resolve(actor=sre, incident=incident, note="Fixed.")
            change = approved_change(developer, production, title=f"Change {offset + i}", services=[service])
            slot = start + timedelta(hours=2 * (offset + i))
            with transaction.atomic():
                change_schedule(actor=developer, change=change, start=slot, end=slot + timedelta(hours=1))

    grow(2, 0)
    with CaptureQueriesContext(connection) as few:
        assert client.get("/status/").status_code == 200
    grow(10, 2)
    status.status_page_forget()
    with CaptureQueriesContext(connection) as many:
        page = client.get("/status/").content.decode()
    assert "Trouble 11" in page and page.count("<strong>Scheduled maintenance</strong>") == 12
    assert len(many) == len(few)
    assert len(re.findall(r'class="status-service-name"', page)) >= 12


def test_the_page_is_built_in_a_fixed_number_of_queries(django_assert_max_num_queries, sre):
    web = on_page("web")
    for n in range(5):
        declare(sre, f"Trouble {n}", "P1", services_=[web])
    with django_assert_max_num_queries(10):
        status.status_page_build()


def test_the_kept_page_is_served_while_fresh_and_built_again_after_a_public_update(
    client, sre, eager_tasks, django_capture_on_commit_callbacks
):
    checkout = on_page("checkout")
    incident = declare(sre, "Payments fail at checkout", "P1", services_=[checkout])
    with CaptureQueriesContext(connection) as built:
        assert "Payments fail at checkout" in client.get("/status/").content.decode()
    assert len(built) > 0

    clock.shift(status.FRESH_FOR - timedelta(seconds=2))
    with CaptureQueriesContext(connection) as kept:
        again = client.get("/status/")
    assert again.status_code == 200 and "Payments fail at checkout" in again.content.decode()
    assert len(kept) == 0  # from the cache alone

    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        services.incident_note(actor=sre, incident=incident, text="Card payments work again.", public=True)
    with CaptureQueriesContext(connection) as rebuilt:
        page = client.get("/status/").content.decode()
    assert len(rebuilt) > 0 and "<strong>Update</strong> — Card payments work again." in page

    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        services.incident_note(actor=sre, incident=incident, text="Checking db-7 again.")  # internal
    with CaptureQueriesContext(connection) as kept:
        assert "db-7" not in client.get("/status/").content.decode()
    assert len(kept) == 0

    clock.shift(status.FRESH_FOR)
    with CaptureQueriesContext(connection) as aged:
        client.get("/status/")
    assert len(aged) > 0


def test_a_sixth_subscription_from_one_address_within_the_hour_is_a_429(client):
    for n in range(status_subscriptions.SUBSCRIBE_LIMIT):
        assert client.post("/status/subscribe/", {"email": f"reader{n}@example.com"}).status_code == 302

    refused = client.post("/status/subscribe/", {"email": "late@example.com"})

    assert refused.status_code == 429
    page = refused.content.decode()
    assert "Too many subscriptions were asked for from your network in the last hour." in page
    assert "Get updates by e-mail" in page and 'value="late@example.com"' in page
    wait = int(refused["Retry-After"])
    assert 0 < wait <= 3600
    assert not StatusSubscriber.objects.filter(email="late@example.com").exists()
    assert Notification.objects.count() == status_subscriptions.SUBSCRIBE_LIMIT
    elsewhere = client.post("/status/subscribe/", {"email": "other@example.com"}, REMOTE_ADDR="203.0.113.9")
    assert elsewhere.status_code == 302

    clock.shift(timedelta(seconds=wait))
    assert client.post("/status/subscribe/", {"email": "late@example.com"}).status_code == 302
    assert StatusSubscriber.objects.filter(email="late@example.com").exists()


def test_subscriptions_never_confirmed_are_forgotten_after_seven_days(client, settings):
    for email in ("old@example.com", "kept@example.com"):
        client.post("/status/subscribe/", {"email": email})
    kept = StatusSubscriber.objects.get(email="kept@example.com")
    status_subscriptions.status_subscription_confirm(token=status_subscriptions.confirm_token(kept))
    clock.shift(timedelta(days=6))
    client.post("/status/subscribe/", {"email": "recent@example.com"})
    clock.shift(timedelta(days=1, minutes=1))

    assert status_subscribers_purge.apply().get() == 1
    assert status_subscribers_purge.apply().get() == 0

    assert set(StatusSubscriber.objects.values_list("email", flat=True)) == {
        "kept@example.com",
        "recent@example.com",
    }
    purged = AuditEvent.objects.get(action="status_subscriber.purge")
    assert purged.object_repr == "o•••@example.com" and purged.actor_name == "Greenlight"
    assert (
        settings.CELERY_BEAT_SCHEDULE["status-subscribers-purge"]["task"]
        == "incidents.status_subscribers_purge"
    )


def test_subscriptions_are_counted_per_ipv6_network_not_per_address(client):
    """Rotating through one /64's addresses does not reset the count."""
    for n in range(status_subscriptions.SUBSCRIBE_LIMIT):
        answer = client.post(
            "/status/subscribe/", {"email": f"v6-{n}@example.com"}, REMOTE_ADDR=f"2001:db8::{n + 1}"
        )
        assert answer.status_code == 302
    rotated = client.post(
        "/status/subscribe/", {"email": "v6-late@example.com"}, REMOTE_ADDR="2001:db8::ffff"
    )
    assert rotated.status_code == 429
    other_network = client.post(
        "/status/subscribe/", {"email": "v6-other@example.com"}, REMOTE_ADDR="2001:db8:1::1"
    )
    assert other_network.status_code == 302


def test_a_cache_that_cannot_count_refuses_rather_than_mail_unbounded(client, monkeypatch):
    class Unreachable:
        def add(self, *args, **kwargs):
            raise ConnectionError("Redis is down")

        incr = add

    monkeypatch.setattr(status_subscriptions, "cache", Unreachable())
    refused = client.post("/status/subscribe/", {"email": "reader@example.com"})
    assert refused.status_code == 429 and int(refused["Retry-After"]) == 60
    assert not StatusSubscriber.objects.exists() and not Notification.objects.exists()
