"""Writing a post-mortem: its parts saved and audited, finished once the summary, impact and root
cause are written; action items with an owner, a due date and a state; reminders, once a day, for
an overdue post-mortem and an overdue action item (on the portal's clock, never by sleeping)."""

from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from incidents import services
from incidents.models import ActionItem
from portal import clock
from portal.models import AuditEvent, Notification
from tests.conftest import client_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def postmortem(developer, sre):
    incident = services.incident_declare(actor=developer, title="Checkout fails", severity="P1")
    services.incident_resolve(actor=sre, incident=incident, note="Rolled back")
    return incident.postmortem


WRITTEN = {
    "summary": "Checkout failed for 20 minutes after v1.4.0.",
    "impact": "One order in five failed.",
    "root_cause": "A missing index made the payment query time out.",
}


def test_the_page_shows_the_template_with_the_timeline_filled_in(postmortem, developer):
    page = client_for(developer).get(f"/incidents/{postmortem.incident_id}/postmortem/").content.decode()
    for part in ("Summary", "Impact", "Timeline", "Root cause", "What went well", "What went badly"):
        assert part in page
    assert "P1 declared: Checkout fails" in page and "Save and complete" in page


def test_writing_saves_the_parts_audits_them_and_makes_the_writer_its_author(postmortem, developer):
    response = client_for(developer).post(f"/incidents/{postmortem.incident_id}/postmortem/", WRITTEN)
    assert response.status_code == 302
    postmortem.refresh_from_db()
    assert (postmortem.summary, postmortem.root_cause, postmortem.author) == (
        WRITTEN["summary"],
        WRITTEN["root_cause"],
        developer,
    )
    assert postmortem.completed_at is None and postmortem.timeline  # the timeline was kept, not blanked
    event = AuditEvent.objects.get(action="postmortem.write")
    assert event.after["impact"] == WRITTEN["impact"] and event.before["impact"] == ""


def test_it_is_completed_only_once_its_summary_impact_and_root_cause_are_written(postmortem, developer):
    url = f"/incidents/{postmortem.incident_id}/postmortem/"
    early = client_for(developer).post(url, {"summary": "Checkout failed.", "complete": "1"})
    assert early.status_code == 400
    assert "Write the impact, root cause before completing" in early.content.decode()
    postmortem.refresh_from_db()
    assert postmortem.completed_at is None and postmortem.summary == ""  # nothing half-written

    done = client_for(developer).post(url, {**WRITTEN, "complete": "1"})
    assert done.status_code == 302
    postmortem.refresh_from_db()
    assert postmortem.completed_at is not None and postmortem.author == developer
    incident = postmortem.incident
    assert incident.timeline.last().text == f"Post-mortem completed by {developer.display_name}."
    assert Notification.objects.filter(
        channel="slack", recipient="#incidents", subject=f"Post-mortem of {incident.number} completed"
    ).exists()
    with pytest.raises(services.IncidentRefused, match="completed already"):
        services.postmortem_complete(actor=developer, postmortem=postmortem)


def test_those_who_only_read_may_not_write_it(postmortem, auditor):
    page = client_for(auditor).get(f"/incidents/{postmortem.incident_id}/postmortem/").content.decode()
    assert "Save and complete" not in page
    assert (
        client_for(auditor).post(f"/incidents/{postmortem.incident_id}/postmortem/", WRITTEN).status_code
        == 403
    )
    with pytest.raises(PermissionDenied):
        services.postmortem_write(actor=auditor, postmortem=postmortem, summary="Mine")


def test_an_action_item_has_an_owner_who_is_told_and_a_due_date_not_in_the_past(postmortem, developer, qa):
    url = f"/incidents/{postmortem.incident_id}/postmortem/items/"
    past = (clock.now().date() - timedelta(days=1)).isoformat()
    refused = client_for(developer).post(url, {"title": "Add the index", "owner": qa.pk, "due_on": past})
    assert refused.status_code == 400 and "the due date is in the past" in refused.content.decode()
    assert not ActionItem.objects.exists()

    due = (clock.now().date() + timedelta(days=7)).isoformat()
    assert (
        client_for(developer).post(url, {"title": "Add the index", "owner": qa.pk, "due_on": due}).status_code
        == 302
    )
    item = ActionItem.objects.get()
    assert (item.title, item.owner, item.state, item.due_on.isoformat()) == ("Add the index", qa, "open", due)
    told = Notification.objects.get(channel="email", recipient=qa.email)
    assert "Add the index" in told.body and postmortem.incident.number in told.subject
    assert AuditEvent.objects.filter(action="postmortem.action_item_add").count() == 1


def test_its_owner_or_an_sre_closes_an_action_item_and_nobody_else(postmortem, developer, qa, sre):
    item = services.action_item_add(
        actor=developer, postmortem=postmortem, title="Add the index", owner=qa, due_on=clock.now().date()
    )
    url = f"/incidents/{postmortem.incident_id}/postmortem/items/{item.pk}/"
    assert client_for(developer).post(url, {"state": "done"}).status_code == 403
    assert client_for(qa).post(url, {"state": "done"}).status_code == 302
    item.refresh_from_db()
    assert item.state == "done" and item.closed_at is not None
    services.action_item_set_state(actor=sre, item=item, state="open")
    item.refresh_from_db()
    assert item.state == "open" and item.closed_at is None
    with pytest.raises(ValidationError, match="one of open, done, dropped"):
        services.action_item_set_state(actor=sre, item=item, state="finished")
    states = [
        e.after["state"]
        for e in AuditEvent.objects.filter(action="postmortem.action_item_state").order_by("pk")
    ]
    assert states == ["done", "open"]


def test_an_overdue_post_mortem_is_reminded_once_a_day_until_it_is_completed(postmortem, developer, sre):
    from incidents.tasks import postmortems_remind

    services.postmortem_write(actor=developer, postmortem=postmortem, summary="Checkout failed.")
    assert postmortems_remind() == 0  # not due yet
    clock.shift(timedelta(hours=48, minutes=1))
    assert postmortems_remind() == 1
    assert postmortems_remind() == 0  # once a day
    subject = f"The post-mortem of {postmortem.incident.number} is overdue"
    assert (
        Notification.objects.filter(channel="email", recipient=developer.email, subject=subject).count() == 1
    )
    assert Notification.objects.filter(channel="slack", recipient="#incidents", subject=subject).count() == 1

    clock.shift(timedelta(hours=24))
    assert postmortems_remind() == 1
    services.postmortem_write(actor=developer, postmortem=postmortem, **WRITTEN)
    services.postmortem_complete(actor=developer, postmortem=postmortem)
    clock.shift(timedelta(hours=24))
    assert postmortems_remind() == 0


def test_an_overdue_action_item_reminds_its_owner_once_a_day(postmortem, developer, qa):
    item = services.action_item_add(
        actor=developer, postmortem=postmortem, title="Add the index", owner=qa, due_on=clock.now().date()
    )
    services.postmortem_write(actor=developer, postmortem=postmortem, **WRITTEN)
    services.postmortem_complete(actor=developer, postmortem=postmortem)
    assert services.postmortems_remind() == 0  # due today: not late yet
    clock.shift(timedelta(days=1, hours=1))
    assert services.postmortems_remind() == 1 and services.postmortems_remind() == 0
    subject = f"Overdue action item from the post-mortem of {postmortem.incident.number}"
    assert Notification.objects.filter(channel="email", recipient=qa.email, subject=subject).count() == 1
    services.action_item_set_state(actor=qa, item=item, state="done")
    clock.shift(timedelta(days=2))
    assert services.postmortems_remind() == 0


def test_the_api_reads_writes_and_completes_it_with_action_items(postmortem, developer, qa):
    api = client_for(developer)
    url = f"/api/v1/incidents/{postmortem.incident_id}/postmortem/"
    assert api.get(url).json()["incident"] == postmortem.incident.number
    early = api.patch(url, {"summary": "Checkout failed.", "complete": True}, format="json")
    assert early.status_code == 400 and "Write the impact, root cause" in str(early.json())
    postmortem.refresh_from_db()
    assert postmortem.summary == ""  # nothing half-written

    added = api.post(
        f"{url}action-items/",
        {"title": "Add the index", "owner": qa.username, "due_on": "2099-01-01"},
        format="json",
    )
    assert added.status_code == 201 and added.json()["owner"] == qa.username
    done = api.patch(url, {**WRITTEN, "complete": True}, format="json")
    assert (
        done.status_code == 200
        and done.json()["completed_at"]
        and done.json()["author"] == developer.username
    )
    assert [i["title"] for i in done.json()["action_items"]] == ["Add the index"]
    assert api.patch(url, {"complete": True}, format="json").status_code == 409

    item = added.json()["id"]
    refused = api.patch(f"{url}action-items/{item}/", {"state": "done"}, format="json")
    assert refused.status_code == 403
    closed = client_for(qa).patch(f"{url}action-items/{item}/", {"state": "done"}, format="json")
    assert closed.status_code == 200 and closed.json()["state"] == "done"


def test_an_incident_that_owes_no_post_mortem_has_none(developer, sre):
    incident = services.incident_declare(actor=developer, title="Slow search", severity="P3")
    services.incident_resolve(actor=sre, incident=incident)
    assert client_for(developer).get(f"/api/v1/incidents/{incident.pk}/postmortem/").status_code == 404
    assert client_for(developer).get(f"/incidents/{incident.pk}/postmortem/").status_code == 404


def test_a_completed_post_mortem_keeps_its_summary_impact_and_root_cause(postmortem, developer):
    services.postmortem_save(actor=developer, postmortem=postmortem, complete=True, **WRITTEN)
    with pytest.raises(ValidationError, match="completed: its impact stays written"):
        services.postmortem_write(actor=developer, postmortem=postmortem, impact=" ")
    services.postmortem_write(actor=developer, postmortem=postmortem, went_well="The rollback was quick.")
    postmortem.refresh_from_db()
    assert postmortem.impact == WRITTEN["impact"] and postmortem.went_well == "The rollback was quick."
    first = AuditEvent.objects.filter(action="postmortem.write").order_by("pk").first()
    assert first.after["author"] == developer.username


def test_a_state_an_action_item_cannot_have_is_a_400_and_changes_nothing(postmortem, developer, qa):
    item = services.action_item_add(
        actor=developer, postmortem=postmortem, title="Add the index", owner=qa, due_on=clock.now().date()
    )
    url = f"/incidents/{postmortem.incident_id}/postmortem/items/{item.pk}/"
    response = client_for(qa).post(url, {"state": "finished"})
    assert response.status_code == 400 and "Choose open, done or dropped." in response.content.decode()
    item.refresh_from_db()
    assert item.state == "open"


def test_those_who_only_read_may_not_add_action_items_or_write_through_the_api(postmortem, auditor, qa):
    url = f"/api/v1/incidents/{postmortem.incident_id}/postmortem/"
    assert client_for(auditor).patch(url, {"summary": "Mine"}, format="json").status_code == 403
    added = client_for(auditor).post(
        f"{url}action-items/",
        {"title": "Add the index", "owner": qa.username, "due_on": "2099-01-01"},
        format="json",
    )
    assert added.status_code == 403
    postmortem.refresh_from_db()
    assert postmortem.summary == "" and not ActionItem.objects.exists()
