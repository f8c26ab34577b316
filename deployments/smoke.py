"""Smoke tests: the environment's checks (path, expected status, text in the body) against one
colour's own address, each with its evidence."""

from deployments.models import Stage
from integrations import outbound
from portal.errors import OutsideError

# A check that looks for text reads no more of the body than this.
READ_LIMIT = 1_000_000


def smoke_test(base_url: str, checks: list[dict]) -> list[dict]:
    """Runs every check against `base_url`; each result says what was asked, what came, and ok.
    The evidence keeps the status and the time, never the body: a check that looks for text says
    only whether the check passed."""
    results = []
    for check in checks:
        url = base_url.rstrip("/") + check["path"]
        expected, contains = check.get("status", 200), check.get("contains", "")
        name = f"GET {check['path']}"
        try:
            answer = outbound.request(
                "GET", url, timeout=check.get("timeout", 5), read=READ_LIMIT if contains else 0
            )
        except OutsideError as error:
            results.append(Stage.evidence(name, False, None, expected, str(error)))
            continue
        detail = f"{answer.status} in {answer.elapsed_ms} ms"
        if answer.redirect:
            detail += ", a redirect, which is not followed"
        ok = answer.status == expected and (not contains or contains.encode() in answer.body)
        if answer.status == expected and not ok:
            detail += ", the expected text missing"
        results.append(Stage.evidence(name, ok, answer.status, expected, detail))
    return results
