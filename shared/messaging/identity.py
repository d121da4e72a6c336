"""Which service sent a message, on the broker's word, and whether the event is theirs to send.

The broker refuses a message whose `user_id` property is not the publishing
connection's user, and each service has a user of its own, so `user_id` names the
sender. A consumer's retries and holds go round through its own holding queues, which
it publishes to itself: the message then bears the consumer's own `user_id`, and the
original sender travels in the PUBLISHER_HEADER. That header is believed only on a
message the consumer itself (or the operator, replaying a dead letter) published;
anyone else's copy of it is ignored and overwritten, so it cannot be forged.
"""
import logging
import os

from shared.events import catalogue
from shared.messaging.permissions import OPERATOR, OPERATOR_PRODUCERS, identity_of

log = logging.getLogger(__name__)

PUBLISHER_HEADER = "x-amends-publisher"
# Development only: every process on one broker user (the in-process integration tests,
# a broker whose users the bootstrap does not manage). Nothing is checked then.
UNCHECKED_FLAG = "AMENDS_DEV_UNCHECKED_BUS"


class NotTheirs(ValueError):
    """The event's sender is unknown, or not the service that produces it."""


def unchecked(config=None):
    value = (config or {}).get(UNCHECKED_FLAG) or os.environ.get(UNCHECKED_FLAG, "")
    return str(value).strip() in ("1", "true", "yes")


def warn_if_unchecked(config, what):
    if unchecked(config):
        log.warning("%s=1: %s does not check who sent what (development only)", UNCHECKED_FLAG, what)
        return True
    return False


def publisher_of(properties, headers, own_service):
    """The broker user that first published this message, or None when nobody vouches."""
    user = (properties or {}).get("user_id")
    carried = (headers or {}).get(PUBLISHER_HEADER)
    if carried and identity_of(user) in (own_service, OPERATOR):
        return carried if isinstance(carried, str) else carried.decode("utf-8", "replace")
    return user


def check_event(event, publisher):
    """Raise NotTheirs unless `publisher` (a broker user) is the producer of `event`'s
    type and its `source` (/amends/<region>/<service>) names that producer."""
    if not publisher:
        raise NotTheirs("no user_id: the sender is unknown")
    service = identity_of(publisher)
    producer = catalogue.spec(event["type"]).producer
    if service == OPERATOR and producer in OPERATOR_PRODUCERS:
        service = producer  # keys are administered by operators, as the admin user
    if service is None or service == OPERATOR:
        raise NotTheirs(f"sent by broker user {publisher[:64]!r}, which is no service")
    if producer != service:
        raise NotTheirs(f"a {event['type']} event is {producer}'s to send, not {service}'s")
    parts = event["source"].split("/")
    if len(parts) != 4 or parts[:2] != ["", "amends"] or parts[3] != service:
        raise NotTheirs(f"source {event['source'][:100]!r} is not {service}'s")
