"""Reads of releases: what version runs in each environment, since when, from which change and on
which colour, and every release and rollback there, in a constant number of queries however many
deployments there are. `live_releases` is the one place that says which release is live and
whether the colour of the one before it is still kept for a rollback; the rollback itself is
deployments.services.deployment_rollback."""

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypedDict, cast

from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import ObjectDoesNotExist
from django.db import models
from django.db.models import F, OuterRef, Prefetch, QuerySet, Subquery, Window
from django.db.models.functions import RowNumber

from catalogue.models import Environment, Service
from deployments.models import Deployment
from portal.models import User
from portal.roles import Right, has_right

# The history shows this many deployments per environment; "older" pages on from the last one.
HISTORY_CAP = 50
# A release is live once all traffic reached its colour: while it is watched, and after that passed.
LIVE_STATES = (Deployment.State.MONITORING, Deployment.State.SUCCEEDED)
# Newest first. One deployment runs in an environment at a time, so the order they were made in
# (their ids) is the order they went out in; the API's cursor pages by id as well.
NEWEST_FIRST = F("id").desc()
# What a row shows of its change is the number and title; the long texts stay in the database.
CHANGE_TEXTS = ("change__description", "change__rollback_plan", "change__risk_assessment")


class Outcome(models.TextChoices):
    """What became of a release, as the history says it."""

    LIVE = "live", "Live"
    MONITORING = "monitoring", "Live, being monitored"
    SUPERSEDED = "superseded", "Superseded"
    ROLLING_BACK = "rolling_back", "Rolling back"
    ROLLED_BACK = "rolled_back", "Rolled back"
    STOPPED = "stopped", "Rolled back before going live"
    FAILED = "failed", "Failed before going live"
    IN_PROGRESS = "in_progress", "In progress"


if TYPE_CHECKING:
    from django_stubs_ext import WithAnnotations

    class _Latest(TypedDict):
        latest_deployment_id: int | None

    class _Shown(TypedDict):
        outcome: Outcome

    # An environment with the id of its latest deployment (`_environments`); a release row that
    # says what became of it (`outcome`, set here and read by the pages and the API).
    LatestEnvironment = WithAnnotations[Environment, _Latest]
    ReleaseRow = WithAnnotations[Deployment, _Shown]


@dataclass
class EnvironmentReleases:
    """An environment's releases: the live one, the one live before it (the colour a rollback of
    the live one sends traffic back to runs it), whether that colour is still kept, and the
    history newest first (`more` when older deployments were left off)."""

    environment: Environment
    live: Deployment | None = None
    previous: Deployment | None = None
    old_colour_kept: bool = False
    history: list[Deployment] = field(default_factory=list)
    more: bool = False

    @property
    def rollback_to(self) -> Deployment | None:
        """The release a rollback of the live one brings back, while its colour is kept."""
        return self.previous if self.old_colour_kept else None


def deployments_visible_to(user: User | AnonymousUser) -> QuerySet[Deployment]:
    """Every role may view deployments; a person without the right sees none."""
    if not has_right(user, Right.DEPLOYMENT_VIEW):
        return Deployment.objects.none()
    return Deployment.objects.all()


def outcome_of(deployment: Deployment, live: Deployment | None) -> Outcome:
    """What became of a deployment, given the environment's live release."""
    if live is not None and deployment.pk == live.pk:
        return Outcome.MONITORING if deployment.state == Deployment.State.MONITORING else Outcome.LIVE
    if deployment.state == Deployment.State.ROLLING_BACK:
        return Outcome.ROLLING_BACK
    if deployment.active:
        return Outcome.IN_PROGRESS
    if deployment.state == Deployment.State.SUCCEEDED:
        return Outcome.SUPERSEDED
    if deployment.state == Deployment.State.ROLLED_BACK:
        return Outcome.ROLLED_BACK if deployment.live_at is not None else Outcome.STOPPED
    return Outcome.FAILED


def _environments(user: User | AnonymousUser, name: str = "") -> list["LatestEnvironment"]:
    """The environments (one, by `name`) with their deploy settings and the id of their latest
    deployment, which the kept-colour rule needs."""
    latest = (
        deployments_visible_to(user)
        .filter(environment=OuterRef("pk"))
        .order_by(NEWEST_FIRST)
        .values("id")[:1]
    )
    environments = Environment.objects.select_related("deploy_settings").annotate(
        latest_deployment_id=Subquery(latest)
    )
    return list(environments.filter(name=name) if name else environments)


def _with_release_rows(deployments: QuerySet[Deployment]) -> QuerySet[Deployment]:
    """What a release shows: its change and the change's services, who started it and who rolled
    it back."""
    return (
        deployments.select_related("change", "started_by", "rollback_by")
        .defer(*CHANGE_TEXTS)
        .prefetch_related(Prefetch("change__services", queryset=Service.objects.only("id", "name")))
    )


def _newest(deployments: QuerySet[Deployment], most: int) -> QuerySet[Deployment]:
    """The newest `most` of these deployments in each environment, with what they show, in one
    query: ranked on ids alone, so only the rows kept are joined to their change and people."""
    ranked = deployments.annotate(
        rank=Window(RowNumber(), partition_by=F("environment_id"), order_by=NEWEST_FIRST)
    ).filter(rank__lte=most)
    kept = Deployment.objects.filter(id__in=ranked.values("id"))
    return _with_release_rows(kept).order_by("environment_id", NEWEST_FIRST)


def _live_colour(environment: Environment) -> str | None:
    try:
        return environment.deploy_settings.live_colour
    except ObjectDoesNotExist:
        return None


def live_releases(
    user: User | AnonymousUser, environments: Sequence["LatestEnvironment"]
) -> dict[int, EnvironmentReleases]:
    """Each environment's live release, by environment id, in one query.

    The live release is the newest deployment in a live state (monitoring, or succeeded): it went
    live (`live_at`) and is still what takes the traffic. A release rolled back after it went live
    is rolled back, no longer in a live state, so the one before it, whose colour the traffic went
    back to, is live again; a deployment that failed before going live never was. The release
    before the live one is what a rollback of the live one brings back, and only while its colour is
    kept: the live release is the environment's latest deployment (nothing was deployed over the
    old colour since) and the environment's live colour is still the live release's colour.

    `environments` come from `_environments` (they carry their latest deployment's id)."""
    sections = {environment.pk: EnvironmentReleases(environment=environment) for environment in environments}
    latest = {environment.pk: environment.latest_deployment_id for environment in environments}
    candidates = deployments_visible_to(user).filter(environment__in=environments, state__in=LIVE_STATES)
    for deployment in _newest(candidates, 2):
        section = sections[deployment.environment_id]
        deployment.environment = section.environment
        if section.live is None:
            section.live = deployment
        else:
            section.previous = deployment
    for section in sections.values():
        live = section.live
        if live is not None:
            _shown(live, live)
            section.old_colour_kept = (
                section.previous is not None
                and live.pk == latest[section.environment.pk]
                and _live_colour(section.environment) == live.to_colour
            )
    return sections


def environment_releases(user: User | AnonymousUser, name: str) -> EnvironmentReleases | None:
    """One environment's live release and the one before it, without the history; None when there
    is no environment of that name."""
    environments = _environments(user, name)
    return live_releases(user, environments)[environments[0].pk] if environments else None


def release_history(
    user: User | AnonymousUser, environments: Sequence[Environment], *, service: str = ""
) -> QuerySet[Deployment]:
    """The deployments in these environments (of changes to `service` only, when named), newest
    first, with what a history row shows."""
    deployments = deployments_visible_to(user).filter(environment__in=environments)
    if service:
        deployments = deployments.filter(change__services__name=service)
    return _with_release_rows(deployments).order_by(NEWEST_FIRST)


def with_outcomes(rows: list[Deployment], section: EnvironmentReleases) -> list[Deployment]:
    """Gives each row of an environment's history its `outcome` and the environment itself."""
    for row in rows:
        row.environment = section.environment
        _shown(row, section.live)
    return rows


def _shown(row: Deployment, live: Deployment | None) -> None:
    """Gives a release row what the history shows of it: its `outcome`, beside its columns."""
    cast("ReleaseRow", row).outcome = outcome_of(row, live)


def releases(
    user: User | AnonymousUser,
    *,
    environment: str = "",
    service: str = "",
    before: int | None = None,
    cap: int = HISTORY_CAP,
) -> list[EnvironmentReleases]:
    """Every environment (or the one named) with its live release and its last `cap` deployments
    (of changes to `service`, when named; older than deployment `before`, when given)."""
    environments = _environments(user, environment)
    sections = live_releases(user, environments)
    history = release_history(user, environments, service=service)
    if before is not None:
        history = history.filter(id__lt=before)
    for row in _newest(history, cap + 1):
        section = sections[row.environment_id]
        if len(section.history) == cap:
            section.more = True
        else:
            section.history.append(row)
    for section in sections.values():
        with_outcomes(section.history, section)
    return list(sections.values())
