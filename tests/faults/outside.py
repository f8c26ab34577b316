"""The outside world of the fault matrix, each part at its boundary and each able to hold one call
at a gate: AWS (a moto server the test can also take off the network), the colours the smoke tests
reach, the deploy pipeline's webhook, the repository's merge (a git hook), and the users whose
response times the simulated telemetry reads.

A call held at the gate tells the test exactly where the worker is (inside that call, in that
stage), so the worker is killed there, or a fault is started there, without racing it."""

import contextlib
import io
import re
import socket
import stat
import sys
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs

from tests.fakes import _Served, answer_json

# A held call is let go after this long even when the test forgot to open the gate.
HOLD_AT_MOST = 120


@dataclass
class Call:
    """A call reaching the outside world: which part (an AWS service, a colour, the pipeline, the
    repository), what it asked, and with what."""

    service: str
    action: str
    params: dict = field(default_factory=dict)

    def weights(self) -> dict[str, int]:
        """A listener change's weights by target group ARN (ELBv2's query parameters)."""
        arns, weights = {}, {}
        for name, value in self.params.items():
            found = re.match(r"(.*TargetGroups\.member\.\d+)\.(TargetGroupArn|Weight)$", name)
            if found:
                (arns if found.group(2) == "TargetGroupArn" else weights)[found.group(1)] = value
        return {arn: int(weights.get(member, 1)) for member, arn in arns.items()}


class Gate:
    """Holds the first call that matches what it was armed with until it is opened; the call then
    goes on, answered to whoever still listens (the outside world did receive it)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._match = None
        self._opened = threading.Event()
        self.caught = threading.Event()
        self.held: Call | None = None

    def arm(self, match) -> None:
        with self._lock:
            self._match, self.held = match, None
            self.caught.clear()
            self._opened.clear()

    def passing(self, call: Call) -> None:
        """Called by a stand-in for each call it receives: returns at once, or when the gate opens."""
        with self._lock:
            if self._match is None or not self._match(call):
                return
            self._match, self.held = None, call
            self.caught.set()
        self._opened.wait(timeout=HOLD_AT_MOST)

    def wait(self, timeout: float = 60) -> Call:
        """The held call, once one is held."""
        if not self.caught.wait(timeout):
            raise AssertionError(f"no call reached the gate in {timeout} s")
        return self.held

    def open(self) -> None:
        with self._lock:
            self._match = None
        self._opened.set()


def after(first, then):
    """Matches the first call that `then` matches once a call matching `first` went by."""
    seen = False

    def match(call: Call) -> bool:
        nonlocal seen
        if seen:
            return then(call)
        seen = first(call)
        return False

    return match


def told(target_group_arn: str, weight: int):
    """The load balancer being told to send `weight` % to the target group."""
    return lambda call: call.action == "ModifyListener" and call.weights().get(target_group_arn) == weight


def health_read(target_group_arn: str):
    """The health of a target group's targets being read (a verdict's first call)."""
    return lambda call: (
        call.action == "DescribeTargetHealth" and call.params.get("TargetGroupArn") == target_group_arn
    )


class Aws:
    """AWS as the workers reach it: a moto server on a free loopback port (its accounts live in
    this process, so they outlast the server going down and up again), behind the gate. `down()`
    takes it off the network: new connections are refused and open ones are cut."""

    def __init__(self, gate: Gate):
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

        self.gate = gate
        self._app = DomainDispatcherApplication(create_backend_app)
        self._lock = threading.Lock()
        self._connections: set[socket.socket] = set()
        self.unreachable = False
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._server = None
        self.up()

    def __call__(self, environ, start_response):
        connection = environ.get("werkzeug.socket")
        with self._lock:
            cut = self.unreachable
            if not cut and connection is not None:
                self._connections.add(connection)
        if not cut:
            self.gate.passing(_aws_call(environ))
        if cut or self.unreachable:
            _cut(connection)
            start_response("503 Service Unavailable", [("Content-Length", "0")])
            return []
        return self._app(environ, start_response)

    def up(self) -> None:
        from moto.moto_server.werkzeug_app import MotoRequestHandler
        from werkzeug.serving import make_server

        class Quiet(MotoRequestHandler):
            def log_request(self, *args, **kwargs):
                pass

        self._server = make_server("127.0.0.1", self.port, self, threaded=True, request_handler=Quiet)
        self.unreachable = False
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def down(self) -> None:
        with self._lock:
            self.unreachable = True
            connections, self._connections = self._connections, set()
        self._server.shutdown()
        self._server.server_close()
        for connection in connections:
            _cut(connection)

    def close(self) -> None:
        self.gate.open()
        if not self.unreachable:
            self.down()


def _cut(connection) -> None:
    if connection is not None:
        with contextlib.suppress(OSError):
            connection.shutdown(socket.SHUT_RDWR)


def _aws_call(environ) -> Call:
    """The service (from the request's signature), the action and its parameters of an AWS call;
    the body is put back for moto to read."""
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length) if length else b""
    environ["wsgi.input"] = io.BytesIO(body)
    signed = re.search(r"Credential=[^/]+/[^/]+/[^/]+/([^/]+)/", environ.get("HTTP_AUTHORIZATION", ""))
    params = {}
    if environ.get("CONTENT_TYPE", "").startswith("application/x-www-form-urlencoded"):
        params = {k: v[0] for k, v in parse_qs(body.decode(errors="replace")).items()}
    action = params.get("Action") or environ.get("HTTP_X_AMZ_TARGET", "").rpartition(".")[2]
    return Call(signed.group(1) if signed else "", action, params)


class Colour(_Served):
    """One colour of the service at its own address: answers every GET with 200 "ok" (its smoke
    tests pass), each through the gate."""

    def __init__(self, name: str, gate: Gate):
        self.hits = 0
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's name)
                fake.hits += 1
                gate.passing(Call(f"colour:{name}", "GET", {"path": self.path}))
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self._serve(Handler)


class Pipeline(_Served):
    """The deploy pipeline's webhook: keeps what it is asked (`asked`), then answers 202 through
    the gate, as a pipeline that queues the deployment does."""

    def __init__(self, gate: Gate):
        import json

        self.asked: list[dict] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's name)
                payload = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                fake.asked.append(payload)
                gate.passing(Call("pipeline", "deploy", payload))
                answer_json(self, {}, 202)

            def log_message(self, *args):
                pass

        self._serve(Handler, "/deploy")


class RepositoryHooks(_Served):
    """The repository's post-merge hook calls here, through the gate: a merge held there is made
    (the branch moved) but the worker that asked for it has not heard back."""

    def __init__(self, repository, gate: Gate):
        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's name)
                gate.passing(Call("repository", self.path.strip("/")))
                answer_json(self, {})

            def log_message(self, *args):
                pass

        self._serve(Handler)
        hook = repository / ".git" / "hooks" / "post-merge"
        hook.write_text(
            f"#!{sys.executable}\nimport urllib.request\n"
            f"urllib.request.urlopen({self.url + '/post-merge'!r}, data=b'', timeout={HOLD_AT_MOST + 10})\n"
        )
        hook.chmod(hook.stat().st_mode | stat.S_IXUSR)


class Users:
    """The simulated production's users as its telemetry reads them: a response time on each
    colour four times a second, stamped with the portal's clock (so a clock shifted forward still
    finds traffic in the window it judges). A release made slow answers in `slow_ms`. Writes that
    fail (Redis stopped) are lost, as the traffic generator's are."""

    def __init__(self, alb: dict):
        self.alb = alb
        self.latency_ms = {"blue": 120.0, "green": 120.0}
        self.last = None  # the portal's time of the last response times kept
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        from demo import simulation
        from portal import clock

        while not self._stop.wait(0.25):
            now = clock.now()
            try:
                for colour, ms in self.latency_ms.items():
                    simulation.latencies_record(self.alb[colour], [(now, ms)])
            except Exception:  # noqa: S112 (Redis is stopped: this quarter second is lost)
                continue
            self.last = now

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
