"""What outside services tell incidents: CloudWatch alarms through an AWS SNS HTTPS subscription
(sns, alarms), and acknowledgements and resolutions made on PagerDuty, its V3 webhooks (pagerduty).

Nothing is believed before it is verified: an SNS message by its topic, which SNS_TOPIC_ARNS lists,
and its signature, checked as AWS documents it against the certificate fetched over HTTPS from an
AWS host only (integrations.sns); a PagerDuty event by the HMAC of the shared secret
(integrations.signatures). A message that cannot be verified is refused and leaves nothing behind.
Every message acted on is kept by its own id (portal's InboundDelivery, as GitHub's deliveries
are), so a delivery sent twice is acted on once, and everything one message does is written in one
transaction and audited: the incident services audit what they do, and each kept message has one
audit event of its own that says what it did."""

from incidents.inbound.common import Outcome, Refused
from incidents.inbound.pagerduty import pagerduty_receive
from incidents.inbound.sns import sns_receive

__all__ = ["Outcome", "Refused", "pagerduty_receive", "sns_receive"]
