"""Incident measures: TTD, TTA and TTR of each incident against their targets, on the list and in
the API; the report per severity (median, 90th percentile, share within target) as a page and as
`GET /api/v1/incidents/measures/`; the overview's open incidents and overdue post-mortems; rights,
bad input and flat query counts."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from incidents import services
from incidents.measures import duration_in_words, incident_measures, percentile
from incidents.models import Incident, IncidentStatus, PostMortem
from incidents.selectors import incident_report
from portal import clock, roles
from portal.roles import Right, Role
from tests.conftest import client_for, verified_login
from tests.factories import IncidentFactory

pytestmark = pytest.mark.django_db

MINUTE = timedelta(minutes=1)


@pytest.fixture
def signed_in(client):
    def sign_in(user):
        return verified_login(client, user)

    return sign_in


@pytest.fixture
def without_incident_view(monkeypatch):
    """Developers' role as an organisation might set it: without the right to view incidents."""
    monkeypatch.setitem(roles.MATRIX, Role.DEVELOPER, roles.MATRIX[Role.DEVELOPER] - {Right.INCIDENT_VIEW})


def measured(incident: Incident):
    incident.refresh_from_db()
    return incident_measures(incident, clock.now())


def incident_at(severity="P1", *, detected, started=None, acknowledged=None, resolved=None) -> Incident:
    """An incident with known times (minutes after its detection for the steps)."""
    status = IncidentStatus.TRIGGERED
    if acknowledged is not None:
        status = IncidentStatus.ACKNOWLEDGED
    if resolved is not None:
        status = IncidentStatus.RESOLVED
    return IncidentFactory(
        severity=severity,
        status=status,
        created_at=detected,
        detected_at=detected,
        started_at=started,
        acknowledged_at=None if acknowledged is None else detected + acknowledged * MINUTE,
        resolved_at=None if resolved is None else detected + resolved * MINUTE,
    )


# One incident, on the portal clock


def test_a_p1_acknowledged_in_10_minutes_and_resolved_in_40_meets_its_targets(developer, sre):
    incident = services.incident_declare(actor=developer, title="Checkout fails", severity="P1")
    clock.shift(10 * MINUTE)
    services.incident_acknowledge(actor=sre, incident=incident)
    clock.shift(30 * MINUTE)
    services.incident_resolve(actor=sre, incident=incident)

    m = measured(incident)
    assert (m.ttd.seconds, m.tta.seconds, m.ttr.seconds) == (0, 600, 2400)
    assert (m.ttd.met, m.tta.met, m.ttr.met) == (True, True, True)
    assert not m.tta.running and not m.ttr.running
    assert (m.tta.words, m.ttr.words) == ("10 min", "40 min")


def test_a_p1_resolved_in_70_minutes_misses_its_resolve_target(developer, sre):
    incident = services.incident_declare(actor=developer, title="Checkout fails", severity="P1")
    clock.shift(70 * MINUTE)
    services.incident_resolve(actor=sre, incident=incident)

    m = measured(incident)
    assert (m.ttr.seconds, m.ttr.met, m.ttr.words) == (4200, False, "1 h 10 min")
    # Resolved without an acknowledgement: the resolution was its answer, 70 minutes late for a P1.
    assert (m.tta.seconds, m.tta.met) == (4200, False)


def test_an_open_incident_runs_to_now_and_misses_once_past_its_target(developer):
    incident = services.incident_declare(actor=developer, title="Database down", severity="P0")
    clock.shift(3 * MINUTE)
    m = measured(incident)
    assert (m.tta.seconds, m.tta.running, m.tta.met) == (180, True, None)
    assert (m.ttr.running, m.ttr.met) == (True, None)

    clock.shift(3 * MINUTE)
    m = measured(incident)
    assert (m.tta.seconds, m.tta.running, m.tta.met) == (360, True, False)  # P0: 5 minutes, passed
    assert m.ttr.met is None  # an hour not yet up


def test_a_p2_has_no_resolve_target_however_long_it_takes(developer, sre):
    incident = services.incident_declare(actor=developer, title="Slow search", severity="P2")
    clock.shift(timedelta(days=3))
    services.incident_resolve(actor=sre, incident=incident)
    m = measured(incident)
    assert (m.ttr.seconds, m.ttr.target, m.ttr.met, m.ttr.missed) == (3 * 86400, None, None, False)


def test_ttd_runs_from_when_the_alarm_says_the_trouble_began():
    alarm_time = clock.now() - 7 * MINUTE
    late = services.incident_declare(
        actor=None,
        title="5xx on web",
        severity="P1",
        source=Incident.Source.ALARM,
        alarm="prod-web-5xx",
        started_at=alarm_time,
    )
    early = services.incident_declare(
        actor=None,
        title="Latency on api",
        severity="P2",
        source=Incident.Source.ALARM,
        alarm="prod-api-p99",
        started_at=clock.now() - 3 * MINUTE,
    )
    assert (measured(late).ttd.seconds // 60, measured(late).ttd.met) == (7, False)
    assert (measured(early).ttd.seconds // 60, measured(early).ttd.met) == (3, True)


@pytest.mark.parametrize(
    "seconds, words",
    [
        (0, "0 s"),
        (45, "45 s"),
        (240, "4 min"),
        (299, "4 min"),
        (3600, "1 h"),
        (4320, "1 h 12 min"),
        (90000, "1 d 1 h"),
        (None, "—"),
    ],
)
def test_durations_read_in_words(seconds, words):
    assert duration_in_words(seconds) == words


def test_percentiles_are_linear_between_the_nearest_ranks():
    assert percentile([20, 30, 40, 50, 70], 0.5) == 40
    assert percentile([20, 30, 40, 50, 70], 0.9) == pytest.approx(62)
    assert percentile([], 0.5) is None


# The list and the API's incident


def test_the_list_shows_ttd_tta_ttr_with_a_missed_one_standing_out(signed_in, developer, sre):
    incident = services.incident_declare(actor=developer, title="Checkout fails", severity="P1")
    clock.shift(72 * MINUTE)
    services.incident_resolve(actor=sre, incident=incident)

    page = signed_in(sre).get("/incidents/").content.decode()
    assert "<th" in page and ">TTD</th>" in page and ">TTA</th>" in page and ">TTR</th>" in page
    assert 'class="measure met" title="target &lt; 5 min: met">0 s</td>' in page
    assert (
        'class="measure missed" title="target &lt; 1 h: missed">1 h 12 min<br><small>missed</small></td>'
        in page
    )
    assert 'href="/incidents/report/"' in page


def test_the_api_gives_each_incident_its_measures(developer, sre):
    incident = services.incident_declare(actor=developer, title="Checkout fails", severity="P1")
    clock.shift(20 * MINUTE)
    services.incident_acknowledge(actor=sre, incident=incident)

    body = client_for(developer).get(f"/api/v1/incidents/{incident.pk}/").json()
    # Still running, the time to resolve is counted up to the request: the seconds the machine took
    # since the declaration are in it too.
    running = (clock.now() - incident.detected_at).total_seconds()
    assert 1200 <= body["measures"].pop("ttr_seconds") <= running
    assert body["measures"] == {
        "ttd_seconds": 0,
        "tta_seconds": 1200,
        "ttd_met": True,
        "tta_met": False,
        "ttr_met": None,
        "tta_running": False,
        "ttr_running": True,
    }
    listed = client_for(developer).get("/api/v1/incidents/").json()["results"]
    assert listed[0]["measures"]["tta_met"] is False


# The report


@pytest.fixture
def period():
    """Seven incidents in the last 30 days and one before: five P1s resolved in 20, 30, 40, 50 and
    70 minutes, an open P1 three hours old, a P3 resolved in three days."""
    now = clock.now()
    day = timedelta(days=1)
    incident_at(detected=now - day, started=now - day - 2 * MINUTE, acknowledged=5, resolved=20)
    incident_at(detected=now - 2 * day, acknowledged=10, resolved=30)
    incident_at(detected=now - 3 * day, started=now - 3 * day - 10 * MINUTE, acknowledged=20, resolved=40)
    incident_at(detected=now - 4 * day, acknowledged=12, resolved=50)
    incident_at(detected=now - 5 * day, acknowledged=14, resolved=70)
    incident_at(detected=now - timedelta(hours=3), acknowledged=1)
    incident_at("P3", detected=now - 6 * day, acknowledged=120, resolved=3 * 24 * 60)
    incident_at(detected=now - 40 * day, acknowledged=200, resolved=300)  # before the period


def test_the_report_gives_each_severity_its_median_p90_and_share_within_target(period, developer):
    report = incident_report(developer, days=30, now=clock.now())
    rows = {row.severity: row for row in report.rows}
    assert [row.severity for row in report.rows] == ["P0", "P1", "P2", "P3"]
    assert (rows["P0"].incidents, rows["P1"].incidents, rows["P3"].incidents) == (0, 6, 1)

    ttr = rows["P1"].ttr
    assert (ttr.finished, ttr.running) == (5, 1)
    assert (ttr.median_seconds, ttr.median_met) == (40 * 60, True)
    assert (ttr.p90_seconds, ttr.p90_met) == (62 * 60, False)
    assert (ttr.met, ttr.missed) == (4, 2)  # the open one, three hours in, has missed already
    assert ttr.within_target == pytest.approx(4 / 6)

    tta = rows["P1"].tta
    assert (tta.median_seconds, tta.p90_seconds, tta.p90_met) == (11 * 60, 17 * 60, False)
    assert (tta.met, tta.missed) == (5, 1)
    ttd = rows["P1"].ttd
    assert (ttd.median_seconds, ttd.p90_seconds, ttd.p90_met, ttd.met) == (0, 360, False, 5)

    p3 = rows["P3"]
    assert (p3.tta.median_seconds, p3.tta.met) == (120 * 60, 1)
    assert (p3.ttr.median_seconds, p3.ttr.target, p3.ttr.within_target) == (3 * 86400, None, None)
    assert rows["P0"].ttr.median is None and rows["P0"].ttr.within_target is None

    total = report.total
    assert total.incidents == 7
    assert (total.ttd.p90_seconds, total.ttd.p90_met, total.ttd.met) == (312, False, 6)
    assert (total.tta.target, total.tta.met, total.tta.missed) == (None, 6, 1)
    assert (total.ttr.met, total.ttr.missed) == (4, 2)


def test_the_report_counts_only_the_period_asked(period, developer):
    assert incident_report(developer, days=3, now=clock.now()).total.incidents == 3
    assert incident_report(developer, days=365, now=clock.now()).total.incidents == 8


def test_the_measures_api_gives_the_report(period, developer):
    response = client_for(developer).get("/api/v1/incidents/measures/")
    assert response.status_code == 200
    body = response.json()
    assert body["days"] == 30 and body["total"]["incidents"] == 7
    p1 = next(row for row in body["severities"] if row["severity"] == "P1")
    assert p1["ttr"] == {
        "target_seconds": 3600,
        "finished": 5,
        "running": 1,
        "median_seconds": 2400,
        "p90_seconds": 3720,
        "median_met": True,
        "p90_met": False,
        "met": 4,
        "missed": 2,
        "within_target": pytest.approx(4 / 6),
    }
    p3 = next(row for row in body["severities"] if row["severity"] == "P3")
    assert (p3["ttr"]["target_seconds"], p3["ttr"]["within_target"]) == (None, None)
    assert client_for(developer).get("/api/v1/incidents/measures/?days=3").json()["total"]["incidents"] == 3
    assert client_for(developer).get("/api/v1/incidents/measures/").json()["days"] == 30
    assert client_for(developer).get("/api/v1/incidents/measures/?days=").status_code == 400


@pytest.mark.parametrize("days", ["abc", "0", "366", "-5", "2.5"])
def test_the_measures_api_refuses_a_bad_period_with_a_400(developer, days):
    response = client_for(developer).get(f"/api/v1/incidents/measures/?days={days}")
    assert response.status_code == 400
    assert response.json()["detail"].startswith("days: ")


def test_the_report_page_shows_each_severity_against_its_target(period, signed_in, developer):
    response = signed_in(developer).get("/incidents/report/")
    assert response.status_code == 200
    page = response.content.decode()
    assert "the last 30 days" in page
    p1 = page.split('id="severity-P1"')[1].split("</tr>")[0]
    assert '<td class="measure">40 min</td>' in p1  # the median TTR, within the hour
    assert '<td class="measure missed">1 h 2 min</td>' in p1  # its 90th percentile, past it
    assert '67 %<br><small class="muted">4 of 6, target &lt; 1 h, 1 running</small>' in p1
    p2 = page.split('id="severity-P2"')[1].split("</tr>")[0]
    assert "no target" in p2
    assert "the last 3 days" in signed_in(developer).get("/incidents/report/?days=3").content.decode()


@pytest.mark.parametrize("days", ["abc", "0", "400"])
def test_the_report_page_refuses_a_bad_period_with_a_400(signed_in, developer, days):
    response = signed_in(developer).get(f"/incidents/report/?days={days}")
    assert response.status_code == 400
    assert 'class="error"' in response.content.decode()


def test_without_the_right_to_view_incidents_the_report_is_a_403(without_incident_view, signed_in, developer):
    api = client_for(developer).get("/api/v1/incidents/measures/")
    assert api.status_code == 403 and "incident.view" in api.json()["detail"]
    assert signed_in(developer).get("/incidents/report/").status_code == 403


# The overview


def test_the_overview_shows_open_incidents_and_an_overdue_post_mortem_standing_out(signed_in, developer, sre):
    resolved = services.incident_declare(actor=developer, title="Checkout fails", severity="P1")
    services.incident_resolve(actor=sre, incident=resolved)
    open_one = services.incident_declare(actor=developer, title="Slow search", severity="P2")
    client = signed_in(developer)

    page = client.get("/").content.decode()
    assert 'id="postmortems-overdue"' not in page  # due in 48 hours
    assert 'id="open-incidents"' in page and open_one.number in page

    clock.shift(timedelta(hours=49))
    page = client.get("/").content.decode()
    block = page.split('id="postmortems-overdue"')[1].split("</section>")[0]
    assert f'<a href="/incidents/{resolved.pk}/">{resolved.number}</a> Checkout fails' in block
    assert '<span class="badge overdue">1 h overdue</span>' in block
    open_rows = page.split('id="open-incidents"')[1].split("</section>")[0]
    assert open_one.number in open_rows and resolved.number not in open_rows
    assert ">2 d 1 h</time>" in open_rows


def test_the_overview_shows_no_incidents_to_someone_without_the_right(
    without_incident_view, signed_in, developer, sre
):
    incident = services.incident_declare(actor=sre, title="Checkout fails", severity="P1")
    services.incident_resolve(actor=sre, incident=incident)
    services.incident_declare(actor=sre, title="Slow search", severity="P2")
    clock.shift(timedelta(hours=49))
    response = signed_in(developer).get("/")
    page = response.content.decode()
    assert response.status_code == 200 and "My work" in page
    assert "postmortems-overdue" not in page and "open-incidents" not in page
    assert "Checkout fails" not in page and "Slow search" not in page


# Query counts


def incidents_with_overdue_postmortems(count: int) -> None:
    now = clock.now()
    for n in range(count):
        incident = incident_at(
            ["P0", "P1", "P2", "P3"][n % 4],
            detected=now - timedelta(days=3, minutes=n),
            started=now - timedelta(days=3, minutes=n + 2),
            acknowledged=4,
            resolved=50 + n,
        )
        PostMortem.objects.create(incident=incident, due_at=now - timedelta(hours=1, minutes=n))
        incident_at(["P1", "P2"][n % 2], detected=now - timedelta(hours=n + 1))  # still open


@pytest.mark.parametrize(
    "path", ["/", "/incidents/", "/incidents/report/", "/api/v1/incidents/measures/?days=30"]
)
def test_queries_stay_flat_as_incidents_grow(path, sre, django_assert_max_num_queries):
    client = client_for(sre)
    incidents_with_overdue_postmortems(5)
    client.get(path)  # the person's capacities and authenticator are cached from the first request on
    with CaptureQueriesContext(connection) as few:
        assert client.get(path).status_code == 200
    incidents_with_overdue_postmortems(45)
    with django_assert_max_num_queries(len(few)):
        response = client.get(path)
    assert response.status_code == 200
    if path.startswith("/api/"):
        assert response.json()["total"]["incidents"] == 100
