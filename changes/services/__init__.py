"""Every write to a change request: guarded, locked, audited, in one transaction, one module per
subdomain (filing, decisions, checklist, comments, schedule, soak, templates, on the ground of
base). Callers import from here.

Errors a person can act on are `ChangeError` (a 400 or 409 with the message); the views never
change a row themselves.
"""

from changes.rules import ChangeError
from changes.services.base import (
    EDITABLE_FIELDS,
    SlotRefused,
    _locked,
    _notify,
    change_move,
    change_notify,
)
from changes.services.checklist import checklist_item_set
from changes.services.comments import MENTION, comment_add
from changes.services.decisions import change_decide, change_head_moved, change_remind
from changes.services.filing import ChangeInput, change_cancel, change_create, change_submit, change_update
from changes.services.schedule import (
    change_schedule,
    change_unschedule,
    freeze_create,
    freeze_delete,
    window_create,
    window_delete,
)
from changes.services.soak import soak_check, staging_run_record, staging_run_record_once
from changes.services.templates import standard_template_create, standard_template_retire

__all__ = [
    "EDITABLE_FIELDS",
    "MENTION",
    "ChangeError",
    "ChangeInput",
    "SlotRefused",
    "_locked",
    "_notify",
    "change_cancel",
    "change_create",
    "change_decide",
    "change_head_moved",
    "change_move",
    "change_notify",
    "change_remind",
    "change_schedule",
    "change_submit",
    "change_unschedule",
    "change_update",
    "checklist_item_set",
    "comment_add",
    "freeze_create",
    "freeze_delete",
    "soak_check",
    "staging_run_record",
    "staging_run_record_once",
    "standard_template_create",
    "standard_template_retire",
    "window_create",
    "window_delete",
]
