"""What an operator sees of the pipeline: each service's /health, each queue's depth and
the age of its oldest message, and each service's dead letters, which they may inspect,
replay or discard.

RabbitMQ reports the oldest message's time only for classic queues (and only when messages
carry a timestamp); the platform's work queues are quorum queues, for which it does not, and
peeking at the head would count as a delivery towards the queue's delivery limit. For those
the page shows how long the waiting messages would take at the rate they are being
acknowledged now (Little's law: ready / rate), or that nothing is taking them, which is what
an operator acts on.

These use the console's own operator credentials from the environment (the broker's
management API and an AMQP URI that may read the dead-letter queues and replay into the
consumer queues), never a person's API key, so only an operator's account reaches them.
Dead letters go through shared.messaging.deadletters, the operators' own tool: a letter is
described without its body, and a replay goes back to the one queue it came from.
"""
import time
from urllib.parse import quote
from dataclasses import dataclass

import requests
from kombu import Connection

from shared.messaging import deadletters, topology
from shared.messaging.management import Management

HEALTH_TIMEOUT = 3


@dataclass(frozen=True)
class QueueState:
    name: str
    messages: int
    ready: int
    unacked: int
    consumers: int
    oldest_age_seconds: float = None   # None: the broker does not report it for this queue
    ack_rate: float = 0.0              # messages acknowledged a second, over the broker's last sample

    @property
    def wait(self):
        """(message key, seconds or None): what the waiting messages' age column says."""
        if self.messages == 0:
            return "pipeline.none_waiting", None
        if self.oldest_age_seconds is not None:
            return "pipeline.age", self.oldest_age_seconds
        if self.ready == 0:
            return "pipeline.being_handled", None
        if ".delay." in self.name:     # a retry's holding queue: the broker returns each when its delay ends
            return "pipeline.held_for_retry", None
        if self.name.endswith(".dead-letters"):
            return "pipeline.for_an_operator", None
        if self.consumers == 0:
            return "pipeline.no_consumer", None
        if self.ack_rate <= 0:
            return "pipeline.not_moving", None
        return "pipeline.wait_estimate", self.ready / self.ack_rate


def service_health(urls, get=requests.get):
    """service -> (status text, problems): each service's own /health answer."""
    found = {}
    for service, url in urls.items():
        try:
            answer = get(f"{url}/health", timeout=HEALTH_TIMEOUT)
            body = answer.json()
            found[service] = (body.get("status", "unknown"), list(body.get("problems") or ()))
        except (requests.RequestException, ValueError):
            found[service] = ("unreachable", [])
    return found


def queue_states(raw_queues, now=None):
    """QueueStates from the management API's queue list, the platform's own queues only
    (consumer, retry holding and dead-letter queues), by name."""
    now = now or time.time()
    ours = own_queue_names()
    states = []
    for queue in raw_queues:
        name = queue.get("name", "")
        if not any(name == own or name.startswith(own + ".") for own in ours):
            continue
        head = queue.get("head_message_timestamp")
        rate = ((queue.get("message_stats") or {}).get("ack_details") or {}).get("rate")
        states.append(QueueState(name, int(queue.get("messages") or 0), int(queue.get("messages_ready") or 0),
                                 int(queue.get("messages_unacknowledged") or 0), int(queue.get("consumers") or 0),
                                 max(0.0, now - head) if isinstance(head, (int, float)) else None,
                                 float(rate) if isinstance(rate, (int, float)) else 0.0))
    return sorted(states, key=lambda s: s.name)


def own_queue_names():
    names = {topology.consumer_queue_name(service, consumer) for service, consumer in topology.CONSUMERS}
    names |= {topology.dead_letter_queue(service).name for service in topology.SERVICES}
    return names


class Operations:
    """The operator credentials, and what they are used for."""

    def __init__(self, amqp_uri, management_url):
        self.amqp_uri = amqp_uri
        self.management_url = management_url
        # the queues listed are those of the broker's virtual host the AMQP URI names
        self.vhost = Connection(amqp_uri).virtual_host if amqp_uri else "/"

    @property
    def configured(self):
        return bool(self.amqp_uri and self.management_url)

    def queues(self):
        management = Management.from_url(self.management_url, timeout=10)
        raw = management.get(f"/api/queues/{quote(self.vhost, safe='')}") or []
        return queue_states(raw)

    def dead_letters(self, service):
        return deadletters.list_letters(self.amqp_uri, service)

    def act(self, service, action, letter_id):
        """Replay or discard one letter; its summary, or None if it is gone."""
        done = deadletters.act(self.amqp_uri, service, action, {letter_id})
        return done[0] if done else None

