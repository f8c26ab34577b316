"""The weights on the load balancer: wanted (`desired_weight`), told, read back, confirmed
(`applied_weight`); a crash anywhere in between is found by `reconcile`. And the environment's
live colour."""

from deployments.engine.records import save
from deployments.models import Deployment, DeploySettings
from deployments.outside import Outside
from portal.services import audit_record

# AWS saying the listener or rule does not exist: traffic cannot have gone through it.
NOT_THERE = frozenset({"ListenerNotFound", "RuleNotFound", "LoadBalancerNotFound"})


def set_weight(deployment: Deployment, world: Outside, weight: int) -> None:
    deploy = deployment.environment.deploy_settings
    save(deployment, action="deployment.weights", desired_weight=weight)
    world.aws.set_weights(
        {
            deploy.target_group(deployment.to_colour): weight,
            deploy.target_group(deployment.from_colour): 100 - weight,
        },
        listener_arn=deploy.listener_arn,
        rule_arn=deploy.rule_arn,
    )
    confirm(deployment, world)


def confirm(deployment: Deployment, world: Outside) -> int:
    deploy = deployment.environment.deploy_settings
    actual = world.aws.weights(listener_arn=deploy.listener_arn, rule_arn=deploy.rule_arn)
    applied = actual.get(deploy.target_group(deployment.to_colour), 0)
    if applied != deployment.applied_weight:
        save(deployment, action="deployment.weights_confirmed", applied_weight=applied)
    return applied


def weights_held(deployment: Deployment, world: Outside) -> bool:
    """Whether the load balancer still has the weight confirmed, read back before each verdict: a
    call of a worker that lost its lease (the clock jumped, a request stalled) may land after
    another worker moved the weights on. When it does not, the row takes what the load balancer
    has, and the next pass (`reconcile`) puts the wanted weight back before anything is judged."""
    return confirm(deployment, world) == deployment.desired_weight


def reconcile(deployment: Deployment, world: Outside) -> None:
    """The row wants one weight and confirmed another (a worker stopped between the two): ask the
    load balancer, and tell it again when it does not have what is wanted."""
    if confirm(deployment, world) != deployment.desired_weight:
        set_weight(deployment, world, deployment.desired_weight)


def make_live(deployment: Deployment, colour: str) -> None:
    """The environment's live colour, audited (in the caller's transaction)."""
    locked = DeploySettings.objects.select_for_update().get(environment_id=deployment.environment_id)
    if locked.live_colour == colour:
        return
    audit_record(
        actor=None,
        action="environment.live_colour",
        target=deployment.environment,
        before={"live_colour": locked.live_colour},
        after={"live_colour": colour, "version": deployment.version},
    )
    locked.live_colour = colour
    locked.save(update_fields=["live_colour"])
