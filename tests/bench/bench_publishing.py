"""Events per second, in one run against the same broker, for three publishing paths:
raw kombu with publisher confirms (the baseline), nameko's stock EventDispatcher path,
and Amends' own path (validated envelope, confirmed and mandatory). Then the resident
memory of each platform process found in var/run. Prints figures; asserts nothing.

    make bench            (or: .venv/bin/python tests/bench/bench_publishing.py [N])
"""
import eventlet

eventlet.monkey_patch()

import os  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402

from kombu import Connection, Exchange, Queue  # noqa: E402
from nameko.amqp.publish import Publisher  # noqa: E402

from shared.events import new_event  # noqa: E402
from shared.messaging.publisher import EventPublisher  # noqa: E402
from tests.factories import ROOT, referral_received_data  # noqa: E402
from tests.support import admin_amqp_uri  # noqa: E402

AMQP_URI = os.environ.get("AMQP_URI") or admin_amqp_uri("127.0.0.1:5672")


def rate(label, count, send):
    start = time.perf_counter()
    for _ in range(count):
        send()
    elapsed = time.perf_counter() - start
    print(f"{label:<44} {count / elapsed:>9.0f} events/s")
    return count / elapsed


def main(count):
    run = uuid.uuid4().hex[:8]
    exchange = Exchange(f"bench-{run}.events", type="topic", durable=False, auto_delete=True)
    sink = Queue(f"bench-{run}", exchange=exchange, routing_key="#", durable=False, auto_delete=True)
    data = referral_received_data()
    event = new_event("referral.received", "c", data, source="/amends/bench/referrals", region="bench",
                      correlationid="c")
    with Connection(AMQP_URI, transport_options={"confirm_publish": True}) as connection:
        sink.bind(connection.channel()).declare()
        producer = connection.Producer()
        baseline = rate("raw kombu, confirms", count, lambda: producer.publish(
            event, exchange=exchange, routing_key="referral.received", serializer="json", delivery_mode=2))
        stock = Publisher(AMQP_URI)  # what nameko's EventDispatcher calls for each dispatch
        nameko_rate = rate("nameko EventDispatcher path", count, lambda: stock.publish(
            event, exchange=exchange, routing_key="referral.received"))
        ours = EventPublisher(AMQP_URI, "bench")
        ours._exchange = exchange
        amends = rate("amends: new_event + confirmed mandatory", count, lambda: ours.publish(new_event(
            "referral.received", "c", data, source="/amends/bench/referrals", region="bench", correlationid="c")))
        sink.bind(connection.channel()).delete()
    print(f"ratios to raw kombu: nameko {nameko_rate / baseline:.2f}, amends {amends / baseline:.2f}")
    print("\nresident memory at rest:")
    run_dir = os.path.join(ROOT, "var", "run")
    for name in ("referrals", "matching", "notifications", "records", "rabbitmq", "ferretdb", "smtp", "sms"):
        path = os.path.join(run_dir, f"{name}.pid")
        if not os.path.exists(path):
            print(f"  {name:<14} not running")
            continue
        pid = open(path).read().strip()
        total = 0
        for child in [pid] + _descendants(pid):
            try:
                for line in open(f"/proc/{child}/status"):
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
            except OSError:
                pass
        print(f"  {name:<14} {total / 1024:>8.1f} MiB")


def _descendants(pid):
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                ppid = open(f"/proc/{entry}/stat").read().rsplit(")", 1)[1].split()[1]
            except OSError:
                continue
            if ppid == pid:
                found += [entry] + _descendants(entry)
    return found


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 2000)
