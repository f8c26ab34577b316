"""Every write to an incident: guarded, audited, and told on its timeline, in one transaction.

Declared by a person (who needs the right), by a deployment that rolled back by itself, or by an
alarm; then acknowledged, mitigated and resolved in that order (a step may be skipped, never
undone). Acknowledging a resolved incident, or resolving one twice, is refused with the reason.

    base         the refusal, the timeline, the page on PagerDuty
    lifecycle    declared, acknowledged, mitigated, resolved; published, joined, commanded, noted
    escalation   unacknowledged incidents told to the next level
    acting       rollback and code revert from the incident; the incident a rollback opens
    postmortems  post-mortems, their action items, and the reminders
"""

from incidents.services.acting import (
    incident_for_rollback,
    incident_revert,
    incident_revert_run,
    incident_rollback,
    may_revert,
)
from incidents.services.base import INCIDENT_CHANNEL, PAGE_SEVERITY, IncidentRefused, page, timeline_add
from incidents.services.escalation import incidents_escalate
from incidents.services.lifecycle import (
    PAGE_ACTIONS,
    PUBLIC_STEPS,
    incident_acknowledge,
    incident_declare,
    incident_join,
    incident_mitigate,
    incident_note,
    incident_publish,
    incident_resolve,
    incident_take_command,
)
from incidents.services.postmortems import (
    POSTMORTEM_FIELDS,
    REMIND_EVERY,
    action_item_add,
    action_item_set_state,
    postmortem_complete,
    postmortem_save,
    postmortem_write,
    postmortems_remind,
)

__all__ = [
    "INCIDENT_CHANNEL",
    "PAGE_ACTIONS",
    "PAGE_SEVERITY",
    "POSTMORTEM_FIELDS",
    "PUBLIC_STEPS",
    "REMIND_EVERY",
    "IncidentRefused",
    "action_item_add",
    "action_item_set_state",
    "incident_acknowledge",
    "incident_declare",
    "incident_for_rollback",
    "incident_join",
    "incident_mitigate",
    "incident_note",
    "incident_publish",
    "incident_resolve",
    "incident_revert",
    "incident_revert_run",
    "incident_rollback",
    "incident_take_command",
    "incidents_escalate",
    "may_revert",
    "page",
    "postmortem_complete",
    "postmortem_save",
    "postmortem_write",
    "postmortems_remind",
    "timeline_add",
]
