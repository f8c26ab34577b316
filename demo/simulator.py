"""The simulated production the demo runs, and the end-to-end tests with it: AWS in moto (an
application load balancer with blue and green target groups, CloudWatch, RDS), the two colours as
small local HTTP services answering as the simulation says each behaves, and a traffic generator
that sends requests in the proportion of the listener's weights (read from AWS, as a browser's
requests would be split) and publishes what it saw as the load balancer would: per-target-group
request and 5xx counts to CloudWatch, and the response times the simulated telemetry turns into
percentiles. Its state lives in demo/simulation.py."""

import itertools
import json
import logging
import random
import threading
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import requests

from demo import simulation
from integrations.aws import Aws, dimension
from portal import clock

logger = logging.getLogger(__name__)


def build(
    endpoint_url: str | None = None, *, name: str = "shop", region: str = "us-east-1", **credentials
) -> dict:
    """An ALB listener forwarding all traffic to blue, with blue and green target groups of two
    instances each, and a database; in moto (in this process, or a moto server at
    `endpoint_url`), in the account `credentials` (boto3's keyword arguments) belong to."""
    import boto3

    kwargs = {"region_name": region, "endpoint_url": endpoint_url, **credentials}
    ec2 = boto3.client("ec2", **kwargs)
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i}.0/24", AvailabilityZone=f"{region}{zone}")[
            "Subnet"
        ]["SubnetId"]
        for i, zone in ((1, "a"), (2, "b"))
    ]
    elbv2 = boto3.client("elbv2", **kwargs)
    lb = elbv2.create_load_balancer(Name=name, Subnets=subnets, Type="application")["LoadBalancers"][0]
    groups = {}
    for colour in ("blue", "green"):
        group = elbv2.create_target_group(Name=f"{name}-{colour}", Protocol="HTTP", Port=80, VpcId=vpc)
        groups[colour] = group["TargetGroups"][0]["TargetGroupArn"]
        instances = ec2.run_instances(ImageId="ami-12c6146b", MinCount=2, MaxCount=2)["Instances"]
        elbv2.register_targets(
            TargetGroupArn=groups[colour], Targets=[{"Id": i["InstanceId"]} for i in instances]
        )
    listener = elbv2.create_listener(
        LoadBalancerArn=lb["LoadBalancerArn"],
        Protocol="HTTP",
        Port=80,
        DefaultActions=[{"Type": "forward", "TargetGroupArn": groups["blue"]}],
    )["Listeners"][0]["ListenerArn"]
    boto3.client("rds", **kwargs).create_db_instance(
        DBInstanceIdentifier=f"{name}-db",
        DBInstanceClass="db.t3.micro",
        Engine="postgres",
        MasterUsername=name,
        MasterUserPassword="not-a-secret-1",
        AllocatedStorage=20,
    )
    return {
        "listener": listener,
        "load_balancer": lb["LoadBalancerArn"],
        "endpoint": endpoint_url,
        "credentials": credentials,
        "database": f"{name}-db",
        **groups,
    }


class _Colour(BaseHTTPRequestHandler):
    """One colour of the service: /healthz answers while the colour is healthy; every other path
    answers with the version it runs, failing one request in five or slowly when its release is
    bad."""

    target_group_arn = ""
    colour = ""
    served = None  # each colour's own itertools.count: one number a request, across its threads

    def do_GET(self):  # noqa: N802 (http.server's name)
        behaviour = simulation.behaviour(self.target_group_arn)
        if self.path.startswith("/healthz"):
            self._answer(200 if behaviour.healthy else 503, {"ok": behaviour.healthy})
            return
        served = next(self.served)
        if behaviour.fault == "slow":
            time.sleep(random.uniform(0.8, 1.3))  # noqa: S311 (a simulation, not a secret)
        if behaviour.fault == "errors" and served % 5 == 0:
            self._answer(500, {"error": "internal error", "version": behaviour.version})
            return
        self._answer(200, {"colour": self.colour, "version": behaviour.version or "unknown"})

    def _answer(self, status: int, body: dict) -> None:
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format, *args):  # noqa: A002 (http.server's signature)
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # a second's burst of users is queued, not refused and retried


def serve_colour(colour: str, target_group_arn: str, port: int = 0) -> ThreadingHTTPServer:
    """Serves one colour on 127.0.0.1:`port` (0: any free port) in a background thread."""
    served = itertools.count(1)
    handler = type(
        f"{colour.title()}Colour",
        (_Colour,),
        {"target_group_arn": target_group_arn, "colour": colour, "served": served},
    )
    server = _Server(("127.0.0.1", port), handler)
    threading.Thread(target=server.serve_forever, name=f"colour-{colour}", daemon=True).start()
    return server


# What one PutMetricData call may carry, in CloudWatch's oldest limit.
METRICS_PER_CALL = 20


class Traffic:
    """Users of the service: `rate` requests a second split between the colours by the listener's
    weights; every `publish_every` seconds what each colour answered goes to CloudWatch (request
    and 5xx counts, as the ALB's per-target-group metrics) and its response times to the simulation."""

    def __init__(self, aws: Aws, *, listener_arn: str, colours: dict[str, tuple[str, str]], rate: int = 20):
        self.aws, self.listener_arn, self.rate = aws, listener_arn, rate
        self.colours = colours  # colour -> (target group ARN, its URL)
        self.pool = ThreadPoolExecutor(max_workers=32, thread_name_prefix="traffic")
        self._seen = defaultdict(list)  # target group -> (when, failed, milliseconds) of each request
        self._lock = threading.Lock()

    def tick(self) -> dict[str, int]:
        """One second of traffic (sent, not awaited); returns the weights it was split by."""
        weights = self.aws.weights(listener_arn=self.listener_arn)
        groups = [arn for arn, _url in self.colours.values()]
        shares = [weights.get(arn, 0) for arn in groups]
        if not sum(shares):
            return weights
        for arn in random.choices(groups, weights=shares, k=self.rate):  # noqa: S311
            url = next(u for a, u in self.colours.values() if a == arn)
            self.pool.submit(self._request, arn, url)
        return weights

    def _request(self, target_group_arn: str, url: str) -> None:
        time.sleep(random.random())  # noqa: S311 (users arrive through the second, not at once)
        sent, started = clock.now(), time.monotonic()
        try:
            status = requests.get(url + "/", timeout=5).status_code
        except requests.RequestException:
            status = 502  # what the load balancer answers for a target that does not
        elapsed = (time.monotonic() - started) * 1000
        with self._lock:
            self._seen[target_group_arn].append((sent, status >= 500, round(elapsed, 1)))

    def publish(self) -> None:
        """What the colours answered since the last call, to CloudWatch and the simulation. Each
        second's counts carry that second, not the time they are sent: the portal clock may jump
        in between (the demo's clock shift), and a count of before the jump must not fall into a
        step judged after it."""
        with self._lock:
            seen, self._seen = dict(self._seen), defaultdict(list)
        data = []
        for arn, samples in seen.items():
            dimensions = [
                {"Name": "LoadBalancer", "Value": dimension(self.listener_arn, "LoadBalancer")},
                {"Name": "TargetGroup", "Value": dimension(arn, "TargetGroup")},
            ]
            seconds = defaultdict(lambda: [0, 0])
            for at, failed, _ms in samples:
                counts = seconds[at.replace(microsecond=0)]
                counts[0] += 1
                counts[1] += failed
            data += [
                {
                    "MetricName": name,
                    "Dimensions": dimensions,
                    "Timestamp": at,
                    "Value": value,
                    "Unit": "Count",
                }
                for at, (requests_, errors) in seconds.items()
                for name, value in (("RequestCount", requests_), ("HTTPCode_Target_5XX_Count", errors))
            ]
            simulation.latencies_record(arn, [(at, ms) for at, _failed, ms in samples])
        for first in range(0, len(data), METRICS_PER_CALL):
            self.aws.client("cloudwatch").put_metric_data(
                Namespace="AWS/ApplicationELB", MetricData=data[first : first + METRICS_PER_CALL]
            )

    def run(self, stop: threading.Event, *, publish_every: float = 5.0) -> None:
        """Sends traffic and publishes it until `stop` is set; AWS or a colour failing for a moment
        is logged, not fatal."""
        last = time.monotonic()
        while not stop.is_set():
            try:
                self.tick()
                if time.monotonic() - last >= publish_every:
                    self.publish()
                    last = time.monotonic()
            except Exception:  # the simulation goes on; the deployment's gates judge what arrives
                logger.exception("simulated traffic: one second lost")
            stop.wait(1.0)
        self.pool.shutdown(wait=False, cancel_futures=True)
