"""Comments on a change: one level of threading, and @mentions that e-mail the person mentioned."""

import pytest

from changes.models import Comment
from portal.models import AuditEvent, Notification
from tests.conftest import client_for
from tests.factories import EnvironmentFactory, ServiceFactory, UserFactory, change_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def change(developer):
    return change_create(developer, environment=EnvironmentFactory(), services=[ServiceFactory()])


def comment(change, by, body: str, parent: int | None = None):
    return client_for(by).post(
        f"/api/v1/changes/{change.pk}/comments/", {"body": body, "parent": parent}, format="json"
    )


def mentions(username: str):
    return Notification.objects.filter(
        channel="email", recipient=f"{username}@example.com", subject__contains="mentioned you"
    )


def test_comment_posted_and_listed_under_the_change(change, developer, qa):
    response = comment(change, qa, "Is the queue drained before the switch?")

    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["author"], body["parent"], body["body"]) == (
        "qa",
        None,
        "Is the queue drained before the switch?",
    )
    listed = client_for(developer).get(f"/api/v1/changes/{change.pk}/comments/").json()
    assert [(c["id"], c["author"]) for c in listed] == [(body["id"], "qa")]
    (event,) = AuditEvent.objects.filter(action="change.comment", object_id=str(change.pk))
    assert event.actor_id == qa.pk and event.after == {"comment": body["id"], "parent": None, "mentions": []}


def test_comment_reply_is_threaded_under_its_parent(change, developer, qa):
    question = comment(change, qa, "Drained first?").json()

    reply = comment(change, developer, "Yes, it drains by itself.", parent=question["id"]).json()
    nested = comment(change, qa, "Thanks.", parent=reply["id"]).json()

    assert reply["parent"] == question["id"]
    assert nested["parent"] == question["id"]  # one level, as in a review thread
    listed = client_for(qa).get(f"/api/v1/changes/{change.pk}/comments/").json()
    assert [(c["body"], c["parent"]) for c in listed] == [
        ("Drained first?", None),
        ("Yes, it drains by itself.", question["id"]),
        ("Thanks.", question["id"]),
    ]


def test_comment_reply_to_a_comment_of_another_change_is_refused(change, developer):
    elsewhere = comment(change_create(developer), developer, "Elsewhere.").json()

    response = comment(change, developer, "Misplaced reply.", parent=elsewhere["id"])

    assert response.status_code == 400
    assert "same change" in response.json()["detail"]
    assert not Comment.objects.filter(change=change).exists()


def test_comment_mention_emails_the_person_mentioned(change, developer):
    UserFactory(username="bo")
    UserFactory(username="cy", email="")

    response = comment(change, developer, "@bo and @cy, can you look? cc @dev @nobody")

    assert response.status_code == 201, response.json()
    (told,) = mentions("bo")
    assert told.subject.endswith(f"mentioned you on {change.number}")
    assert told.body == "@bo and @cy, can you look? cc @dev @nobody"
    assert not mentions("dev").exists()  # not the author
    assert Notification.objects.filter(subject__contains="mentioned you").count() == 1  # cy has no e-mail
    event = AuditEvent.objects.get(action="change.comment")
    assert sorted(event.after["mentions"]) == ["bo", "cy"]


def test_comment_mention_at_the_end_of_a_sentence_emails_the_person(change, developer):
    UserFactory(username="bo")

    comment(change, developer, "Over to you, @bo.")

    assert mentions("bo").count() == 1


@pytest.mark.parametrize("body", ["", "   ", None])
def test_comment_with_an_empty_body_is_refused(change, developer, body):
    response = client_for(developer).post(
        f"/api/v1/changes/{change.pk}/comments/", {} if body is None else {"body": body}, format="json"
    )

    assert response.status_code == 400
    assert "body" in response.json()["errors"]
    assert not Comment.objects.exists()


def test_comment_is_refused_to_an_auditor_who_may_still_read(change, auditor, developer):
    comment(change, developer, "For the record.")

    response = comment(change, auditor, "Noted.")

    assert response.status_code == 403
    assert [c["body"] for c in client_for(auditor).get(f"/api/v1/changes/{change.pk}/comments/").json()] == [
        "For the record."
    ]
