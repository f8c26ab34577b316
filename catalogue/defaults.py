# ruff: noqa: E501  (one checklist item a line reads best)
"""The default policy Greenlight ships with: the production process of its first customer.

Every value here is only a starting point, copied into the database when an approval policy is made;
an organisation changes its policy in the admin or the API, never here.
"""

from catalogue.choices import Phase

PRE, BEFORE, DURING, AFTER = Phase.PRE, Phase.BEFORE, Phase.DURING, Phase.AFTER

# key: stable name; text: what a person reads; phases: the lists it appears in (an item in two
# lists is kept once); integration: what proves it, when it is not a person's word.
CHECKLIST = [
    {
        "key": "staging_soak",
        "text": "All tests passing in Staging for 48+ hours",
        "phases": [PRE],
        "integration": "staging_soak",
    },
    {"key": "no_critical_bugs", "text": "No critical bugs reported", "phases": [PRE]},
    {"key": "security_audit", "text": "Security audit completed", "phases": [PRE], "vouched_by": "security"},
    {"key": "performance_validated", "text": "Performance validated", "phases": [PRE]},
    {"key": "migrations_tested", "text": "Database migrations tested", "phases": [PRE]},
    {
        "key": "rollback_plan",
        "text": "Rollback plan documented and ready",
        "phases": [PRE, BEFORE],
        "integration": "rollback_plan",
    },
    {"key": "on_call_briefed", "text": "On-call team briefed", "phases": [PRE, BEFORE]},
    {"key": "customer_communication", "text": "Customer communication prepared (if needed)", "phases": [PRE]},
    {"key": "dashboards", "text": "Monitoring dashboards reviewed and prepared", "phases": [PRE, BEFORE]},
    {"key": "backup", "text": "Database backup completed", "phases": [PRE, BEFORE], "integration": "backup"},
    {"key": "approved", "text": "Change request approved", "phases": [BEFORE], "integration": "approvals"},
    {
        "key": "window_scheduled",
        "text": "Deployment window scheduled",
        "phases": [BEFORE],
        "integration": "schedule",
    },
    {
        "key": "stakeholders_notified",
        "text": "All stakeholders notified",
        "phases": [BEFORE],
        "integration": "stakeholders",
    },
    {
        "key": "blue_healthy",
        "text": "Blue environment health verified",
        "phases": [DURING],
        "integration": "deployment",
    },
    {
        "key": "green_deployed",
        "text": "Green environment deployed successfully",
        "phases": [DURING],
        "integration": "deployment",
    },
    {"key": "smoke_tests", "text": "Smoke tests passed", "phases": [DURING], "integration": "deployment"},
    {
        "key": "traffic_shift",
        "text": "Gradual traffic shift (25% → 50% → 100%)",
        "phases": [DURING],
        "integration": "deployment",
    },
    {
        "key": "metrics_in_range",
        "text": "Metrics within acceptable ranges",
        "phases": [DURING],
        "integration": "deployment",
    },
    {
        "key": "no_critical_errors",
        "text": "No critical errors in logs",
        "phases": [DURING],
        "integration": "deployment",
    },
    {
        "key": "full_smoke_suite",
        "text": "Full smoke test suite passed",
        "phases": [AFTER],
        "integration": "post_deployment",
    },
    {
        "key": "performance_baseline",
        "text": "Performance metrics baseline met",
        "phases": [AFTER],
        "integration": "post_deployment",
    },
    {
        "key": "error_rates_normal",
        "text": "Error rates within normal range",
        "phases": [AFTER],
        "integration": "post_deployment",
    },
    {"key": "user_feedback", "text": "User feedback monitored", "phases": [AFTER]},
    {"key": "release_notes", "text": "Release notes published", "phases": [AFTER], "integration": "release"},
    {
        "key": "post_deployment_report",
        "text": "Post-deployment report completed",
        "phases": [AFTER],
        "integration": "post_deployment",
    },
]

# Added to a change that carries database migrations: blue and green run at once.
MIGRATION_CHECKLIST = [
    {
        "key": "migrations_backward_compatible",
        "text": "Migrations are backward compatible with the running version (blue and green run at once)",
        "phases": [PRE],
    },
    {"key": "rollback_covers_schema", "text": "Rollback plan covers the schema change", "phases": [PRE]},
]

APPROVALS = 3
CODE_OWNER_APPROVALS = 1
SIGN_OFFS = ["security", "product", "engineering_lead"]
REMINDER_AFTER_HOURS = 24
# An emergency change fixing an incident: one release manager or SRE approves it (with an OTP)
# up front, and it owes the full review within 48 hours.
EMERGENCY_APPROVALS = 1
EMERGENCY_APPROVER_ROLES = ["release_manager", "sre"]
EMERGENCY_REVIEW_HOURS = 48
# The emergency lane opens only for an open incident this severe or worse (P0 is the worst).
SEVERITIES = ("P0", "P1", "P2", "P3")
EMERGENCY_MIN_SEVERITY = "P1"
# Approvals are given on a commit: new commits dismiss them. GitHub keeps them across a push that
# only merges the target branch in, when asked; so may a policy.
KEEP_APPROVALS_ON_TARGET_MERGE = False
# "All tests passing in Staging for 48+ hours".
SOAK_HOURS = 48


def checklist() -> list[dict]:
    return [dict(item) for item in CHECKLIST]


def sign_offs() -> list[str]:
    return list(SIGN_OFFS)


def emergency_approver_roles() -> list[str]:
    return list(EMERGENCY_APPROVER_ROLES)
