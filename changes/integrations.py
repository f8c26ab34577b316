"""The one hook through which integrations tick the checklist items they can prove.

An item that names an integration is never ticked by a person. Until its integration exists in
this installation it reads "not connected", never a fake tick. Each integration calls
`checklist_prove` from the service that learns the fact (the approvals service when a change is
approved, the scheduler when a window is booked, the engine when a backup completes...).
"""

from portal import clock
from portal.services import audit_record

# Integrations that exist today; the others are named by the policy and wait for their code.
CONNECTED = frozenset(
    {
        "approvals",
        "rollback_plan",
        "stakeholders",
        "schedule",
        "staging_soak",
        "release",
        "backup",
        "deployment",
        "post_deployment",
    }
)
# Proved by the deployment itself (its pre-flight), so they cannot stand in the way of Deploy.
PROVED_BY_DEPLOYMENT = frozenset({"backup"})

LABELS = {
    "approvals": "the approval quorum",
    "rollback_plan": "the change's rollback plan",
    "stakeholders": "stakeholder notifications",
    "staging_soak": "the staging soak",
    "backup": "the pre-flight database snapshot",
    "schedule": "the deployment schedule",
    "deployment": "the deployment engine",
    "post_deployment": "post-deployment verification",
    "release": "the release in the repository",
    "checks": "automated checks",
}


def is_connected(integration: str) -> bool:
    return integration in CONNECTED


def checklist_prove(
    *, change, integration: str, evidence: str, done: bool = True, key: str | None = None
) -> list[str]:
    """Ticks (or unticks) every item of `change` that `integration` proves (only the item `key`
    when given: an integration proving each item with its own evidence), or brings a ticked
    item's evidence up to date (a moved schedule). Runs inside the caller's transaction and
    audits each item it changes. Returns the keys it changed."""
    if integration not in CONNECTED:
        raise ValueError(f"integration {integration!r} is not connected")
    changed = []
    items = change.checklist.filter(integration=integration)
    for item in items.filter(key=key) if key else items:
        if item.done == done and (not done or item.evidence == evidence):
            continue
        before = {"done": item.done, "evidence": item.evidence}
        item.done = done
        item.done_by = None
        item.done_at = clock.now() if done else None
        item.evidence = evidence if done else ""
        item.save(update_fields=["done", "done_by", "done_at", "evidence"])
        audit_record(
            actor=None,
            action="change.checklist_prove" if done else "change.checklist_unprove",
            target=change,
            before={"item": item.key, **before},
            after={"item": item.key, "done": done, "evidence": item.evidence, "integration": integration},
        )
        changed.append(item.key)
    return changed
