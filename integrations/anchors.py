"""Where the audit chain's anchors and key live out of the application's reach, through boto3: an
S3 bucket with Object Lock, each anchor written with a compliance-mode retention that nobody, the
bucket's owner included, can shorten or delete before it ends; and the audit key in AWS Secrets
Manager. Adapters only: no database here.
"""

import json
from datetime import timedelta

from django.conf import settings

from integrations.aws import Aws, AwsError
from portal.chain import Anchor, AuditKeys, anchor_name


def _aws() -> Aws:
    return Aws(region=settings.AWS_REGION, endpoint_url=settings.AWS_ENDPOINT_URL)


class S3AnchorStore:
    """Anchors as objects under a prefix of a bucket that has Object Lock enabled."""

    def __init__(self, *, bucket: str, prefix: str, retention_days: int):
        self.bucket, self.prefix, self.retention_days = bucket, prefix, retention_days

    def put(self, anchor: Anchor) -> str:
        key = f"{self.prefix}{anchor_name(anchor)}"
        retain_until = anchor.written_at + timedelta(days=self.retention_days)
        _aws().put_locked(
            bucket=self.bucket, key=key, body=anchor.as_json().encode(), retain_until=retain_until
        )
        return f"s3://{self.bucket}/{key}"

    def newest(self) -> Anchor | None:
        found = _aws().first_object(bucket=self.bucket, prefix=self.prefix)
        if found is None:
            return None
        key, body = found
        return Anchor.from_json(body.decode(), where=f"s3://{self.bucket}/{key}")


def audit_keys(arn: str) -> AuditKeys:
    """The audit keys a Secrets Manager secret holds: a plain string (the current key), or JSON
    {"current": "...", "previous": ["...", ...]} while a rotation's old keys still verify."""
    text = _aws().secret_string(arn)
    try:
        data = json.loads(text)
    except ValueError:
        data = text
    if isinstance(data, str):
        current, previous = data, []
    elif isinstance(data, dict) and isinstance(data.get("current"), str):
        current, previous = data["current"], [str(key) for key in data.get("previous", [])]
    else:
        raise AwsError(f"The secret {arn} holds neither a key nor {{'current': ..., 'previous': [...]}}.")
    if len(current) < 32:
        raise AwsError(f"The audit key in {arn} is shorter than 32 characters.")
    return AuditKeys(current, tuple(previous))
