"""Who is who on the bus, and what each may do there: the one table of broker users,
permissions and RPC callers.

Each service connects as its own RabbitMQ user (`amends-<service>`); the broker checks
its password, refuses any message whose `user_id` property names another user, and
allows it only the exchanges and queues below. So a message's `user_id` is the
broker's word for which service sent it, and consumers and RPC handlers trust that,
never a header or an argument. The bootstrap (`shared.messaging.accounts`), the tests
and docs/security.md all read this module; change it here and nowhere else.

Permissions are RabbitMQ's three per-vhost regexes (configure: declare and delete;
write: publish to an exchange, bind to a queue; read: consume a queue, bind from an
exchange) plus topic permissions, which narrow the routing keys a user may publish
with (write) or bind with (read) on one topic exchange.
"""
import re
from dataclasses import dataclass

from kombu import Connection

from shared.events import catalogue
from shared.messaging import national, topology

ADMIN_USER = "amends-admin"
# nameko's RPC exchange, the queue each RPC-serving service consumes, and its callers'
# reply queues (nameko.rpc: RPC_QUEUE_TEMPLATE, RPC_REPLY_QUEUE_TEMPLATE).
RPC_EXCHANGE = "nameko-rpc"
# The routing key of an RPC reply: the caller's reply queue's uuid4.
REPLY_KEY = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
# Retries go to holding queues through the default exchange, which RabbitMQ checks as
# `amq.default` (see docs/security.md for what that allows).
DEFAULT_EXCHANGE = "amq.default"
# The identity of the operator: the admin user, trusted like the broker itself.
OPERATOR = "operator"
# The operators' narrower user, for the console's operator pages: it reads, replays and
# discards dead letters and sees queue depths (the management API's `monitoring` tag), and
# nothing else: no agency's feed, no configuration, no users. A replay it publishes is the
# operator's, as one by the admin user is.
OPERATOR_USER = "amends-operator"
# Producers that are no service: the operator publishes their events with the admin user.
# The key administration (shared.security.keys) announces keys issued and revoked.
OPERATOR_PRODUCERS = ("identity",)

# Which identities may call which RPC method (service, method) -> callers. A method not
# listed here answers nobody.
RPC_CALLERS = {
    ("referrals", "get_contact"): {"notifications"},
    ("matching", "get_facilitator_contact"): {"notifications"},
    # the facilitator registry is kept by operators (and the HTTP API, which is not RPC)
    ("matching", "register_facilitator"): {OPERATOR},
    ("matching", "update_facilitator"): {OPERATOR},
    ("matching", "deactivate_facilitator"): {OPERATOR},
    ("matching", "get_facilitator"): {OPERATOR},
    # the ledger's feed, which the subscriptions service follows (docs/subscriptions.md), and the
    # reports service folds into its read model (docs/reports.md)
    ("records", "entries_after"): {"subscriptions", "reports"},
}


# Exchanges a service publishes to besides its events exchange: the statistics service
# sends the region's de-identified statistics towards the national view (shared.messaging.national);
# the subscriptions service feeds agencies' queues (services/subscriptions/broker_feeds.py).
OTHER_EXCHANGES = {"statistics": (national.OUTBOUND_EXCHANGE,), "subscriptions": (topology.FEEDS_EXCHANGE,)}


def user_for(service):
    return f"amends-{service}"


def identity_of(user_id):
    """The service (or OPERATOR) a broker user stands for; None for any other user."""
    if user_id in (ADMIN_USER, OPERATOR_USER):
        return OPERATOR
    for service in topology.SERVICES:
        if user_id == user_for(service):
            return service
    return None


def uri_user(amqp_uri):
    """The user an AMQP URI logs in as: what the broker will accept as `user_id`."""
    return Connection(amqp_uri).userid


def may_call(caller, service, method):
    return caller in RPC_CALLERS.get((service, method), ())


@dataclass(frozen=True)
class Grant:
    configure: str
    write: str
    read: str
    # exchange -> (write regex, read regex)
    topics: dict


def _any(names):
    return "^(" + "|".join(re.escape(name) for name in sorted(names)) + ")$"


def _rpc_methods(service):
    return sorted(method for (target, method) in RPC_CALLERS if target == service)


def _rpc_calls(caller):
    return sorted(f"{target}.{method}" for (target, method), callers in RPC_CALLERS.items() if caller in callers)


def grant_for(service):
    """The permissions of `service`'s user: its own queues and exchanges, the events
    exchanges it listens to, and nameko's RPC exchange only as far as it serves or
    calls RPCs. Never another service's events or dead-letter exchange to write to."""
    own_queues = set()
    sources = {}  # producing service -> binding keys this service listens with
    for (consumer_service, consumer), bindings in topology.CONSUMERS.items():
        if consumer_service != service:
            continue
        name = topology.consumer_queue_name(service, consumer)
        own_queues.add(name)
        for producer, key in bindings:
            sources.setdefault(producer, set()).add(key)
    dlx, dead_letters = topology.dead_letter_exchange(service).name, topology.dead_letter_queue(service).name
    events = topology.events_exchange(service).name
    serves, calls = _rpc_methods(service), _rpc_calls(service)

    queue_names = [re.escape(q) for q in sorted(own_queues)]
    # a consumer's holding queues (topology.retry_queue): <queue>.delay.<ms>ms, one per delay
    queues = [f"{q}(\\.delay\\.[0-9]+ms)?" for q in queue_names] + [re.escape(dead_letters)]
    rpc_queues = []
    if serves:
        rpc_queues.append(re.escape(f"rpc-{service}"))
    if calls:
        rpc_queues.append(re.escape(f"rpc.reply-{service}-") + REPLY_KEY)
    rpc = [re.escape(RPC_EXCHANGE)] if serves or calls else []

    def alternatives(parts):
        return "^(" + "|".join(parts) + ")$" if parts else "^$"

    configure = alternatives(queues + [re.escape(dlx)] + rpc_queues + rpc)
    others = [re.escape(name) for name in OTHER_EXCHANGES.get(service, ())]
    write = alternatives([re.escape(events), re.escape(dlx), re.escape(DEFAULT_EXCHANGE)]
                         + others + queues + rpc_queues + rpc)
    read = alternatives(queues + rpc_queues + [re.escape(dlx)] + rpc
                        + [re.escape(topology.events_exchange(p).name) for p in sorted(sources)])

    topics = {events: (_any(catalogue.types_produced_by(service)), "^$")}
    topics.update({name: (".*", "^$") for name in OTHER_EXCHANGES.get(service, ())})
    for producer, keys in sources.items():
        exchange = topology.events_exchange(producer).name
        write_regex = topics.get(exchange, ("^$", None))[0]
        topics[exchange] = (write_regex, _any(keys))
    if rpc:
        # publish: the calls it may make, and replies (to a caller's reply queue);
        # bind: its own RPC queue (`<service>.*`) and its reply queue
        publish = [re.escape(call) for call in calls] + ([REPLY_KEY] if serves else [])
        bind = ([re.escape(f"{service}.*")] if serves else []) + ([REPLY_KEY] if calls else [])
        topics[RPC_EXCHANGE] = (alternatives(publish), alternatives(bind))
    return Grant(configure, write, read, topics)


GRANTS = {service: grant_for(service) for service in topology.SERVICES}


def operator_grant():
    """The operator user's permissions: each service's dead-letter queue to read (and ack),
    and the default exchange to write to, through which a replay goes back into the one queue
    the letter came from. Nothing to configure: it can neither make nor delete a queue."""
    dead_letters = [topology.dead_letter_queue(service).name for service in topology.SERVICES]
    return Grant("^$", _any([DEFAULT_EXCHANGE]), _any(dead_letters), {})


OPERATOR_GRANT = operator_grant()
