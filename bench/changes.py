"""Change list and detail under load: p50/p95/p99 at 1 and 8 clients, throughput at 32.

Seeds 20,000 changes (checklists, approvals, audit events) into a fresh PostgreSQL database,
serves the portal with gunicorn, and measures the change list and detail pages and their API
beside the floor: a trivial DRF view running one query, served the same way in the same run.
Targets, as ratios to the floor measured in the same run (an absolute time on a shared 2-core
machine drifts from run to run): at 1 client, p50 within 4x the floor's; at 32 clients, at least
25 % of the floor's throughput. Then where each one's time goes, served in this process without
HTTP: the median request split into reading the change, the deploy gates, the page's context,
the template and the serializer.

    make bench            # all benchmarks
    .venv/bin/python bench/changes.py   # with the test environment (see the Makefile's TEST_ENV)
"""

import http.client
import json
import os
import statistics
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ["DJANGO_SETTINGS_MODULE"] = "bench.settings"

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY  # noqa: E402
from django.contrib.sessions.backends.db import SessionStore  # noqa: E402
from django.db import connection, connections, transaction  # noqa: E402

CHANGES = int(os.environ.get("BENCH_CHANGES", "20000"))
PORT = int(os.environ.get("BENCH_PORT", "8765"))
SECONDS = int(os.environ.get("BENCH_SECONDS", "5"))


def seed() -> tuple[int, str]:
    """Bulk rows shaped as the services make them; returns a change id and a session cookie."""
    from catalogue import defaults
    from catalogue.models import ApprovalPolicy, Environment, Service
    from changes.models import Approval, ChangeRequest, ChecklistItem, Comment
    from portal import chain, clock
    from portal.models import AuditEvent, User
    from portal.services import GENESIS_HASH

    policy = ApprovalPolicy.objects.order_by("id").first()
    env = Environment.objects.create(
        name="production", display_name="Production", branch="main", approval_policy=policy
    )
    service = Service.objects.create(name="web", team="Studio", repository="acme/web", code_owners=["alex"])
    people = User.objects.bulk_create(
        [
            User(username=f"person{i}", first_name=f"Person{i}", role="developer", github_login=f"p{i}")
            for i in range(12)
        ]
    )
    viewer = User.objects.create(username="viewer", role="auditor")
    now = clock.now()
    checklist = defaults.checklist()
    batch = 1000
    prev = GENESIS_HASH
    key = chain.keys().current
    for start in range(0, CHANGES, batch):
        with transaction.atomic():
            rows = ChangeRequest.objects.bulk_create(
                [
                    ChangeRequest(
                        title=f"Change number {n}",
                        description="Moves rendering to the new queue. " * 4,
                        rollback_plan="Switch traffic back to blue.",
                        environment=env,
                        requester=people[n % 12],
                        status=["draft", "submitted", "approved", "completed"][n % 4],
                        created_at=now - timedelta(minutes=CHANGES - n),
                        updated_at=now,
                    )
                    for n in range(start, min(start + batch, CHANGES))
                ]
            )
            ChangeRequest.services.through.objects.bulk_create(
                [ChangeRequest.services.through(changerequest_id=c.pk, service_id=service.pk) for c in rows]
            )
            ChecklistItem.objects.bulk_create(
                [
                    ChecklistItem(
                        change=c,
                        position=i,
                        key=item["key"],
                        text=item["text"],
                        phases=item["phases"],
                        integration=item.get("integration", ""),
                        done=i % 3 == 0,
                    )
                    for c in rows
                    for i, item in enumerate(checklist)
                ]
            )
            Approval.objects.bulk_create(
                [
                    Approval(
                        change=c,
                        approver=people[(c.pk + k + 1) % 12],
                        decision="approve",
                        revision=1,
                        created_at=now,
                    )
                    for c in rows
                    for k in range(3)
                ]
            )
            Comment.objects.bulk_create(
                [Comment(change=c, author=people[0], body="Looks right.", created_at=now) for c in rows]
            )
            events = []
            for c in rows:
                for action in ("change.create", "change.submitted", "change.decision.approve"):
                    event = AuditEvent(
                        created_at=now,
                        actor_id=c.requester_id,
                        actor_name="bench",
                        action=action,
                        object_type="changes.changerequest",
                        object_id=str(c.pk),
                        object_repr=c.title,
                        before=None,
                        after={"status": c.status},
                        ip=None,
                        user_agent="",
                        request_id="",
                        break_glass_session_id=None,
                        key_id=chain.key_id_of(key),
                        prev_hash=prev,
                    )
                    event.hash = event.compute_hash(key)
                    prev = event.hash
                    events.append(event)
            AuditEvent.objects.bulk_create(events)
    session = SessionStore()
    session[SESSION_KEY] = str(viewer.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = viewer.get_session_auth_hash()
    session.create()
    middle = ChangeRequest.objects.order_by("id")[CHANGES // 2].pk
    return middle, session.session_key


def measure(path: str, cookie: str, clients: int, seconds: float) -> dict:
    """wrk (C, keep-alive connections) against gunicorn, so the load generator is not the bottleneck."""
    result = subprocess.run(
        [
            "wrk",
            f"-t{min(clients, 2)}",
            f"-c{clients}",
            f"-d{seconds}s",
            "--timeout",
            "30s",
            "-s",
            str(ROOT / "bench" / "report.lua"),
            "-H",
            f"Cookie: sessionid={cookie}",
            f"http://127.0.0.1:{PORT}{path}",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    if figures["errors"] or figures["non2xx"]:
        raise RuntimeError(f"{path}: {figures['errors']} errors, {figures['non2xx']} non-2xx answers")
    return figures


def main() -> None:
    name = connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
    server = None
    try:
        started = time.perf_counter()
        change_id, cookie = seed()
        print(
            f"seeded {CHANGES:,} changes (+checklists, approvals, comments, audit events) in {time.perf_counter() - started:.0f} s"
        )
        connections.close_all()
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "bench.settings",
            "DATABASE_URL": _url(name),
            "DATABASE_REPLICA_URL": "",
        }
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "bench.wsgi",
                "--bind",
                f"127.0.0.1:{PORT}",
                "--workers",
                "4",
                "--log-level",
                "warning",
            ],
            cwd=ROOT,
            env=env,
        )
        _wait_until_up()
        targets = [
            ("floor (1 query)", "/bench/floor/"),
            ("change list page", "/changes/"),
            ("change detail page", f"/changes/{change_id}/"),
            ("GET /api/v1/changes/", "/api/v1/changes/"),
            ("GET /api/v1/changes/{id}/", f"/api/v1/changes/{change_id}/"),
        ]
        print(
            f"{'':28} {'1 client p50/p95/p99 ms':>26} {'8 clients p50/p95/p99 ms':>27} {'32 clients req/s':>17}"
        )
        floor = floor_rate = None
        for label, path in targets:
            measure(path, cookie, 1, 1)  # warm up
            one = measure(path, cookie, 1, SECONDS)
            eight = measure(path, cookie, 8, SECONDS)
            rate = measure(path, cookie, 32, SECONDS)["rps"]
            floor, floor_rate = floor or one["p50"], floor_rate or rate
            slower, share = one["p50"] / floor, rate / floor_rate
            verdict = "ok" if slower <= 4 and share >= 0.25 else "MISSED"
            print(
                f"{label:28} {one['p50']:8.1f}{one['p95']:8.1f}{one['p99']:8.1f}   "
                f"{eight['p50']:8.1f}{eight['p95']:8.1f}{eight['p99']:8.1f}   {rate:12.0f}"
                f"   {slower:4.1f}x floor p50 (<= 4)  {share:4.0%} of floor req/s (>= 25 %)  {verdict}"
            )
        where_the_time_goes(targets, cookie)
    finally:
        if server is not None:
            server.terminate()
            server.wait(20)
        connections.close_all()
        connection.creation.destroy_test_db(name, verbosity=0)


def where_the_time_goes(targets: list[tuple[str, str]], cookie: str, requests: int = 200) -> None:
    """Each target served in this process (Django's test client, no HTTP), the median of
    `requests`, split into the parts the pages spend it on."""
    import functools

    from django.template import loader
    from django.test import Client
    from rest_framework.serializers import BaseSerializer

    from changes import selectors, views

    spent: dict[str, float] = {}

    def timed(owner, name: str, part: str, *, attribute=None) -> None:
        function = attribute.fget if attribute else getattr(owner, name)

        @functools.wraps(function)
        def timing(*args, **kwargs):
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                spent[part] = spent.get(part, 0.0) + time.perf_counter() - started

        setattr(owner, name, property(timing) if attribute else timing)

    read = "change_shown" if hasattr(selectors, "change_shown") else "change_detail"
    timed(selectors, read, "read the change")
    timed(selectors, "deploy_gates", "gates")
    timed(views, "_detail_context", "page context")
    timed(loader, "render_to_string", "template")
    timed(BaseSerializer, "data", "serializer", attribute=BaseSerializer.data)
    parts = ["read the change", "gates", "page context", "template", "serializer"]
    client = Client(HTTP_HOST="127.0.0.1")
    client.cookies["sessionid"] = cookie
    print(f"\nIn process, the median of {requests} requests, ms (page context includes the gates):")
    print(f"{'':28} {'total':>7}" + "".join(f"{part:>17}" for part in parts) + f"{'the rest':>10}")
    for label, path in targets:
        totals, shares = [], {part: [] for part in parts}
        for n in range(requests + 10):
            spent.clear()
            started = time.perf_counter()
            assert client.get(path).status_code == 200, path
            if n >= 10:  # warmed up
                totals.append(1000 * (time.perf_counter() - started))
                for part in parts:
                    shares[part].append(1000 * spent.get(part, 0.0))
        medians = {part: statistics.median(values) for part, values in shares.items()}
        total = statistics.median(totals)
        outside = (
            medians["read the change"] + medians["page context"] + medians["template"] + medians["serializer"]
        )
        print(
            f"{label:28} {total:7.2f}"
            + "".join(f"{medians[part]:17.2f}" for part in parts)
            + f"{max(total - outside, 0.0):10.2f}"
        )


def _url(name: str) -> str:
    db = settings.DATABASES["default"]
    return f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST']}:{db['PORT']}/{name}"


def _wait_until_up() -> None:
    for _ in range(100):
        try:
            conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=2)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("gunicorn did not start")


if __name__ == "__main__":
    main()
