"""RabbitMQ definitions for the brokers of the deployed stacks, generated from the code.

    python -m deploy.definitions          # rewrite deploy/rabbitmq/*.json
    python -m deploy.definitions --check  # exit 1 if the committed files are out of date

`definitions.json` is a regional broker's topology: every exchange, queue and binding of
shared/messaging/topology.py (with the default retry delays' holding queues), which includes the
link's outbound exchange and queue. `national-definitions.json` is the national broker's:
shared/messaging/national.py's national entities (its exchange, the national service's queue and
dead letters) and that queue's holding queues. They hold no users and
no permissions: a user in a definitions file needs a password hash, and a hash of a real
password in git is a secret in git. The broker setup step (deploy/broker_setup.py) imports
these files and then makes the users from secrets it is given at run time.
"""
import json
import sys
from pathlib import Path

from kombu import Exchange, Queue

from shared.config import DEFAULTS
from shared.messaging import national, topology
from deploy import generated

HERE = Path(__file__).resolve().parent / "rabbitmq"
REGIONAL_FILE = HERE / "definitions.json"
NATIONAL_FILE = HERE / "national-definitions.json"
VHOST = "/"


def _delays(text):
    return tuple(float(part) for part in text.split(",") if part.strip())


def _exchange(exchange):
    return {"name": exchange.name, "vhost": VHOST, "type": exchange.type, "durable": bool(exchange.durable),
            "auto_delete": bool(exchange.auto_delete), "internal": False, "arguments": dict(exchange.arguments or {})}


def _queue(queue):
    return {"name": queue.name, "vhost": VHOST, "durable": bool(queue.durable), "auto_delete": bool(queue.auto_delete),
            "arguments": dict(queue.queue_arguments or {})}


def _bindings(queue):
    found = []
    pairs = [(b.exchange, b.routing_key, b.arguments) for b in (queue.bindings or ())]
    if queue.exchange is not None and queue.exchange.name:
        pairs.append((queue.exchange, queue.routing_key, queue.binding_arguments))
    for exchange, key, arguments in pairs:
        found.append({"source": exchange.name, "vhost": VHOST, "destination": queue.name, "destination_type": "queue",
                      "routing_key": key or "", "arguments": dict(arguments or {})})
    return found


def definitions(entities):
    exchanges, queues, bindings = {}, {}, []
    for entity in entities:
        if isinstance(entity, Exchange):
            exchanges[entity.name] = _exchange(entity)
        elif isinstance(entity, Queue):
            queues[entity.name] = _queue(entity)
            bindings += _bindings(entity)
    return {
        "vhosts": [{"name": VHOST}],
        "exchanges": sorted(exchanges.values(), key=lambda e: e["name"]),
        "queues": sorted(queues.values(), key=lambda q: q["name"]),
        "bindings": sorted(bindings, key=lambda b: (b["source"], b["destination"], b["routing_key"])),
    }


def _retry_delays():
    return _delays(DEFAULTS["AMENDS_RETRY_DELAYS"])


def regional_entities():
    """topology.py's, the national link's outbound exchange and queue among them."""
    return topology.all_entities(_retry_delays())


def national_entities():
    """national.py's, and the holding queues the national service's retries wait in."""
    return national.national_entities() + [topology.retry_queue(national.NATIONAL_QUEUE, delay)
                                           for delay in _retry_delays()]


def rendered():
    """file -> its text, as it should be committed."""
    def text(document):
        return json.dumps(document, indent=2, sort_keys=True) + "\n"
    return {REGIONAL_FILE: text(definitions(regional_entities())),
            NATIONAL_FILE: text(definitions(national_entities()))}


def stale():
    """The committed files that differ from what the code generates."""
    return [path for path, text in rendered().items() if not path.exists() or path.read_text() != text]


def main(argv=None):
    return generated.main(__name__, argv, rendered, stale)


if __name__ == "__main__":
    sys.exit(main())
