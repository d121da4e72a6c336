"""The national view: how de-identified statistics leave a region and reach the national broker.

    region broker                                              national broker
    statistics service --> statistics.national (topic) --> national.outbound (quorum)
                                                                |  shovel, ack-mode on-confirm
                                                                v
                                                   amends.national (topic) --> national.statistics (quorum)
                                                                                   --> national service

Only statistics (shared.statistics_profile) are published to `statistics.national`, with
the routing key `<region>.<event type>`. RabbitMQ's shovel plugin moves them: it acks a
message in the region's `national.outbound` only once the national broker has confirmed
it, so while the link or either broker is down they wait, durable, in the region. After
a break the shovel may send again what the national broker already had; the national
service counts each `statistic_id` once.

On the national broker each region's shovel logs in as its own user, `amends-link-<region>`,
which may only publish to `amends.national`, and only with routing keys that start with its
region: so the routing key of a message there is the broker's word for which region sent
it, and the national service refuses a statistic that claims another.

    AMQP_URI=<national admin URI> python -m shared.messaging.national declare
    python -m shared.messaging.national accounts --node NODE --regions south,north
    NATIONAL_LINK_URI=amqp://amends-link-south:...@127.0.0.1:5700/%2F \\
        python -m shared.messaging.national link --management-url http://127.0.0.1:15701 --region south

Passwords and the URIs that hold them come from the environment only, never a command line
(which anyone on the machine may read): AMENDS_BUS_ADMIN_PASSWORD (the admin of the broker
being changed), NATIONAL_BUS_PASSWORD, NATIONAL_LINK_<REGION>_PASSWORD, NATIONAL_LINK_URI.
The link's URI goes to the region's management API, which keeps it (encrypted) as the
shovel's parameter.
"""
import argparse
import json
import os
import re
import sys
from urllib.parse import quote, urlsplit

from kombu import Connection, Exchange, Queue

from shared import metrics
from shared.messaging import topology


# the region side: the statistics service publishes here, the shovel reads from here
OUTBOUND_EXCHANGE = "statistics.national"
OUTBOUND_QUEUE = "national.outbound"
# the national side
NATIONAL_EXCHANGE = "amends.national"
NATIONAL_QUEUE = "national.statistics"
NATIONAL_SERVICE = "national"
NATIONAL_USER = "amends-national"
SHOVEL_NAME = "national-link"
# how long the shovel waits before it tries the national broker again
RECONNECT_DELAY = 5
# the broker's administrator (shared.messaging.permissions.ADMIN_USER, which imports the topology)
ADMIN_USER = "amends-admin"
REGION_CODE = re.compile(r"^[a-z0-9][a-z0-9-]*$")


def outbound_exchange():
    return Exchange(OUTBOUND_EXCHANGE, type="topic", durable=True)


def outbound_queue():
    # quorum: what waits for the link survives a broker restart
    return Queue(OUTBOUND_QUEUE, exchange=outbound_exchange(), routing_key="#", durable=True,
                 queue_arguments={"x-queue-type": "quorum"})


def region_entities():
    """What a region's broker needs for the national link (the bootstrap declares them)."""
    return [outbound_exchange(), outbound_queue()]


def routing_key(region, event_type):
    return f"{region}.{event_type}"


def region_of(key):
    return key.split(".", 1)[0] if key else ""


class StatisticSender:
    """Publishes a region's statistics to `statistics.national`, persistent, confirmed and
    mandatory: `send` returns only once the broker has routed the statistic to the shovel's
    queue. No user_id: the shovel carries the messages to another broker, where the link's own
    user publishes them, and a foreign user_id would be refused there."""

    def __init__(self, amqp_uri):
        from nameko.amqp.publish import Publisher
        self.publisher = Publisher(amqp_uri, use_confirms=True, mandatory=True, delivery_mode=2)
        self.exchange = outbound_exchange()
        self.exchange.no_declare = True  # declared with the topology, with the queue bound to it

    def send(self, statistic, patient=True):
        """`patient`: ride out a broker restart with kombu's retries."""
        self.publisher.publish(
            json.dumps(statistic), exchange=self.exchange,
            routing_key=routing_key(statistic["region"], statistic["event_type"]),
            content_type="application/json", content_encoding="utf-8", serializer=None,
            message_id=statistic["statistic_id"], retry=patient)
        metrics.EVENTS_PUBLISHED.labels("statistic." + statistic["event_type"]).inc()


def national_exchange():
    return Exchange(NATIONAL_EXCHANGE, type="topic", durable=True)


def national_queue(declare_exchange=True):
    """The national service's queue: every statistic from every region."""
    exchange = national_exchange()
    exchange.no_declare = not declare_exchange
    return Queue(NATIONAL_QUEUE, exchange=exchange, routing_key="#", durable=True, queue_arguments={
        "x-queue-type": "quorum",
        "x-delivery-limit": topology.DELIVERY_LIMIT,
        "x-dead-letter-exchange": topology.dead_letter_exchange(NATIONAL_SERVICE).name,
    })


def national_entities():
    """The national broker's exchange, the national service's queue and its dead letters."""
    return [national_exchange(), topology.dead_letter_exchange(NATIONAL_SERVICE),
            topology.dead_letter_queue(NATIONAL_SERVICE), national_queue()]


def declare(amqp_uri, entities):
    with Connection(amqp_uri) as connection:
        channel = connection.channel()
        for entity in entities:
            entity.bind(channel).declare()
        channel.close()


def link_user(region):
    return f"amends-link-{region}"


def link_password_variable(region):
    return f"NATIONAL_LINK_{region.upper().replace('-', '_')}_PASSWORD"


def national_accounts(regions):
    """user -> Grant (shared.messaging.permissions) on the national broker: the national
    service's, and a link's per region."""
    from shared.messaging.permissions import Grant  # it imports this module's names
    queue = re.escape(NATIONAL_QUEUE)
    own = f"{queue}(\\.delay\\.[0-9]+ms)?|{re.escape(NATIONAL_SERVICE)}\\.dlx|{re.escape(NATIONAL_SERVICE)}\\.dead-letters"
    grants = {
        # the national service: its queue, its holding queues and dead letters; it binds its
        # queue to amends.national (read there) and publishes retries through the default exchange
        NATIONAL_USER: Grant(f"^({own})$", f"^({own}|amq\\.default)$", f"^({own}|{re.escape(NATIONAL_EXCHANGE)})$",
                             {NATIONAL_EXCHANGE: ("^$", ".*")}),
    }
    for region in regions:
        if not REGION_CODE.match(region):
            raise ValueError(f"not a region code: {region!r}")
        # a link publishes to amends.national only, with keys naming its own region
        grants[link_user(region)] = Grant("^$", f"^{re.escape(NATIONAL_EXCHANGE)}$", "^$",
                                          {NATIONAL_EXCHANGE: (f"^{re.escape(region)}\\.", "^$")})
    return grants


def setup_national_accounts(node, regions, environ, env=None):
    """Make the national broker's users (admin, the national service, a link per region),
    as shared.messaging.accounts makes a region's."""
    from shared.messaging import accounts
    variables = {ADMIN_USER: accounts.ADMIN_PASSWORD_VARIABLE, NATIONAL_USER: accounts.password_variable(NATIONAL_SERVICE),
                 **{link_user(r): link_password_variable(r) for r in regions}}
    missing = [v for v in variables.values() if not environ.get(v)]
    if missing:
        raise SystemExit(f"no password in the environment for: {', '.join(missing)}")
    accounts.setup(node, {user: environ[variable] for user, variable in variables.items()}, env=env,
                   grants=national_accounts(regions))


def shovel_definition(national_uri):
    """The dynamic shovel a region runs: its outbound queue to the national exchange.

    on-confirm: a message leaves the region's queue only once the national broker has it.
    The routing key is kept (it names the region); nothing is added to the message."""
    # kombu reads `amqp://host/` as the default vhost "/", the broker's own URI parser as the
    # vhost "": say "/" the way both read it
    if urlsplit(national_uri).path == "/":
        national_uri = national_uri[:-1] + "/%2F"
    return {"value": {
        "src-protocol": "amqp091", "src-uri": "amqp://", "src-queue": OUTBOUND_QUEUE,
        "dest-protocol": "amqp091", "dest-uri": national_uri, "dest-exchange": NATIONAL_EXCHANGE,
        "ack-mode": "on-confirm", "reconnect-delay": RECONNECT_DELAY,
        "dest-add-forward-headers": False, "dest-add-timestamp-header": False,
        "src-delete-after": "never", "src-prefetch-count": 500,
    }}


def link(management_url, admin_password, national_uri, vhost="/"):
    """Set (or replace) the region's shovel through its management API."""
    from shared.messaging.management import Management, ManagementError
    try:
        Management(management_url, ADMIN_USER, admin_password).put_parameter(
            "shovel", vhost, SHOVEL_NAME, shovel_definition(national_uri))
    except ManagementError as error:
        raise RuntimeError(f"the region's broker refused the shovel: HTTP {error.status}") from None


def link_state(management_url, admin_password, vhost="/"):
    """The shovel's state as the region's broker reports it ('running', 'starting', ...), or None."""
    from shared.messaging.management import Management
    for shovel in Management(management_url, ADMIN_USER, admin_password, timeout=10).get(
            f"/api/shovels/{quote(vhost, safe='')}"):
        if shovel.get("name") == SHOVEL_NAME:
            return shovel.get("state")
    return None


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m shared.messaging.national",
                                     description="the national link: declare, accounts, link")
    sub = parser.add_subparsers(dest="action", required=True)
    sub.add_parser("declare", help="declare the national broker's exchange and queues (AMQP_URI: its admin's)")
    accounts_p = sub.add_parser("accounts", help="make the national broker's users")
    accounts_p.add_argument("--node", required=True)
    accounts_p.add_argument("--regions", required=True, help="comma-separated region codes")
    link_p = sub.add_parser("link", help="set a region's shovel to the national broker")
    link_p.add_argument("--management-url", default="http://127.0.0.1:15672")
    link_p.add_argument("--region", required=True)
    args = parser.parse_args(argv)
    if args.action == "declare":
        if not os.environ.get("AMQP_URI"):
            parser.error("set AMQP_URI to the national broker's admin URI")
        declare(os.environ["AMQP_URI"], national_entities())
        print(f"declared {NATIONAL_EXCHANGE} and {NATIONAL_QUEUE}")
    elif args.action == "accounts":
        regions = [r.strip() for r in args.regions.split(",") if r.strip()]
        setup_national_accounts(args.node, regions, os.environ)
        print(f"national broker users ready on {args.node}: {ADMIN_USER}, {NATIONAL_USER}, "
              + ", ".join(link_user(r) for r in regions))
    else:
        uri, password = os.environ.get("NATIONAL_LINK_URI"), os.environ.get("AMENDS_BUS_ADMIN_PASSWORD")
        if not uri or not password:
            raise SystemExit("set NATIONAL_LINK_URI (the link user's URI on the national broker) and "
                             "AMENDS_BUS_ADMIN_PASSWORD (the region broker's admin)")
        link(args.management_url, password, uri)
        print(f"region {args.region} linked to the national broker (shovel {SHOVEL_NAME})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
