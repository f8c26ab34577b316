"""The incident numbers Greenlight ships with, from its first customer's production process: how
soon each severity must be acknowledged (P0 under 5 minutes, P1 under 15, P2 under an hour, P3 under
a day). An incident not acknowledged in its target escalates, and again each target after."""

from datetime import timedelta

RESPONSE_TARGETS = {
    "P0": timedelta(minutes=5),
    "P1": timedelta(minutes=15),
    "P2": timedelta(hours=1),
    "P3": timedelta(hours=24),
}
# Trouble should be detected within this long of its start (the process's SLA: TTD under 5 minutes).
DETECT_TARGET = timedelta(minutes=5)
# How soon an incident should be resolved, from its detection (the process's SLA: TTR under an hour
# for P1; P0 is held to at least as much). A severity not named here has no resolve target.
RESOLVE_TARGETS = {
    "P0": timedelta(hours=1),
    "P1": timedelta(hours=1),
}
# A post-mortem is due this long after its incident is resolved (the process: within 48 hours).
POSTMORTEM_DUE = timedelta(hours=48)
# Severities whose incidents always need one (and any incident that needed a rollback).
POSTMORTEM_SEVERITIES = ("P0", "P1")
# Severities also told on the alert channel when declared (a deployment's environment's, else this).
ALERT_SEVERITIES = ("P0", "P1")
ALERT_CHANNEL = "#production-alerts"
