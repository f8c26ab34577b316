import re
import zoneinfo

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import exceptions, generics, serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from changes import releases, selectors, services
from changes.api import serializers as s
from changes.filters import ChangeRequestFilter
from changes.models import (
    ChangeRequest,
    ChecklistItem,
    DeploymentWindow,
    Freeze,
    StagingRun,
    StandardChangeTemplate,
)
from changes.rules import refuse, schedule_refusal
from integrations.scm import ref_name_problem
from portal import mfa
from portal.api.permissions import CiToken, FreshOTP, right_required
from portal.api.serializers import OTPSerializer
from portal.roles import Right


def detail_response(request, pk: int, status_code: int = status.HTTP_200_OK) -> Response:
    """The change as GET /changes/{id}/ shows it, after any act on it."""
    try:
        change = selectors.change_shown(request.user, pk)
    except ChangeRequest.DoesNotExist:
        raise exceptions.NotFound("No such change request.") from None
    return Response(s.ChangeDetailSerializer(change, context={"request": request}).data, status=status_code)


def _change(request, pk: int) -> ChangeRequest:
    return get_object_or_404(selectors.changes_visible_to(request.user), pk=pk)


class ChangeList(generics.ListCreateAPIView):
    """Change requests, newest first, filtered; POST files a draft."""

    serializer_class = s.ChangeRequestSerializer
    filterset_class = ChangeRequestFilter

    def get_permissions(self):
        right = Right.CHANGE_CREATE if self.request.method == "POST" else Right.CHANGE_VIEW
        return [right_required(right)()]

    def get_queryset(self):
        return selectors.change_list(self.request.user)

    def paginate_queryset(self, queryset):
        return selectors.with_service_names(super().paginate_queryset(queryset))

    def get_serializer_class(self):
        return s.ChangeRequestSerializer if self.request.method == "POST" else s.ChangeListSerializer

    @extend_schema(responses={201: s.ChangeDetailSerializer})
    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        change = services.change_create(actor=request.user, data=services.ChangeInput(**data))
        return detail_response(request, change.pk, status.HTTP_201_CREATED)


class ChangeDetail(APIView):
    """One change with its checklist, decisions and quorum; PATCH edits it (a new revision once submitted)."""

    def get_permissions(self):
        right = Right.CHANGE_VIEW if self.request.method == "GET" else Right.CHANGE_CREATE
        return [right_required(right)()]

    @extend_schema(responses=s.ChangeDetailSerializer)
    def get(self, request, pk: int):
        return detail_response(request, pk)

    @extend_schema(request=s.ChangeRequestSerializer, responses=s.ChangeDetailSerializer)
    def patch(self, request, pk: int):
        change = _change(request, pk)
        serializer = s.ChangeRequestSerializer(change, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        services.change_update(actor=request.user, change=change, data=dict(serializer.validated_data))
        return detail_response(request, pk)


class ChangeSubmit(APIView):
    permission_classes = [right_required(Right.CHANGE_CREATE)]

    @extend_schema(request=None, responses=s.ChangeDetailSerializer)
    def post(self, request, pk: int):
        services.change_submit(actor=request.user, change=_change(request, pk))
        return detail_response(request, pk)


class ChangeCancel(APIView):
    permission_classes = [right_required(Right.CHANGE_CREATE)]

    @extend_schema(request=s.CancelSerializer, responses=s.ChangeDetailSerializer)
    def post(self, request, pk: int):
        serializer = s.CancelSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        services.change_cancel(actor=request.user, change=_change(request, pk), **serializer.validated_data)
        return detail_response(request, pk)


class ChangeApprovals(APIView):
    """Decisions on a change (GET), and a new one (POST: approve, reject or request_changes, with an OTP)."""

    def get_permissions(self):
        if self.request.method == "POST":
            return [right_required(Right.CHANGE_APPROVE)(), FreshOTP()]
        return [right_required(Right.CHANGE_VIEW)()]

    @extend_schema(responses=s.ApprovalSerializer(many=True))
    def get(self, request, pk: int):
        change = _change(request, pk)
        return Response(s.ApprovalSerializer(change.approvals.select_related("approver"), many=True).data)

    @extend_schema(request=s.DecisionSerializer, responses={201: s.ApprovalSerializer})
    def post(self, request, pk: int):
        serializer = s.DecisionSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        approval = services.change_decide(
            actor=request.user,
            change=_change(request, pk),
            decision=data["decision"],
            capacity=data["capacity"],
            comment=data["comment"],
            second_factor=mfa.device_words(getattr(request, "otp_device", None)),
        )
        return Response(s.ApprovalSerializer(approval).data, status=status.HTTP_201_CREATED)


class ChangeChecklist(APIView):
    @extend_schema(responses=s.ChecklistItemSerializer(many=True))
    def get(self, request, pk: int):
        change = _change(request, pk)
        return Response(s.ChecklistItemSerializer(change.checklist.select_related("done_by"), many=True).data)


class ChangeChecklistItem(APIView):
    """Ticks or unticks an item a person vouches for, with evidence (text or a link)."""

    permission_classes = [right_required(Right.CHANGE_CREATE)]

    @extend_schema(request=s.ChecklistTickSerializer, responses=s.ChecklistItemSerializer)
    def patch(self, request, pk: int, item_id: int):
        item = get_object_or_404(ChecklistItem, pk=item_id, change=_change(request, pk))
        serializer = s.ChecklistTickSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        item = services.checklist_item_set(actor=request.user, item=item, **serializer.validated_data)
        return Response(s.ChecklistItemSerializer(item).data)


class ChangeComments(APIView):
    def get_permissions(self):
        if self.request.method == "POST":
            return [right_required(Right.CHANGE_CREATE)()]
        return [right_required(Right.CHANGE_VIEW)()]

    @extend_schema(responses=s.CommentSerializer(many=True))
    def get(self, request, pk: int):
        change = _change(request, pk)
        return Response(s.CommentSerializer(selectors.change_comments(change), many=True).data)

    @extend_schema(request=s.CommentSerializer, responses={201: s.CommentSerializer})
    def post(self, request, pk: int):
        change = _change(request, pk)
        serializer = s.CommentSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        parent = serializer.validated_data.get("parent")
        comment = services.comment_add(
            actor=request.user, change=change, body=serializer.validated_data["body"], parent=parent
        )
        return Response(s.CommentSerializer(comment).data, status=status.HTTP_201_CREATED)


class ChangeSchedule(APIView):
    """POST puts an approved change into a slot (or moves it): refused outside the environment's
    windows, inside a freeze, over another change or in the past, with `next_slot` suggested.
    DELETE gives the slot up."""

    permission_classes = [right_required(Right.CHANGE_CREATE)]

    @extend_schema(
        request=s.ScheduleSerializer,
        responses={200: s.ChangeDetailSerializer, 409: s.ScheduleRefusedSerializer},
    )
    def post(self, request, pk: int):
        change = get_object_or_404(
            selectors.changes_visible_to(request.user).select_related("environment"), pk=pk
        )
        refuse(schedule_refusal(request.user, change))  # who may, before what they ask is read
        serializer = s.ScheduleSerializer(
            data=request.data, context={"zone": zoneinfo.ZoneInfo(change.environment.time_zone)}
        )
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        services.change_schedule(
            actor=request.user, change=change, start=data["window_start"], end=data["window_end"]
        )
        return detail_response(request, pk)

    @extend_schema(request=None, responses={200: s.ChangeDetailSerializer})
    def delete(self, request, pk: int):
        services.change_unschedule(actor=request.user, change=_change(request, pk))
        return detail_response(request, pk)


class CalendarEntries(generics.ListCreateAPIView):
    """Everyone reads an environment's windows and freezes (`?environment=name`); release managers
    keep them, each addition with a current code in `otp` (a window or a freeze decides when
    production may change)."""

    pagination_class = None
    manage_right = None
    create_service = None

    def get_permissions(self):
        if self.request.method == "POST":
            return [right_required(self.manage_right)(), FreshOTP()]
        return [right_required(Right.ENVIRONMENT_VIEW)()]

    @extend_schema(
        parameters=[OpenApiParameter("environment", description="Only this environment's (its name).")]
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        queryset = self.queryset.select_related("environment", "created_by")
        environment = self.request.query_params.get("environment")
        return queryset.filter(environment__name=environment) if environment else queryset

    def perform_create(self, serializer):
        data = {name: value for name, value in serializer.validated_data.items() if name != "otp"}
        serializer.instance = type(self).create_service(actor=self.request.user, **data)


class WindowList(CalendarEntries):
    serializer_class = s.DeploymentWindowSerializer
    queryset = DeploymentWindow.objects.all()
    manage_right = Right.WINDOW_MANAGE
    create_service = staticmethod(services.window_create)


class FreezeList(CalendarEntries):
    serializer_class = s.FreezeSerializer
    queryset = Freeze.objects.all()
    manage_right = Right.FREEZE_MANAGE
    create_service = staticmethod(services.freeze_create)


class CalendarEntry(generics.RetrieveDestroyAPIView):
    """One window or freeze; DELETE removes it with a current code in the JSON body
    (`{"otp": "123456"}`): removing a freeze reopens deploys, removing a window moves when they may
    happen (without any, at any time)."""

    manage_right = None
    delete_service = None

    def get_permissions(self):
        if self.request.method == "DELETE":
            return [right_required(self.manage_right)(), FreshOTP()]
        return [right_required(Right.ENVIRONMENT_VIEW)()]

    @extend_schema(request=OTPSerializer, responses={204: None})
    def delete(self, request, *args, **kwargs):
        return super().delete(request, *args, **kwargs)

    def perform_destroy(self, instance):
        type(self).delete_service(actor=self.request.user, **{self.entry: instance})


class WindowDetail(CalendarEntry):
    serializer_class = s.DeploymentWindowSerializer
    queryset = DeploymentWindow.objects.select_related("environment", "created_by")
    manage_right = Right.WINDOW_MANAGE
    delete_service = staticmethod(services.window_delete)
    entry = "window"


class FreezeDetail(CalendarEntry):
    serializer_class = s.FreezeSerializer
    queryset = Freeze.objects.select_related("environment", "created_by")
    manage_right = Right.FREEZE_MANAGE
    delete_service = staticmethod(services.freeze_delete)
    entry = "freeze"


class StagingRunList(generics.ListCreateAPIView):
    """What staging reported about commits (`?environment=&commit=&version=`). CI posts each arrival
    and test result with an API token of the ci scope (`staging.report`), or GitHub tells through
    its signed deployment_status event; the soak gates of the changes at that commit follow."""

    serializer_class = s.StagingRunSerializer
    pagination_class = None

    def get_permissions(self):
        if self.request.method == "POST":
            return [right_required(Right.STAGING_REPORT)(), CiToken()]
        return [right_required(Right.CHANGE_VIEW)()]

    @extend_schema(
        parameters=[
            OpenApiParameter("environment", description="Only this environment's runs (its name)."),
            OpenApiParameter("commit", description="Only the runs of this commit (40 or 64 hex digits)."),
            OpenApiParameter("version", description="Only the runs of this version, as CI names it."),
        ]
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        runs = StagingRun.objects.select_related("environment", "recorded_by").order_by("-at", "-id")
        if environment := self.request.query_params.get("environment"):
            runs = runs.filter(environment__name=environment)
        if commit := self.request.query_params.get("commit"):
            runs = runs.filter(commit=commit.lower())
        if version := self.request.query_params.get("version"):
            runs = runs.filter(version=version)
        return runs[:200]

    def perform_create(self, serializer):
        serializer.instance = services.staging_run_record(
            actor=self.request.user, **serializer.validated_data
        )


class StandardTemplateList(generics.ListCreateAPIView):
    """Pre-approved kinds of change; policy administrators add them with a fresh OTP."""

    serializer_class = s.StandardChangeTemplateSerializer
    pagination_class = None

    def get_permissions(self):
        if self.request.method == "POST":
            return [right_required(Right.POLICY_MANAGE)(), FreshOTP()]
        return [right_required(Right.CHANGE_VIEW)()]

    def get_queryset(self):
        templates = StandardChangeTemplate.objects.select_related("environment", "created_by")
        return templates.prefetch_related("services")

    def perform_create(self, serializer):
        data = dict(serializer.validated_data)
        serializer.instance = services.standard_template_create(actor=self.request.user, data=data)


class StandardTemplateRetire(APIView):
    """No new change is filed from the template; the changes filed from it keep it."""

    permission_classes = [right_required(Right.POLICY_MANAGE), FreshOTP]

    @extend_schema(request=None, responses=s.StandardChangeTemplateSerializer)
    def post(self, request, pk: int):
        template = get_object_or_404(StandardChangeTemplate, pk=pk)
        template = services.standard_template_retire(actor=request.user, template=template)
        return Response(s.StandardChangeTemplateSerializer(template).data)


class ChangeCustody(APIView):
    """The chain of custody of the change's code: the approved commit (who approved it, when, with
    which second factor), the staging soak, the merge and its parents, the tag and what it points
    at, the version each deployment put on a colour; each link judged against the one before it,
    read live from the repository; and the chain as each deployment checked it at the time."""

    permission_classes = [right_required(Right.CHANGE_VIEW)]

    @extend_schema(
        responses={
            200: inline_serializer("Custody", {"links": serializers.ListField()}),
            503: OpenApiResponse(description="The repository could not be read (it says why)."),
        }
    )
    def get(self, request, pk: int):
        from changes import custody
        from integrations import scm

        change = get_object_or_404(
            selectors.changes_visible_to(request.user).select_related("environment__approval_policy", "pull"),
            pk=pk,
        )
        try:
            links = custody.chain(change, repository=scm.repository() if scm.configured() else None)
        except scm.ScmError as refused:
            raise RepositoryUnavailable(f"The repository could not be read: {refused}") from None
        checked = [
            {"deployment": d.pk, "checked_at": d.custody_checked_at, "links": d.custody}
            for d in change.deployments.order_by("pk")
        ]
        return Response(
            {"change": change.number, "links": links, "broken": custody.broken(links), "checked": checked}
        )


class RepositoryUnavailable(exceptions.APIException):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_code = "repository_unavailable"


class ChangeHistory(APIView):
    """The change's timeline, built from the audit trail, as the change page shows it: who did what
    and when. Where each act came from (address, browser, request id) and its before/after are the
    audit trail's own, for those who may read it (`GET /api/v1/audit/?object_id=`)."""

    permission_classes = [right_required(Right.CHANGE_VIEW)]

    @extend_schema(responses=s.HistoryEntrySerializer(many=True))
    def get(self, request, pk: int):
        change = _change(request, pk)
        return Response(s.HistoryEntrySerializer(selectors.change_history(change), many=True).data)


class GitHubWebhook(APIView):
    """GitHub's events about pull requests, signed with the shared secret (`X-Hub-Signature-256`),
    for the changes that name the pull request (or release its branches and name none): a check
    run updates their checks, a review is kept, and a pull request opened or pushed to is read
    again. A deployment status says a version reached a staging environment (or failed there),
    which the soak follows. A missing or wrong signature is a 401 and changes nothing; an event
    whose shape is not GitHub's is a 400 and changes nothing (it is read whole before anything is
    written, and written in one transaction). A delivery sent again (same `X-GitHub-Delivery`) is
    acted on once."""

    authentication_classes: list = []
    permission_classes: list = []

    @extend_schema(request=None, responses={200: None, 202: None, 400: None, 401: None, 503: None})
    def post(self, request):
        from django.conf import settings
        from django.db import transaction

        from integrations.signatures import signed_with
        from portal.api.errors import json_error
        from portal.models import InboundDelivery
        from portal.services import inbound_once

        body = request._request.body  # the exact bytes GitHub signed
        secret = settings.GITHUB_WEBHOOK_SECRET
        if not secret:
            return json_error(503, "Set GITHUB_WEBHOOK_SECRET to take GitHub's events.", "not_configured")
        given = [request.headers.get("X-Hub-Signature-256", "")]
        if not signed_with(secret=secret, body=body, given=given, prefix="sha256="):
            return json_error(
                401, "The signature does not match the shared secret: the event is ignored.", "bad_signature"
            )
        event = request.headers.get("X-GitHub-Event", "")
        delivery = request.headers.get("X-GitHub-Delivery", "")
        if len(delivery) > 200:
            return json_error(400, "X-GitHub-Delivery is longer than 200 characters.", "invalid")
        handle = {
            "check_run": _check_run_event,
            "pull_request": _pull_request_event,
            "pull_request_review": _review_event,
            "deployment_status": _deployment_status_event,
        }.get(event)
        if handle is not None:
            payload = _object(request.data, "payload", f"A {event} event is a JSON object.")
            with transaction.atomic():
                # A delivery GitHub sends again (a redelivery, a retry) is acted on once.
                source = InboundDelivery.Source.GITHUB
                if delivery and inbound_once(source=source, delivery_id=delivery, kind=event) is None:
                    return Response({"detail": "Event already received."}, status=status.HTTP_200_OK)
                answer = handle(payload)
            if answer is not None:
                return answer
        return Response({"detail": f"{event or 'event'} received."}, status=status.HTTP_202_ACCEPTED)


# The shape of GitHub's events, checked before anything is written.

_NUMBER = re.compile(r"[0-9]{1,9}")
_COMMIT = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")


def _object(value, where: str, message: str) -> dict:
    if not isinstance(value, dict):
        raise exceptions.ValidationError({where: message})
    return value


def _text(value, where: str, *, limit: int) -> str:
    """A string field of the event (null is empty), cut to what the row keeps."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise exceptions.ValidationError({where: "This is a string in GitHub's events."})
    return value[:limit]


def _pull_number(value, where: str) -> int:
    """A pull request's number: a whole number as GitHub sends it, or its digits."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 < value < 10**9:
        return value
    if isinstance(value, str) and _NUMBER.fullmatch(value) and int(value) > 0:
        return int(value)
    raise exceptions.ValidationError({where: "The event names its pull request by number."})


def _check_run_event(payload: dict) -> None:
    run = payload.get("check_run")
    if not isinstance(run, dict) or not isinstance(run.get("name"), str) or not run["name"]:
        raise exceptions.ValidationError({"check_run": "A check_run event names its check."})
    pulls = run.get("pull_requests")
    if not isinstance(pulls, list | None):
        raise exceptions.ValidationError({"check_run.pull_requests": "This is a list of pull requests."})
    numbers = [
        _pull_number(
            _object(pull, "check_run.pull_requests", "Each pull request is a JSON object.").get("number"),
            "check_run.pull_requests",
        )
        for pull in pulls or []
    ]
    run_state = {
        "name": run["name"][:200],
        "status": _text(run.get("status"), "check_run.status", limit=20),
        "conclusion": _text(run.get("conclusion"), "check_run.conclusion", limit=20),
        "head_sha": _text(run.get("head_sha"), "check_run.head_sha", limit=64),
        "url": _text(run.get("html_url"), "check_run.html_url", limit=500),
    }
    changes = {change.pk: change for number in numbers for change in releases.changes_of_pull_request(number)}
    if _COMMIT.fullmatch(run_state["head_sha"]):
        for change in releases.changes_at_head(run_state["head_sha"]):
            changes.setdefault(change.pk, change)
    for change in changes.values():
        releases.check_run_record(change=change, **run_state)


def _changes_of(pull):
    """The changes of the event's pull request (its number, and its branches)."""
    pull = _object(pull, "pull_request", "The event names its pull request by number.")
    number = _pull_number(pull.get("number"), "pull_request")
    refs = {}
    for side in ("head", "base"):
        ref = _object(pull.get(side) or {}, f"pull_request.{side}", "This is a JSON object with its ref.")
        refs[side] = _text(ref.get("ref"), f"pull_request.{side}.ref", limit=255)
        if refs[side] and ref_name_problem(refs[side]):
            raise exceptions.ValidationError({f"pull_request.{side}.ref": ref_name_problem(refs[side])})
    return releases.changes_of_pull_request(number, **refs)


def _pull_request_event(payload: dict) -> None:
    from django.db import transaction

    from changes.tasks import pull_request_read

    if payload.get("action") in ("opened", "reopened", "synchronize", "edited", "ready_for_review"):
        for change in _changes_of(payload.get("pull_request")):
            transaction.on_commit(lambda pk=change.pk: pull_request_read.delay(pk))


def _review_event(payload: dict) -> None:
    review = payload.get("review")
    user = review.get("user") if isinstance(review, dict) else None
    login = user.get("login") if isinstance(user, dict) else None
    state = review.get("state") if isinstance(review, dict) else None
    if not (isinstance(login, str) and login and isinstance(state, str) and state):
        raise exceptions.ValidationError(
            {"review": "A pull_request_review event names its reviewer and state."}
        )
    entry = {
        "login": login[:100],
        "state": "DISMISSED" if payload.get("action") == "dismissed" else state[:30],
        "commit": _text(review.get("commit_id"), "review.commit_id", limit=64),
        "submitted_at": _text(review.get("submitted_at"), "review.submitted_at", limit=40),
    }
    changes = list(_changes_of(payload.get("pull_request")))
    for change in changes:
        releases.review_record(change=change, **entry)


# GitHub's deployment states that say how a deployment ended, as staging reports read.
_DEPLOYMENT_RESULTS = {
    "success": StagingRun.Result.DEPLOYED,
    "failure": StagingRun.Result.RED,
    "error": StagingRun.Result.RED,
}


def _deployment_status_event(payload: dict) -> Response:
    """A deployment GitHub made (a GitHub Actions job that names an `environment:`) ended: in an
    environment Greenlight knows by that name (any case, not a production one), a success is the
    commit arriving there (a soak starts) and a failure or an error is a red run, each recorded once
    however often the event is delivered (by its address), at the time it arrives (a redelivered
    event cannot backdate a soak). Other states and environments are ignored (200)."""
    from catalogue.models import Environment

    deployment_status = _object(
        payload.get("deployment_status"), "deployment_status", "The status is a JSON object."
    )
    deployment = _object(payload.get("deployment"), "deployment", "The deployment is a JSON object.")
    state = _text(deployment_status.get("state"), "deployment_status.state", limit=20)
    name = _text(deployment.get("environment"), "deployment.environment", limit=255)
    if not state or not name:
        raise exceptions.ValidationError(
            {"deployment_status": "A deployment_status event names its state and its environment."}
        )
    version = _deployed_version(deployment)
    commit = _text(deployment.get("sha"), "deployment.sha", limit=64).lower()
    if not _COMMIT.fullmatch(commit):
        raise exceptions.ValidationError({"deployment.sha": "The commit GitHub deployed: 40 hex digits."})
    link = _deployment_link(deployment_status)
    result = _DEPLOYMENT_RESULTS.get(state)
    if result is None:
        return _ignored(f"a deployment that is {state} records nothing")
    environment = Environment.objects.filter(name__iexact=name).first()
    if environment is None:
        return _ignored(f"no environment is named {name}")
    if environment.is_production:
        return _ignored(f"{environment.name} is deployed to by Greenlight itself, not soaked")
    if not link:
        raise exceptions.ValidationError(
            {"deployment_status": "A deployment_status names its address (url), to be recorded once."}
        )
    run = services.staging_run_record_once(
        environment=environment, commit=commit, version=version, result=result, url=link
    )
    if run is None:
        return _ignored(f"{version} {result} in {environment.name} is recorded already")
    words = f"{version} {run.get_result_display().lower()} in {environment.name}"
    return Response({"detail": f"deployment_status received: {words}, recorded."}, status.HTTP_202_ACCEPTED)


def _ignored(why: str) -> Response:
    return Response({"detail": f"deployment_status ignored: {why}."}, status=status.HTTP_200_OK)


def _deployed_version(deployment: dict) -> str:
    """What was deployed: the deployment's `payload.version` when it names one, else its ref when
    that is a tag (refs/tags/..., or a version such as v1.4.0), else its commit."""
    import json

    from integrations.scm.versions import Version, VersionRefused

    payload = deployment.get("payload")
    if isinstance(payload, str) and payload.strip().startswith("{"):
        try:
            payload = json.loads(payload)  # a deployment made with its payload as a string
        except ValueError:
            payload = None
    named = payload.get("version") if isinstance(payload, dict) else None
    version = _text(named, "deployment.payload.version", limit=200).strip()
    ref = _text(deployment.get("ref"), "deployment.ref", limit=300).strip()
    sha = _text(deployment.get("sha"), "deployment.sha", limit=200).strip()
    if not version and ref.startswith("refs/tags/"):
        version = ref.removeprefix("refs/tags/")
    elif not version:
        try:
            version = ref if Version.parse(ref) else sha
        except VersionRefused:
            version = sha
    if not version or len(version) > 100:
        raise exceptions.ValidationError(
            {"deployment": "A deployment names what it deployed: payload.version, a tag, or its sha."}
        )
    return version


def _deployment_link(deployment_status: dict) -> str:
    """Where a person sees the deployment: its log or target (the workflow run), else the status."""
    for key in ("log_url", "target_url", "url"):
        link = _text(deployment_status.get(key), f"deployment_status.{key}", limit=1000)
        if link.startswith(("https://", "http://")) and len(link) <= 200:
            return link
    return ""
