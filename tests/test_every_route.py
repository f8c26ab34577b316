"""Every route of every app, API and pages, against the role matrix.

The routes are read from the URL configuration, so a route added without an entry below fails
`test_every_route_has_an_entry`. Each entry says, in words a reviewer checks against the issue's
matrix, which right a request needs; which roles hold which right comes from the literal table in
tests/portal/test_roles.py, never from portal.roles, so a wrong grant shows up here too.

What is checked for every route and every kind of caller (anonymous, the seven roles, a release
manager holding the policy_admin capacity, an administrator inside break-glass):
- nobody gets a server error;
- the anonymous caller is asked to sign in (API 401 with a challenge; a page redirects to /login/),
  unless the route is public;
- a signed-in caller without the right is refused with 403, before anything is looked up (the ids
  in the paths name nothing);
- a caller with the right is not refused for want of it (404 for the missing object, 400 for the
  empty body, 405 for a page's other method are all fine).
Writes carry a fresh code from the caller's authenticator, so a refusal is the right's, not the
code's.
"""

from datetime import timedelta

import pytest
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.test import APIClient

from portal import clock
from portal.models import BreakGlassSession
from portal.roles import Capacity, Role
from tests.conftest import client_for
from tests.factories import UserFactory, otp_code, totp_device
from tests.portal.test_roles import expected_table

PUBLIC = "public"  # anyone, signed in or not (sign-in pages, the status page, signed webhooks)
SIGNED_IN = "signed in"  # any signed-in person
NOBODY_BY_SESSION = "a CI token only"  # refused to every person's session
BREAK_GLASS = "break-glass"  # the Django admin: an administrator inside break-glass


def any_of(*rights: str) -> tuple[str, ...]:
    return rights


# API routes: (url name, method) -> what a request needs.
API = {
    ("api-audit-list", "get"): "audit.view",
    ("api-audit-verify", "get"): "audit.view",
    ("api-audit-detail", "get"): "audit.view",
    ("api-notification-test", "post"): "notification.test",
    ("api-me", "get"): SIGNED_IN,
    ("api-user-list", "get"): any_of("role.grant", "audit.view"),
    ("api-user-role", "post"): "role.grant",
    ("api-user-capacities", "post"): "role.grant",
    ("api-user-capacities", "delete"): "role.grant",
    ("api-user-unlock", "post"): "role.grant",
    ("api-break-glass", "get"): SIGNED_IN,
    ("api-break-glass", "post"): "break_glass.open",
    ("api-break-glass-close", "post"): "break_glass.open",
    ("api-token-list", "get"): SIGNED_IN,
    ("api-token-list", "post"): SIGNED_IN,
    ("api-token-revoke", "delete"): SIGNED_IN,
    ("api-environment-list", "get"): "environment.view",
    ("api-environment-list", "post"): "environment.manage",
    ("api-service-list", "get"): "environment.view",
    ("api-service-list", "post"): "environment.manage",
    ("api-environment-deploy-settings", "get"): "environment.view_settings",
    ("api-environment-deploy-settings", "put"): "environment.manage",
    ("api-environment-releases", "get"): "deployment.view",
    ("api-change-list", "get"): "change.view",
    ("api-change-list", "post"): "change.create",
    ("api-change-detail", "get"): "change.view",
    ("api-change-detail", "patch"): "change.create",
    ("api-change-submit", "post"): "change.create",
    ("api-change-cancel", "post"): "change.create",
    ("api-change-approvals", "get"): "change.view",
    ("api-change-approvals", "post"): "change.approve",
    ("api-change-checklist", "get"): "change.view",
    ("api-change-checklist-item", "patch"): "change.create",
    ("api-change-comments", "get"): "change.view",
    ("api-change-comments", "post"): "change.create",
    ("api-change-history", "get"): "change.view",
    ("api-change-custody", "get"): "change.view",
    ("api-change-schedule", "post"): "change.create",
    ("api-change-schedule", "delete"): "change.create",
    ("api-window-list", "get"): "change.view",
    ("api-window-list", "post"): "window.manage",
    ("api-window-detail", "get"): "change.view",
    ("api-window-detail", "delete"): "window.manage",
    ("api-freeze-list", "get"): "change.view",
    ("api-freeze-list", "post"): "freeze.manage",
    ("api-freeze-detail", "get"): "change.view",
    ("api-freeze-detail", "delete"): "freeze.manage",
    ("api-staging-runs", "get"): "change.view",
    ("api-staging-runs", "post"): NOBODY_BY_SESSION,
    ("api-standard-changes", "get"): "change.view",
    ("api-standard-changes", "post"): "policy.manage",
    ("api-standard-change-retire", "post"): "policy.manage",
    ("api-change-deploy", "post"): "deployment.deploy",
    ("api-deployment-list", "get"): "deployment.view",
    ("api-deployment-detail", "get"): "deployment.view",
    ("api-deployment-pause", "post"): "deployment.deploy",
    ("api-deployment-resume", "post"): "deployment.deploy",
    ("api-deployment-promote", "post"): "deployment.deploy",
    ("api-deployment-end-monitoring", "post"): "deployment.deploy",
    ("api-deployment-rollback", "post"): any_of("deployment.rollback", "deployment.rollback_incident"),
    ("api-incident-list", "get"): "incident.view",
    ("api-incident-list", "post"): "incident.declare",
    ("api-incident-measures", "get"): "incident.view",
    ("api-incident-detail", "get"): "incident.view",
    ("api-incident-acknowledge", "post"): "incident.manage",
    ("api-incident-mitigate", "post"): "incident.manage",
    ("api-incident-resolve", "post"): "incident.manage",
    ("api-incident-publish", "post"): "incident.manage",
    ("api-incident-timeline", "get"): "incident.view",
    ("api-incident-timeline", "post"): "incident.declare",
    ("api-incident-join", "post"): "incident.declare",
    ("api-incident-command", "post"): "incident.manage",
    ("api-incident-rollback", "post"): any_of("deployment.rollback", "deployment.rollback_incident"),
    ("api-incident-revert", "post"): any_of("deployment.rollback", "deployment.rollback_incident"),
    ("api-postmortem", "get"): "incident.view",
    ("api-postmortem", "post"): "incident.declare",
    ("api-postmortem", "patch"): "incident.declare",
    ("api-postmortem-action-items", "post"): "incident.declare",
    ("api-postmortem-action-item", "patch"): "incident.declare",
    ("api-webhook-github", "post"): PUBLIC,
    ("api-webhook-sns", "post"): PUBLIC,
    ("api-webhook-pagerduty", "post"): PUBLIC,
    ("api-schema", "get"): SIGNED_IN,
    ("api-docs", "get"): SIGNED_IN,
}

# Pages: url name -> what opening it (GET) needs. Their forms are posted with a CSRF token and
# a code; each page's own tests walk those.
PAGES = {
    "home": SIGNED_IN,
    "audit-list": "audit.view",
    "notification-list": "notification.test",
    "notification-test": "notification.test",
    "login": PUBLIC,
    "login-otp": PUBLIC,
    "oidc_authentication_init": PUBLIC,
    "oidc_authentication_callback": PUBLIC,
    "logout": PUBLIC,
    "password-change": SIGNED_IN,
    "password_reset": PUBLIC,
    "password_reset_done": PUBLIC,
    "password_reset_confirm": PUBLIC,
    "password_reset_complete": PUBLIC,
    "mfa-setup": SIGNED_IN,
    "mfa-backup-codes": SIGNED_IN,
    "api-tokens": SIGNED_IN,
    "api-token-revoke-page": SIGNED_IN,
    "people": any_of("role.grant", "audit.view"),
    "person": "role.grant",
    "break-glass": any_of("audit.view", "break_glass.open"),
    "break-glass-close": "break_glass.open",
    "change-list": "change.view",
    "change-new": "change.create",
    "change-detail": "change.view",
    "change-edit": "change.create",
    "change-submit": "change.create",
    "change-cancel": "change.create",
    "change-unschedule": "change.create",
    "change-take-next-slot": "change.create",
    "change-decide": "change.approve",
    "change-checklist-tick": "change.create",
    "change-comment": "change.create",
    "calendar": "change.view",
    "calendar-feed": PUBLIC,
    "catalogue": "environment.view",
    "change-deploy": "deployment.deploy",
    "deployment-detail": "deployment.view",
    "deployment-report": "deployment.view",
    "deployment-control": "deployment.deploy",
    "release-list": "deployment.view",
    "release-rollback": any_of("deployment.rollback", "deployment.rollback_incident"),
    "simulation-switch": "deployment.deploy",
    "incident-list": "incident.view",
    "incident-report": "incident.view",
    "incident-detail": "incident.view",
    "postmortem-detail": "incident.view",
    "action-item-add": "incident.declare",
    "action-item-state": "incident.declare",
    "incident-act": "incident.manage",
    "status-page": PUBLIC,
    "status-subscribe": PUBLIC,
    "status-confirm": PUBLIC,
    "status-unsubscribe": PUBLIC,
}

CALLERS = [
    "anonymous",
    *Role.values,
    "policy_admin",  # a release manager who holds the policy_admin capacity
    "break_glass",  # an administrator inside an open break-glass session
]
# What each placeholder in a path is given: ids and names that name nothing.
SAMPLES = {
    "int": "999999",
    "str": "nothing-here",
    "slug": "nothing-here",
    "path": "999999",
}
SAMPLE_ACTIONS = {"deployment-control": "pause", "incident-act": "acknowledge"}


def routes() -> list[tuple[str, str, object]]:
    """(path with samples, url name, view) of every route, the admin's as one family."""
    found = []

    def walk(patterns, prefix=""):
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns, prefix + str(pattern.pattern))
            elif isinstance(pattern, URLPattern):
                found.append((prefix + str(pattern.pattern), pattern.name, pattern.callback))

    walk(get_resolver().url_patterns)
    return found


def sample_path(route: str, name: str | None) -> str:
    import re

    def value(match):
        converter, variable = match.group(1) or "str", match.group(2)
        if variable == "action":
            return SAMPLE_ACTIONS[name]
        return SAMPLES[converter]

    return "/" + re.sub(r"<(?:(\w+):)?(\w+)>", value, route)


def api_cases():
    for route, name, view in routes():
        if not route.startswith("api/") or getattr(view, "cls", None) is None:
            continue
        for method in ("get", "post", "put", "patch", "delete"):
            if hasattr(view.cls, method):
                yield pytest.param(name, method, sample_path(route, name), id=f"{method.upper()} /{route}")


def page_cases():
    for route, name, _view in routes():
        if route.startswith(("api/", "admin/", "^api/")) or name is None:
            continue
        yield pytest.param(name, sample_path(route, name), id=f"/{route}")


def admin_cases():
    seen = set()
    for route, name, _view in routes():
        if route.startswith("admin/") and "(?P" not in route and "<" not in route and name not in seen:
            seen.add(name)
            yield pytest.param(name, sample_path(route, name), id=f"/{route}")


def test_every_route_has_an_entry():
    missing_api = [
        (name, method)
        for param in api_cases()
        for name, method in [param.values[:2]]
        if (name, method) not in API
    ]
    missing_pages = [param.values[0] for param in page_cases() if param.values[0] not in PAGES]
    assert missing_api == [] and missing_pages == [], "say what each new route needs, above"
    stale = set(API) - {tuple(p.values[:2]) for p in api_cases()}
    assert stale == set(), "entries for routes that no longer exist"


def holds(caller: str, needs, table) -> bool:
    if needs in (PUBLIC,):
        return True
    if caller == "anonymous":
        return False
    if needs == SIGNED_IN:
        return True
    if needs == NOBODY_BY_SESSION:
        return False
    rights = needs if isinstance(needs, tuple) else (needs,)
    return any(table[right][caller] for right in rights)


@pytest.fixture(scope="module")
def people(django_db_setup, django_db_blocker):
    """One person of each kind, signed in with a verified session, for the whole module: made once
    (and removed at its end), since each test only reads with them."""
    from django.contrib.sessions.models import Session

    with django_db_blocker.unblock():
        users = {role: UserFactory(username=f"every-{role}", role=role) for role in Role.values}
        users["policy_admin"] = UserFactory(
            username="every-policyadmin", role=Role.RELEASE_MANAGER, capacities=[Capacity.POLICY_ADMIN]
        )
        users["break_glass"] = UserFactory(username="every-breakglass", role=Role.ADMIN, is_staff=True)
        now = clock.now()
        opened = BreakGlassSession.objects.create(
            user=users["break_glass"],
            reason="Primary database is down",
            opened_at=now,
            expires_at=now + timedelta(hours=6),
        )
        clients = {caller: client_for(user) for caller, user in users.items()}
    yield {**users, "clients": clients}
    with django_db_blocker.unblock():
        opened.delete()
        Session.objects.all().delete()
        for user in users.values():
            user.delete()


def client_of(caller: str, people) -> APIClient:
    return APIClient() if caller == "anonymous" else people["clients"][caller]


@pytest.mark.django_db(databases="__all__")
@pytest.mark.parametrize(("name", "method", "path"), list(api_cases()))
def test_api_route_answers_every_caller_as_the_matrix_says(people, name, method, path):
    needs = API[(name, method)]
    table = expected_table()
    wrong = []
    for caller in CALLERS:
        body = None
        if method != "get" and caller != "anonymous":
            body = {"otp": otp_code(totp_device(people[caller]))}
        response = getattr(client_of(caller, people), method)(path, body, format="json")
        status = response.status_code
        if status >= 500 and status != 503:  # 503: a webhook whose secret is not configured
            wrong.append((caller, status, "server error"))
        elif needs == PUBLIC:
            continue
        elif caller == "anonymous":
            if status != 401 or "WWW-Authenticate" not in response:
                wrong.append((caller, status, "expected 401 with WWW-Authenticate"))
        elif holds(caller, needs, table):
            if status in (401, 403):
                wrong.append((caller, status, f"refused though holding {needs}: {response.content[:200]!r}"))
        elif status != 403:
            wrong.append((caller, status, f"expected 403 for want of {needs}", response.get("Location")))
    assert not wrong, "\n".join(str(entry) for entry in wrong)


@pytest.mark.django_db(databases="__all__")
@pytest.mark.parametrize(("name", "path"), list(page_cases()))
def test_page_answers_every_caller_as_the_matrix_says(people, name, path):
    needs = PAGES[name]
    table = expected_table()
    wrong = []
    for caller in CALLERS:
        client = client_of(caller, people)
        if name == "logout" and caller != "anonymous":  # signs the shared client out
            client = client_for(people[caller])
        response = client.get(path)
        if response.status_code == 405:  # a form's target: what posting to it answers
            response = client.post(path, {})
        status = response.status_code
        if status >= 500:
            wrong.append((caller, status, "server error"))
        elif needs == PUBLIC:
            continue
        elif caller == "anonymous":
            if status != 302 or not response["Location"].startswith("/login/"):
                wrong.append((caller, status, "expected a redirect to /login/"))
        elif holds(caller, needs, table):
            if status in (401, 403):
                wrong.append((caller, status, f"refused though holding {needs}"))
        elif status != 403:
            wrong.append((caller, status, f"expected 403 for want of {needs}", response.get("Location")))
    assert not wrong, "\n".join(str(entry) for entry in wrong)


@pytest.mark.django_db(databases="__all__")
@pytest.mark.parametrize(("name", "path"), list(admin_cases()))
def test_the_admin_opens_only_inside_break_glass(people, name, path):
    """Outside break-glass nobody gets an admin page; inside, its index and every list open (what
    may be added or changed there is the admin's own tests' business)."""
    wrong = []
    for caller in CALLERS:
        response = client_of(caller, people).get(path)
        status = response.status_code
        if status >= 500:
            wrong.append((caller, status, "server error"))
        elif caller == "break_glass":
            if (name == "index" or name.endswith("_changelist")) and status != 200:
                wrong.append((caller, status, "refused inside break-glass"))
        elif status == 200 and name not in ("login", "logout", "jsi18n"):
            wrong.append((caller, status, "opened outside break-glass"))
    assert not wrong, "\n".join(str(entry) for entry in wrong)


# What every page and every API answer carries, and what every form refuses.

SECURITY_HEADERS = {
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
}


@pytest.mark.django_db(databases="__all__")
def test_every_page_carries_the_security_headers(people):
    client = client_of("break_glass", people)
    wrong = []
    for param in page_cases():
        name, path = param.values
        response = client.get(path)
        if response.status_code == 405 or response.get("Content-Type", "").startswith("text/calendar"):
            continue
        missing = [h for h, v in SECURITY_HEADERS.items() if response.get(h) != v]
        csp = response.get("Content-Security-Policy", "")
        if "text/html" in response.get("Content-Type", "") and not (
            "default-src 'self'" in csp and "frame-ancestors 'none'" in csp and "object-src 'none'" in csp
        ):
            missing.append(f"Content-Security-Policy: {csp!r}")
        if missing:
            wrong.append((path, response.status_code, missing))
    for param in api_cases():
        name, method, path = param.values
        if method == "get":
            response = client.get(path)
            missing = [h for h, v in SECURITY_HEADERS.items() if response.get(h) != v]
            if missing:
                wrong.append((path, response.status_code, missing))
    assert not wrong, "\n".join(str(entry) for entry in wrong)


@pytest.mark.django_db(databases="__all__")
def test_every_form_refuses_a_post_without_its_csrf_token(people):
    """Every page route, signed in (a verified session) or not: a POST without the form's token is
    refused before the view runs, whatever the view would have said."""
    from django.test import Client

    signed_in = Client(enforce_csrf_checks=True)
    signed_in.force_login(people["break_glass"])
    session = signed_in.session
    session.update(client_for(people["break_glass"]).session.items())
    session.save()
    wrong = []
    for client in (Client(enforce_csrf_checks=True), signed_in):
        for param in page_cases():
            name, path = param.values
            response = client.post(path, {"otp": "000000"})
            refused = response.status_code == 403 and "This form expired" in response.content.decode()
            if not refused:
                wrong.append((path, response.status_code))
    assert not wrong, "\n".join(str(entry) for entry in wrong)
