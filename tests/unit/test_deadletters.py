import json

from shared.messaging.deadletters import describe, replay_headers


def test_our_dead_letters_are_described_from_our_headers_without_the_body():
    body = json.dumps({"id": "ev-1", "type": "referral.received", "data": {"secret": "x"}}).encode()
    summary = describe(body, {"x-amends-dead-letter-id": "abc", "x-amends-queue": "matching.assess",
                              "x-amends-error": "boom", "x-amends-attempts": 4,
                              "x-amends-original-exchange": "referrals.events",
                              "x-amends-original-routing-key": "referral.received"})
    assert summary == {"id": "abc", "queue": "matching.assess", "error": "boom", "attempts": 4,
                       "original_exchange": "referrals.events", "original_routing_key": "referral.received",
                       "event_id": "ev-1", "event_type": "referral.received", "bytes": len(body)}
    assert "secret" not in json.dumps(summary)


def test_letters_the_broker_dead_lettered_are_described_from_x_death():
    summary = describe(b"not json", {"x-first-death-queue": "records.ledger", "x-first-death-reason": "delivery_limit",
                                     "x-death": [{"queue": "records.ledger", "count": 11, "reason": "delivery_limit",
                                                  "routing-keys": ["case.closed"]}]})
    assert summary["queue"] == "records.ledger" and summary["attempts"] == 11
    assert summary["error"] == "dead-lettered by the broker: delivery_limit"
    assert summary["original_routing_key"] == "case.closed" and summary["event_id"] is None
    assert len(summary["id"]) == 12


def test_a_replay_starts_the_retry_count_afresh():
    kept = replay_headers({"x-amends-attempt": 3, "x-amends-error": "e", "x-amends-original-exchange": "x",
                           "x-death": [], "x-first-death-queue": "q"})
    assert kept == {"x-amends-original-exchange": "x"}
