"""The harness later tests build on does what it promises."""

import json
import logging

import boto3

from portal import context
from portal.context import RequestContextLogFilter


def test_aws_fixture_answers_from_moto_with_fake_credentials(aws, settings):
    vpc = boto3.client("ec2", region_name=settings.AWS_REGION).create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]
    elbv2 = boto3.client("elbv2", region_name=settings.AWS_REGION)
    created = elbv2.create_target_group(Name="green", Protocol="HTTP", Port=80, VpcId=vpc["VpcId"])
    arn = created["TargetGroups"][0]["TargetGroupArn"]
    assert arn.startswith(f"arn:aws:elasticloadbalancing:{settings.AWS_REGION}:")
    names = [tg["TargetGroupName"] for tg in elbv2.describe_target_groups()["TargetGroups"]]
    assert names == ["green"]


def test_json_logs_carry_the_request_id(settings):
    from pythonjsonlogger.json import JsonFormatter

    formatter_config = settings.LOGGING["formatters"]["json"]
    formatter = JsonFormatter(formatter_config["fmt"], rename_fields=formatter_config["rename_fields"])
    record = logging.LogRecord("greenlight.test", logging.INFO, __file__, 1, "deployed %s", ("v1.2.3",), None)
    with context.bound(context.RequestContext(request_id="req-abcdef123")):
        RequestContextLogFilter().filter(record)
    line = json.loads(formatter.format(record))
    assert line["message"] == "deployed v1.2.3"
    assert line["request_id"] == "req-abcdef123"
    assert (line["level"], line["logger"]) == ("INFO", "greenlight.test")
