"""The blue-green engine: carries a deployment forward one short step at a time from the state
kept on its row, so any worker can take it up where another stopped (or was killed):

    pre-flight (database snapshot) → release (merge, tag, notes) → deploy to the idle colour and
    wait until its targets are healthy → smoke tests on the idle colour → for each step of the
    plan: shift the weights, bake, judge health, smoke tests, metrics and alarms → at 100 % the
    new colour is live; on a failed judgement, traffic goes back to the old colour by itself.

Every weight change is written as wanted (`desired_weight`) before the load balancer is told and
as confirmed (`applied_weight`) after it was read back; a step that finds them apart asks the load
balancer and makes them agree before anything else. One worker at a time holds a deployment for a
short lease; a worker that dies loses it, and the reconciler hands the deployment to another.
Nothing sleeps: each call returns how long to wait, and the task is scheduled again then.

The rooms, in the order a deployment meets them:

    run         the lease, and one step dispatched by state; trouble retried or ended
    records     every write of the row (lease checked, move allowed, audited) and of its stages
    traffic     the weights: wanted, told, read back, confirmed; the live colour
    stages      pre-flight, release, deploy, smoke tests, the traffic steps
    measuring   what the new colour shows, handed to the pure `judge`
    monitoring  live at 100 %: the immediate verification, then the monitoring
    endings     completed, rolled back, failed; the code revert asked with a rollback
    alerts      the alert channel, and deployments said to be stuck
"""

from deployments.engine.alerts import stuck_alerts
from deployments.engine.endings import complete
from deployments.engine.measuring import limits_of, measure
from deployments.engine.records import LEASE, IllegalMove, move
from deployments.engine.run import advance, worker_name
from deployments.outside import outside_for

__all__ = [
    "LEASE",
    "IllegalMove",
    "advance",
    "complete",
    "limits_of",
    "measure",
    "move",
    "outside_for",
    "stuck_alerts",
    "worker_name",
]
