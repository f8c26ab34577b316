"""The role matrix, walked right by right against a table written out from the issue.

The table is literal on purpose: were it computed from portal.roles.MATRIX, a wrong entry there
would be a wrong entry here too, and the walk could never fail.
"""

from datetime import timedelta

import pytest
from django.contrib.auth.context_processors import PermWrapper
from django.template import Context, Template

from portal import clock
from portal.models import BreakGlassSession, UserCapacity
from portal.roles import Capacity, Right, Role, requires_mfa, rights_of
from tests.factories import UserFactory

# "x" = holds the right. Columns: the seven roles, a release manager who also holds the
# policy_admin capacity, and an administrator inside an open break-glass session.
EXPECTED = """
right                           developer qa devops release_manager sre admin auditor policy_admin break_glass
change.view                         x     x    x          x          x    x      x          x           x
change.create                       x     x    x          x          x    .      .          x           x
change.approve                      x     x    x          x          x    .      .          x           x
deployment.view                     x     x    x          x          x    x      x          x           x
deployment.deploy                   .     .    .          x          .    .      .          x           x
deployment.rollback                 .     .    .          x          .    .      .          x           x
deployment.rollback_incident        .     .    .          .          x    .      .          .           x
environment.view                    x     x    x          x          x    x      x          x           x
environment.view_settings           .     .    x          x          x    .      x          x           x
environment.manage                  .     .    .          .          .    .      .          x           x
window.manage                       .     .    .          x          .    .      .          x           x
freeze.manage                       .     .    .          x          .    .      .          x           x
staging.report                      .     .    x          .          .    .      .          .           x
incident.view                       x     x    x          x          x    x      x          x           x
incident.declare                    x     x    x          x          x    .      .          x           x
incident.manage                     .     .    .          .          x    .      .          .           x
audit.view                          .     .    .          x          x    .      x          x           x
audit.export                        .     .    .          .          .    .      x          .           x
policy.manage                       .     .    .          .          .    .      .          x           x
role.grant                          .     .    .          .          .    .      .          x           x
notification.test                   .     .    .          .          x    .      .          x           x
break_glass.open                    .     .    .          .          .    x      .          .           x
"""


def expected_table() -> dict[str, dict[str, bool]]:
    header, *rows = EXPECTED.strip().splitlines()
    columns = header.split()[1:]
    table = {}
    for row in rows:
        right, *marks = row.split()
        assert len(marks) == len(columns), row
        table[right] = {column: mark == "x" for column, mark in zip(columns, marks, strict=True)}
    return table


def open_break_glass(user) -> BreakGlassSession:
    now = clock.now()
    return BreakGlassSession.objects.create(
        user=user, reason="Primary database is down", opened_at=now, expires_at=now + timedelta(hours=1)
    )


@pytest.mark.django_db
def test_has_perm_walks_the_whole_matrix():
    users = {role: UserFactory(username=role, role=role) for role in Role.values}
    users["policy_admin"] = UserFactory(
        username="policyadmin", role=Role.RELEASE_MANAGER, capacities=[Capacity.POLICY_ADMIN]
    )
    users["break_glass"] = UserFactory(username="breakglass", role=Role.ADMIN, is_staff=True)
    open_break_glass(users["break_glass"])
    table = expected_table()

    assert sorted(table) == sorted(Right.values), "every right needs a row, and only rights"
    mismatches = [
        (column, right, f"expected {expected}")
        for right, row in table.items()
        for column, expected in row.items()
        if users[column].has_perm(right) is not expected
    ]
    assert mismatches == []


@pytest.mark.django_db
def test_has_perm_superuser_flag_grants_nothing():
    developer = UserFactory(role=Role.DEVELOPER, is_superuser=True, is_staff=True)
    admin = UserFactory(role=Role.ADMIN, is_superuser=True, is_staff=True)

    assert not developer.has_perm(Right.DEPLOYMENT_DEPLOY)
    assert not developer.has_perm(Right.AUDIT_VIEW)
    assert not admin.has_perm(Right.DEPLOYMENT_DEPLOY)
    assert not admin.has_perm(Right.ROLE_GRANT)


@pytest.mark.django_db
def test_has_perm_capacities_add_rights():
    developer = UserFactory(role=Role.DEVELOPER)
    before = rights_of(developer)
    assert not developer.has_perm(Right.ROLE_GRANT)

    UserCapacity.objects.create(user=developer, capacity=Capacity.SECURITY, granted_at=clock.now())
    developer.forget_rights()
    assert rights_of(developer) == before  # a sign-off capacity is not a right

    UserCapacity.objects.create(user=developer, capacity=Capacity.POLICY_ADMIN, granted_at=clock.now())
    developer.forget_rights()
    assert rights_of(developer) - before == {
        Right.POLICY_MANAGE,
        Right.ROLE_GRANT,
        Right.ENVIRONMENT_MANAGE,
        Right.NOTIFICATION_TEST,
    }


@pytest.mark.django_db
def test_requires_mfa_for_every_role_auditor_included():
    answers = {role: requires_mfa(UserFactory(username=role, role=role)) for role in Role.values}

    assert answers == {
        "developer": True,
        "qa": True,
        "devops": True,
        "release_manager": True,
        "sre": True,
        "admin": True,
        "auditor": True,
    }


@pytest.mark.django_db
def test_template_perms_reads_the_matrix(auditor, developer):
    template = Template(
        "{% if perms.audit.view %}reads-audit{% else %}no-audit{% endif %} "
        "{% if perms.deployment.deploy %}deploys{% else %}no-deploy{% endif %}"
    )

    def render(user) -> str:
        return template.render(Context({"perms": PermWrapper(user)}))

    assert render(auditor) == "reads-audit no-deploy"
    assert render(developer) == "no-audit no-deploy"
