"""The deployment engine at scale: N environments deploy at once, carried by 1, 2 and 4 real
`celery worker` processes on the Redis broker against a moto server as AWS. Reports the stage
overhead (from a traffic step's passing verdict to the next weight confirmed on the listener) p50
and p95, and completed deployments per minute for each number of workers; beside it, how much
longer than its bake each step took (which adds the step's wait in the queue and between verdicts).
Targets: 500 concurrent deployments with the overhead's p95 under 1 s on 2 workers, and twice the
workers giving at least 1.8 times the throughput.

Each environment is a load balancer of its own in the moto server (a listener, blue and green
target groups), deployed by the simulated deployer and judged by the simulated telemetry, its
colours answered by one local HTTP service for the smoke tests. Every deployment starts at its
smoke tests (the release and the deploy to the idle colour are the outside world's time), and all
N are handed to the workers at once; each run of K workers deploys fresh changes to the same
environments, back to the colour the previous run left idle.

The portal clock runs in real time here (the workers carry the deployments, not the bench), so
the waits are kept short enough that the run is bound by the workers' work rather than by waiting:
a step bakes 2 s and is judged every second (twice a step), the immediate verification and the
monitoring take 1 s each, judged every second; every stage still runs and is judged as in
production, and min_requests is 0 (no traffic is sent). The response times the simulated
telemetry reads are recorded ahead, a sample a second, as the simulated production's traffic
generator would have measured them.

Each worker is one OS process with `--pool solo`: it runs the engine's tasks in its main process,
so K workers are exactly K processes doing engine work (a prefork pool of one would add a parent
per worker that only passes messages, on a 2-core machine). No beat runs: a deployment that
stops advancing is reported, not rescued by the reconciler.

Where the time goes is measured in each run: how busy the whole machine was and who used it (the
workers, PostgreSQL, this process with the moto server), how long tasks waited after they were due
(the workers' own histogram in Redis, portal.metrics), the tasks' run times (the workers' logs),
PostgreSQL's statement time, lock waits and sessions for the bench's database, and the moto
server's time per AWS call. Then a few deployments are carried in this process under cProfile, to
say what a task's own time is spent on (boto3 clients, SQL, AWS calls, smoke tests).

    make bench                                               # all benchmarks
    .venv/bin/python bench/engine_scale.py --environments 50 --workers 1,2   # with TEST_ENV's variables
"""

import argparse
import io
import itertools
import math
import os
import re
import resource
import socket
import statistics
import sys
import threading
import time
from collections import defaultdict
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ["DJANGO_SETTINGS_MODULE"] = "bench.settings"
REGION = "us-east-1"
AWS_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "bench",  # moto's, never a real account's
    "AWS_SECRET_ACCESS_KEY": "bench",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
}
os.environ.update(AWS_CREDENTIALS)
os.environ.pop("AWS_PROFILE", None)
os.environ.pop("AWS_SESSION_TOKEN", None)

import django  # noqa: E402

django.setup()

import logging  # noqa: E402

from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402

logging.getLogger("werkzeug").setLevel(logging.WARNING)  # the moto server's line per request

PLAN = [25, 50, 100]
BAKE_SECONDS, ANALYSIS_SECONDS = 2, 1
VERIFY_SECONDS, MONITOR_SECONDS, MONITOR_INTERVAL_SECONDS = 1, 1, 1
LATENCY_MS = 120.0
# Response times are recorded this far ahead and topped up every minute while deployments run.
FEED_AHEAD = timedelta(minutes=10)
# A run is given up when no deployment ended and nothing was audited for this long.
STALL = timedelta(minutes=3)
OVERHEAD_TARGET_S, SPEEDUP_TARGET = 1.0, 1.8
PROFILED_DEPLOYMENTS = 10
SAMPLE_EVERY = 0.25  # seconds between looks at PostgreSQL's backends
TASK_SUCCEEDED = re.compile(r"Task deployments\.advance\[[^\]]+\] succeeded in ([0-9.]+)s")


class MotoTimed:
    """The moto server's WSGI application, each call timed by service and action (what the
    workers' AWS calls cost on the server's side)."""

    def __init__(self, app):
        self.app = app
        self.lock = threading.Lock()
        self.calls: dict[str, list] = defaultdict(lambda: [0, 0.0])

    def __call__(self, environ, start_response):
        name = self._name(environ)
        started = time.perf_counter()
        try:
            return self.app(environ, start_response)
        finally:
            with self.lock:
                call = self.calls[name]
                call[0] += 1
                call[1] += time.perf_counter() - started

    @staticmethod
    def _name(environ) -> str:
        scope = re.search(r"Credential=[^/]+/[^/]+/[^/]+/([^/]+)/", environ.get("HTTP_AUTHORIZATION", ""))
        service = scope.group(1) if scope else "?"
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        if target:
            return f"{service} {target.rsplit('.', 1)[-1]}"
        if "/operation/" in environ.get("PATH_INFO", ""):
            return f"{service} {environ['PATH_INFO'].rsplit('/', 1)[-1]}"
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)
        action = parse_qs(body.decode(errors="replace")).get("Action", ["?"])[0]
        return f"{service} {action}"

    def taken(self) -> dict[str, list]:
        with self.lock:
            calls, self.calls = dict(self.calls), defaultdict(lambda: [0, 0.0])
        return calls


def moto_start():
    """A moto server on a free loopback port, timed; returns it, its address and its timer."""
    import requests
    from moto.server import ThreadedMotoServer

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    # moto keeps its accounts in this process: start empty.
    requests.post(f"{endpoint}/moto-api/reset", timeout=10).raise_for_status()
    timed = MotoTimed(server._server.app)  # the running WSGI server reads `.app` at each request
    server._server.app = timed
    return server, endpoint, timed


def worlds(count: int, endpoint: str, colour_url: str) -> list:
    """`count` environments, each deployed blue-green through a load balancer of its own."""
    from demo.simulator import build
    from deployments.models import DeploySettings
    from tests.factories import ApprovalPolicyFactory, EnvironmentFactory

    policy = ApprovalPolicyFactory(name="Bench")
    environments = []
    for n in range(count):
        name = f"scale-{n:04d}"
        alb = build(endpoint, name=name, region=REGION)
        environment = EnvironmentFactory(name=name, display_name=f"Scale {n}", approval_policy=policy)
        DeploySettings.objects.create(
            environment=environment,
            aws_region=REGION,
            listener_arn=alb["listener"],
            blue_target_group_arn=alb["blue"],
            green_target_group_arn=alb["green"],
            blue_url=colour_url,
            green_url=colour_url,
            min_requests=0,
            bake_seconds=BAKE_SECONDS,
            analysis_seconds=ANALYSIS_SECONDS,
            verify_seconds=VERIFY_SECONDS,
            monitor_seconds=MONITOR_SECONDS,
            monitor_interval_seconds=MONITOR_INTERVAL_SECONDS,
            deployer=DeploySettings.Deployer.SIMULATED,
            telemetry=DeploySettings.Telemetry.SIMULATED,
        )
        environments.append(environment)
    return environments


class Latencies:
    """The response times the simulated production measured on each new colour: a sample a second,
    recorded ahead and topped up while its deployment runs."""

    def __init__(self):
        self.fed: dict[str, datetime] = {}

    def start(self, target_group: str) -> None:
        from django.core.cache import cache

        from demo import simulation

        cache.delete(simulation.LATENCIES.format(target_group))
        self.fed.pop(target_group, None)
        self.feed(target_group)

    def feed(self, target_group: str) -> None:
        from demo import simulation
        from portal import clock

        now = clock.now()
        since = self.fed.get(target_group, now - timedelta(seconds=5))
        until = now + FEED_AHEAD
        seconds = int((until - since).total_seconds())
        simulation.latencies_record(
            target_group, [(since + timedelta(seconds=s + 1), LATENCY_MS) for s in range(seconds)]
        )
        self.fed[target_group] = since + timedelta(seconds=seconds)


def deployments_start(environments, requester, service, latencies: Latencies, run: str) -> dict[int, str]:
    """A fresh change deploying to each environment, at its smoke tests; returns the deployments'
    ids and the target group each shifts traffic to."""
    from deployments.models import Deployment
    from portal import clock
    from tests.factories import change_create

    started = {}
    for environment in environments:
        deploy = environment.deploy_settings
        deploy.refresh_from_db()
        change = change_create(
            requester, environment=environment, services=[service], title=f"Scale run {run}"
        )
        change.status = "deploying"
        change.save(update_fields=["status"])
        live, idle = deploy.live_colour, "green" if deploy.live_colour == "blue" else "blue"
        latencies.start(deploy.target_group(idle))
        now = clock.now()
        deployment = Deployment.objects.create(
            change=change,
            environment=environment,
            created_at=now,
            version=f"v-scale-{run}",
            from_colour=live,
            to_colour=idle,
            plan=PLAN,
            bake_seconds=BAKE_SECONDS,
            analysis_seconds=ANALYSIS_SECONDS,
            state=Deployment.State.SMOKE,
            state_since=now,
            next_run_at=now,
        )
        started[deployment.pk] = deploy.target_group(idle)
    return started


def overheads(ids: list[int]) -> tuple[list[float], list[float]]:
    """Seconds from each passed traffic step's verdict (its last check) to the next weight confirmed
    (the target's overhead); and how much longer than its bake each step below 100 % took, from
    its weight confirmed to the next (which adds the wait in the queue and between verdicts)."""
    from deployments.models import Stage
    from portal.models import AuditEvent

    moved = defaultdict(list)
    for object_id, at in AuditEvent.objects.filter(
        object_type="deployments.deployment",
        object_id__in=[str(pk) for pk in ids],
        action="deployment.weights_confirmed",
    ).values_list("object_id", "created_at"):
        moved[int(object_id)].append(at)
    figures = []
    stages = Stage.objects.filter(deployment_id__in=ids, kind=Stage.Kind.TRAFFIC, state=Stage.State.PASSED)
    for deployment_id, checks in stages.exclude(weight=100).values_list("deployment_id", "checks"):
        if not checks:
            continue
        verdict = max(datetime.fromisoformat(check["at"]) for check in checks)
        after = [at for at in moved[deployment_id] if at > verdict]
        if after:
            figures.append((min(after) - verdict).total_seconds())
    beyond = [
        (later - earlier).total_seconds() - BAKE_SECONDS
        for confirmed in moved.values()
        for earlier, later in itertools.pairwise(sorted(confirmed)[:3])  # 25 -> 50 -> 100 %
    ]
    return figures, beyond


# What the machine and the database did meanwhile.


def machine_cpu() -> tuple[float, float]:
    """Seconds of CPU the whole machine spent busy, and in all, since it started."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    tick = os.sysconf("SC_CLK_TCK")
    idle = fields[3] + fields[4]
    return (sum(fields) - idle) / tick, sum(fields) / tick


def process_cpu(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def database_use(name: str) -> tuple[float, int]:
    """Seconds PostgreSQL spent running statements in the bench's database (lock waits included),
    and the sessions opened on it."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute("SELECT active_time, sessions FROM pg_stat_database WHERE datname = %s", [name])
        active_ms, sessions = cursor.fetchone()
        return (active_ms or 0.0) / 1000, sessions or 0


def backends_now(name: str) -> tuple[int, int]:
    """The bench database's other backends running a statement now, and those waiting on a lock."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FILTER (WHERE state = 'active'), count(*) FILTER (WHERE wait_event_type = 'Lock') "
            "FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            [name],
        )
        return cursor.fetchone()


def server_cpu() -> float:
    """CPU seconds of the PostgreSQL server's ended backends (every database's: it reaps them), and
    of the server process itself."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend = cursor.fetchone()[0]
    try:
        postmaster = int(Path(f"/proc/{backend}/stat").read_text().rsplit(")", 1)[1].split()[1])
        fields = Path(f"/proc/{postmaster}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, IndexError):  # the server runs elsewhere (another machine, a container)
        return float("nan")
    return sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def task_waits(queue: str) -> tuple[int, float, dict[str, int]]:
    """The workers' histogram of how long tasks waited in `queue` after they were due (portal.metrics)."""
    from portal import metrics

    fields = {k.decode(): v for k, v in metrics._redis_client().hgetall(metrics._LATENCY_KEY + queue).items()}
    buckets = {k: int(v) for k, v in fields.items() if k != "sum"}
    return sum(buckets.values()), float(fields.get("sum", 0)), buckets


def bucket_quantile(buckets: dict[str, int], q: float) -> str:
    """The histogram bucket the q-quantile falls in, as "≤ bound"."""
    from portal.metrics import LATENCY_BUCKETS

    total, seen = sum(buckets.values()), 0
    for bound in (*(str(b) for b in LATENCY_BUCKETS), "+Inf"):
        seen += buckets.get(bound, 0)
        if total and seen >= q * total:
            return f"≤ {bound} s" if bound != "+Inf" else f"> {LATENCY_BUCKETS[-1]} s"
    return "-"


# One run.


def watch(name: str, started: dict[int, str], latencies: Latencies) -> tuple[float, float]:
    """Looks at the database's backends until every deployment ended, or none ended and nothing was
    audited for STALL; returns the backend-seconds seen running a statement and waiting on a lock."""
    from deployments.models import Deployment
    from portal.models import AuditEvent

    active = waiting = looks = 0
    progress, last_change, last_feed = None, time.monotonic(), time.monotonic()
    running = Deployment.objects.filter(pk__in=list(started), ended_at__isnull=True)
    while True:
        time.sleep(SAMPLE_EVERY)
        looks += 1
        busy, locked = backends_now(name)
        active, waiting = active + busy, waiting + locked
        if looks % 4:
            continue
        if time.monotonic() - last_feed > 60:
            for pk in running.values_list("pk", flat=True):
                latencies.feed(started[pk])
            last_feed = time.monotonic()
        left = running.count()
        if not left:
            return active * SAMPLE_EVERY, waiting * SAMPLE_EVERY
        now = (left, AuditEvent.objects.count())
        if now != progress:
            progress, last_change = now, time.monotonic()
        elif time.monotonic() - last_change > STALL.total_seconds():
            return active * SAMPLE_EVERY, waiting * SAMPLE_EVERY


def one_run(
    workers: int, environments, requester, service, latencies, moto: MotoTimed, endpoint, namespace, logs
) -> dict:
    """`workers` worker processes carry a fresh deployment to every environment, all handed to them
    at once; returns what it took."""
    from celery import current_app

    from deployments.models import Deployment
    from deployments.tasks import wake
    from portal import clock
    from portal.queues import DEPLOYMENTS, queue
    from tests.conftest import start_worker, stop_worker

    name = settings.DATABASES["default"]["NAME"]
    default_queue = f"bench-{namespace}-k{workers}"
    current_app.conf.task_default_queue = default_queue  # the wakes go to this run's workers only
    started = deployments_start(environments, requester, service, latencies, f"k{workers}")
    ids = list(started)
    processes = []
    try:
        for n in range(workers):
            log = logs / f"worker-{workers}-{n}.log"
            env = {"CELERY_QUEUE": default_queue, "AWS_ENDPOINT_URL": endpoint, **AWS_CREDENTIALS}
            processes.append(start_worker(log, **env))
        moto.taken()
        cpu_before = {p.pid: process_cpu(p.pid) for p in processes}
        machine_before, own_before, server_before = machine_cpu(), own_cpu(), server_cpu()
        database_before, sessions_before = database_use(name)
        first_wake = clock.now()
        for pk in ids:
            wake(pk)
        active, waiting = watch(name, started, latencies)
        cpu_workers = sum(process_cpu(p.pid) - cpu_before[p.pid] for p in processes)
    finally:
        for process in processes:
            stop_worker(process)
    time.sleep(1)  # the workers' sessions' statistics reach pg_stat_database as they close
    machine_after, own_after, server_after = machine_cpu(), own_cpu(), server_cpu()
    database_after, sessions_after = database_use(name)
    rows = list(Deployment.objects.filter(pk__in=ids).values("pk", "state", "ended_at", "error"))
    # What did not end (counted below) is closed, so that the next run may deploy to its environment.
    Deployment.objects.filter(pk__in=ids, ended_at__isnull=True).update(
        state=Deployment.State.FAILED, ended_at=clock.now(), error="did not end within the bench's run"
    )
    ended = [r for r in rows if r["ended_at"] is not None]
    succeeded = [r for r in ended if r["state"] == Deployment.State.SUCCEEDED]
    wall = (max(r["ended_at"] for r in ended) - first_wake).total_seconds() if ended else float("nan")
    task_times = [
        float(m.group(1))
        for process in processes
        for m in TASK_SUCCEEDED.finditer(Path(process.log_path).read_text(errors="replace"))
    ]
    count, waited, buckets = task_waits(queue(DEPLOYMENTS))
    return {
        "workers": workers,
        "deployments": len(ids),
        "ended": len(ended),
        "succeeded": len(succeeded),
        "not_succeeded": [r for r in rows if r["state"] != Deployment.State.SUCCEEDED],
        "wall": wall,
        "rate": len(succeeded) / wall * 60 if ended else 0.0,
        **dict(zip(("overheads", "beyond_bake"), overheads(ids), strict=True)),
        "tasks": count,
        "task_wait_mean": waited / count if count else float("nan"),
        "task_wait_p50": bucket_quantile(buckets, 0.5),
        "task_wait_p95": bucket_quantile(buckets, 0.95),
        "task_times": task_times,
        "cpu_workers": cpu_workers,
        "cpu_bench": own_after - own_before,
        "machine_busy": machine_after[0] - machine_before[0],
        "machine_total": machine_after[1] - machine_before[1],
        "database": database_after - database_before,
        "sessions": sessions_after - sessions_before,
        "cpu_database": server_after - server_before,
        "backends_active": active,
        "backends_locked": waiting,
        "moto": moto.taken(),
        "queue": default_queue,
        "logs": [str(p.log_path) for p in processes],
    }


# The report.


def percentile(figures: list[float], q: float) -> float:
    """Nearest rank."""
    if not figures:
        return float("nan")
    ordered = sorted(figures)
    return ordered[max(0, min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1))]


def report(results: list[dict], environments: int, profile: dict | None) -> None:
    print(
        f"\nDeployment engine at scale: {environments} environments deploying at once, AWS a moto server, "
        f"Celery workers (--pool solo) on Redis"
    )
    print(
        f"{'workers':>7} {'deployments':>11} {'ended/succeeded':>15} {'wall s':>8} {'deploys/min':>11} "
        f"{'speed-up':>8} {'overhead p50':>12} {'p95':>8} {'step beyond its bake p50':>25} {'p95':>8}"
    )
    previous = None
    for r in results:
        speedup = f"{r['rate'] / previous['rate']:7.2f}x" if previous and previous["rate"] else f"{'-':>8}"
        p50, p95 = (
            statistics.median(r["overheads"]) if r["overheads"] else float("nan"),
            percentile(r["overheads"], 0.95),
        )
        beyond = r["beyond_bake"]
        b50, b95 = (statistics.median(beyond) if beyond else float("nan"), percentile(beyond, 0.95))
        print(
            f"{r['workers']:>7} {r['deployments']:>11} {r['ended']:>7}/{r['succeeded']:<7} {r['wall']:>8.1f} "
            f"{r['rate']:>11.1f} {speedup} {p50 * 1000:>9.0f} ms {p95 * 1000:>5.0f} ms"
            f" {b50 * 1000:>22.0f} ms {b95 * 1000:>5.0f} ms"
        )
        previous = r
    print("Targets:")
    by_workers = {r["workers"]: r for r in results}
    two = by_workers.get(2)
    if two is None:
        print("  stage overhead p95 under 1 s on 2 workers: not measured (no run of 2 workers): NOT met")
    else:
        p95 = percentile(two["overheads"], 0.95)
        verdict = "met" if p95 < OVERHEAD_TARGET_S and two["succeeded"] == two["deployments"] else "NOT met"
        print(
            f"  stage overhead p95 under {OVERHEAD_TARGET_S:.0f} s on 2 workers ({two['deployments']} at once): "
            f"{p95 * 1000:.0f} ms, {two['succeeded']} of {two['deployments']} succeeded: {verdict}"
        )
    for k, r in by_workers.items():
        twice = by_workers.get(2 * k)
        if twice is not None:
            ratio = twice["rate"] / r["rate"] if r["rate"] else float("nan")
            all_through = all(x["succeeded"] == x["deployments"] for x in (r, twice))
            verdict = "met" if ratio >= SPEEDUP_TARGET and all_through else "NOT met"
            print(
                f"  {2 * k} workers give at least {SPEEDUP_TARGET}x the throughput of {k}: {ratio:.2f}x "
                f"({twice['rate']:.1f} against {r['rate']:.1f} a minute): {verdict}"
            )
    where(results, profile)
    for r in results:
        if r["not_succeeded"]:
            print(f"\n{len(r['not_succeeded'])} deployment(s) did not succeed on {r['workers']} worker(s):")
            for row in r["not_succeeded"][:10]:
                print(f"  deployment {row['pk']}: {row['state']}, {row['error'] or 'no error recorded'}")
            print(f"  worker logs: {', '.join(r['logs'])}")


def where(results: list[dict], profile: dict | None) -> None:
    """Where each run's time went, measured: the machine, the workers, the queue, the database, moto."""
    print("\nWhere the time goes: CPU over each run, in core-seconds (the machine has 2 cores: 2 a second)")
    print(
        f"{'workers':>7} {'wall s':>7} {'machine busy':>12} {'workers':>9} {'on CPU':>6} {'PostgreSQL':>10} "
        f"{'bench+moto':>10} {'the rest':>8}"
    )
    for r in results:
        busy = r["machine_busy"] / r["machine_total"] if r["machine_total"] else float("nan")
        rest = r["machine_busy"] - r["cpu_workers"] - r["cpu_database"] - r["cpu_bench"]
        on_cpu = r["cpu_workers"] / (r["workers"] * r["wall"]) if r["wall"] else float("nan")
        print(
            f"{r['workers']:>7} {r['wall']:>7.1f} {busy:>12.0%} {r['cpu_workers']:>7.0f} s {on_cpu:>6.0%} "
            f"{r['cpu_database']:>8.0f} s {r['cpu_bench']:>8.0f} s {rest:>6.0f} s"
        )
    print("The tasks (deployments.advance), the queue, the database and moto")
    print(
        f"{'workers':>7} {'tasks':>6} {'run p50/p95 ms':>14} {'CPU/task':>8} {'due→started mean':>16} "
        f"{'p50':>8} {'p95':>8} {'DB statements':>13} {'lock waits':>10} {'DB sessions':>11} {'moto calls':>10} "
        f"{'moto s':>6}"
    )
    for r in results:
        runs = r["task_times"]
        calls = sum(c[0] for c in r["moto"].values())
        moto_s = sum(c[1] for c in r["moto"].values())
        per_task = r["cpu_workers"] / r["tasks"] * 1000 if r["tasks"] else float("nan")
        print(
            f"{r['workers']:>7} {r['tasks']:>6} {percentile(runs, 0.5) * 1000:>6.0f}/{percentile(runs, 0.95) * 1000:<7.0f} "
            f"{per_task:>5.0f} ms {r['task_wait_mean']:>14.2f} s {r['task_wait_p50']:>8} {r['task_wait_p95']:>8} "
            f"{r['database']:>11.0f} s {r['backends_locked']:>8.0f} s {r['sessions']:>11} {calls:>10} {moto_s:>4.0f} s"
        )
    last = results[-1]
    top = sorted(last["moto"].items(), key=lambda item: -item[1][1])[:4]
    print(
        f"  moto's costliest calls on {last['workers']} worker(s): "
        + "; ".join(f"{name} {n}× {seconds / n * 1000:.1f} ms" for name, (n, seconds) in top)
    )
    print(
        "  workers: the worker processes' CPU, and the share of K × wall they had a CPU; PostgreSQL: the server's "
        "backends that ended during the run (the workers' among them; other databases' too); bench+moto: this "
        "process (the moto server, the smoke-test service, the bench's looks); the rest: Redis and every other "
        "process on the machine. run: a task from start to end (the workers' logs); due→started: how long a task "
        "waited after it was due (portal.metrics' histogram in Redis: the bucket it falls in); DB statements: "
        "PostgreSQL's time running the bench database's statements; lock waits: backend-seconds seen waiting on "
        "a lock; DB sessions: connections opened to the bench database; moto: the server's time answering."
    )
    if profile:
        print(
            f"A task's work, profiled in this process ({profile['advances']} engine.advance calls of "
            f"{profile['deployments']} deployments, {profile['per_call'] * 1000:.0f} ms each under the profiler): "
            + "; ".join(
                f"{name} {seconds / profile['advances'] * 1000:.0f} ms ({seconds / profile['total']:.0%}"
                + (f", {calls / profile['advances']:.1f} a call)" if calls else ")")
                for name, (calls, seconds) in profile["parts"].items()
            )
        )


PROFILED = {
    "boto3 clients made": ("botocore/session.py", "create_client"),
    "connecting to PostgreSQL": ("django/db/backends/base/base.py", "connect"),
    "AWS calls": ("botocore/client.py", "_make_api_call"),
    "SQL statements": ("django/db/backends/utils.py", "_execute_with_wrappers"),
    "Redis": ("redis/client.py", "execute_command"),
    "smoke tests": ("deployments/smoke.py", "smoke_test"),
}


def steps_profiled(environments, requester, service, latencies) -> dict:
    """Deploys to a few environments in this process, each step as a worker's task takes it, under
    cProfile: what a task's time is spent on. Connections are closed before each step, as Celery's
    Django fixup closes them around every task."""
    import cProfile
    import pstats

    from django.db import connections

    from deployments import engine
    from deployments.models import Deployment

    started = deployments_start(environments, requester, service, latencies, "profiled")
    due = dict.fromkeys(started, time.monotonic())
    profiler, advances = cProfile.Profile(), 0
    while due:
        pk, when = min(due.items(), key=lambda item: item[1])
        time.sleep(max(0.0, when - time.monotonic()))
        profiler.enable()
        connections.close_all()
        wait = engine.advance(pk)
        profiler.disable()
        advances += 1
        if Deployment.objects.filter(pk=pk, ended_at__isnull=False).exists() or wait is None:
            del due[pk]
        else:
            due[pk] = time.monotonic() + wait
    stats = pstats.Stats(profiler).stats
    total = sum(ct for (_f, _l, name), (_cc, _nc, _tt, ct, _c) in stats.items() if name == "advance")
    parts = {}
    for label, (path, function) in PROFILED.items():
        found = [
            (nc, ct)
            for (f, _l, name), (_cc, nc, _tt, ct, _c) in stats.items()
            if f.endswith(path) and name == function
        ]
        parts[label] = (sum(n for n, _ct in found), sum(ct for _n, ct in found))
    parts["the rest"] = (0, total - sum(seconds for _n, seconds in parts.values()))
    return {
        "deployments": len(started),
        "advances": advances,
        "per_call": total / advances,
        "total": total,
        "parts": parts,
    }


def redis_forget(namespace: str, target_groups: list[str]) -> None:
    """Removes what the runs left in Redis: their queues, histograms, heartbeats and response times."""
    from django.core.cache import cache

    from demo import simulation
    from portal import metrics

    client = metrics._redis_client()
    for key in client.scan_iter(match=f"*bench-{namespace}-*", count=1000):
        client.delete(key)
    for member in client.smembers(metrics._LATENCY_QUEUES):
        if f"bench-{namespace}-".encode() in member:
            client.srem(metrics._LATENCY_QUEUES, member)
    cache.delete_many([simulation.LATENCIES.format(group) for group in target_groups])


def main() -> None:
    from django.db import connections

    from config.env import VAR_DIR
    from portal import clock
    from tests.factories import ServiceFactory, UserFactory
    from tests.fakes import FakeColour

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--environments", type=int, default=500, help="deployments at once (default 500)")
    parser.add_argument(
        "--workers",
        default=[1, 2, 4],
        help="worker processes per run (default 1,2,4)",
        type=lambda text: [int(k) for k in text.split(",")],
    )
    options = parser.parse_args()
    namespace = f"{os.getpid()}-{time.monotonic_ns()}"
    logs = VAR_DIR / "bench-engine-scale"
    logs.mkdir(parents=True, exist_ok=True)
    name = connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
    moto = colour = None
    environments = []
    try:
        clock.reset()
        moto, endpoint, timed = moto_start()
        settings.AWS_REGION, settings.AWS_ENDPOINT_URL = REGION, endpoint
        colour = FakeColour()
        started = time.perf_counter()
        environments = worlds(options.environments, endpoint, colour.url)
        print(
            f"{len(environments)} environments in the moto server in {time.perf_counter() - started:.0f} s",
            flush=True,
        )
        requester = UserFactory(username="bench", role="developer")
        service = ServiceFactory()
        latencies = Latencies()
        results = []
        for workers in options.workers:
            result = one_run(
                workers, environments, requester, service, latencies, timed, endpoint, namespace, logs
            )
            results.append(result)
            print(
                f"  {workers} worker(s): {result['ended']}/{result['deployments']} ended, "
                f"{result['succeeded']} succeeded in {result['wall']:.1f} s",
                flush=True,
            )
        profile = steps_profiled(environments[:PROFILED_DEPLOYMENTS], requester, service, latencies)
        report(results, len(environments), profile)
    finally:
        if colour is not None:
            colour.close()
        if moto is not None:
            moto.stop()
        groups = [
            arn
            for e in environments
            for arn in (e.deploy_settings.blue_target_group_arn, e.deploy_settings.green_target_group_arn)
        ]
        redis_forget(namespace, groups)
        clock.reset()
        connections.close_all()
        connection.creation.destroy_test_db(name, verbosity=0)


if __name__ == "__main__":
    main()
