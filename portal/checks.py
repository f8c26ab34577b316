"""Start-up checks (Django's system checks) on settings that are valid but probably wrong."""

from django.conf import settings
from django.core.checks import Tags, Warning, register


@register(Tags.security)
def trusted_proxies_named(app_configs, **kwargs) -> list:
    """Behind a load balancer, TRUSTED_PROXIES must name it: without it every request seems to
    come from the balancer's address, so the audit trail records that address for everyone and
    the sign-in lockout's budget per address is shared by all who sign in."""
    if settings.TRUSTED_PROXIES or settings.DEMO:
        return []
    return [
        Warning(
            "TRUSTED_PROXIES is empty: behind a load balancer every client seems to come from the "
            "balancer's address, shares its sign-in lockout budget and is audited under it.",
            hint="Set TRUSTED_PROXIES to your load balancers' addresses or CIDR ranges "
            "(README, Configuration); leave it empty only when clients connect directly.",
            id="greenlight.W001",
        )
    ]


@register(Tags.security, deploy=True)
def audit_anchored_outside(app_configs, **kwargs) -> list:
    """Anchors kept as files beside the application are only as safe as its disk."""
    if settings.AUDIT_ANCHOR_BUCKET or settings.DEMO:
        return []
    return [
        Warning(
            "AUDIT_ANCHOR_BUCKET is unset: the audit chain's anchors are files under var/, which "
            "whoever holds this machine can remove with the events they name.",
            hint="Create an S3 bucket with Object Lock and set AUDIT_ANCHOR_BUCKET (README, Security).",
            id="greenlight.W010",
        )
    ]


@register(Tags.security, deploy=True)
def application_role_owns_nothing(app_configs, **kwargs) -> list:
    """The role the application connects as must not own the audit table nor be a superuser: either
    could switch the table's guard off or empty it."""
    from django.db import DatabaseError, connection

    if connection.vendor != "postgresql":
        return []
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT r.rolsuper, c.relowner = r.oid FROM pg_roles r LEFT JOIN pg_class c "
                "ON c.relname = 'portal_auditevent' AND c.relkind = 'r' WHERE r.rolname = current_user"
            )
            superuser, owner = cursor.fetchone()
    except DatabaseError:
        return []
    if not (superuser or owner):
        return []
    return [
        Warning(
            "The application connects to PostgreSQL as "
            + ("a superuser" if superuser else "the owner of the audit table")
            + ": it could switch the audit trail's guard off or truncate it.",
            hint="Connect web, workers and beat as a role that owns no table; run "
            "`manage.py database_roles --app-role <role>` as the owner after migrating (README, Security).",
            id="greenlight.W011",
        )
    ]
