"""The rules of a subscription (its requests, event types, URL, secrets), the backoff, and
the shape of what a subscriber receives: pure, no I/O."""
import base64
import json
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, strategies as st
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from services.subscriptions import cloudevents, subscription as rules
from services.subscriptions.backoff import Backoff
from services.subscriptions.feed import Entry
from services.subscriptions.subscription import InvalidSubscription, Secret, Subscription
from services.subscriptions.webhooks import signature
from shared.events import catalogue
from shared.security.api_keys import Principal
from tests.subscriptions_standin import CaseFacts

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=timezone.utc)
REFERRER = Principal(role="referrer", agency="police-a", key_id="k1", subject="ref-1", regions=frozenset({"gwent"}))


def errors(body, allow_local_http=False):
    with pytest.raises(InvalidSubscription) as refused:
        rules.read_create(body, allow_local_http)
    return refused.value.errors


# --- event types ------------------------------------------------------------------------------

def test_a_pattern_is_an_exact_catalogue_type_or_a_prefix_of_some():
    assert rules.pattern_problem("case.*") is None
    assert rules.pattern_problem("case.closed") is None
    assert "no event type" in rules.pattern_problem("case.opened")
    assert "matches no event type" in rules.pattern_problem("cake.*")
    for bad in ("*", "case*", "*.closed", "case.*.*", ".*", ""):
        assert rules.pattern_problem(bad) is not None, bad
    assert rules.matches(("case.*",), "case.closed") and not rules.matches(("case.*",), "casework.x")
    assert rules.matches(("referral.received",), "referral.received")
    assert not rules.matches(("referral.received",), "referral.received.extra")
    # every pattern a test can write from the catalogue's own prefixes is accepted
    for prefix in {t.split(".")[0] for t in catalogue.EVENT_TYPES}:
        assert rules.pattern_problem(f"{prefix}.*") is None


# --- the URL rule -------------------------------------------------------------------------------

@pytest.mark.parametrize("url,local,problem", [
    ("https://police.example/amends", False, None),
    ("https://police.example:8443/amends?x=1", False, None),
    ("http://police.example/amends", True, "only to 127.0.0.1 or localhost"),
    ("http://127.0.0.1:9000/hook", False, "Use an https URL"),
    ("http://127.0.0.1:9000/hook", True, None),
    ("http://localhost:9000/hook", True, None),
    ("http://127.0.0.2/hook", True, "only to 127.0.0.1 or localhost"),
    ("https://user:secret@police.example/amends", False, "credentials"),
    ("https://token@police.example/amends", False, "credentials"),
    ("ftp://police.example/amends", False, "Use an https URL"),
    ("https:///nohost", False, "Use an https URL"),
    ("https://police.example/a b", False, "no spaces"),
    ("https://police.example:port/", False, "not a URL"),
    ("https://police.example/#frag", False, "fragment"),
    ("https://police.example/" + "a" * 2048, False, "at most"),
    ("", False, "Give the https URL"),
    # only public addresses, named literally or by a name whose addresses are checked on connecting
    ("https://10.0.0.5/hook", False, "public addresses"),
    ("https://192.168.1.1/hook", True, "public addresses"),
    ("https://169.254.169.254/latest/meta-data", False, "public addresses"),
    ("https://[::1]/hook", False, "public addresses"),
    ("https://[fd00::1]/hook", False, "public addresses"),
    ("https://[::ffff:10.0.0.1]/hook", False, "public addresses"),
    ("https://127.0.0.1/hook", False, "public addresses"),
    ("https://localhost/hook", False, "public addresses"),
    ("https://0.0.0.0/hook", False, "public addresses"),
    ("https://127.0.0.1:9443/hook", True, None),
    ("https://8.8.8.8/hook", False, None),
])
def test_the_url_rule(url, local, problem):
    found = rules.url_problem(url, local)
    assert (found is None) if problem is None else (problem in found), found


# --- requests -----------------------------------------------------------------------------------

def test_a_create_request_is_read_with_its_defaults():
    asked, start = rules.read_create({"kind": "webhook", "url": "https://p.example/h", "event_types": ["case.*"]})
    made = rules.new_subscription(asked, REFERRER, NOW, rules.start_after(start, reached=41), "whsec_x")
    assert (made.max_batch, made.regions, made.own_referrals_only, made.start_after) == (1, (), False, 41)
    assert (made.agency, made.created_by, made.kind, made.url) == ("police-a", "referrer:ref-1", "webhook",
                                                                   "https://p.example/h")
    assert made.secrets == (Secret("whsec_x"),) and made.event_types == ("case.*",)
    asked, start = rules.read_create({"kind": "webhook", "url": "https://p.example/h", "event_types": ["case.closed"],
                                      "filter": {"regions": ["gwent"], "own_referrals_only": True},
                                      "start": {"position": 0}, "max_batch": 100})
    made = rules.new_subscription(asked, REFERRER, NOW, rules.start_after(start, reached=41))
    assert (made.max_batch, made.regions, made.own_referrals_only, made.start_after) == (100, ("gwent",), True, -1)


def test_every_field_at_fault_is_named_at_once():
    found = errors({"kind": "webhook", "url": "http://p.example/h", "event_types": ["case.*", "case.opened", "case.*"],
                    "filter": {"regions": ["Gwent"], "own_referrals_only": "yes", "other": 1},
                    "start": {"position": -1}, "max_batch": 101, "colour": "blue"})
    assert set(found) == {"url", "event_types", "filter", "start", "max_batch", "colour"}
    assert set(found["filter"]) == {"regions", "own_referrals_only", "other"}
    assert any("case.opened" in m for m in found["event_types"]) and any("once" in m for m in found["event_types"])


@pytest.mark.parametrize("body,field", [
    ({"kind": "webhook", "event_types": ["case.*"]}, "url"),
    ({"kind": "email", "url": "https://p.example/h", "event_types": ["case.*"]}, "kind"),
    ({"url": "https://p.example/h", "event_types": ["case.*"]}, "kind"),
    ({"kind": "webhook", "url": "https://p.example/h"}, "event_types"),
    ({"kind": "webhook", "url": "https://p.example/h", "event_types": []}, "event_types"),
    ({"kind": "webhook", "url": "https://p.example/h", "event_types": ["x"] * 51}, "event_types"),
    ({"kind": "webhook", "url": "https://p.example/h", "event_types": ["case.*"], "max_batch": 0}, "max_batch"),
    ({"kind": "webhook", "url": "https://p.example/h", "event_types": ["case.*"], "max_batch": "2"}, "max_batch"),
    ({"kind": "webhook", "url": "https://p.example/h", "event_types": ["case.*"], "start": "then"}, "start"),
    ({"kind": "webhook", "url": "https://p.example/h", "event_types": ["case.*"], "start": {"position": True}},
     "start"),
    ({"kind": "webhook", "url": 7, "event_types": ["case.*"]}, "url"),
    ({"kind": "amqp", "url": "https://p.example/h", "event_types": ["case.*"]}, "url"),
])
def test_a_bad_create_request_names_its_field(body, field):
    assert field in errors(body)


def test_a_body_that_is_no_object_is_refused():
    assert "_schema" in errors(["kind", "webhook"])


def test_a_change_keeps_what_it_does_not_name():
    current = Subscription("sub-1", "police-a", "webhook", ("case.*",), url="https://p.example/h", max_batch=5,
                           regions=("gwent",))
    changed = rules.read_change({"event_types": ["case.closed"], "filter": {"own_referrals_only": True}}, current)
    assert changed.event_types == ("case.closed",) and changed.own_referrals_only is True
    assert changed.regions == () and changed.max_batch == 5 and changed.url == current.url
    for body, field in [({}, "_schema"), ({"kind": "amqp"}, "kind"), ({"url": "http://p.example"}, "url"),
                        ({"max_batch": 0}, "max_batch"), ({"start": "now"}, "start")]:
        with pytest.raises(InvalidSubscription) as refused:
            rules.read_change(body, current)
        assert field in refused.value.errors, body
    amqp = Subscription("sub-2", "police-a", "amqp", ("case.*",))
    with pytest.raises(InvalidSubscription) as refused:
        rules.read_change({"url": "https://p.example/h"}, amqp)
    assert "url" in refused.value.errors


# --- what a subscription wants -------------------------------------------------------------------

def test_wants_reads_the_types_and_the_filter():
    event = {"type": "case.closed", "data": {"case_id": "c1"}}
    gwent_a, gwent_b = CaseFacts("police-a", "gwent"), CaseFacts("police-b", "gwent")
    plain = Subscription("s", "police-a", "webhook", ("case.*",))
    assert plain.wants(event, gwent_b) and plain.wants(event, None)
    assert not Subscription("s", "police-a", "webhook", ("referral.received",)).wants(event, gwent_a)
    by_region = Subscription("s", "police-a", "webhook", ("case.*",), regions=("dyfed-powys",))
    assert not by_region.wants(event, gwent_a) and not by_region.wants(event, None)
    own = Subscription("s", "police-a", "webhook", ("case.*",), own_referrals_only=True)
    assert own.wants(event, gwent_a) and not own.wants(event, gwent_b)
    # wanted is not enough: the agency must be entitled, and have an agreement at all
    assert not plain.receives(None, event, gwent_a, lambda *a: True)
    assert not plain.receives(object(), event, gwent_a, lambda *a: False)
    assert plain.receives(object(), event, gwent_a, lambda *a: True)


# --- secrets ------------------------------------------------------------------------------------

def test_a_secret_is_a_standard_webhooks_secret_of_32_random_bytes():
    secret = rules.new_secret()
    assert secret.startswith("whsec_") and len(base64.b64decode(secret[6:])) == 32
    assert secret != rules.new_secret()
    Webhook(secret)   # the package reads it


def test_rotation_keeps_the_old_secret_signing_until_the_overlap_ends():
    first = rules.new_secret()
    current = Subscription("s", "police-a", "webhook", ("case.*",), secrets=(Secret(first),))
    second, rotated = current.rotated(NOW, timedelta(hours=24))
    assert rotated.live_secrets(NOW) == (second, first)
    assert rotated.live_secrets(NOW + timedelta(hours=24)) == (second,)
    # rotating again shortens no overlap already running, and drops what has expired
    third, again = rotated.rotated(NOW + timedelta(hours=1), timedelta(hours=48))
    assert again.live_secrets(NOW + timedelta(hours=23)) == (third, second, first)
    assert again.live_secrets(NOW + timedelta(hours=25)) == (third, second)
    _, later = again.rotated(NOW + timedelta(days=10), timedelta(hours=1))
    assert len(later.secrets) == 2   # the expired ones are gone


def test_with_two_secrets_the_signature_header_verifies_under_either():
    old, new = rules.new_secret(), rules.new_secret()
    body = json.dumps({"id": "s.1"})
    at = datetime.now(timezone.utc)
    header = signature((new, old), "s.1", at, body)
    assert header.count("v1,") == 2 and " " in header
    headers = {"webhook-id": "s.1", "webhook-timestamp": str(int(at.timestamp())), "webhook-signature": header}
    assert Webhook(old).verify(body, headers) == {"id": "s.1"}
    assert Webhook(new).verify(body, headers) == {"id": "s.1"}
    with pytest.raises(WebhookVerificationError):
        Webhook(rules.new_secret()).verify(body, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(new).verify(body + " ", headers)


# --- backoff --------------------------------------------------------------------------------------

def test_backoff_doubles_to_its_cap_and_gives_up_after_its_window():
    backoff = Backoff(base=2, cap=60, window=3600)
    assert [backoff.ceiling(n) for n in range(1, 8)] == [2, 4, 8, 16, 32, 60, 60]
    assert backoff.delay(3, rand=lambda: 0.5) == 4.0
    assert backoff.delay(1000, rand=lambda: 1.0) == 60
    assert not backoff.exhausted(None, 10 ** 9)
    assert not backoff.exhausted(100.0, 3699.0) and backoff.exhausted(100.0, 3700.0)
    assert Backoff().window == 3 * 86400
    with pytest.raises(ValueError):
        backoff.ceiling(0)
    with pytest.raises(ValueError):
        Backoff(base=10, cap=5)


@given(st.integers(min_value=1, max_value=10_000), st.floats(min_value=0, max_value=1))
def test_a_delay_is_never_negative_nor_past_the_cap(failures, draw):
    backoff = Backoff(base=0.5, cap=30, window=100)
    assert 0 <= backoff.delay(failures, rand=lambda: draw) <= 30


# --- what a subscriber receives ---------------------------------------------------------------------

EVENT = {"specversion": "1.0", "id": "e-1", "source": "/amends/test/referrals", "type": "case.closed",
         "subject": "case-1", "time": "2026-03-02T10:00:00.000000Z", "datacontenttype": "application/json",
         "data": {"case_id": "case-1", "reason": "completed_direct"}, "region": "test"}
ENTRY = Entry(position=17, event=EVENT, leaf_hash="ab" * 32)


def test_a_delivered_cloud_event_carries_its_position_and_leaf_hash():
    delivered = cloudevents.cloud_event("sub-1", "test", ENTRY, {"case_id": "case-1"}, "own_cases", 3, b"k" * 32)
    assert delivered == {"specversion": "1.0", "id": "sub-1.17", "source": "/amends/test/subscriptions",
                         "type": "case.closed", "time": EVENT["time"], "subject": "case-1",
                         "datacontenttype": "application/json", "data": {"case_id": "case-1"},
                         "ledgerposition": 17, "leafhash": "ab" * 32, "profile": "own_cases", "profileversion": 3}


def test_a_statistic_names_no_case_no_position_and_no_exact_time():
    delivered = cloudevents.cloud_event("sub-1", "test", ENTRY, {"week": "2026-W10"}, "statistics", 3, b"k" * 32)
    assert set(delivered) == {"specversion", "id", "source", "type", "datacontenttype", "data", "profile",
                              "profileversion"}
    prefix, keyed = delivered["id"].split(".", 1)
    assert prefix == "sub-1" and len(keyed) == 32 and int(keyed, 16) >= 0   # a keyed hash, not the position
    # the same entry always gets the same id (the receiver's dedup key), under another key another
    assert delivered == cloudevents.cloud_event("sub-1", "test", ENTRY, {"week": "2026-W10"}, "statistics", 3,
                                                b"k" * 32)
    assert delivered["id"] != cloudevents.cloud_event("sub-1", "test", ENTRY, {}, "statistics", 3, b"j" * 32)["id"]


def test_one_event_is_structured_and_several_are_a_batch():
    one = cloudevents.cloud_event("s", "test", ENTRY, {}, "own_cases", 1, b"k" * 32)
    kind, text = cloudevents.body([one], 1)
    assert kind == "application/cloudevents+json" and json.loads(text) == one
    kind, text = cloudevents.body([one], 10)
    assert kind == "application/cloudevents-batch+json" and json.loads(text) == [one]
    with pytest.raises(ValueError):
        cloudevents.body([one, one], 1)
