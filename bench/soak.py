"""A soak run of the demo: `make demo` in a fresh clone, carried by its team for hours through HTTP
only, then judged on what a long run wears out. Each figure's target is zero:

- processes restarted (supervisord's "exited: ... not expected");
- 5xx answers, to the soak's own requests and in the web server's access log, and requests that
  got no answer at all;
- tracebacks in the console log and in var/demo/*.log;
- deployments not ended when the run ends (the last one is given time to end);
- listener weights on the load balancer (the moto server) that differ from the live colour the
  database holds, checked after every deployment and at the end;
- notifications never delivered (still pending or sending minutes after they were made);
- the team's acts refused (a 4xx to an act the team expected to go through);
- and the audit chain must verify (`GET /api/v1/audit/verify/` as the auditor).

What the team does, over and over until the time is up: the developer (`dana`) makes a branch
with a signed commit in a clone of the demo's repository (var/demo-repo) and pushes it, files a
change naming it and submits it; CI reports the commit's check run (GitHub's signed webhook: the
demo runs with a GITHUB_WEBHOOK_SECRET the soak chooses) and its arrival and tests in staging
(a token of the `ci` scope, made by `casey`); the approvers approve on the head commit with
their codes and tick the checklist; the portal clock is shifted past the 48-hour soak to a
deployment window with an hour left (the demo's clock, `manage.py clock shift`, as the README
does), CI reports again, the release manager (`riley`) takes the next free slot and deploys.
Every other release is bad (Environments -> simulated production -> next release Errors): the
engine rolls it back by itself and opens a P1, which the SRE (`sky`) acknowledges and resolves,
and whose post-mortem she writes; the code is then reverted from the incident, or the next
change fixes it forward (`fixes_forward`), in turn. The two changes the seed made ready
(CHG-000004, good, and CHG-000005, bad) go first, as in the README. Meanwhile the auditor
(`audrey`) reads pages and API lists in the background, and each act is followed by reads of
the pages it touched. TOTP codes are computed from the otpauth:// URIs the seed prints, one per
person per 30-second step.

The clone, its console log (demo.log) and the report (report.json) are kept in a directory under
/tmp, named at the start. The table ends the run; the exit status is 1 when a figure misses its
target. Ctrl-C ends the soak early and still judges and stops the demo.

    .venv/bin/python bench/soak.py                  # 120 minutes, a fresh clone of this repository
    .venv/bin/python bench/soak.py --minutes 15 --venv .venv   # reuse this checkout's packages
"""

import argparse
import base64
import hashlib
import hmac
import html
import json
import os
import re
import secrets
import signal
import socket
import sqlite3
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import zoneinfo
from contextlib import closing, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from datetime import time as clock_time
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import boto3
import requests

ROOT = Path(__file__).resolve().parents[1]
PASSWORD = "greenlight-demo"  # noqa: S105 (the demo team's, printed by `make demo`)
TEAM = ("dana", "alex", "bo", "casey", "sam", "pat", "lee", "riley", "sky", "audrey")
APPROVERS = (
    ("alex", ""),
    ("bo", ""),
    ("casey", ""),
    ("sam", "security"),
    ("pat", "product"),
    ("lee", "engineering_lead"),
)
VOUCHERS = {"security": "sam", "product": "pat", "engineering_lead": "lee"}
PROGRAMS = {"redis", "production", "web", "engine", "worker", "beat"}
# The demo's AWS: the moto server `demo_production` runs, with the demo's fake credentials.
AWS = {
    "endpoint_url": "http://127.0.0.1:5100",
    "region_name": "us-east-1",
    "aws_access_key_id": "demo",
    "aws_secret_access_key": "demo",
}
# What the environment may carry that would point the demo elsewhere (README, Configuration).
CONFIGURATION = re.compile(
    r"(SECRET_KEY|ALLOWED_HOSTS|CSRF_TRUSTED_ORIGINS|TRUSTED_PROXIES|DATABASE_.*|REDIS_URL|CELERY_QUEUE"
    r"|AWS_.*|GITHUB_.*|GIT_.*|SLACK_.*|INCIDENT_ESCALATION|PAGERDUTY_.*|SNS_.*|EMAIL_.*|PUBLIC_URL"
    r"|LOG_FORMAT|LOG_LEVEL|DEBUG|LOGIN_.*|OIDC_.*|DEMO.*|CLOCK_FILE|GREENLIGHT_VAR_DIR|VENV|PORT"
    r"|DJANGO_SETTINGS_MODULE|MAKEFLAGS|MAKELEVEL)"
)
OTPAUTH = re.compile(r"otpauth://totp/Greenlight%3A(?P<user>[\w.-]+)\?secret=(?P<secret>[A-Z2-7]+)")
CSRF = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
ACCESS_LINE = re.compile(r'^web\s+\| \S+ \[[^\]]*\] "(?P<request>[^"]*)" (?P<status>\d{3}) ', re.M)
NOT_EXPECTED = re.compile(r"exited: (?P<name>\S+) \((?P<how>[^)]*); not expected\)")
TRACEBACK = "Traceback (most recent call last)"
# A deployment of the demo takes about two minutes; one still running after this is stuck.
DEPLOYMENT_TIMEOUT = 600
# Time left in a deployment window for the slot "Take it" books (an hour) and the deployment.
WINDOW_ROOM = timedelta(minutes=75)


def totp(secret: str, step: int) -> str:
    """RFC 6238's code of a 30-second step (SHA-1, 6 digits), as the demo's authenticators make."""
    key = base64.b32decode(secret + "=" * (-len(secret) % 8))
    digest = hmac.new(key, struct.pack(">Q", step), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    return f"{(int.from_bytes(digest[offset : offset + 4], 'big') & 0x7FFFFFFF) % 1_000_000:06d}"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def portal_time(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None


class Refused(Exception):
    """An act of the team that did not go through (recorded; the soak goes on with the next)."""


@dataclass
class Tally:
    """Everything the soak's own requests met, shared by the team and the background reader."""

    requests: int = 0
    server_errors: list = field(default_factory=list)  # (method, path, status)
    no_answer: list = field(default_factory=list)  # (method, path, error)
    refused: list = field(default_factory=list)  # (who, act, status, detail)
    odd_reads: list = field(default_factory=list)  # (who, path, status)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def note(self, kind: str, *row) -> None:
        with self.lock:
            getattr(self, kind).append(row)


class Browser(requests.Session):
    """A person's browser on the portal. The portal marks its cookies Secure; browsers send those
    to http://localhost anyway, so this one does too (and follows redirects itself, so that the
    cookies a redirecting answer sets are sent on the next hop)."""

    def __init__(self, base: str, tally: Tally):
        super().__init__()
        self.base, self.tally = base, tally

    def request(self, method, url, **kwargs):
        kwargs.setdefault("timeout", 60)
        kwargs["allow_redirects"] = False
        answer = self._one(method, urljoin(self.base, url), **kwargs)
        for _ in range(10):
            if not answer.is_redirect:
                break
            answer = self._one("GET", urljoin(answer.url, answer.headers["Location"]), timeout=60)
        return answer

    def _one(self, method, url, **kwargs):
        path = urlsplit(url).path
        with self.tally.lock:
            self.tally.requests += 1
        try:
            answer = super().request(method, url, **kwargs)
        except requests.RequestException as error:
            self.tally.note("no_answer", method, path, type(error).__name__)
            raise Refused(f"{method} {path}: no answer ({type(error).__name__})") from None
        for cookie in self.cookies:
            cookie.secure = False
        if answer.status_code >= 500:
            self.tally.note("server_errors", method, path, answer.status_code)
        return answer


class Authenticator:
    """A person's authenticator app: the code of the current 30-second step, once (the portal takes
    a code once per person per step, so a second code waits for the next step)."""

    def __init__(self, secret: str):
        self.secret, self.last_step, self.lock = secret, 0, threading.Lock()

    def code(self) -> str:
        with self.lock:
            step = int(time.time() // 30)
            if step <= self.last_step:
                time.sleep((self.last_step + 1) * 30 - time.time() + 0.5)
                step = self.last_step + 1
            self.last_step = step
            return totp(self.secret, step)


class Person:
    """One of the demo team in one browser: a signed-in session, and their authenticator."""

    def __init__(self, username: str, authenticator: Authenticator, base: str, tally: Tally):
        self.username, self.authenticator, self.tally = username, authenticator, tally
        self.browser = Browser(base, tally)
        self.csrf = ""

    def code(self) -> str:
        return self.authenticator.code()

    def sign_in(self) -> None:
        self.get("/login/")
        answer = self.form("/login/", {"username": self.username, "password": PASSWORD, "next": "/"})
        if urlsplit(answer.url).path != "/login/otp/":
            raise Refused(f"{self.username}: the password was not taken ({answer.status_code})")
        answer = self.form("/login/otp/", {"otp": self.code(), "next": "/"})
        if urlsplit(answer.url).path != "/" or answer.status_code != 200:
            raise Refused(f"{self.username}: the code was not taken ({answer.status_code})")

    def get(self, path: str, **kwargs) -> requests.Response:
        answer = self.browser.get(path, **kwargs)
        self._keep_csrf(answer)
        return answer

    def read(self, path: str, **kwargs) -> requests.Response | None:
        """A page or list read between acts: anything but a 200 is noted."""
        try:
            answer = self.get(path, **kwargs)
        except Refused:
            return None
        if answer.status_code != 200:
            self.tally.note("odd_reads", self.username, path, answer.status_code)
        return answer

    def form(self, path: str, data: dict, **kwargs) -> requests.Response:
        """Posts a form of the page, with the CSRF token the portal gave this session."""
        answer = self.browser.post(path, data={"csrfmiddlewaretoken": self.csrf, **data}, **kwargs)
        self._keep_csrf(answer)
        return answer

    def api(self, method: str, path: str, body: dict | None = None, *, act: str = "") -> dict:
        """A call of the REST API with the session; an act (`act` names it) must answer 2xx."""
        headers = {"X-CSRFToken": self.csrf} if method != "GET" else {}
        answer = self.browser.request(method, f"/api/v1/{path}", json=body, headers=headers)
        if answer.status_code >= 300:
            detail = answer.text[:400]
            if act:
                self.tally.note("refused", self.username, act, answer.status_code, detail)
                raise Refused(f"{self.username} {act}: {answer.status_code} {detail}")
            self.tally.note("odd_reads", self.username, f"/api/v1/{path}", answer.status_code)
            raise Refused(f"GET /api/v1/{path}: {answer.status_code}")
        return answer.json() if answer.content else {}

    def _keep_csrf(self, answer: requests.Response) -> None:
        if "text/html" in answer.headers.get("Content-Type", ""):
            found = CSRF.search(answer.text)
            if found:
                self.csrf = found.group(1)


class Demo:
    """`make demo` in a checkout, in its own process group, its console to a log file."""

    def __init__(self, checkout: Path, port: int, log: Path):
        self.checkout, self.port, self.log = checkout, port, log
        self.base = f"http://127.0.0.1:{port}"
        self.webhook_secret = secrets.token_hex(16)
        self.process: subprocess.Popen | None = None
        self.env = {name: value for name, value in os.environ.items() if not CONFIGURATION.fullmatch(name)}

    def start(self) -> None:
        env = {**self.env, "GITHUB_WEBHOOK_SECRET": self.webhook_secret}
        with open(self.log, "ab") as console:
            self.process = subprocess.Popen(
                ["make", "demo", f"PORT={self.port}"],
                cwd=self.checkout,
                env=env,
                stdout=console,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )

    def wait_ready(self, timeout: float = 900) -> None:
        """Until /readyz answers and supervisord runs every program (the first run installs .venv)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"make demo exited ({self.process.returncode}); see {self.log}")
            try:
                ready = requests.get(f"{self.base}/readyz", timeout=5).status_code == 200
            except requests.RequestException:
                ready = False
            if ready and self.programs() and all(s == "RUNNING" for s in self.programs().values()):
                return
            time.sleep(2)
        raise SystemExit(f"the demo was not ready in {timeout:.0f} s; see {self.log}")

    def programs(self) -> dict[str, str]:
        """supervisord's programs and their states."""
        ctl = self.checkout / ".venv/bin/supervisorctl"
        if not ctl.exists():
            return {}
        done = subprocess.run(
            [str(ctl), "-c", "bin/demo.conf", "status"], cwd=self.checkout, capture_output=True, text=True
        )
        states = dict(line.split()[:2] for line in done.stdout.splitlines() if len(line.split()) >= 2)
        return states if set(states) >= PROGRAMS else {}

    def manage(self, *args: str) -> str:
        done = subprocess.run(
            [str(self.checkout / ".venv/bin/python"), "manage.py", *args],
            cwd=self.checkout,
            env=self.env,
            capture_output=True,
            text=True,
            check=True,
        )
        return done.stdout.strip()

    def now(self) -> datetime:
        """The portal clock: the real time plus the offset every process reads (var/clock-offset)."""
        path = self.checkout / "var/clock-offset"
        offset = float(path.read_text().strip() or 0) if path.exists() else 0.0
        return datetime.now(UTC) + timedelta(seconds=offset)

    def shift(self, by: timedelta) -> None:
        self.manage("clock", "shift", f"{int(by.total_seconds()) + 1}s")

    def secrets_of_team(self) -> dict[str, str]:
        return {m["user"]: m["secret"] for m in OTPAUTH.finditer(self.log.read_text(errors="replace"))}

    def query(self, sql: str) -> list[tuple]:
        """Rows of the demo's database, opened read-only."""
        path = self.checkout / "var/greenlight.sqlite3"
        with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)) as db:
            return db.execute(sql).fetchall()

    def stop(self) -> None:
        """Ctrl-C to the demo's process group, as in its terminal; then waits for supervisord."""
        if self.process is None or self.process.poll() is not None:
            return
        pid_file = self.checkout / "var/demo/supervisord.pid"
        supervisor = int(pid_file.read_text()) if pid_file.exists() else None
        for sig, wait in ((signal.SIGINT, 120), (signal.SIGTERM, 30), (signal.SIGKILL, 10)):
            with suppress(ProcessLookupError):
                os.killpg(self.process.pid, sig)
            try:
                self.process.wait(timeout=wait)
                break
            except subprocess.TimeoutExpired:
                continue
        deadline = time.monotonic() + 90
        while supervisor and time.monotonic() < deadline:
            try:
                os.kill(supervisor, 0)
            except ProcessLookupError:
                break
            time.sleep(1)


@dataclass
class Counts:
    """What the team carried through."""

    changes_filed: int = 0
    changes_completed: int = 0
    deployments_good: int = 0
    deployments_rolled_back: int = 0
    deployments_other: int = 0
    incidents: int = 0
    incidents_resolved: int = 0
    postmortems: int = 0
    reverts: int = 0
    fixes_forward: int = 0
    clock_shifts: int = 0
    ci_tokens: int = 0


class Team:
    """The demo team carrying changes through the process, one after another."""

    def __init__(self, demo: Demo, workdir: Path, tally: Tally, deadline: float):
        self.demo, self.workdir, self.tally, self.deadline = demo, workdir, tally, deadline
        team = demo.secrets_of_team()
        missing = [name for name in TEAM if name not in team]
        if missing:
            raise SystemExit(f"the seed printed no otpauth:// URI for {', '.join(missing)}")
        self.people = {name: Person(name, Authenticator(team[name]), demo.base, tally) for name in TEAM}
        self.counts = Counts()
        self.weights_differ: list[dict] = []
        self.stuck: list[str] = []
        self.latest: dict[str, int] = {}  # the latest change, deployment and incident, for reading
        self.deployments = 0  # started: every other one is bad
        self.fix_forward_of: int | None = None  # a rolled-back change the next change fixes
        self.ci = requests.Session()
        self.ci_expires: datetime | None = None
        self.repo = workdir / "dana"
        self.serial = 0
        self.files: dict[int, str] = {}  # each change's file in the repository
        self.numbers: dict[int, str] = {}

    def __getattr__(self, name):
        if name in TEAM:
            return self.people[name]
        raise AttributeError(name)

    # The start: everyone signs in; CI gets its token; the developer gets her working copy.

    def assemble(self) -> None:
        for person in self.people.values():
            person.sign_in()
        self.ci_token()
        var = self.demo.checkout / "var"
        self._git(None, "clone", "--quiet", str(var / "demo-repo"), str(self.repo))
        for name, value in {
            "user.name": "Dana Requester",
            "user.email": "dana@example.com",
            "gpg.format": "ssh",
            "user.signingkey": str(var / "demo-signing-key"),
            "commit.gpgsign": "true",
        }.items():
            self._git(self.repo, "config", name, value)

    def ci_token(self) -> None:
        """CI's token, made by casey; made again (as CI's secret is rotated) when the portal clock,
        which the soak moves on by days, comes within three days of its expiry."""
        if self.ci_expires is not None and self.demo.now() < self.ci_expires - timedelta(days=3):
            return
        token = self.casey.api(
            "POST",
            "tokens/",
            {"name": "CI staging reports", "expires_in_days": 30, "scope": "ci", "otp": self.casey.code()},
            act="make a ci token",
        )
        self.ci.headers["Authorization"] = f"Token {token['token']}"
        self.ci_expires = (
            portal_time(token["expiry"]) if token.get("expiry") else self.demo.now() + timedelta(days=30)
        )
        self.counts.ci_tokens += 1

    # A change from a branch to a scheduled slot.

    def file_change(self, *, fixes: int | None) -> tuple[int, str]:
        """A branch with a signed commit, pushed; the change filed naming it, and submitted."""
        self.serial += 1
        n = self.serial
        branch = f"soak-{n:04d}"
        self._git(self.repo, "fetch", "--quiet", "origin")
        self._git(self.repo, "checkout", "--quiet", "-B", branch, "origin/main")
        name = self.files.get(fixes) or f"soak/{n:04d}.txt"  # a fix forward mends the bad change's file
        work = self.repo / name
        work.parent.mkdir(exist_ok=True)
        with work.open("a") as file:
            file.write(f"{'fixed forward by' if fixes else 'written by'} change {n} of the soak\n")
        title = f"Fix forward {self.numbers[fixes]}" if fixes else f"Soak change {n}"
        self._git(self.repo, "add", name)
        self._git(self.repo, "commit", "--quiet", "-m", title)
        self._git(self.repo, "push", "--quiet", "origin", branch)
        sha = self._git(self.repo, "rev-parse", "HEAD")
        self.dana.read("/changes/new/")
        body = {
            "title": title,
            "description": f"Soak run, change {n}.",
            "environment": "production",
            "rollback_plan": "Switch the load balancer back to the previous colour.",
            "services": ["web"],
            "source_branch": branch,
            "version_bump": "patch",
            "stakeholders": ["riley"],
            "stakeholder_channels": ["#releases"],
            "risk": "low",
        }
        if fixes:
            body["fixes_forward"] = fixes
        filed = self.dana.api("POST", "changes/", body, act="file a change")
        change = filed["id"]
        self.files[change], self.numbers[change] = name, filed["number"]
        self.counts.changes_filed += 1
        self.latest["change"] = change
        self.dana.api("POST", f"changes/{change}/submit/", act="submit")
        self.dana.read(f"/changes/{change}/")
        self._until(
            lambda: (self._change(change).get("repository") or {}).get("head_sha") == sha,
            120,
            f"the branch of change {change} read at {sha[:10]}",
        )
        return change, sha

    def ci_reports(self, sha: str, *, checks: bool) -> None:
        """CI: the commit's check run (GitHub's signed event), and its arrival and tests in staging."""
        self.ci_token()
        if checks:
            body = json.dumps(
                {
                    "action": "completed",
                    "check_run": {
                        "name": "tests",
                        "status": "completed",
                        "conclusion": "success",
                        "head_sha": sha,
                        "html_url": f"https://ci.example.com/runs/{sha[:12]}",
                        "pull_requests": [],
                    },
                }
            ).encode()
            signature = "sha256=" + hmac.new(self.demo.webhook_secret.encode(), body, "sha256").hexdigest()
            self._ci(
                "POST",
                "webhooks/github/",
                data=body,
                headers={
                    "Content-Type": "application/json",
                    "X-GitHub-Event": "check_run",
                    "X-Hub-Signature-256": signature,
                },
            )
        results = ("deployed", "green") if checks else ("green",)
        for result in results:
            self._ci(
                "POST",
                "staging-runs/",
                json={
                    "environment": "staging",
                    "commit": sha,
                    "version": f"build-{sha[:8]}",
                    "result": result,
                },
            )

    def approve(self, change: int) -> None:
        """The quorum on the head commit: three approvals with a code owner, and the sign-offs; the
        code owner through the page's form, the others through the API."""
        for username, capacity in APPROVERS:
            person = self.people[username]
            person.read(f"/changes/{change}/")
            if username == "alex":
                answer = person.form(
                    f"/changes/{change}/decide/",
                    {
                        "decision": "approve",
                        "capacity": capacity,
                        "comment": "Looks right.",
                        "otp": person.code(),
                    },
                )
                if answer.status_code != 200 or urlsplit(answer.url).path != f"/changes/{change}/":
                    self.tally.note("refused", username, "approve (form)", answer.status_code, "")
                    raise Refused(f"{username} could not approve change {change}: {answer.status_code}")
            else:
                person.api(
                    "POST",
                    f"changes/{change}/approvals/",
                    {"decision": "approve", "capacity": capacity, "otp": person.code()},
                    act="approve",
                )

    def tick_checklist(self, change: int) -> None:
        """The items people vouch for: a sign-off's by its holder, the others by the requester or
        an approver, one through the page's form."""
        items = [i for i in self._change(change)["checklist"] if i["gates_deploy"] and not i["integration"]]
        for number, item in enumerate(i for i in items if not i["done"]):
            who = self.people[VOUCHERS.get(item["vouched_by"], ("casey", "dana")[number % 2])]
            evidence = f"Checked for the soak run: {item['text']}."
            if number == 0:
                who.read(f"/changes/{change}/")
                answer = who.form(  # as htmx posts it: the item comes back alone
                    f"/changes/{change}/checklist/{item['id']}/",
                    {"done": "on", "evidence": evidence},
                    headers={"HX-Request": "true", "X-CSRFToken": who.csrf},
                )
                if answer.status_code != 200:
                    self.tally.note("refused", who.username, "tick (form)", answer.status_code, item["key"])
            else:
                who.api(
                    "PATCH",
                    f"changes/{change}/checklist/{item['id']}/",
                    {"done": True, "evidence": evidence},
                    act=f"tick {item['key']}",
                )

    def to_window(self, change: int) -> None:
        """The portal clock moved (never while a deployment runs) to the first moment the staging
        soak is open and a deployment window has room for the hour's slot."""
        opens = portal_time(self._change(change)["staging_soak"]["opens_at"])
        now = self.demo.now()
        moment = self._room_after(max(opens + timedelta(minutes=1), now) if opens else now)
        if moment - self.demo.now() > timedelta(seconds=30):
            self.demo.shift(moment - self.demo.now())
            self.counts.clock_shifts += 1

    def schedule(self, change: int) -> None:
        self.riley.read(f"/changes/{change}/")
        if not self._in_slot(change):
            answer = self.riley.form(f"/changes/{change}/take-next-slot/", {})
            if answer.status_code != 200 or not self._in_slot(change):
                self.tally.note("refused", "riley", "take the next slot", answer.status_code, "")
                raise Refused(f"change {change} did not take a slot")
        self.riley.read("/calendar/")

    def deploy(self, change: int, *, bad: bool) -> int:
        """The release manager deploys, by the page's button or the API in turn; a bad release is
        set up first with the simulated production's switch."""
        blocked = [f"{g['name']}: {g['detail']}" for g in self._change(change)["gates"] if g["state"] != "ok"]
        if blocked:
            self.tally.note("refused", "riley", "deploy (gates)", 409, "; ".join(blocked))
            raise Refused(f"change {change} may not deploy: {'; '.join(blocked)}")
        self.riley.read("/environments/")
        answer = self.riley.form("/environments/production/simulation/", {"fault": "errors" if bad else ""})
        if answer.status_code != 200:
            self.tally.note("refused", "riley", "the simulation switch", answer.status_code, "")
        self.deployments += 1
        if self.deployments % 2:
            answer = self.riley.form(f"/changes/{change}/deploy/", {"deploy-otp": self.riley.code()})
            found = re.fullmatch(r"/deployments/(\d+)/", urlsplit(answer.url).path)
            if not found:
                self.tally.note("refused", "riley", "deploy (button)", answer.status_code, answer.url)
                raise Refused(f"change {change} did not deploy from its page")
            deployment = int(found.group(1))
        else:
            deployment = self.riley.api(
                "POST", f"changes/{change}/deploy/", {"otp": self.riley.code()}, act="deploy"
            )["id"]
        self.latest["deployment"] = deployment
        return deployment

    def follow(self, deployment: int) -> dict:
        """The deployment's page as a browser keeps it (htmx asks for its head every 2 s and reloads
        the page when what a person may do changes), and its API, until it ends (the release
        monitored, or rolled back)."""
        started = time.monotonic()
        page = f"/deployments/{deployment}/"
        poll = self._poll_address(self.riley.read(page))
        while True:
            state = self.riley.api("GET", f"deployments/{deployment}/")
            if state["ended_at"]:
                break
            if time.monotonic() - started > DEPLOYMENT_TIMEOUT:
                self.stuck.append(
                    f"deployment {deployment} still {state['state']} after {DEPLOYMENT_TIMEOUT} s"
                )
                return state
            time.sleep(2)
            head = self.riley.read(poll, headers={"HX-Request": "true"}) if poll else None
            if head is None or head.headers.get("HX-Refresh"):
                poll = self._poll_address(self.riley.read(page))
        self.riley.read(page)
        if state["state"] == "succeeded":
            self.riley.read(f"/deployments/{deployment}/report/")
        self.check_weights(f"after deployment {deployment}")
        return state

    def run_incident(self, deployment: int, change: int, *, revert: bool) -> None:
        """The P1 the rollback opened: acknowledged, the code reverted (or left for a fix forward),
        resolved, and its post-mortem written and completed."""
        found = self._until(
            lambda: self._incident_of(deployment), 120, f"the incident of deployment {deployment}"
        )
        if found is None:
            return
        incident = found["id"]
        self.counts.incidents += 1
        self.latest["incident"] = incident
        self.sky.read("/incidents/")
        self.sky.read(f"/incidents/{incident}/")
        self.sky.api(
            "POST",
            f"incidents/{incident}/acknowledge/",
            {"note": "Looking: the 5xx gate failed."},
            act="acknowledge",
        )
        if revert:
            self.sky.api(
                "POST", f"incidents/{incident}/revert/", {"otp": self.sky.code()}, act="revert the code"
            )
            outcome = self._until(
                lambda: self._revert_outcome(incident), 120, f"the revert of incident {incident}"
            )
            if outcome and "Reverted in commit" in outcome:
                self.counts.reverts += 1
            elif outcome:
                self.tally.note("refused", "sky", "revert the code", 0, outcome)
        else:
            self.fix_forward_of = change
        self.sky.api(
            "POST",
            f"incidents/{incident}/resolve/",
            {"note": "Traffic is back on the old colour."},
            act="resolve",
        )
        self.counts.incidents_resolved += 1
        self.sky.read(f"/incidents/{incident}/postmortem/")
        self.sky.api(
            "PATCH",
            f"incidents/{incident}/postmortem/",
            {
                "summary": "A release answered one request in five with a 500.",
                "impact": "A quarter of the traffic for under a minute.",
                "root_cause": "The release was bad on purpose (the simulated production's switch).",
                "went_well": "The 5xx gate failed at 25 % and traffic went back by itself.",
                "went_badly": "Nothing.",
                "complete": True,
            },
            act="complete the post-mortem",
        )
        self.counts.postmortems += 1
        self.sky.read("/status/")
        self.sky.read("/incidents/report/")

    def carry(self, change: int, sha: str | None, *, bad: bool) -> None:
        """One change from approved to deployed (and its incident, for a bad one)."""
        if sha is not None:
            self.ci_reports(sha, checks=False)  # staging's nightly tests, now that time has passed
        self.schedule(change)
        deployment = self.deploy(change, bad=bad)
        state = self.follow(deployment)
        if state["state"] == "succeeded":
            self.counts.deployments_good += 1
            if self._until(
                lambda: self._change(change)["status"] == "completed", 60, f"change {change} completed"
            ):
                self.counts.changes_completed += 1
            if self._change(change).get("fixes_forward"):
                self.counts.fixes_forward += 1
        elif state["state"] == "rolled_back":
            self.counts.deployments_rolled_back += 1
            bad_ones = self.counts.deployments_rolled_back
            if bad:
                self.run_incident(deployment, change, revert=bad_ones % 2 == 1)
            else:
                # Counted; then the team gets the branch back to what is live, or nothing could
                # deploy after it: its code reverted, and what it fixed forward fixed again.
                self.tally.note("refused", "engine", "a good release rolled back", 0, str(deployment))
                self.run_incident(deployment, change, revert=True)
                self.fix_forward_of = self._change(change).get("fixes_forward") or self.fix_forward_of
        else:
            self.counts.deployments_other += 1
            self.tally.note("refused", "engine", f"a deployment ended {state['state']}", 0, str(deployment))
        if bad and state["state"] == "succeeded":
            self.tally.note("refused", "engine", "a bad release went live", 0, str(deployment))

    def new_change(self) -> None:
        """A change from a developer's branch to production, good or bad in turn."""
        bad = self.deployments % 2 == 1
        fixes, self.fix_forward_of = self.fix_forward_of, None
        change, sha = self.file_change(fixes=fixes)
        self.ci_reports(sha, checks=True)
        self.approve(change)
        self.tick_checklist(change)
        self.browse()
        self.to_window(change)
        self.carry(change, sha, bad=bad)

    def seeded(self) -> list[int]:
        """The changes the seed made ready, first the one scheduled now."""
        rows = self.riley.api("GET", "changes/?page_size=100")["results"]
        self.numbers.update({c["id"]: c["number"] for c in rows})
        ready = [c for c in rows if c["status"] in ("scheduled", "approved")]
        return [c["id"] for c in sorted(ready, key=lambda c: (c["status"] != "scheduled", c["id"]))]

    def browse(self) -> None:
        """The pages the team reads between acts, and the SRE's test of the alert channel."""
        with suppress(Refused):
            self.sky.api(
                "POST",
                "notifications/test/",
                {"channel": "slack", "recipient": "#production-alerts"},
                act="send a test notification",
            )
        for person, path in (
            (self.dana, "/"),
            (self.dana, "/changes/"),
            (self.riley, "/releases/"),
            (self.riley, "/environments/"),
            (self.sky, "/incidents/"),
            (self.alex, "/"),
        ):
            person.read(path)
        for path in ("changes/", "deployments/", "incidents/", "environments/production/releases/"):
            with suppress(Refused):
                self.riley.api("GET", path)

    def idle(self) -> bool:
        """No deployment runs (waiting for one to end, as the team would)."""
        return bool(
            self._until(
                lambda: not self.riley.api("GET", "deployments/?active=true")["results"],
                DEPLOYMENT_TIMEOUT,
                "the running deployment to end",
            )
        )

    # Checks of the world.

    def check_weights(self, when: str) -> dict:
        """The listener's weights as AWS (the moto server) has them, against the live colour the
        database holds: all traffic on it, none on the other, while no deployment runs."""
        rows = self.demo.query(
            "SELECT e.name, s.live_colour, s.listener_arn, s.rule_arn, s.blue_target_group_arn, "
            "s.green_target_group_arn FROM deployments_deploysettings s "
            "JOIN catalogue_environment e ON e.id = s.environment_id"
        )
        seen = {}
        if self.demo.query("SELECT count(*) FROM deployments_deployment WHERE ended_at IS NULL")[0][0]:
            self.weights_differ.append({"when": when, "problem": "not checked: a deployment had not ended"})
            return seen
        elb = boto3.client("elbv2", **AWS)
        for name, live, listener, rule, blue, green in rows:
            if rule:
                actions = elb.describe_rules(RuleArns=[rule])["Rules"][0]["Actions"]
            else:
                actions = elb.describe_listeners(ListenerArns=[listener])["Listeners"][0]["DefaultActions"]
            forward = next(a for a in actions if a["Type"] == "forward")
            groups = forward.get("ForwardConfig", {}).get("TargetGroups") or [
                {"TargetGroupArn": forward["TargetGroupArn"], "Weight": 100}
            ]
            by_arn = {blue: "blue", green: "green"}
            weights = {"blue": 0, "green": 0}
            for group in groups:
                weights[by_arn.get(group["TargetGroupArn"], group["TargetGroupArn"])] = group.get("Weight", 0)
            expected = {live: 100, ("green" if live == "blue" else "blue"): 0}
            seen[name] = {"live_colour": live, "weights": weights}
            if weights != expected:
                self.weights_differ.append(
                    {"when": when, "environment": name, "live_colour": live, "weights": weights}
                )
        return seen

    # Helpers.

    def _change(self, change: int) -> dict:
        return self.riley.api("GET", f"changes/{change}/")

    @staticmethod
    def _poll_address(page: requests.Response | None) -> str | None:
        """Where the deployment page's head asks for itself (while the deployment runs)."""
        found = re.search(r'<div id="head" hx-get="([^"]+)"', page.text) if page is not None else None
        return html.unescape(found.group(1)) if found else None

    def _in_slot(self, change: int) -> bool:
        detail = self._change(change)
        when = next((g for g in detail["gates"] if g["name"] == "When"), {})
        return detail["status"] == "scheduled" and when.get("state") == "ok"

    def _incident_of(self, deployment: int) -> dict | None:
        rows = self.sky.api("GET", "incidents/?page_size=20")["results"]
        return next((i for i in rows if i["deployment"] == deployment), None)

    def _revert_outcome(self, incident: int) -> str | None:
        timeline = self.sky.api("GET", f"incidents/{incident}/")["timeline"]
        return next((e["text"] for e in timeline if e["data"].get("outcome")), None)

    def _room_after(self, start: datetime) -> datetime:
        """The first moment from `start` inside one of production's deployment windows with room
        left for a slot and its deployment (or `start`, for an environment without windows)."""
        answer = self.riley.api("GET", "windows/")
        rows = answer["results"] if isinstance(answer, dict) else answer
        windows = [w for w in rows if w["environment"] == "production"]
        if not windows:
            return start
        zone = zoneinfo.ZoneInfo(windows[0]["time_zone"])
        first = start.astimezone(zone).date()
        for day in (first + timedelta(days=d) for d in range(15)):
            for window in windows:
                if day.weekday() not in window["weekdays"]:
                    continue
                opens, closes = (
                    datetime.combine(day, clock_time.fromisoformat(window[k]), zone)
                    for k in ("start_time", "end_time")
                )
                moment = max(opens, start)
                if closes - moment >= WINDOW_ROOM:
                    return moment.astimezone(UTC)
        raise Refused("no deployment window with room in the next two weeks")

    def _ci(self, method: str, path: str, **kwargs) -> None:
        with self.tally.lock:
            self.tally.requests += 1
        try:
            answer = self.ci.request(method, f"{self.demo.base}/api/v1/{path}", timeout=60, **kwargs)
        except requests.RequestException as error:
            self.tally.note("no_answer", method, f"/api/v1/{path}", type(error).__name__)
            raise Refused(f"CI {path}: no answer") from None
        if answer.status_code >= 500:
            self.tally.note("server_errors", method, f"/api/v1/{path}", answer.status_code)
        if answer.status_code >= 300:
            self.tally.note("refused", "ci", path, answer.status_code, answer.text[:400])
            raise Refused(f"CI {path}: {answer.status_code} {answer.text[:200]}")

    def _until(self, ready, timeout: float, what: str):
        """Polls `ready` until it says something true; None (noted) after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                result = ready()
            except Refused:
                result = None
            if result:
                return result
            time.sleep(2)
        self.stuck.append(f"{what}: not within {timeout:.0f} s")
        return None

    @staticmethod
    def _git(cwd: Path | None, *args: str) -> str:
        where = ["-C", str(cwd)] if cwd else []
        done = subprocess.run(["git", *where, *args], capture_output=True, text=True)
        if done.returncode != 0:
            raise Refused(f"git {' '.join(args)}: {done.stderr.strip()}")
        return done.stdout.strip()


def reader(team: Team, stop: threading.Event) -> None:
    """The auditor reading pages and API lists, one every second or two, for the whole run; and
    someone not signed in reading the public status page."""
    audrey, public = team.audrey, Browser(team.demo.base, team.tally)
    overview = Person("sky", team.sky.authenticator, team.demo.base, team.tally)  # sky's other tab
    try:
        overview.sign_in()
    except Refused:
        overview = None
    pages = [
        "/",
        "/changes/",
        "/changes/?status=completed",
        "/releases/",
        "/incidents/",
        "/incidents/report/",
        "/environments/",
        "/calendar/",
        "/audit/",
        "/api/v1/changes/",
        "/api/v1/deployments/",
        "/api/v1/incidents/",
        "/api/v1/incidents/measures/?days=30",
        "/api/v1/environments/",
        "/api/v1/environments/production/releases/",
        "/api/v1/audit/",
        "/api/v1/windows/",
        "/api/v1/staging-runs/?environment=staging",
        "/readyz",
    ]
    turn = 0
    while not stop.wait(1.5):
        turn += 1
        path = pages[turn % len(pages)]
        latest = dict(team.latest)
        if turn % 7 == 0 and "change" in latest:
            path = (
                f"/changes/{latest['change']}/"
                if turn % 2
                else f"/api/v1/changes/{latest['change']}/custody/"
            )
        elif turn % 11 == 0 and "deployment" in latest:
            path = f"/deployments/{latest['deployment']}/"
        elif turn % 13 == 0 and "incident" in latest:
            path = f"/incidents/{latest['incident']}/"
        if turn % 5 == 0:
            with suppress(Refused):
                public.get("/status/")
        if turn % 3 == 0 and overview is not None:
            overview.read("/notifications/", headers={"HX-Request": "true"})  # the overview's list
        audrey.read(path)


def logs_read(demo: Demo) -> dict:
    """What the logs say: restarts, 5xx in the web server's access log, tracebacks."""
    console = demo.log.read_text(errors="replace")
    logs = {str(demo.log): console}
    for path in sorted((demo.checkout / "var/demo").glob("*.log")):
        logs[str(path)] = path.read_text(errors="replace")
    supervisord = logs.get(str(demo.checkout / "var/demo/supervisord.log"), "")
    restarts = [m.group(0) for m in NOT_EXPECTED.finditer(supervisord)]
    errors = [f"{m['status']} {m['request']}" for m in ACCESS_LINE.finditer(console) if m["status"][0] == "5"]
    tracebacks = []
    for path, text in logs.items():
        lines = text.splitlines()
        for number, line in enumerate(lines):
            if TRACEBACK in line:
                tracebacks.append(
                    {"log": path, "line": number + 1, "excerpt": lines[max(0, number - 2) : number + 25]}
                )
    return {"restarts": restarts, "access_5xx": errors, "tracebacks": tracebacks}


def notifications_undelivered(demo: Demo, grace: timedelta = timedelta(minutes=3)) -> list:
    """Notifications that failed for good, and those still pending or sending once `grace` of real
    time has passed since they were made."""
    query = (
        "SELECT id, channel, recipient, subject, status, attempts, created_at, last_error FROM portal_notification "
        "WHERE status IN ('pending', 'sending', 'failed') ORDER BY id"
    )
    deadline = time.monotonic() + grace.total_seconds()
    while True:
        rows = demo.query(query)
        waiting = [row for row in rows if row[4] != "failed"]
        if not waiting or time.monotonic() >= deadline:
            return [
                dict(
                    zip(
                        (
                            "id",
                            "channel",
                            "recipient",
                            "subject",
                            "status",
                            "attempts",
                            "created_at",
                            "last_error",
                        ),
                        row,
                        strict=True,
                    )
                )
                for row in rows
            ]
        time.sleep(10)


def judge(team: Team, demo: Demo, started: float) -> dict:
    """The figures, read while the demo still runs (the logs once it stopped)."""
    running = []
    last = time.monotonic() + DEPLOYMENT_TIMEOUT
    while time.monotonic() < last:  # the last deployment is given time to end
        try:
            running = team.riley.api("GET", "deployments/?active=true")["results"]
        except Refused:
            running = [{"id": "?", "state": "unreadable"}]
        if not running:
            break
        time.sleep(5)
    weights = team.check_weights("at the end")
    undelivered = notifications_undelivered(demo)
    try:
        verdict = team.audrey.api("GET", "audit/verify/")
    except Refused as refused:
        verdict = {"ok": False, "checked": 0, "problem": str(refused)}
    try:
        incidents = team.riley.api("GET", "incidents/?page_size=500")["results"]
    except Refused:
        incidents = []
    return {
        "running": [f"{d['id']} ({d['state']})" for d in running],
        "weights": weights,
        "undelivered": undelivered,
        "audit": verdict,
        "incidents_open": [i["number"] for i in incidents if i["status"] != "resolved"],
        "minutes": (time.monotonic() - started) / 60,
    }


def report(team: Team, seen: dict, logs: dict, path: Path) -> bool:
    """Prints the table and writes the JSON report; True when every figure meets its target."""
    tally, counts = team.tally, team.counts
    figures = [
        ("processes restarted (supervisord: not expected)", len(logs["restarts"])),
        ("5xx answers to the soak's requests", len(tally.server_errors)),
        ("5xx in the web server's access log", len(logs["access_5xx"])),
        ("requests without an answer", len(tally.no_answer)),
        ("tracebacks in the logs", len(logs["tracebacks"])),
        ("deployments not ended", len(seen["running"])),
        ("listener weights differing from the database", len(team.weights_differ)),
        ("notifications never delivered", len(seen["undelivered"])),
        ("team's acts refused or stuck", len(tally.refused) + len(team.stuck)),
        ("audit chain broken", 0 if seen["audit"].get("ok") else 1),
    ]
    met = all(value == 0 for _, value in figures)
    print(f"\nSoak of the demo: {seen['minutes']:.1f} minutes, {tally.requests} requests by the soak")
    print(f"  {'figure':<48} {'value':>6} {'target':>7}  verdict")
    for name, value in figures:
        print(f"  {name:<48} {value:>6} {0:>7}  {'met' if value == 0 else 'MISSED'}")
    audit = seen["audit"]
    print(
        f"  audit chain: {'intact' if audit.get('ok') else 'BROKEN'} ({audit.get('checked', 0)} events checked"
        f"{'; ' + audit['problem'] if audit.get('problem') else ''})"
    )
    print(
        f"  carried through: {counts.changes_filed} changes filed, {counts.changes_completed} completed; "
        f"deployments {counts.deployments_good} good, {counts.deployments_rolled_back} rolled back"
        f"{f', {counts.deployments_other} otherwise' if counts.deployments_other else ''}; "
        f"{counts.incidents} incidents ({counts.incidents_resolved} resolved, {counts.postmortems} "
        f"post-mortems), {counts.reverts} reverts, {counts.fixes_forward} fixes forward; "
        f"the clock shifted {counts.clock_shifts} times, CI's token made {counts.ci_tokens} times"
    )
    details = {
        "5xx (soak)": tally.server_errors,
        "5xx (access log)": logs["access_5xx"],
        "no answer": tally.no_answer,
        "restarts": logs["restarts"],
        "deployments not ended": seen["running"],
        "weights differing": team.weights_differ,
        "undelivered": seen["undelivered"],
        "refused": tally.refused,
        "stuck": team.stuck,
        "odd reads": tally.odd_reads,
    }
    for name, rows in details.items():
        for row in rows[:5]:
            print(f"  {name}: {row}")
        if len(rows) > 5:
            print(f"  {name}: ... {len(rows) - 5} more in the report")
    for found in logs["tracebacks"][:3]:
        print(f"  traceback at {found['log']}:{found['line']}:")
        print("\n".join(f"      {line}" for line in found["excerpt"][:12]))
    path.write_text(
        json.dumps(
            {
                "met": met,
                "minutes": round(seen["minutes"], 1),
                "requests": tally.requests,
                "figures": [{"name": n, "value": v, "target": 0, "met": v == 0} for n, v in figures],
                "audit": audit,
                "counts": counts.__dict__,
                "weights": seen["weights"],
                "incidents_open": seen["incidents_open"],
                "tracebacks": logs["tracebacks"],
                **{k.replace(" ", "_"): v for k, v in details.items()},
            },
            indent=2,
            default=str,
        )
    )
    print(f"  report: {path}")
    return met


def prepare(args, workdir: Path) -> Path:
    """The checkout the demo runs in: a fresh clone of this repository, or the one named (its demo
    state removed, so that the seed starts afresh); with `--venv`, that virtualenv's packages."""
    if args.dir:
        checkout = Path(args.dir).resolve()
        if (checkout / "var/demo/supervisor.sock").exists():
            raise SystemExit(f"a demo seems to run in {checkout} (var/demo/supervisor.sock): stop it first")
        var = checkout / "var"
        for name in (
            "greenlight.sqlite3",
            "greenlight.sqlite3-wal",
            "greenlight.sqlite3-shm",
            "clock-offset",
            "demo-allowed-signers",
            "demo-signing-key",
            "demo-signing-key.pub",
        ):
            (var / name).unlink(missing_ok=True)
        for name in ("demo", "demo-repo", "broker"):
            subprocess.run(["rm", "-rf", str(var / name)], check=True)
        for stale in var.glob("celerybeat-schedule*"):
            stale.unlink()
    else:
        checkout = workdir / "greenlight"
        subprocess.run(["git", "clone", "--quiet", str(ROOT), str(checkout)], check=True)
    if args.venv and not (checkout / ".venv").exists():
        (checkout / ".venv").symlink_to(Path(args.venv).resolve())
    if (checkout / ".venv").is_symlink():
        # Its packages are the lock's: the clone's lock files made older than its marker, so that
        # make does not install into a virtualenv that is not the clone's own.
        for lock in checkout.glob("requirements*.lock"):
            os.utime(lock, (0, 0))
    return checkout


def work(team: Team, started: float) -> None:
    """The team's work until the time is up: the seeded changes first, then new ones. A change that
    does not get through is noted and the next one is filed; a deployment that does not end ends
    the soak (nothing else may deploy)."""
    seeded = team.seeded()
    while time.monotonic() < team.deadline:
        if not team.idle():
            print("Soak: a deployment does not end; the soak stops here", flush=True)
            return
        try:
            if seeded:
                change = seeded.pop(0)
                team.to_window(change)
                team.carry(change, None, bad=team.deployments % 2 == 1)
            else:
                team.new_change()
        except Refused as refused:
            print(f"Soak: {refused}", flush=True)
            team.stuck.append(str(refused))  # a change dropped is counted, whatever dropped it
            team.browse()
        c = team.counts
        print(
            f"Soak: {(time.monotonic() - started) / 60:5.1f} min, {c.changes_completed} changes completed, "
            f"{c.deployments_good} good deployments and {c.deployments_rolled_back} rolled back, "
            f"{c.incidents} incidents",
            flush=True,
        )


def interrupted(signum, frame):
    """SIGTERM ends the soak as Ctrl-C does: judged, and the demo stopped."""
    raise KeyboardInterrupt


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=120, help="how long the team works (default 120)")
    parser.add_argument("--dir", help="run the demo in this checkout instead of a fresh clone")
    parser.add_argument("--port", type=int, help="the portal's port (default: a free one)")
    parser.add_argument("--venv", help="symlink this virtualenv as the clone's .venv instead of installing")
    parser.add_argument("--report", help="where to write the JSON report (default: beside the log)")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="greenlight-soak-"))
    log = workdir / "demo.log"
    path = Path(args.report) if args.report else workdir / "report.json"
    checkout = prepare(args, workdir)
    demo = Demo(checkout, args.port or free_port(), log)
    print(f"Soak: the demo in {checkout}, its console in {log}, for {args.minutes:g} minutes", flush=True)
    tally = Tally()
    signal.signal(signal.SIGTERM, interrupted)
    stop = threading.Event()
    started = time.monotonic()
    team = reading = None
    try:
        demo.start()
        demo.wait_ready()
        print(f"Soak: the demo answers at {demo.base}/ ({time.monotonic() - started:.0f} s)", flush=True)
        started = time.monotonic()
        team = Team(demo, workdir, tally, started + args.minutes * 60)
        team.assemble()
        reading = threading.Thread(target=reader, args=(team, stop), daemon=True)
        reading.start()
        work(team, started)
    except KeyboardInterrupt:
        print("Soak: interrupted; judging what ran", flush=True)
    except Exception as error:  # the soak's own fault: still judged, and counted
        traceback.print_exc()
        if team is not None:
            team.stuck.append(f"the soak stopped: {type(error).__name__}: {error}")
    finally:
        stop.set()
        if reading is not None:
            reading.join(timeout=90)
        seen = None
        if team is not None:
            try:
                seen = judge(team, demo, started)
            except KeyboardInterrupt:
                seen = None
        demo.stop()
    if team is None or seen is None:
        print(f"Soak: nothing to judge; see {log}")
        return 1
    return 0 if report(team, seen, logs_read(demo), path) else 1


if __name__ == "__main__":
    sys.exit(main())
