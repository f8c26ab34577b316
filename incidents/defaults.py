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
# A post-mortem is due this long after its incident is resolved (the process: within 48 hours).
POSTMORTEM_DUE = timedelta(hours=48)
# Severities whose incidents always need one (and any incident that needed a rollback).
POSTMORTEM_SEVERITIES = ("P0", "P1")
