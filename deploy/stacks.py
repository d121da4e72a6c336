"""What gets deployed, named once: the services, their ports and secrets, the stacks.

The Dockerfile's entrypoint (deploy/container.py), the RabbitMQ definitions
(deploy/definitions.py), the Kubernetes manifests (deploy/manifests.py) and the
deployment tests all read this module. Nothing here names the bus again: the queues each
service consumes come from shared/messaging/topology.py, the national link's exchanges,
queues and shovel from shared/messaging/national.py, and a ledger's origin from
services/records/residency.py, so a name changed there is changed everywhere here.
"""
from dataclasses import dataclass, field

from services.records import residency
from shared.messaging import national, topology
# The link to the national stack (docs/deploy.md), as shared/messaging/national.py names it: the
# statistics service publishes to OUTBOUND_EXCHANGE, whose OUTBOUND_QUEUE a shovel (SHOVEL_NAME)
# empties into the national broker's NATIONAL_EXCHANGE; the national service consumes NATIONAL_QUEUE.
from shared.messaging.national import (  # noqa: F401  (named here for deploy/ and its tests)
    NATIONAL_EXCHANGE, NATIONAL_QUEUE, OUTBOUND_EXCHANGE, OUTBOUND_QUEUE, SHOVEL_NAME)


@dataclass(frozen=True)
class Deployable:
    name: str
    port: int
    # the secrets only this service may hold, beside its own AMQP_URI and MONGO_URI
    secrets: tuple = ()
    optional_secrets: tuple = ()
    # "region": one in every regional stack; "national": only in the national stack
    scope: str = "region"
    # queues on its own stack's broker that it consumes, when topology.py does not name them
    extra_queues: tuple = field(default=())
    # False for a service with no broker user of its own (the console): no AMQP_URI is given it
    bus: bool = True
    # the stack's services whose HTTP APIs it calls, each reached at <name>:<port> in the stack
    calls: tuple = ()
    # for a service that consumes no queue: why it runs the replicas it does (the manifest's comment)
    scaling: str = ""

    @property
    def entrypoint(self):
        return f"services.{self.name}.service:{self.name.capitalize()}Service"

    @property
    def config(self):
        return f"services/{self.name}/config.yaml"

    @property
    def address_variable(self):
        return f"{self.name.upper()}_HTTP_ADDRESS"

    @property
    def queues(self):
        """The queues it consumes: topology.py's for it, then any named here."""
        own = [topology.consumer_queue_name(service, consumer)
               for service, consumer in topology.CONSUMERS if service == self.name]
        return tuple(sorted(own)) + self.extra_queues

    @property
    def single_writer(self):
        """True when one of its queues is single-active-consumer: extra instances only stand by,
        so scaling on queue depth would add nothing but idle pods."""
        return any(service == self.name for service, _ in topology.SINGLE_ACTIVE)


# records' signing key (services/records/dependencies.py's SIGNING_KEY, which the tests compare:
# importing it here would load nameko into every container health check)
LEDGER_SIGNING_KEY = "AMENDS_LEDGER_SIGNING_KEY"

SERVICES = {
    deployable.name: deployable for deployable in (
        Deployable("referrals", 8001, secrets=("AMENDS_MASTER_KEY",)),
        Deployable("matching", 8002),
        Deployable("notifications", 8003, optional_secrets=("SMS_API_KEY",)),
        # its signing key is its region's own: named amends.<region>/ledger (Stack.ledger_origin)
        Deployable("records", 8004, secrets=(LEDGER_SIGNING_KEY,)),
        # the region's key for statistic ids (shared/statistics_profile.py)
        Deployable("statistics", 8007, secrets=("AMENDS_STATISTICS_KEY",)),
        # the key of the statistics profile's ids, and the broker's management API as an admin (it makes
        # agencies' feed users and queues: docs/subscriptions.md)
        Deployable("subscriptions", 8005, secrets=("AMENDS_SUBSCRIPTIONS_KEY", "SUBSCRIPTIONS_BROKER_ADMIN_URL"),
                   scaling="follows records' ledger over RPC and delivers under a lease in its database, one "
                           "process at a time; another replica would answer the API and stand by, not deliver "
                           "faster."),
        # the standard reports' read model (services/reports/): follows records' feed, no secret of its own
        Deployable("reports", 8009,
                   scaling="follows records' ledger over RPC and folds it under a lease in its database, one "
                           "process at a time; another replica would answer the API from what is saved and "
                           "stand by."),
        Deployable(national.NATIONAL_SERVICE, 8008, scope="national", extra_queues=(NATIONAL_QUEUE,)),
        # the web console: its key seals its accounts' API keys; its operator pages' broker
        # credentials (docs/console.md) are optional, and without them those pages say so
        Deployable("console", 8006, secrets=("AMENDS_CONSOLE_KEY",), bus=False,
                   calls=("referrals", "matching", "notifications", "records", "subscriptions", "reports"),
                   optional_secrets=("CONSOLE_OPERATOR_AMQP_URI", "CONSOLE_MANAGEMENT_URL"),
                   scaling="serves web pages and consumes no queue; its sessions are in its database, so more "
                           "replicas behind the Service would work (each counting failed sign-ins on its own)."),
    )
}


@dataclass(frozen=True)
class Stack:
    name: str            # AMENDS_REGION, the Kubernetes namespace's suffix, the ledger's origin
    areas: tuple = ()    # AMENDS_REGIONS: the areas whose referrals this stack accepts
    national: bool = False

    @property
    def namespace(self):
        return f"amends-{self.name}"

    @property
    def services(self):
        wanted = "national" if self.national else "region"
        return [service for service in SERVICES.values() if service.scope == wanted]

    @property
    def ledger_origin(self):
        """The name its records service's signing key must have (records refuses any other)."""
        return residency.origin(self.name)


# Two regional stacks and the national one. A new region is one more line here, then
# `python -m deploy.manifests` and `python -m deploy.definitions`.
REGIONS = (
    Stack("south-wales", areas=("south-wales", "gwent")),
    Stack("north-wales", areas=("north-wales", "dyfed-powys")),
)
NATIONAL = Stack("national", national=True)
STACKS = REGIONS + (NATIONAL,)

# The Kubernetes release the manifests are checked against (kubernetes-validate's schemas).
KUBERNETES_VERSION = "1.33"
