"""RabbitMQ definitions for the brokers of the deployed stacks, generated from the code.

    python -m deploy.definitions          # rewrite deploy/rabbitmq/*.json
    python -m deploy.definitions --check  # exit 1 if the committed files are out of date

`definitions.json` is a regional broker's topology: every exchange, queue and binding of
shared/messaging/topology.py (with the default retry delays' holding queues) and the link's
outbound queue. `national-definitions.json` is the national broker's. They hold no users and
no permissions: a user in a definitions file needs a password hash, and a hash of a real
password in git is a secret in git. The broker setup step (deploy/broker_setup.py) imports
these files and then makes the users from secrets it is given at run time.
"""
import argparse
import json
import sys
from pathlib import Path

from kombu import Exchange, Queue

from shared.config import DEFAULTS
from shared.messaging import topology
from deploy import stacks

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


def _quorum(name, exchange, key="#"):
    return Queue(name, exchange=exchange, routing_key=key, durable=True, queue_arguments={"x-queue-type": "quorum"})


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


def regional_entities():
    entities = topology.all_entities(_delays(DEFAULTS["AMENDS_RETRY_DELAYS"]))
    names = {entity.name for entity in entities}
    # The link's regional end, unless topology.py already declares it. The outbound queue is a
    # durable quorum queue: while the national broker is unreachable the shovel stops taking from
    # it and statistics wait here, replicated and on disk.
    statistics = Exchange(stacks.STATISTICS_EXCHANGE, type="topic", durable=True)
    if statistics.name not in names:
        entities.append(statistics)
    if stacks.OUTBOUND_QUEUE not in names:
        entities.append(_quorum(stacks.OUTBOUND_QUEUE, statistics))
    return entities


def national_entities():
    national = Exchange(stacks.NATIONAL_EXCHANGE, type="topic", durable=True)
    return [national, _quorum(stacks.NATIONAL_QUEUE, national)]


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
    parser = argparse.ArgumentParser(prog="python -m deploy.definitions", description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="only say whether the committed files are up to date")
    args = parser.parse_args(argv)
    if args.check:
        out_of_date = stale()
        for path in out_of_date:
            print(f"out of date: {path.relative_to(HERE.parent.parent)} (run python -m deploy.definitions)")
        return 1 if out_of_date else 0
    for path, text in rendered().items():
        path.write_text(text)
        print(f"wrote {path.relative_to(HERE.parent.parent)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
