"""Settings that differ between the demo (plain HTTP on localhost) and a real deployment, read in
a fresh process as each would start."""

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT

SCRIPT = """
import django, json
django.setup()
from django.conf import settings
from django.core import checks
from django.test import Client
client = Client(HTTP_HOST="localhost")
login, health = client.get("/login/"), client.get("/healthz")
print(json.dumps({
    "redirect": settings.SECURE_SSL_REDIRECT,
    "session_secure": settings.SESSION_COOKIE_SECURE,
    "csrf_secure": settings.CSRF_COOKIE_SECURE,
    "login": [login.status_code, login.get("Location", "")],
    "health": health.status_code,
    "warnings": [message.id for message in checks.run_checks(tags=["security"])],
}))
"""


def started(tmp_path, **env_extra) -> dict:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", "GREENLIGHT_VAR_DIR": str(tmp_path)}
    env.update(env_extra)
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


PRODUCTION = {
    "DEMO": "false",
    "AUDIT_KEY": "audit-key-for-this-test-only-0123456789",
    "OTP_ENCRYPTION_KEY": "otp-key-for-this-test-only-0123456789ab",
    "TRUSTED_PROXIES": "",
}


@pytest.mark.parametrize("proxies", ["", "10.0.0.0/8"])
def test_settings_outside_the_demo_redirect_to_https_with_secure_cookies(tmp_path, proxies):
    """security L16: SECURE_SSL_REDIRECT was unset; an empty TRUSTED_PROXIES is warned about."""
    answer = started(tmp_path, **{**PRODUCTION, "TRUSTED_PROXIES": proxies})

    assert (answer["redirect"], answer["session_secure"], answer["csrf_secure"]) == (True, True, True)
    assert answer["login"] == [301, "https://localhost/login/"]
    assert answer["health"] == 200
    assert ("greenlight.W001" in answer["warnings"]) is (proxies == "")


def test_settings_in_the_demo_serve_plain_http_with_plain_cookies(tmp_path):
    """issue 19 item 9: Secure cookies on http://localhost broke scripted sign-in in the demo."""
    answer = started(tmp_path, DEMO="true", TRUSTED_PROXIES="")

    assert (answer["redirect"], answer["session_secure"], answer["csrf_secure"]) == (False, False, False)
    assert answer["login"] == [200, ""]
    assert "greenlight.W001" not in answer["warnings"]
