"""The webhook channel against real HTTP receivers on 127.0.0.1: what it sends (Standard
Webhooks headers, verified with the `standardwebhooks` package), how it reads each answer, and
that a receiver which hangs, refuses or talks for ever costs it no more than its timeout."""
import time

import eventlet
import eventlet.wsgi
import pytest

from services.subscriptions import cloudevents
from services.subscriptions.feed import Entry
from services.subscriptions.subscription import Secret, Subscription, new_secret
from services.subscriptions.webhooks import WebhookChannel
from tests.support import free_port
from tests.webhook_receiver import Receiver

EVENT = {"specversion": "1.0", "id": "e-1", "source": "/amends/test/referrals", "type": "case.closed",
         "subject": "case-1", "time": "2026-03-02T10:00:00.000000Z", "datacontenttype": "application/json",
         "data": {"case_id": "case-1", "reason": "completed_direct"}}


def events(subscription_id, *positions):
    return [cloudevents.cloud_event(subscription_id, "test", Entry(p, EVENT, "ab" * 32), {"case_id": "case-1"},
                                    "own_cases", 1, b"k" * 32) for p in positions]


def subscription(url, secret, max_batch=1):
    return Subscription("sub-w", "police-a", "webhook", ("case.*",), url=url, max_batch=max_batch,
                        secrets=(Secret(secret),))


def test_a_delivery_carries_standard_webhooks_headers_that_verify():
    secret = new_secret()
    with Receiver(secrets=[secret]) as receiver:
        channel = WebhookChannel(timeout=5, allow_loopback=True)
        outcome = channel.send(subscription(receiver.url, secret), events("sub-w", 3))
        assert (outcome.settled, outcome.status, outcome.error) == (True, 204, None)
        batch = channel.send(subscription(receiver.url, secret, max_batch=10), events("sub-w", 4, 5))
        assert batch.settled
    single, several = receiver.requests
    assert single.verified_by == (secret,) and several.verified_by == (secret,)
    assert single.headers["webhook-id"] == "sub-w.3" and several.headers["webhook-id"] == "sub-w.4"
    assert abs(int(single.headers["webhook-timestamp"]) - time.time()) < 60
    assert single.headers["webhook-signature"].startswith("v1,")
    assert single.headers["content-type"] == "application/cloudevents+json"
    assert several.headers["content-type"] == "application/cloudevents-batch+json"
    assert [e["id"] for e in single.events] == ["sub-w.3"] and [e["id"] for e in several.events] == ["sub-w.4",
                                                                                                    "sub-w.5"]
    assert single.events[0]["ledgerposition"] == 3 and single.events[0]["leafhash"] == "ab" * 32


@pytest.mark.parametrize("status,settled,gone", [(200, True, False), (202, True, False), (410, False, True),
                                                 (500, False, False), (429, False, False), (301, False, False)])
def test_each_answer_is_classified(status, settled, gone):
    secret = new_secret()
    with Receiver(secrets=[secret], answers=[status]) as receiver:
        outcome = WebhookChannel(timeout=5, allow_loopback=True).send(subscription(receiver.url, secret),
                                                                      events("sub-w", 1))
    assert (outcome.settled, outcome.gone, outcome.status) == (settled, gone, status)
    assert len(receiver.requests) == 1   # a redirect is not followed: it is a failure, retried later


def test_a_hanging_receiver_costs_no_more_than_the_timeout():
    secret = new_secret()
    with Receiver(secrets=[secret], answers=[None]) as receiver:
        outcome = WebhookChannel(timeout=0.5, allow_loopback=True).send(subscription(receiver.url, secret),
                                                                        events("sub-w", 1))
        receiver.release()
    # the channel's own deadline ended it (else it would wait on the receiver for ever)
    assert not outcome.settled and outcome.status is None and outcome.error == "no answer within 0.5s"


def test_a_receiver_on_this_machine_is_not_connected_to_unless_loopback_is_allowed():
    secret = new_secret()
    with Receiver(secrets=[secret]) as receiver:
        for url in (receiver.url, receiver.url.replace("127.0.0.1", "localhost")):
            # a name is checked by the addresses it resolves to when connecting, as a literal is
            outcome = WebhookChannel(timeout=5).send(subscription(url, secret), events("sub-w", 1))
            assert not outcome.settled and outcome.status is None
            assert outcome.error == "refused: the receiver's address is not a public one"
        assert receiver.requests == []
        allowed = WebhookChannel(timeout=5, allow_loopback=True).send(subscription(receiver.url, secret),
                                                                      events("sub-w", 1))
        assert allowed.settled and len(receiver.requests) == 1


def test_a_private_address_is_refused_before_any_connection():
    # 10.255.255.1 would hang a connection attempt: the refusal comes before one is tried
    outcome = WebhookChannel(timeout=30).send(subscription("https://10.255.255.1/hook", new_secret()),
                                              events("sub-w", 1))
    assert not outcome.settled and outcome.error == "refused: the receiver's address is not a public one"


def test_no_receiver_at_all_is_a_failure_in_our_own_words():
    outcome = WebhookChannel(timeout=2, allow_loopback=True).send(
        subscription(f"http://127.0.0.1:{free_port()}/hook", new_secret()), events("sub-w", 1))
    assert not outcome.settled and outcome.error == "could not connect"


def test_an_endless_answer_is_read_no_further_than_a_few_bytes():
    sent = {"bytes": 0}

    def endless(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        while True:       # chunked, for ever: the channel must stop reading, not wait for an end
            sent["bytes"] += 65536
            yield b"x" * 65536
            eventlet.sleep(0)

    listener = eventlet.listen(("127.0.0.1", 0))
    server = eventlet.spawn(eventlet.wsgi.server, listener, endless, log_output=False)
    try:
        url = f"http://127.0.0.1:{listener.getsockname()[1]}/hook"
        outcome = WebhookChannel(timeout=5, allow_loopback=True).send(subscription(url, new_secret()),
                                                                      events("sub-w", 1))
        # settled: it stopped reading (reading on would have run into its deadline, a failure)
        assert outcome.settled and outcome.status == 200 and outcome.error is None
    finally:
        server.kill()
        listener.close()


def test_connections_are_kept_per_receiver_and_the_least_recently_used_let_go():
    secret = new_secret()
    with Receiver(secrets=[secret]) as first, Receiver(secrets=[secret]) as second:
        channel = WebhookChannel(timeout=5, most_pools=1, allow_loopback=True)
        for position, receiver in enumerate([first, first, second, first], start=1):
            outcome = channel.send(subscription(receiver.url + "?agency=police", secret), events("sub-w", position))
            assert outcome.settled, outcome.error
            assert list(channel._pools) == [("http", "127.0.0.1", int(receiver.url.split(":")[2].split("/")[0]))]
    assert [e["ledgerposition"] for r in first.requests for e in r.events] == [1, 2, 4]
    assert [e["ledgerposition"] for r in second.requests for e in r.events] == [3]
    assert all(r.verified_by == (secret,) for r in first.requests + second.requests)
