"""Who may do what: the role matrix, the capacities a user holds besides the role, break-glass.

This is the one place rights are decided. `User.has_perm(right)` asks it, so `{% if perms.audit.view %}`
in a template, `user.has_perm("audit.view")` in a view and the DRF permission classes all agree.

It maps "Access Control" of the production process to portal rights:
- developers and QA file, view and approve change requests (never their own) but cannot deploy;
- DevOps read environments' deployment settings, without changing them, and make the CI tokens that
  report staging runs;
- release managers deploy, roll back, and keep windows and freezes;
- SREs run incidents and may roll back a deployment linked to an open incident;
- auditors read everything and export evidence, and change nothing;
- admins hold full rights only inside a break-glass session they open with a reason and an OTP.
"""

from typing import TYPE_CHECKING

from django.core.exceptions import PermissionDenied
from django.db import models

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser

    from portal.models import User


class Role(models.TextChoices):
    DEVELOPER = "developer", "Developer"
    QA = "qa", "QA engineer"
    DEVOPS = "devops", "DevOps engineer"
    RELEASE_MANAGER = "release_manager", "Release manager"
    SRE = "sre", "Site reliability engineer"
    ADMIN = "admin", "Administrator"
    AUDITOR = "auditor", "Auditor"


class Capacity(models.TextChoices):
    SECURITY = "security", "Security sign-off"
    PRODUCT = "product", "Product sign-off"
    ENGINEERING_LEAD = "engineering_lead", "Engineering lead sign-off"
    POLICY_ADMIN = "policy_admin", "Policy administrator"


class Right(models.TextChoices):
    CHANGE_VIEW = "change.view", "view change requests"
    CHANGE_CREATE = "change.create", "file change requests"
    CHANGE_APPROVE = "change.approve", "approve change requests"
    DEPLOYMENT_VIEW = "deployment.view", "view deployments"
    DEPLOYMENT_DEPLOY = "deployment.deploy", "deploy"
    DEPLOYMENT_ROLLBACK = "deployment.rollback", "roll back any deployment"
    DEPLOYMENT_ROLLBACK_INCIDENT = (
        "deployment.rollback_incident",
        "roll back a deployment linked to an open incident",
    )
    ENVIRONMENT_VIEW = "environment.view", "view environments and services"
    ENVIRONMENT_VIEW_SETTINGS = "environment.view_settings", "read environments' deployment settings"
    ENVIRONMENT_MANAGE = "environment.manage", "edit environments and services"
    WINDOW_MANAGE = "window.manage", "keep deployment windows"
    FREEZE_MANAGE = "freeze.manage", "keep change freezes"
    STAGING_REPORT = "staging.report", "report staging test runs (with a CI token)"
    INCIDENT_VIEW = "incident.view", "view incidents"
    INCIDENT_DECLARE = "incident.declare", "declare incidents"
    INCIDENT_MANAGE = "incident.manage", "run incidents"
    AUDIT_VIEW = "audit.view", "read the audit trail"
    AUDIT_EXPORT = "audit.export", "export audit evidence"
    POLICY_MANAGE = "policy.manage", "edit the approval policy"
    ROLE_GRANT = "role.grant", "grant roles and capacities"
    NOTIFICATION_TEST = "notification.test", "send test notifications"
    BREAK_GLASS_OPEN = "break_glass.open", "open a break-glass session"


_READ = {
    Right.CHANGE_VIEW,
    Right.DEPLOYMENT_VIEW,
    Right.ENVIRONMENT_VIEW,
    Right.INCIDENT_VIEW,
}
_ENGINEER = _READ | {Right.CHANGE_CREATE, Right.CHANGE_APPROVE, Right.INCIDENT_DECLARE}

MATRIX: dict[str, frozenset[str]] = {
    Role.DEVELOPER: frozenset(_ENGINEER),
    Role.QA: frozenset(_ENGINEER),
    Role.DEVOPS: frozenset(_ENGINEER | {Right.ENVIRONMENT_VIEW_SETTINGS, Right.STAGING_REPORT}),
    Role.RELEASE_MANAGER: frozenset(
        _ENGINEER
        | {
            Right.DEPLOYMENT_DEPLOY,
            Right.DEPLOYMENT_ROLLBACK,
            Right.ENVIRONMENT_VIEW_SETTINGS,
            Right.WINDOW_MANAGE,
            Right.FREEZE_MANAGE,
            Right.AUDIT_VIEW,
        }
    ),
    Role.SRE: frozenset(
        _ENGINEER
        | {
            Right.DEPLOYMENT_ROLLBACK_INCIDENT,
            Right.ENVIRONMENT_VIEW_SETTINGS,
            Right.INCIDENT_MANAGE,
            Right.AUDIT_VIEW,
            Right.NOTIFICATION_TEST,
        }
    ),
    # Outside break-glass an administrator reads and may open a session, nothing more.
    Role.ADMIN: frozenset(_READ | {Right.BREAK_GLASS_OPEN}),
    Role.AUDITOR: frozenset(_READ | {Right.ENVIRONMENT_VIEW_SETTINGS, Right.AUDIT_VIEW, Right.AUDIT_EXPORT}),
}

CAPACITY_RIGHTS: dict[str, frozenset[str]] = {
    Capacity.SECURITY: frozenset(),
    Capacity.PRODUCT: frozenset(),
    Capacity.ENGINEERING_LEAD: frozenset(),
    Capacity.POLICY_ADMIN: frozenset(
        {Right.POLICY_MANAGE, Right.ROLE_GRANT, Right.ENVIRONMENT_MANAGE, Right.NOTIFICATION_TEST}
    ),
}

# Rights that move production or the rules around it: each act of them takes a fresh OTP.
SENSITIVE_RIGHTS = frozenset(
    {
        Right.CHANGE_APPROVE,
        Right.DEPLOYMENT_DEPLOY,
        Right.DEPLOYMENT_ROLLBACK,
        Right.DEPLOYMENT_ROLLBACK_INCIDENT,
        Right.POLICY_MANAGE,
        Right.ROLE_GRANT,
        Right.ENVIRONMENT_MANAGE,
        Right.BREAK_GLASS_OPEN,
    }
)

# Capacities held only by people who can never approve (auditors) would be meaningless.
CAPACITIES_FORBIDDEN_FOR: dict[str, frozenset[str]] = {Role.AUDITOR: frozenset(Capacity.values)}


def rights_of(user: "User | AnonymousUser") -> frozenset[str]:
    """Every right the user holds now: role, capacities, and everything inside break-glass."""
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return frozenset()
    cached: frozenset[str] | None = getattr(user, "_greenlight_rights", None)
    if cached is not None:
        return cached
    if user.break_glass_session() is not None:
        rights = frozenset(Right.values)
    else:
        rights = MATRIX.get(user.role, frozenset())
        for capacity in user.capacity_names():
            rights |= CAPACITY_RIGHTS.get(capacity, frozenset())
    user._greenlight_rights = rights
    return rights


def has_right(user: "User | AnonymousUser", right: str) -> bool:
    return right in rights_of(user)


# The Django admin's model permissions that may be granted: writes only where the admin saves
# through an audited service (deploy settings); everything else there is read-only.
ADMIN_WRITABLE = frozenset({"deployments.add_deploysettings", "deployments.change_deploysettings"})


def admin_may(user: "User | AnonymousUser", permission: str) -> bool:
    """A Django model permission ("app_label.view_model"): the admin opens only to an administrator
    inside an open break-glass session, who reads everything there and writes what is audited."""
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return False
    if user.break_glass_session() is None:
        return False
    _app_label, _, codename = permission.partition(".")
    return codename.startswith("view_") or permission in ADMIN_WRITABLE


def admin_opens_to(user: "User | AnonymousUser") -> bool:
    """Whether the admin shows this person anything: only inside break-glass."""
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return False
    return user.break_glass_session() is not None


def requires_mfa(user: "User") -> bool:
    """Everyone signs in with a second factor: every role reads production's changes, deployments
    and incidents, and the process asks MFA for all production access (an auditor reads the whole
    audit trail and every environment's settings)."""
    return True


def missing_right_message(right: str, *others: str) -> str:
    """What a refusal says: the right, or the rights of which any one would do."""
    if others:
        return (
            "You need one of these rights: "
            + ", ".join(f"{Right(r).label} ({r})" for r in (right, *others))
            + "."
        )
    label = Right(right).label if right in Right.values else right
    return f"You need the right to {label} ({right})."


def require_right(user: "User | AnonymousUser", right: str) -> None:
    """Refuses (PermissionDenied: a 403 in the API and on the pages) one who lacks the right."""
    if not has_right(user, right):
        raise PermissionDenied(missing_right_message(right))
