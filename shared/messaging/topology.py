"""The RabbitMQ topology: every exchange, queue and binding, named in one place.

Both the bootstrap (which declares everything before any producer starts) and each
service's consumers build their kombu objects from here, so a queue is always
declared with the same arguments and nameko never publishes into the void.
"""
from kombu import Connection, Exchange, Queue, binding

SERVICES = ("referrals", "matching", "notifications", "records", "statistics", "subscriptions", "reports")
# Everything that publishes events: the services, and the identity store's key
# administration (shared.security.keys), which announces keys issued and revoked.
PRODUCERS = SERVICES + ("identity",)

# Redeliveries the broker allows a message that keeps killing its consumer before
# it dead-letters it; handler errors are counted and retried by the consumer itself.
DELIVERY_LIMIT = 10

# Consumer queues, one block per consuming service:
# (service, consumer) -> the (producing service, routing key) pairs it listens to.

REFERRALS_CONSUMERS = {
    # the case status follows matching's progress, and who is offered or holds the case
    # (which decides what a facilitator may see); a notification to the harmed person
    # meets the Victims' Code clock
    ("referrals", "case_status"): [
        ("matching", "case.assessed"),
        ("matching", "case.needs_review"),
        ("matching", "facilitator.assigned"),
        ("matching", "assignment.accepted"),
        ("matching", "assignment.declined"),
        ("matching", "facilitator.released"),
        ("matching", "assignment.waitlisted"),
        ("notifications", "notification.sent"),
    ],
}

MATCHING_CONSUMERS = {
    ("matching", "assess"): [("referrals", "referral.received")],
    # a closed case releases its facilitators and retries the waitlist
    ("matching", "release"): [("referrals", "case.closed")],
    # a party's consent to take part, withdrawn (the case is paused and its facilitators
    # released) or given again (the case is assessed afresh)
    ("matching", "consent"): [("referrals", "consent.withdrawn"), ("referrals", "consent.recorded")],
    # an erased participant's history with facilitators (continuity) is forgotten
    ("matching", "erasure"): [("referrals", "participant.erased")],
}

NOTIFICATIONS_CONSUMERS = {
    ("notifications", "notify"): [
        ("referrals", "referral.received"),
        ("referrals", "case.outcome_recorded"),
        ("referrals", "case.closed"),
        # a Victims' Code clock due or missed: the coordinating team of the case's region is told
        ("referrals", "case.deadline_due"),
        ("referrals", "case.deadline_missed"),
        ("matching", "case.assessed"),
        ("matching", "facilitator.assigned"),
        ("matching", "assignment.accepted"),
        # sessions: invitations, changes, cancellations and their reminders (or the facilitator's briefing)
        ("referrals", "session.scheduled"),
        ("referrals", "session.changed"),
        ("referrals", "session.cancelled"),
        # after the intervention: an agreed item due (its owner is reminded) or missed (the
        # lead facilitator is told), and a survey to send
        ("referrals", "agreement.item_due"),
        ("referrals", "agreement.item_missed"),
        ("referrals", "survey.requested"),
        # a subscription disabled: its owning agency is told (trusted from subscriptions only)
        ("subscriptions", "subscription.disabled"),
    ],
}

RECORDS_CONSUMERS = {
    ("records", "ledger"): [(producer, "#") for producer in PRODUCERS],
}

def _statistics_consumers():
    # every event type the statistics profile sends on to the national view, from its producer
    from shared.events import catalogue
    from shared.statistics_profile import EXPORTED
    return {("statistics", "deidentify"): [(catalogue.spec(t).producer, t) for t in EXPORTED]}


STATISTICS_CONSUMERS = _statistics_consumers()

CONSUMERS = {**REFERRALS_CONSUMERS, **MATCHING_CONSUMERS, **NOTIFICATIONS_CONSUMERS, **RECORDS_CONSUMERS,
             **STATISTICS_CONSUMERS}

# Queues the broker gives to one consumer at a time (RabbitMQ's single active consumer):
# the ledger has a single writer, in arrival order, however many records instances run;
# the others stand by and take over when the active one's connection goes.
SINGLE_ACTIVE = {("records", "ledger")}


def events_exchange(service):
    return Exchange(f"{service}.events", type="topic", durable=True)


def dead_letter_exchange(service):
    return Exchange(f"{service}.dlx", type="fanout", durable=True)


def dead_letter_queue(service):
    return Queue(
        f"{service}.dead-letters",
        exchange=dead_letter_exchange(service),
        durable=True,
        queue_arguments={"x-queue-type": "quorum"},
    )


# Agencies' AMQP feeds (services/subscriptions/broker_feeds.py): the subscriptions service
# publishes each subscription's events here with the subscription id as the routing key, and
# each subscription's queue, made when it is, is bound with that key.
FEEDS_EXCHANGE = "subscriptions.feeds"


def feeds_exchange():
    return Exchange(FEEDS_EXCHANGE, type="direct", durable=True)


def consumer_queue_name(service, consumer):
    return f"{service}.{consumer}"


def consumer_queue(service, consumer, declare_exchanges=True):
    """`declare_exchanges=False` for a service's own consumer: it binds to the producers'
    exchanges, which the bootstrap declared, and its broker user may not declare (or so
    delete) another service's exchange."""
    bindings = [
        binding(_no_declare(events_exchange(source)) if not declare_exchanges else events_exchange(source),
                routing_key=key)
        for source, key in CONSUMERS[(service, consumer)]
    ]
    return Queue(
        consumer_queue_name(service, consumer),
        bindings=bindings,
        durable=True,
        queue_arguments={
            "x-queue-type": "quorum",
            "x-delivery-limit": DELIVERY_LIMIT,
            "x-dead-letter-exchange": dead_letter_exchange(service).name,
            **({"x-single-active-consumer": True} if (service, consumer) in SINGLE_ACTIVE else {}),
        },
    )


def _no_declare(exchange):
    exchange.no_declare = True
    return exchange


def retry_queue(queue_name, delay_seconds):
    """A holding queue: a message waits `delay_seconds`, then the broker returns it
    to `queue_name` through the default exchange.

    A quorum queue whose dead-lettering is at-least-once: the broker keeps the message
    until the consumer queue has confirmed it. A classic queue's TTL dead-lettering is
    at-most-once, and loses a message whose delay ends while the broker restarts: on
    recovery the classic queue expires it before the quorum consumer queue has elected
    its leader ("leader not known. Command is dropped"), which the fault suite saw
    cost a case its staffing. At-least-once dead-lettering needs reject-publish overflow."""
    millis = int(delay_seconds * 1000)
    return Queue(
        f"{queue_name}.delay.{millis}ms",
        durable=True,
        queue_arguments={
            "x-queue-type": "quorum",
            "x-message-ttl": millis,
            "x-dead-letter-exchange": "",
            "x-dead-letter-routing-key": queue_name,
            "x-dead-letter-strategy": "at-least-once",
            "x-overflow": "reject-publish",
        },
    )


def all_entities(retry_delays=()):
    """Everything to declare, exchanges before the queues bound to them."""
    entities = []
    entities += [events_exchange(producer) for producer in PRODUCERS]
    for service in SERVICES:
        entities += [dead_letter_exchange(service), dead_letter_queue(service)]
    for service, consumer in CONSUMERS:
        queue = consumer_queue(service, consumer)
        entities.append(queue)
        entities += [retry_queue(queue.name, delay) for delay in retry_delays]
    # the start of the national link: de-identified statistics wait here for the shovel
    from shared.messaging import national
    entities += national.region_entities()
    entities.append(feeds_exchange())
    return entities


def declare(amqp_uri, retry_delays=()):
    with Connection(amqp_uri) as connection:
        channel = connection.channel()
        for entity in all_entities(retry_delays):
            entity.bind(channel).declare()
        channel.close()
