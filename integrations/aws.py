"""AWS for a deployment, through boto3: the load balancer's weights between the two colours, the
health of a target group's targets, CloudWatch's counts and latency percentiles per target group,
alarms, and the database snapshot taken before deploying. Adapters only: no database here.

boto3 retries little (the engine backs off between its own short steps instead of sleeping in a
call) and every refusal becomes an AwsError in words, marked transient when waiting may help.
"""

import functools
import logging
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, TypeVar

from portal.errors import OutsideError

if TYPE_CHECKING:
    # boto3 has no types of its own: its sessions, clients and answers are Any to mypy.
    from boto3.session import Session
    from botocore.config import Config

logger = logging.getLogger(__name__)
# Error codes that say "not now" rather than "no".
TRANSIENT = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "RequestLimitExceeded",
        "TooManyRequestsException",
        "RequestThrottled",
        "ServiceUnavailable",
        "InternalFailure",
        "InternalError",
        "RequestTimeout",
        "PriorRequestNotComplete",
        "SlowDown",
    }
)
CREDENTIALS = frozenset(
    {
        "AccessDenied",
        "AccessDeniedException",
        "UnauthorizedOperation",
        "InvalidClientTokenId",
        "ExpiredToken",
        "ExpiredTokenException",
        "SignatureDoesNotMatch",
        "UnrecognizedClientException",
        "AuthFailure",
    }
)


class AwsError(OutsideError):
    """A call AWS refused or that did not reach it, in words a person acts on; `code` is AWS's."""

    def __init__(self, message: str, *, transient: bool = False, code: str = ""):
        super().__init__(message, transient=transient)
        self.code = code


P = ParamSpec("P")
R = TypeVar("R")


def _speaks(
    action: str,
) -> Callable[[Callable[Concatenate["Aws", P], R]], Callable[Concatenate["Aws", P], R]]:
    """Turns what botocore raises during `action` into an AwsError in words."""

    def wrap(method: Callable[Concatenate["Aws", P], R]) -> Callable[Concatenate["Aws", P], R]:
        @functools.wraps(method)
        def call(self: "Aws", /, *args: P.args, **kwargs: P.kwargs) -> R:
            from botocore.exceptions import (
                BotoCoreError,
                ClientError,
                NoCredentialsError,
                NoRegionError,
                ParamValidationError,
            )

            try:
                return method(self, *args, **kwargs)
            except ClientError as error:
                code = error.response.get("Error", {}).get("Code", "")
                message = error.response.get("Error", {}).get("Message", "") or code
                if code in TRANSIENT:
                    raise AwsError(
                        f"AWS is busy ({code}) while trying to {action}: {message}", transient=True
                    ) from None
                if code in CREDENTIALS:
                    raise AwsError(
                        f"AWS refused the credentials to {action} ({code}: {message}). Check the worker's "
                        "credentials and the environment's role.",
                        code=code,
                    ) from None
                raise AwsError(f"AWS refused to {action} ({code}): {message}", code=code) from None
            except NoCredentialsError:
                logger.warning("no AWS credentials to %s", action, exc_info=True)
                raise AwsError(f"No AWS credentials to {action}: give the worker credentials.") from None
            except (ParamValidationError, NoRegionError) as error:
                raise AwsError(f"AWS cannot be asked to {action}: {error}") from None
            except BotoCoreError as error:
                raise AwsError(f"AWS could not be reached to {action}: {error}", transient=True) from None

        return call

    return wrap


@dataclass(frozen=True)
class Counts:
    requests: int
    errors: int  # target 5xx

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0


def dimension(arn: str, kind: str) -> str:
    """The CloudWatch dimension of a load balancer or target group from an ARN: `app/name/id` of a
    listener's load balancer, `targetgroup/name/id` of a target group."""
    if kind == "LoadBalancer":
        match = re.search(r":(?:listener|listener-rule|loadbalancer)/(app/[^/]+/[^/]+)", arn)
    else:
        match = re.search(r":(targetgroup/[^/]+/[^/]+)$", arn)
    if not match:
        raise AwsError(f"{arn} is not an ARN of an application load balancer's {kind.lower()}.")
    return match.group(1)


# What makes a client is costly (a boto3 session reads its service models from disk; a role is an
# STS call): each worker process keeps its clients, per region, role and endpoint, for as long as
# their credentials hold. boto3's clients are safe to share between threads.
_CLIENTS: dict[tuple[str, str, str | None, str], Any] = {}
_SESSIONS: dict[tuple[str, str, str | None], tuple["Session", datetime | None]] = {}
_MADE = threading.Lock()
# An assumed role's credentials are made again this long before they expire.
ROLE_RENEWED_BEFORE = timedelta(minutes=10)


def clients_forget() -> None:
    """Drops this process's sessions and clients (the credentials the next call uses are read again)."""
    with _MADE:
        _CLIENTS.clear()
        _SESSIONS.clear()


class Aws:
    """One environment's AWS: its region, and its own account through an assumed role."""

    def __init__(self, *, region: str, role_arn: str = "", endpoint_url: str | None = None):
        self.region, self.role_arn, self.endpoint_url = region, role_arn, endpoint_url

    @property
    def _key(self) -> tuple[str, str, str | None]:
        return (self.region, self.role_arn, self.endpoint_url)

    @_speaks("assume the environment's role")
    def _session_for(self) -> "Session":
        """The session of this region and role, kept by the process; an assumed role's is made
        again when its credentials are about to expire. Called holding _MADE."""
        import boto3

        session, expires = _SESSIONS.get(self._key, (None, None))
        if session is not None and (expires is None or expires - ROLE_RENEWED_BEFORE > datetime.now(UTC)):
            return session
        session, expires = boto3.session.Session(region_name=self.region), None
        if self.role_arn:
            sts = session.client("sts", endpoint_url=self.endpoint_url, config=self._config())
            credentials = sts.assume_role(RoleArn=self.role_arn, RoleSessionName="greenlight-deploy")[
                "Credentials"
            ]
            session = boto3.session.Session(
                region_name=self.region,
                aws_access_key_id=credentials["AccessKeyId"],
                aws_secret_access_key=credentials["SecretAccessKey"],
                aws_session_token=credentials["SessionToken"],
            )
            expires = credentials["Expiration"]
            for key in [key for key in _CLIENTS if key[:3] == self._key]:
                del _CLIENTS[key]  # made with the credentials that expire
        _SESSIONS[self._key] = (session, expires)
        return session

    @staticmethod
    def _config() -> "Config":
        from botocore.config import Config

        # No retries inside a call: the engine waits and tries again itself, without sleeping.
        return Config(connect_timeout=5, read_timeout=10, retries={"mode": "standard", "max_attempts": 1})

    def client(self, service: str) -> Any:
        """boto3's client of the service (untyped: boto3 makes its clients at run time)."""
        with _MADE:
            session = self._session_for()
            key = (*self._key, service)
            if key not in _CLIENTS:
                _CLIENTS[key] = session.client(service, endpoint_url=self.endpoint_url, config=self._config())
            return _CLIENTS[key]

    # The load balancer.

    def _actions(self, listener_arn: str, rule_arn: str) -> list[dict[str, Any]]:
        elbv2 = self.client("elbv2")
        actions: list[dict[str, Any]]
        if rule_arn:
            actions = elbv2.describe_rules(RuleArns=[rule_arn])["Rules"][0]["Actions"]
        else:
            actions = elbv2.describe_listeners(ListenerArns=[listener_arn])["Listeners"][0]["DefaultActions"]
        return actions

    @staticmethod
    def _forward(actions: list[dict[str, Any]], where: str) -> dict[str, Any]:
        forward = next((a for a in actions if a["Type"] == "forward"), None)
        if forward is None:
            raise AwsError(f"{where} does not forward to target groups.")
        return forward

    @_speaks("read the listener's weights")
    def weights(self, *, listener_arn: str, rule_arn: str = "") -> dict[str, int]:
        """Each target group's share of the traffic, in percent."""
        forward = self._forward(self._actions(listener_arn, rule_arn), rule_arn or listener_arn)
        groups = forward.get("ForwardConfig", {}).get("TargetGroups") or [
            {"TargetGroupArn": forward["TargetGroupArn"], "Weight": 1}
        ]
        total = sum(g.get("Weight", 1) for g in groups) or 1
        return {g["TargetGroupArn"]: round(100 * g.get("Weight", 1) / total) for g in groups}

    @_speaks("set the listener's weights")
    def set_weights(self, weights: dict[str, int], *, listener_arn: str, rule_arn: str = "") -> None:
        """Forwards to the target groups in these percentages (whole numbers adding up to 100),
        changing only the forward action: the listener's other actions (an authentication step)
        and its stickiness stay as they are."""
        if not weights or any(not 0 <= w <= 100 for w in weights.values()) or sum(weights.values()) != 100:
            raise AwsError(f"Weights {weights} are not whole percentages adding up to 100.")
        actions = self._actions(listener_arn, rule_arn)
        forward = self._forward(actions, rule_arn or listener_arn)
        stickiness = forward.get("ForwardConfig", {}).get("TargetGroupStickinessConfig", {"Enabled": False})
        shifted = {k: v for k, v in forward.items() if k != "TargetGroupArn"}
        shifted["ForwardConfig"] = {
            "TargetGroups": [{"TargetGroupArn": arn, "Weight": w} for arn, w in weights.items()],
            "TargetGroupStickinessConfig": stickiness,
        }
        actions = [shifted if action is forward else action for action in actions]
        elbv2 = self.client("elbv2")
        if rule_arn:
            elbv2.modify_rule(RuleArn=rule_arn, Actions=actions)
        else:
            elbv2.modify_listener(ListenerArn=listener_arn, DefaultActions=actions)

    @_speaks("read the target group's health")
    def target_health(self, target_group_arn: str) -> list[tuple[str, str, str]]:
        """Each target: its id, its state (healthy, unhealthy, initial...) and AWS's reason."""
        answer = self.client("elbv2").describe_target_health(TargetGroupArn=target_group_arn)
        return [
            (
                d["Target"]["Id"],
                d["TargetHealth"]["State"],
                d["TargetHealth"].get("Description") or d["TargetHealth"].get("Reason", ""),
            )
            for d in answer["TargetHealthDescriptions"]
        ]

    # CloudWatch.

    def _queries(
        self, listener_arn: str, target_group_arn: str, metric: str, stats: list[str], period: int
    ) -> list[dict[str, Any]]:
        dimensions = [
            {"Name": "LoadBalancer", "Value": dimension(listener_arn, "LoadBalancer")},
            {"Name": "TargetGroup", "Value": dimension(target_group_arn, "TargetGroup")},
        ]
        return [
            {
                "Id": f"{re.sub(r'[^a-z0-9]', '', metric.lower())}_{stat.lower()}",
                "MetricStat": {
                    "Metric": {
                        "Namespace": "AWS/ApplicationELB",
                        "MetricName": metric,
                        "Dimensions": dimensions,
                    },
                    "Period": period,
                    "Stat": stat,
                },
                "ReturnData": True,
            }
            for stat in stats
        ]

    @_speaks("read the request counts from CloudWatch")
    def counts(
        self, *, listener_arn: str, target_group_arn: str, start: datetime, end: datetime, period: int = 60
    ) -> Counts:
        """Requests and target 5xx of the target group between start and end (two Sums; the rate
        is divided here, not by metric math)."""
        queries = self._queries(listener_arn, target_group_arn, "RequestCount", ["Sum"], period)
        queries += self._queries(listener_arn, target_group_arn, "HTTPCode_Target_5XX_Count", ["Sum"], period)
        values = self._metric_data(queries, start, end)
        return Counts(requests=int(sum(values[queries[0]["Id"]])), errors=int(sum(values[queries[1]["Id"]])))

    @_speaks("read the latency percentiles from CloudWatch")
    def percentiles(
        self, *, listener_arn: str, target_group_arn: str, start: datetime, end: datetime, period: int = 60
    ) -> dict[str, float | None]:
        """p95 and p99 of TargetResponseTime in milliseconds (the worst period in the window), or
        None where CloudWatch has no data yet."""
        queries = self._queries(listener_arn, target_group_arn, "TargetResponseTime", ["p95", "p99"], period)
        values = self._metric_data(queries, start, end)
        return {
            name: (max(values[q["Id"]]) * 1000 if values[q["Id"]] else None)
            for name, q in zip(("p95", "p99"), queries, strict=True)
        }

    def _metric_data(
        self, queries: list[dict[str, Any]], start: datetime, end: datetime
    ) -> dict[str, list[float]]:
        values: dict[str, list[float]] = {q["Id"]: [] for q in queries}
        kwargs: dict[str, Any] = {"MetricDataQueries": queries, "StartTime": start, "EndTime": end}
        while True:
            answer = self.client("cloudwatch").get_metric_data(**kwargs)
            for result in answer["MetricDataResults"]:
                values[result["Id"]] += list(result.get("Values", []))
            if not answer.get("NextToken"):
                return values
            kwargs["NextToken"] = answer["NextToken"]

    @_speaks("read the CloudWatch alarms")
    def alarms_firing(self, names: list[str]) -> list[str]:
        """The named alarms in ALARM now, metric or composite; a name CloudWatch does not know is
        reported as firing (a gate must not pass on an alarm that is not there)."""
        if not names:
            return []
        found: dict[str, str] = {}
        pages = self.client("cloudwatch").get_paginator("describe_alarms")
        for page in pages.paginate(AlarmNames=names, AlarmTypes=["MetricAlarm", "CompositeAlarm"]):
            for alarm in page.get("MetricAlarms", []) + page.get("CompositeAlarms", []):
                found[alarm["AlarmName"]] = alarm["StateValue"]
        return sorted(
            name if found.get(name) == "ALARM" else f"{name} (no such alarm)"
            for name in names
            if found.get(name) in ("ALARM", None)
        )

    # The database.

    @_speaks("snapshot the database")
    def snapshot(self, instance: str, snapshot_id: str) -> str:
        """Starts the snapshot (once: an existing one of that id is kept) and says its status."""
        from botocore.exceptions import ClientError

        rds = self.client("rds")
        status: str
        try:
            status = rds.describe_db_snapshots(DBSnapshotIdentifier=snapshot_id)["DBSnapshots"][0]["Status"]
            return status
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "DBSnapshotNotFound":
                raise
        status = rds.create_db_snapshot(DBSnapshotIdentifier=snapshot_id, DBInstanceIdentifier=instance)[
            "DBSnapshot"
        ]["Status"]
        return status

    # Storage that outlives the application's own: the audit chain's anchors and key.

    @_speaks("write a locked object to S3")
    def put_locked(self, *, bucket: str, key: str, body: bytes, retain_until: datetime) -> None:
        """Writes the object under Object Lock in compliance mode: until `retain_until` nobody, the
        bucket's owner included, can delete it or shorten its retention."""
        self.client("s3").put_object(
            Bucket=bucket,
            Key=key,
            Body=body,
            ContentType="application/json",
            ObjectLockMode="COMPLIANCE",
            ObjectLockRetainUntilDate=retain_until,
            ChecksumAlgorithm="SHA256",
        )

    @_speaks("read from S3")
    def first_object(self, *, bucket: str, prefix: str) -> tuple[str, bytes] | None:
        """The key and body of the first object under the prefix in key order, or None."""
        s3 = self.client("s3")
        listed = s3.list_objects_v2(Bucket=bucket, Prefix=prefix, MaxKeys=1)
        if not listed.get("Contents"):
            return None
        key: str = listed["Contents"][0]["Key"]
        body: bytes = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        return key, body

    @_speaks("read a secret from Secrets Manager")
    def secret_string(self, arn: str) -> str:
        value: str = self.client("secretsmanager").get_secret_value(SecretId=arn)["SecretString"]
        return value
