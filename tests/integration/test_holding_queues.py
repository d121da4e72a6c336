"""A message held back for a retry or a wait survives a broker restart (its own RabbitMQ
node, which the test restarts while the messages are held).

The delays end while the broker is down, so on recovery every holding queue expires its
messages at once, before the quorum consumer queues have elected their leaders. Classic
holding queues dead-letter at most once and lost such messages ("leader not known.
Command is dropped"); the fault suite saw this cost a suitable case its staffing."""
import json
import uuid

import pytest
from kombu import Connection

from shared.messaging import topology
from shared.messaging.publisher import publish_raw
from tests.platform import RabbitNode
from tests.support import wait_until

HELD = 30  # messages, spread over every consumer queue


@pytest.fixture
def rabbit(tmp_path):
    node = RabbitNode(str(tmp_path))
    node.start()
    try:
        yield node
    finally:
        node.stop()


def _count(amqp_uri, queue_name):
    with Connection(amqp_uri) as connection:
        return connection.default_channel.queue_declare(queue_name, passive=True).message_count


def test_messages_held_across_a_broker_restart_come_back(rabbit):
    delay = 3.0
    topology.declare(rabbit.uri, (delay,))
    queues = [topology.consumer_queue_name(s, c) for s, c in topology.CONSUMERS]
    sent = {}
    for n in range(HELD):
        queue = queues[n % len(queues)]
        body = json.dumps({"id": uuid.uuid4().hex, "n": n})
        publish_raw(rabbit.uri, body, exchange="", routing_key=topology.retry_queue(queue, delay).name,
                    headers={"x-amends-attempt": 2})
        sent.setdefault(queue, []).append(body)
    rabbit.restart()  # stopping and starting takes longer than the delay
    expected = {queue: len(bodies) for queue, bodies in sent.items()}
    arrived = {}

    def all_back():
        arrived.update({queue: _count(rabbit.uri, queue) for queue in expected})
        return arrived == expected

    try:
        wait_until(all_back, timeout=60, interval=1)
    except AssertionError:
        pass
    assert arrived == expected, f"held messages lost in the restart: {expected} sent, {arrived} back"
