"""The deployment numbers Greenlight ships with, from its first customer's production process:
the SLA targets a step is judged by, and the 0 → 25 → 50 → 100 % shift with a 5-minute bake.
Copied into an environment's deploy settings when they are made; changed there, never here."""

# SLA targets: 5xx error rate, and latency percentiles of the target group.
MAX_ERROR_RATE = 0.001  # 0.1 %
MAX_P95_MS = 500
MAX_P99_MS = 1000
# A step's metrics are judged once it has seen this many requests.
MIN_REQUESTS = 100
# Traffic on the new colour at each step (0 % is the smoke-tested idle colour before them).
WEIGHTS = (25, 50, 100)
BAKE_SECONDS = 300
# ALB metrics come per minute (and a few minutes late): a step is judged at most once a minute.
ANALYSIS_SECONDS = 60
# AWS's health checks take about 150 s to warm a new target up.
HEALTH_TIMEOUT_SECONDS = 600
# A deployer that is followed (a GitHub Actions run) may take this long before the health wait.
DEPLOYER_TIMEOUT_SECONDS = 1800
# After 100 %: the immediate verification (smoke tests and metrics, a failure rolls back by
# itself), then the short-term monitoring (policy: 1-4 hours; a regression alerts and offers a
# rollback) while the old colour is kept warm, checked this often.
VERIFY_SECONDS = 900
MONITOR_SECONDS = 3600
MONITOR_INTERVAL_SECONDS = 300
