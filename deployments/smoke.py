"""Smoke tests: the environment's checks (path, expected status, text in the body) against one
colour's own address, each with its evidence."""

import time

import requests

from deployments.models import Stage


def smoke_test(base_url: str, checks: list[dict]) -> list[dict]:
    """Runs every check against `base_url`; each result says what was asked, what came, and ok."""
    results = []
    for check in checks:
        url = base_url.rstrip("/") + check["path"]
        expected, contains = check.get("status", 200), check.get("contains", "")
        started = time.monotonic()
        try:
            response = requests.get(url, timeout=check.get("timeout", 5), allow_redirects=False)
        except requests.RequestException as error:
            detail = f"{url} did not answer: {type(error).__name__}"
            results.append(Stage.evidence(f"GET {check['path']}", False, None, expected, detail))
            continue
        elapsed = round((time.monotonic() - started) * 1000)
        ok = response.status_code == expected and (not contains or contains in response.text)
        detail = f"{response.status_code} in {elapsed} ms"
        if response.status_code == expected and contains and contains not in response.text:
            detail += f", without “{contains}” in the body"
        results.append(Stage.evidence(f"GET {check['path']}", ok, response.status_code, expected, detail))
    return results
