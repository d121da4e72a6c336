"""The operator's command for dead letters: list them, replay them, or discard them.

    python -m shared.messaging.deadletters list    <service>
    python -m shared.messaging.deadletters replay  <service> (--id ID ... | --all)
    python -m shared.messaging.deadletters discard <service> (--id ID ... | --all)

A replayed message goes back to the one queue it was dead-lettered from (not to the
exchange, which would hand it to every other consumer again), with its retry count
reset. A discard is logged with the letter's id and reason. Bodies are never printed:
a poison message can hold anything. Uses AMQP_URI from the environment.
"""
import argparse
import hashlib
import json
import logging
import sys

from amqp.exceptions import NotFound
from kombu import Connection

from shared.config import settings_for
from shared.messaging import identity, topology
from shared.messaging.publisher import publish_raw

log = logging.getLogger("amends.deadletters")

_OURS = ("x-amends-error", "x-amends-attempts", "x-amends-queue", "x-amends-dead-letter-id", "x-amends-attempt")


def describe(body, headers):
    """What an operator needs to know about one dead letter, without its body."""
    headers = headers or {}
    death = (headers.get("x-death") or [{}])[0]
    summary = {
        "id": headers.get("x-amends-dead-letter-id") or hashlib.sha256(body).hexdigest()[:12],
        "queue": headers.get("x-amends-queue") or headers.get("x-first-death-queue") or death.get("queue"),
        "error": headers.get("x-amends-error")
        or f"dead-lettered by the broker: {headers.get('x-first-death-reason') or death.get('reason', 'unknown')}",
        "attempts": headers.get("x-amends-attempts") or death.get("count"),
        "original_exchange": headers.get("x-amends-original-exchange") or headers.get("x-first-death-exchange"),
        "original_routing_key": headers.get("x-amends-original-routing-key")
        or (death.get("routing-keys") or [None])[0],
        "event_id": None,
        "event_type": None,
        "bytes": len(body),
    }
    try:
        event = json.loads(body)
        summary["event_id"], summary["event_type"] = event.get("id"), event.get("type")
    except (ValueError, UnicodeDecodeError, AttributeError):
        pass
    return summary


def replay_headers(headers, properties=None, service=None):
    """The headers a replayed letter goes back with. The operator replays it under their
    own broker user, so it carries its original sender in the publisher header, as the
    consumer's own retries do: the one the consumer recorded when the letter came from
    it, else the letter's own validated user_id (the broker dead-lettered it unchanged)."""
    kept = {k: v for k, v in (headers or {}).items() if k not in _OURS and not k.startswith("x-death")
            and not k.startswith("x-first-death") and not k.startswith("x-last-death")}
    kept.pop(identity.PUBLISHER_HEADER, None)
    headers = headers or {}
    if not service:
        publisher = None
    elif headers.get("x-amends-dead-letter-id") and identity.identity_of((properties or {}).get("user_id")) == service:
        # the consumer's own dead letter: its header is all it knew of the sender (nothing,
        # for an event it refused as unattributable), never the consumer itself
        publisher = headers.get(identity.PUBLISHER_HEADER)
    else:
        publisher = identity.publisher_of(properties, headers, service)
    if publisher:
        kept[identity.PUBLISHER_HEADER] = publisher
    return kept


def _drain(channel, service):
    """Every dead letter of a service, taken but not acked: closing the channel returns them.
    The queue is only looked up, never declared (the topology makes it; declaring would need
    the right to configure, which the operators' own broker user does not have): a queue
    not made yet holds no letters."""
    queue = topology.dead_letter_queue(service).bind(channel)
    try:
        queue.queue_declare(passive=True)
    except NotFound:
        return []
    messages = []
    while True:
        message = queue.get(no_ack=False)
        if message is None:
            return messages
        messages.append(message)


def list_letters(amqp_uri, service):
    with Connection(amqp_uri) as connection:
        channel = connection.channel()
        letters = [describe(m.body, m.headers) for m in _drain(channel, service)]
        channel.close()  # unacked: every letter stays in the queue
    return letters


def act(amqp_uri, service, action, ids=None):
    """Replay or discard the letters with the given ids (all when ids is None); returns their summaries."""
    done = []
    with Connection(amqp_uri) as connection:
        channel = connection.channel()
        for message in _drain(channel, service):
            summary = describe(message.body, message.headers)
            if ids is not None and summary["id"] not in ids:
                continue
            if action == "replay":
                if not summary["queue"]:
                    raise SystemExit(f"dead letter {summary['id']} names no queue to replay into")
                publish_raw(amqp_uri, message.body, exchange="", routing_key=summary["queue"],
                            headers={**replay_headers(message.headers, message.properties, service),
                                     "x-amends-replayed": summary["id"]})
            log.warning("%s dead letter %s from %s (%s)", action, summary["id"], summary["queue"], summary["error"])
            message.ack()
            done.append(summary)
        channel.close()
    return done


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m shared.messaging.deadletters", description=__doc__.split("\n")[0])
    parser.add_argument("action", choices=("list", "replay", "discard"))
    parser.add_argument("service", choices=topology.SERVICES)
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--id", action="append", dest="ids", help="a dead letter's id, from `list` (repeatable)")
    which.add_argument("--all", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    amqp_uri = settings_for(args.service).amqp_uri
    if args.action == "list":
        letters = list_letters(amqp_uri, args.service)
    else:
        if not args.ids and not args.all:
            parser.error(f"{args.action} needs --id ID (repeatable) or --all")
        letters = act(amqp_uri, args.service, args.action, None if args.all else set(args.ids))
        if args.ids and len(letters) < len(set(args.ids)):
            missing = set(args.ids) - {letter["id"] for letter in letters}
            print(f"no such dead letter: {', '.join(sorted(missing))}", file=sys.stderr)
    for letter in letters:
        print(json.dumps(letter))
    print(f"{len(letters)} dead letter(s) {'listed' if args.action == 'list' else args.action + 'ed'}",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
