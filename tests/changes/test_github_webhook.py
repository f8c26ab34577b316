"""GitHub's webhook: only events signed with the shared secret count; a check run updates the
checks of the changes that name its pull request, and the deploy gate follows them."""

import hashlib
import hmac
import json
from datetime import timedelta

import pytest
from rest_framework.test import APIClient

from changes.models import CheckRun, PullRequest
from changes.selectors import change_detail, change_quorum, deploy_gates
from portal import clock
from portal.models import AuditEvent, InboundDelivery
from tests.factories import change_create

pytestmark = pytest.mark.django_db

SECRET = "webhook-secret-for-tests"


@pytest.fixture(autouse=True)
def _secret(settings):
    settings.GITHUB_WEBHOOK_SECRET = SECRET


def deliver(
    payload: dict,
    *,
    event: str = "check_run",
    secret: str = SECRET,
    signature: str | None = None,
    delivery: str = "",
):
    body = json.dumps(payload).encode()
    signed = (
        signature
        if signature is not None
        else "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    )
    return APIClient().post(
        "/api/v1/webhooks/github/",
        body,
        content_type="application/json",
        HTTP_X_GITHUB_EVENT=event,
        HTTP_X_HUB_SIGNATURE_256=signed,
        **({"HTTP_X_GITHUB_DELIVERY": delivery} if delivery else {}),
    )


def reads_asked(enqueued: list) -> list[int]:
    """The changes whose repository read the commit callbacks would enqueue (the caches' generation
    bumps are callbacks too)."""
    return [c.__defaults__[0] for c in enqueued if getattr(c, "__defaults__", None)]


def check_run(
    name: str, status: str = "completed", conclusion: str | None = "success", number: int = 42
) -> dict:
    return {
        "action": "completed",
        "check_run": {
            "name": name,
            "status": status,
            "conclusion": conclusion,
            "head_sha": "a" * 40,
            "html_url": f"https://github.com/acme/web/runs/{name}",
            "pull_requests": [{"number": number}],
        },
    }


def checks_gate(change, viewer) -> dict:
    detail = change_detail(viewer, change.pk)
    return next(g for g in deploy_gates(detail, change_quorum(detail)) if g["name"] == "Automated checks")


def test_a_signed_check_run_updates_the_change_that_names_its_pull_request(developer):
    change = change_create(developer, pull_request="https://github.com/acme/web/pull/42")
    other = change_create(developer, pull_request="43")
    nothing_yet = checks_gate(change, developer)
    assert nothing_yet["state"] == "blocked"
    assert nothing_yet["detail"] == "no check has reported on the pull request yet"
    assert deliver(check_run("tests", status="in_progress", conclusion=None)).status_code == 202
    assert checks_gate(change, developer)["detail"] == "still running: tests"
    deliver(check_run("tests"))
    deliver(check_run("lint", conclusion="failure"))
    assert checks_gate(change, developer) == {
        "name": "Automated checks",
        "state": "blocked",
        "detail": "failing: lint",
    }
    deliver(check_run("lint"))
    assert checks_gate(change, developer) == {
        "name": "Automated checks",
        "state": "ok",
        "detail": "2 check(s) passed",
    }
    assert not CheckRun.objects.filter(change=other).exists()
    events = AuditEvent.objects.filter(object_id=str(change.pk), action="change.check_run")
    assert events.count() == 4
    deliver(check_run("lint"))  # the same state again: nothing new
    assert events.count() == 4


def test_a_delivery_sent_again_is_acted_on_once_and_a_failed_one_is_not_kept(developer):
    """GitHub redelivers by the same `X-GitHub-Delivery`: the second is answered without acting.
    A delivery refused as malformed keeps nothing, so the same id sent again whole is acted on."""
    change = change_create(developer, pull_request="42")
    failing = check_run("lint", conclusion="failure")
    assert deliver(failing, delivery="d-1").status_code == 202
    passing = check_run("lint")
    again = deliver(passing, delivery="d-1")  # a forged replay under the id of one taken
    assert again.status_code == 200 and again.json()["detail"] == "Event already received."
    assert checks_gate(change, developer)["detail"] == "failing: lint"
    assert deliver({"check_run": "not an object"}, delivery="d-2").status_code == 400
    assert deliver(passing, delivery="d-2").status_code == 202
    assert checks_gate(change, developer)["state"] == "ok"
    kept = InboundDelivery.objects.filter(source="github").order_by("pk")
    assert [(d.delivery_id, d.kind) for d in kept] == [("d-1", "check_run"), ("d-2", "check_run")]


def test_a_delivery_id_longer_than_github_s_is_a_400_and_changes_nothing(developer):
    change = change_create(developer, pull_request="42")
    response = deliver(check_run("lint"), delivery="d" * 201)
    assert response.status_code == 400 and "X-GitHub-Delivery" in response.json()["detail"]
    assert not InboundDelivery.objects.exists() and not CheckRun.objects.filter(change=change).exists()


def test_a_check_run_naming_no_pull_request_counts_for_the_changes_at_its_commit(developer):
    """GitHub names no pull request for a check run on a push or on a fork's branch, and a
    repository on disk has none to name: the check is of the commit, and counts for the changes
    whose branch was read at it (once for a change that its pull request names too)."""
    at_head = change_create(developer)
    named_too = change_create(developer, pull_request="42")
    elsewhere = change_create(developer)
    for change, head in ((at_head, "a"), (named_too, "a"), (elsewhere, "b")):
        PullRequest.objects.create(change=change, head_sha=head * 40, read_at=clock.now())
    unnamed = check_run("tests")
    unnamed["check_run"]["pull_requests"] = []
    assert deliver(unnamed).status_code == 202
    assert deliver(check_run("lint")).status_code == 202  # names #42 and is at its head
    assert checks_gate(at_head, developer) == {
        "name": "Automated checks",
        "state": "ok",
        "detail": "2 check(s) passed",
    }
    assert sorted(CheckRun.objects.filter(change=named_too).values_list("name", flat=True)) == [
        "lint",
        "tests",
    ]
    assert not CheckRun.objects.filter(change=elsewhere).exists()
    events = AuditEvent.objects.filter(object_id=str(named_too.pk), action="change.check_run")
    assert events.count() == 2


@pytest.mark.parametrize("signature", ["", "sha256=" + "0" * 64, "sha1=abc", "sha256=\u00fc"])
def test_an_event_without_the_right_signature_is_a_401_and_changes_nothing(developer, signature):
    change = change_create(developer, pull_request="42")
    response = deliver(check_run("tests"), signature=signature)
    assert response.status_code == 401 and response.json()["code"] == "bad_signature"
    assert not CheckRun.objects.filter(change=change).exists()


def test_an_event_signed_with_another_secret_is_refused(developer):
    change_create(developer, pull_request="42")
    assert deliver(check_run("tests"), secret="someone-else").status_code == 401
    assert not CheckRun.objects.exists()


def test_without_a_secret_configured_no_event_is_taken(settings):
    settings.GITHUB_WEBHOOK_SECRET = None
    response = deliver({"zen": "Keep it logically awesome."}, event="ping")
    assert response.status_code == 503 and "GITHUB_WEBHOOK_SECRET" in response.json()["detail"]


def test_a_ping_is_acknowledged_and_a_check_run_without_a_name_is_a_400(developer):
    assert deliver({"zen": "Design for failure."}, event="ping").status_code == 202
    response = deliver({"check_run": {"pull_requests": [{"number": 42}]}})
    assert response.status_code == 400 and response.json()["detail"].startswith("check_run: ")


def review(login: str, state: str, *, action: str = "submitted", number: int = 42) -> dict:
    return {
        "action": action,
        "review": {
            "user": {"login": login},
            "state": state,
            "commit_id": "b" * 40,
            "submitted_at": f"2026-11-26T09:{len(login):02d}:00Z",
        },
        "pull_request": {"number": number, "head": {"ref": "staging"}, "base": {"ref": "main"}},
    }


def test_a_review_is_kept_on_the_changes_of_its_pull_request(developer):
    change = change_create(developer, pull_request="#42")
    other = change_create(developer, pull_request="43")
    PullRequest.objects.create(change=change, number=42, head_sha="b" * 40)  # read at the reviewed head
    assert deliver(review("Alex-Owner", "approved"), event="pull_request_review").status_code == 202
    assert deliver(review("bo", "changes_requested"), event="pull_request_review").status_code == 202
    pull = PullRequest.objects.get(change=change)
    assert pull.latest_reviews() == {"alex-owner": "APPROVED", "bo": "CHANGES_REQUESTED"}
    deliver(review("bo", "changes_requested", action="dismissed"), event="pull_request_review")
    pull.refresh_from_db()
    assert pull.latest_reviews() == {"alex-owner": "APPROVED"}
    assert not PullRequest.objects.filter(change=other).exists()
    events = AuditEvent.objects.filter(object_id=str(change.pk), action="change.review")
    assert [e.after["state"] for e in events.order_by("pk")] == ["APPROVED", "CHANGES_REQUESTED", "DISMISSED"]
    deliver(review("bo", "changes_requested", action="dismissed"), event="pull_request_review")  # again
    assert events.count() == 3
    pull.head_sha = "c" * 40  # new commits: an approval of the earlier head is stale, as on GitHub
    assert pull.latest_reviews() == {}


def test_a_pull_request_pushed_to_is_read_again_for_its_changes(
    developer, django_capture_on_commit_callbacks
):
    named = change_create(developer, pull_request="https://github.com/acme/web/pull/42")
    by_branches = change_create(developer)  # staging into main, no pull request named yet
    change_create(developer, pull_request="43")
    pull = {"number": 42, "head": {"ref": "staging"}, "base": {"ref": "main"}}
    payload = {"action": "synchronize", "number": 42, "pull_request": pull}
    with django_capture_on_commit_callbacks() as enqueued:
        assert deliver(payload, event="pull_request").status_code == 202
    assert sorted(reads_asked(enqueued)) == [named.pk, by_branches.pk]
    with django_capture_on_commit_callbacks() as enqueued:
        deliver({**payload, "action": "labeled"}, event="pull_request")
    assert reads_asked(enqueued) == []


def test_a_review_without_its_reviewer_or_pull_request_is_a_400(developer):
    response = deliver(
        {"review": {"state": "approved"}, "pull_request": {"number": 42}}, event="pull_request_review"
    )
    assert response.status_code == 400 and response.json()["detail"].startswith("review: ")
    response = deliver(
        {**review("bo", "approved"), "pull_request": {"number": "x"}}, event="pull_request_review"
    )
    assert response.status_code == 400 and "by number" in response.json()["detail"]
    assert not PullRequest.objects.exists()


def named_check_run(**run) -> dict:
    return {"action": "completed", "check_run": {"name": "tests", "status": "completed", **run}}


@pytest.mark.parametrize(
    ("event", "payload"),
    [
        ("check_run", []),
        ("check_run", None),
        ("check_run", "completed"),
        ("check_run", {"check_run": "tests"}),
        ("check_run", named_check_run(pull_requests={"number": 42})),
        ("check_run", named_check_run(pull_requests=["42"])),
        ("check_run", named_check_run(pull_requests=[{"number": "x"}])),
        ("check_run", named_check_run(pull_requests=[{"number": None}])),
        ("check_run", named_check_run(pull_requests=[{"number": "²"}])),
        ("check_run", named_check_run(pull_requests=[{"number": "9" * 5000}])),
        ("check_run", named_check_run(pull_requests=[{"number": True}])),
        ("check_run", named_check_run(status=["completed"], pull_requests=[{"number": 42}])),
        # the first pull request would have been written before the second failed
        ("check_run", named_check_run(pull_requests=[{"number": 42}, {"number": "x"}])),
        ("pull_request_review", {**review("bo", "approved"), "review": "approved"}),
        ("pull_request_review", {**review("bo", "approved"), "review": {"user": "bo", "state": "approved"}}),
        ("pull_request_review", {**review("bo", "approved"), "pull_request": {"number": None}}),
        ("pull_request_review", {**review("bo", "approved"), "pull_request": {"number": 42, "head": "x"}}),
        ("pull_request", {"action": "synchronize", "pull_request": {"number": 42, "head": "staging"}}),
        ("pull_request", {"action": "synchronize", "pull_request": [42]}),
    ],
)
def test_an_event_not_shaped_as_githubs_is_a_400_and_writes_nothing(
    developer, django_capture_on_commit_callbacks, event, payload
):
    change_create(developer, pull_request="42")
    events = AuditEvent.objects.count()
    with django_capture_on_commit_callbacks() as enqueued:
        response = deliver(payload, event=event)
    assert response.status_code == 400 and response.json()["code"] == "invalid"
    assert response.json()["detail"]  # says what is wrong
    assert not CheckRun.objects.exists() and not PullRequest.objects.exists() and reads_asked(enqueued) == []
    assert AuditEvent.objects.count() == events


def test_a_check_run_on_a_head_the_pull_request_was_not_read_at_asks_for_a_read(
    developer, django_capture_on_commit_callbacks
):
    from portal import clock

    change = change_create(developer, pull_request="42")
    PullRequest.objects.create(change=change, number=42, head_sha="b" * 40, read_at=clock.now())
    with django_capture_on_commit_callbacks() as enqueued:
        assert deliver(check_run("tests")).status_code == 202  # on "a" * 40: pushed since the read
    assert not CheckRun.objects.filter(change=change).exists()
    assert reads_asked(enqueued) == [change.pk]  # read again, with the new head's checks

    with django_capture_on_commit_callbacks() as enqueued:
        deliver(
            {**check_run("tests"), "check_run": {**check_run("tests")["check_run"], "head_sha": "b" * 40}}
        )
    assert CheckRun.objects.get(change=change).head_sha == "b" * 40 and reads_asked(enqueued) == []


def test_an_event_before_any_read_leaves_the_gates_saying_it_was_not_read(developer, settings):
    from tests.factories import ApprovalPolicyFactory, EnvironmentFactory

    policy = ApprovalPolicyFactory(name="Signed", signed_commits_required=True)
    change = change_create(
        developer, environment=EnvironmentFactory(approval_policy=policy), pull_request="42"
    )
    deliver(review("bo", "approved"), event="pull_request_review")
    assert PullRequest.objects.get(change=change).read_at is None  # the row, made by the event
    detail = change_detail(developer, change.pk)
    gates = {g["name"]: (g["state"], g["detail"]) for g in deploy_gates(detail, change_quorum(detail))}
    assert gates["Signed commits"] == ("blocked", "the repository has not been read yet")
    assert gates["Code review"] == ("blocked", "not read from GitHub yet")


def test_a_review_read_from_the_api_and_told_by_an_event_is_kept_once(github_server, developer):
    from changes import releases
    from integrations.scm import GitHub

    server = github_server
    change = change_create(developer)
    change.status = "submitted"
    change.save(update_fields=["status"])
    scm = GitHub("acme/shop", token="good-token", api_url=server.url, pause_between_writes=None)
    releases.pull_request_read(change=change, scm=scm)  # opens #1
    server.add_review(1, "Alex-Owner", "APPROVED")
    releases.pull_request_read(change=change, scm=scm)
    told = server.reviews[0]
    payload = {
        "action": "submitted",
        "review": {
            "user": {"login": "Alex-Owner"},
            "state": "approved",
            "commit_id": told["commit_id"],
            "submitted_at": told["submitted_at"],
        },
        "pull_request": {"number": 1, "head": {"ref": "staging"}, "base": {"ref": "main"}},
    }
    assert deliver(payload, event="pull_request_review").status_code == 202
    pull = PullRequest.objects.get(change=change)
    assert pull.reviews == [
        {
            "login": "alex-owner",
            "state": "APPROVED",
            "commit": told["commit_id"],
            "submitted_at": told["submitted_at"],
        }
    ]
    assert not AuditEvent.objects.filter(object_id=str(change.pk), action="change.review").exists()


# Deployments GitHub made (a GitHub Actions job naming an `environment:`) start the staging soak.


def deployment_status(
    state: str = "success", *, environment: str = "Staging", run: int = 77, at: str = "", **deployment
) -> dict:
    """GitHub's deployment_status event for a deployment of `staging` by a workflow run's job."""
    log = f"https://github.com/acme/shop/actions/runs/{run}/job/{run + 1}"
    return {
        "action": "created",
        "deployment_status": {
            "id": run * 10,
            "state": state,
            "environment": environment,
            "description": "",
            "url": f"https://api.github.com/repos/acme/shop/deployments/{run}/statuses/{run * 10}",
            "target_url": log,
            "log_url": log,
            "environment_url": "https://staging.example.com",
            "created_at": at or clock.now().strftime("%Y-%m-%dT%H:%M:%SZ"),
        },
        "deployment": {
            "id": run,
            "environment": environment,
            "task": "deploy",
            "ref": "staging",
            "sha": "c" * 40,
            "payload": {"version": "v1.4.0"},
            **deployment,
        },
        "repository": {"full_name": "acme/shop"},
    }


@pytest.fixture
def soaking(developer):
    """A change whose branch was read at cccc…, the commit GitHub deploys to staging below."""
    from tests.factories import EnvironmentFactory

    EnvironmentFactory(name="staging", display_name="Staging", branch="staging", is_production=False)
    change = change_create(developer, environment=EnvironmentFactory())
    PullRequest.objects.create(change=change, head_sha="c" * 40, read_at=clock.now())
    return change


def soak_message(change) -> str:
    from changes.soak import soak_of

    return soak_of(change, now=clock.now()).message


def test_a_successful_deployment_to_staging_starts_the_soak_once_however_often_it_is_delivered(soaking):
    from changes.models import StagingRun

    assert soak_message(soaking) == "cccccccccc has not reached staging yet."
    written_at = clock.now() - timedelta(hours=49)  # GitHub's word on when: not what the soak counts
    event = deployment_status(at=f"{written_at:%Y-%m-%dT%H:%M:%SZ}")
    arrived = clock.now()
    response = deliver(event, event="deployment_status")
    assert response.status_code == 202
    assert response.json()["detail"] == "deployment_status received: v1.4.0 deployed in staging, recorded."
    run = StagingRun.objects.get()
    assert (run.version, run.result, run.url) == ("v1.4.0", "deployed", event["deployment_status"]["log_url"])
    assert run.commit == "c" * 40 and abs(run.at - arrived) < timedelta(seconds=5)
    assert soak_message(soaking) == (
        f"cccccccccc reached Staging at {run.at:%Y-%m-%d %H:%M} UTC; no passing test run since."
    )
    audit = AuditEvent.objects.get(action="staging.deployed")
    assert audit.actor_id is None and audit.after["url"] == run.url

    again = deliver(event, event="deployment_status")  # a redelivery
    assert again.status_code == 200 and again.json()["detail"] == (
        "deployment_status ignored: v1.4.0 deployed in staging is recorded already."
    )
    assert StagingRun.objects.count() == 1
    assert AuditEvent.objects.filter(action="staging.deployed").count() == 1


def test_a_failed_deployment_to_staging_is_a_red_run_that_ends_the_soak(soaking):
    from changes.models import StagingRun

    deliver(deployment_status(run=77), event="deployment_status")
    for state in ("failure", "error"):
        assert deliver(deployment_status(state, run=78), event="deployment_status").status_code in (200, 202)
    assert [r.result for r in StagingRun.objects.order_by("id")] == ["deployed", "red"]  # the same run's
    assert "cccccccccc failed in Staging at" in soak_message(soaking)


@pytest.mark.parametrize(
    ("deployment", "version"),
    [
        ({"payload": {"version": "v1.4.0"}}, "v1.4.0"),
        ({"payload": '{"version": "v1.4.0"}'}, "v1.4.0"),  # a payload given as a string
        ({"payload": {}, "ref": "v1.4.0"}, "v1.4.0"),  # a tag
        ({"payload": "", "ref": "refs/tags/v1.4.0"}, "v1.4.0"),
        ({"payload": {}, "ref": "staging"}, "c" * 40),  # a branch: the commit
    ],
)
def test_the_version_deployed_is_the_payloads_else_the_tag_else_the_commit(soaking, deployment, version):
    from changes.models import StagingRun

    assert deliver(deployment_status(**deployment), event="deployment_status").status_code == 202
    assert StagingRun.objects.get().version == version


@pytest.mark.parametrize(
    ("event", "why"),
    [
        (deployment_status("in_progress"), "a deployment that is in_progress records nothing"),
        (deployment_status("inactive"), "a deployment that is inactive records nothing"),
        (deployment_status(environment="review-42"), "no environment is named review-42"),
    ],
)
def test_other_states_and_environments_are_ignored(soaking, event, why):
    from changes.models import StagingRun

    response = deliver(event, event="deployment_status")
    assert response.status_code == 200 and response.json()["detail"] == f"deployment_status ignored: {why}."
    assert not StagingRun.objects.exists()


def malformed(**changes) -> dict:
    event = deployment_status()
    for where, value in changes.items():
        part, _, key = where.partition("__")
        event[part] = value if not key else {**event[part], key: value}
    return event


@pytest.mark.parametrize(
    "event",
    [
        malformed(deployment=None),
        malformed(deployment_status="success"),
        malformed(deployment_status__state=None),
        malformed(deployment__environment=["staging"]),
        malformed(deployment__sha="c" * 39),  # not a whole commit id
        malformed(deployment__sha="v1.4.0"),
        malformed(deployment__payload={"version": 140}),
        malformed(deployment__payload={}, deployment__sha=None),  # nothing names what was deployed
        malformed(deployment__payload={"version": "v" * 101}),
    ],
)
def test_a_deployment_status_not_shaped_as_githubs_is_a_400_and_writes_nothing(soaking, event):
    from changes.models import StagingRun

    audited = AuditEvent.objects.count()
    response = deliver(event, event="deployment_status")
    assert response.status_code == 400 and response.json()["code"] == "invalid" and response.json()["detail"]
    assert not StagingRun.objects.exists() and AuditEvent.objects.count() == audited


def test_a_forged_deployment_status_is_refused(soaking):
    from changes.models import StagingRun

    response = deliver(deployment_status(), event="deployment_status", secret="someone-else")
    assert response.status_code == 401 and response.json()["code"] == "bad_signature"
    assert not StagingRun.objects.exists()
    assert soak_message(soaking) == "cccccccccc has not reached staging yet."


def test_a_deployment_status_of_production_records_no_soak(soaking):
    from changes.models import StagingRun
    from tests.factories import EnvironmentFactory

    EnvironmentFactory(name="production", is_production=True)
    response = deliver(deployment_status(environment="production"), event="deployment_status")
    assert response.status_code == 200
    assert response.json()["detail"] == (
        "deployment_status ignored: production is deployed to by Greenlight itself, not soaked."
    )
    assert not StagingRun.objects.exists()


def test_a_deployment_status_without_its_address_is_a_400_and_records_nothing(soaking):
    from changes.models import StagingRun

    event = deployment_status()
    for key in ("url", "target_url", "log_url"):
        del event["deployment_status"][key]
    response = deliver(event, event="deployment_status")
    assert response.status_code == 400 and "names its address" in str(response.json())
    assert not StagingRun.objects.exists()
