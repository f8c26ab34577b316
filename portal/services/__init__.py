"""Writes that belong to the portal itself.

audit          the audit trail's one writer (`audit_record`, in the caller's transaction)
notifications  outgoing notifications through the outbox
inbound        inbound webhooks' deliveries, each acted on once
access         people, roles, capacities, break-glass, API tokens, the second factor
signin         signing in and out, failed sign-ins and codes, as the audit trail keeps them
"""

from portal.services.access import (
    AccessError,
    api_token_create,
    api_token_revoke,
    break_glass_close,
    break_glass_open,
    mfa_backup_codes_regenerate,
    mfa_totp_confirm,
    user_capacity_grant,
    user_capacity_revoke,
    user_create,
    user_role_set,
    user_sso_link,
    user_unlock,
)
from portal.services.audit import (
    GENESIS_HASH,
    SYSTEM_ACTOR_NAME,
    AuditOutsideTransactionError,
    actor_name_of,
    audit_anchor_write,
    audit_record,
    audit_verify_run,
)
from portal.services.inbound import (
    inbound_once,
)
from portal.services.notifications import (
    MAX_DELIVERY_ATTEMPTS,
    NOTIFICATION_CLAIM_TIMEOUT,
    notification_claim,
    notification_outcome,
    notification_send,
    notification_test_send,
    notifications_reclaim,
)
from portal.services.signin import (
    backup_code_spend,
    code_failure_record,
    password_reset_requested_record,
    password_set,
    sign_in_failure_record,
    sign_in_record,
    sign_out_record,
)

__all__ = [
    "AccessError",
    "AuditOutsideTransactionError",
    "GENESIS_HASH",
    "MAX_DELIVERY_ATTEMPTS",
    "NOTIFICATION_CLAIM_TIMEOUT",
    "SYSTEM_ACTOR_NAME",
    "actor_name_of",
    "api_token_create",
    "api_token_revoke",
    "audit_anchor_write",
    "audit_record",
    "audit_verify_run",
    "backup_code_spend",
    "break_glass_close",
    "break_glass_open",
    "code_failure_record",
    "inbound_once",
    "mfa_backup_codes_regenerate",
    "mfa_totp_confirm",
    "notification_claim",
    "notification_outcome",
    "notification_send",
    "notification_test_send",
    "notifications_reclaim",
    "password_reset_requested_record",
    "password_set",
    "sign_in_failure_record",
    "sign_in_record",
    "sign_out_record",
    "user_capacity_grant",
    "user_capacity_revoke",
    "user_create",
    "user_role_set",
    "user_sso_link",
    "user_unlock",
]
