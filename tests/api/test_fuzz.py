"""The API keeps its contract under fuzzing: schemathesis reads the schema the server serves and
sends what it generates (valid and invalid bodies, query strings and paths, at and past every
bound the schema names) with a token of each role, against gunicorn on the test database seeded
with the demo team. Any server error, or any answer the schema does not describe (status, body,
headers, content type), fails the run."""

import http.client
import io
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import connections

from portal.models import User
from portal.services import api_token_create
from tests.conftest import ROOT, database_url

# One user of each role (and the policy administrator's capacity), from the demo team.
ROLE_USERS = ["dana", "bo", "casey", "riley", "sky", "admin", "audrey", "polly"]

# Small and fixed, so that the run is the same every time and takes a few minutes in all.
DEEP_EXAMPLES = 5
LIGHT_EXAMPLES = 3
# One role's run goes through every phase: the schema's own examples, the coverage phase (every
# bound and boundary the schema names, each wrong type, NUL and the like), random fuzzing and
# stateful sequences that follow the links between operations. A developer files changes and
# declares incidents without a code, so reaches the most writes. Each other role fuzzes and
# follows the links, which is where what it may see and do differs.
DEEP_USER = "dana"
DEEP_PHASES = "examples,coverage,fuzzing,stateful"
LIGHT_PHASES = "examples,fuzzing,stateful"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def served(transactional_db, settings, tmp_path):
    """gunicorn serving the test database, seeded with the demo team and its changes."""
    git = {
        "GIT_REPOSITORY_PATH": str(tmp_path / "demo-repo"),
        "GIT_SIGNING_KEY": str(tmp_path / "demo-signing-key"),
        "GIT_ALLOWED_SIGNERS": str(tmp_path / "demo-allowed-signers"),
    }
    settings.DEMO = True
    for name, value in git.items():
        setattr(settings, name, value)
    call_command("demo_seed", stdout=io.StringIO())
    port = _free_port()
    test_url = database_url(connections["default"].settings_dict)
    env = {
        **os.environ,
        **git,
        "DEMO": "true",
        "DATABASE_URL": test_url,
        "DATABASE_REPLICA_URL": test_url,
        "REDIS_URL": settings.REDIS_URL,
        "CLOCK_FILE": str(settings.CLOCK_FILE),
        "ALLOWED_HOSTS": "127.0.0.1",
        # The receivers configured (with secrets nobody sends), so that they answer what they
        # answer in production, 401 or 403, rather than 503 "not configured".
        "GITHUB_WEBHOOK_SECRET": "fuzzing-github-secret",
        "PAGERDUTY_WEBHOOK_SECRET": "fuzzing-pagerduty-secret",
        "SNS_TOPIC_ARNS": "arn:aws:sns:us-east-1:000000000000:greenlight-fuzzing",
        "GREENLIGHT_VAR_DIR": str(tmp_path / "var"),
    }
    log = open(tmp_path / "gunicorn.log", "w")  # noqa: SIM115
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "config.wsgi", "--bind", f"127.0.0.1:{port}", "--workers", "3"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            connection.request("GET", "/healthz")
            connection.getresponse().read()
            break
        except OSError:
            assert server.poll() is None, (tmp_path / "gunicorn.log").read_text()
            assert time.monotonic() < deadline, "gunicorn did not start"
            time.sleep(0.2)
    try:
        yield base
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()


def schemathesis(base: str, username: str, *, phases: str, examples: int, out, cwd) -> int:
    """A schemathesis run as the user (a token of theirs), its report written to `out`; its exit
    status."""
    _token, secret = api_token_create(
        actor=User.objects.get(username=username), name="fuzzing", expires_in_days=1
    )
    return subprocess.run(
        [
            str(Path(sys.executable).parent / "schemathesis"),
            "run",
            f"{base}/api/schema/",
            "--header",
            f"Authorization: Token {secret}",
            "--checks",
            "all",
            # Valid input by the schema may still break a rule the schema cannot say: a field
            # required unless a template fills it, a window's end after its start, a slot in the
            # past, an id of nothing. Those refusals are 400s in words (tested where each rule
            # lives), not a broken contract.
            "--exclude-checks",
            "positive_data_acceptance",
            "--phases",
            phases,
            "--max-examples",
            str(examples),
            "--generation-deterministic",
            # One request at a time: the same requests in the same order on every run.
            "--workers",
            "1",
            "--no-color",
            "--output-truncate",
            "false",
        ],
        cwd=cwd,
        stdout=out,
        stderr=subprocess.STDOUT,
        timeout=600,
    ).returncode


@pytest.mark.fuzz
def test_api_fuzzing_finds_no_server_error_and_no_answer_outside_the_schema(served, tmp_path):
    failures = []
    for username in ROLE_USERS:
        report = tmp_path / f"{username}.txt"
        deep = username == DEEP_USER
        with report.open("w") as out:
            status = schemathesis(
                served,
                username,
                phases=DEEP_PHASES if deep else LIGHT_PHASES,
                examples=DEEP_EXAMPLES if deep else LIGHT_EXAMPLES,
                out=out,
                cwd=tmp_path,
            )
        if status != 0:
            failures.append(f"--- as {username} ---\n{report.read_text()}")
    assert not failures, "\n".join(failures)
