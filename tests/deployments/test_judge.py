"""judge() is pure: these tests give it measurements and limits, with neither a database (none is
allowed here) nor AWS, and read its verdict."""

import pytest

from deployments.judge import Limits, Measured, judge, said
from integrations.aws import Counts

LIMITS = Limits(min_requests=100, max_error_rate=0.001, max_p95_ms=500, max_p99_ms=1000)
HEALTHY = [("i-1", "healthy", ""), ("i-2", "healthy", "")]
SMOKE_PASSED = [{"name": "GET /healthz", "ok": True, "value": 200, "threshold": 200, "detail": ""}]


def measured(**changes) -> Measured:
    fields = {
        "targets": HEALTHY,
        "smoke": SMOKE_PASSED,
        "counts": Counts(requests=400, errors=0),
        "latency": {"p95": 120.0, "p99": 300.0},
        "firing": None,
    }
    return Measured(**{**fields, **changes})


def test_a_healthy_colour_within_every_limit_passes_with_each_value_as_evidence():
    verdict = judge(measured(), LIMITS, colour="green")
    assert (verdict.failed, verdict.inconclusive) == ("", "")
    assert [(c["name"], c["ok"], c["value"], c["threshold"]) for c in verdict.checks] == [
        ("Target health", True, "2/2", None),
        ("GET /healthz", True, 200, 200),
        ("Requests", True, 400, 100),
        ("5xx error rate", True, 0.0, 0.001),
        ("Latency p95", True, 120.0, 500),
        ("Latency p99", True, 300.0, 1000),
    ]


@pytest.mark.parametrize(
    ("changes", "says"),
    [
        (
            {"targets": [("i-1", "healthy", ""), ("i-2", "unhealthy", "")]},
            "Target health 1/2 (i-2 unhealthy)",
        ),
        ({"targets": []}, "Target health 0/0 (all healthy)"),
        (
            {"smoke": [{"name": "GET /", "ok": False, "value": 500, "threshold": 200, "detail": ""}]},
            "GET / 500 over 200",
        ),
        (
            {"counts": Counts(requests=1000, errors=20)},
            "5xx error rate 0.02 over 0.001 (20 of 1000 requests)",
        ),
        ({"latency": {"p95": 650.0, "p99": 900.0}}, "Latency p95 650.0 over 500 (ms)"),
        ({"latency": {"p95": 200.0, "p99": 1500.4}}, "Latency p99 1500.4 over 1000 (ms)"),
        ({"firing": ["shop-5xx"]}, "Alarms ['shop-5xx'] (shop-5xx)"),
        # Too few requests for a rate, but more errors than the whole sample may have.
        (
            {"counts": Counts(requests=40, errors=2), "latency": None},
            "5xx errors 2 over 0.1 (of only 40 requests)",
        ),
    ],
)
def test_each_limit_crossed_fails_the_step_in_words(changes, says):
    verdict = judge(measured(**changes), LIMITS, colour="green")
    assert verdict.failed == says


def test_too_little_traffic_is_inconclusive_not_a_failure():
    verdict = judge(measured(counts=Counts(requests=40, errors=0), latency=None), LIMITS, colour="green")
    assert verdict.failed == ""
    assert verdict.inconclusive == "Only 40 request(s) reached green; 100 are needed to judge it."
    assert ("Requests", None, 40, 100) in [
        (c["name"], c["ok"], c["value"], c["threshold"]) for c in verdict.checks
    ]


def test_a_latency_cloudwatch_has_not_computed_yet_waits():
    verdict = judge(measured(latency={"p99": 300.0}), LIMITS, colour="blue")
    assert verdict.failed == ""
    assert verdict.inconclusive == "CloudWatch has no p95 latency of blue yet."


def test_alarms_are_judged_only_when_watched_and_quiet_ones_pass():
    assert "Alarms" not in [c["name"] for c in judge(measured(), LIMITS, colour="green").checks]
    quiet = judge(measured(firing=[]), LIMITS, colour="green")
    assert quiet.failed == "" and quiet.checks[-1]["detail"] == "none in ALARM"


def test_every_failure_is_named_in_one_sentence():
    verdict = judge(
        measured(
            targets=[("i-1", "draining", "")], firing=["p99-high"], latency={"p95": 700.0, "p99": 800.0}
        ),
        LIMITS,
        colour="green",
    )
    assert verdict.failed == "; ".join(said(c) for c in verdict.checks if c["ok"] is False)
    assert verdict.failed.count(";") == 2
