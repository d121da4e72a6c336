"""The feed follower and the dispatcher, against the in-memory store, a fake channel and a
stand-in for the profiles (tests/subscriptions_standin.py): ordering, batching, withheld
entries, retries of the same positions with backoff, 410, the retry window, replay, and a
hanging receiver holding back nobody else."""
from datetime import datetime

import eventlet
import pytest

from services.subscriptions.backoff import Backoff
from services.subscriptions.dispatcher import Dispatcher, Settings
from services.subscriptions.feed import FeedFollower
from services.subscriptions.memory_store import InMemorySubscriptionsStore
from services.subscriptions.outcome import Outcome
from services.subscriptions.subscription import Replay, Secret, Subscription, new_secret
from tests import subscriptions_standin as profiles
from tests.subscriptions_standin import Agreement

KEY = b"k" * 32
OK = Outcome(settled=True, status=204)
FAILED = Outcome(settled=False, status=500, error="answered 500")
GONE = Outcome(settled=False, gone=True, status=410)


class Clock:
    def __init__(self):
        self.now = 1_000_000.0

    def __call__(self):
        return self.now


class Channel:
    """Answers each send from its script (then 2xx), after waiting on `hold` if one is set
    for the subscription; remembers what it was sent."""

    def __init__(self):
        self.sent = []
        self.script = {}
        self.hold = {}

    def send(self, subscription, cloud_events):
        if subscription.subscription_id in self.hold:
            self.hold[subscription.subscription_id].wait()
        self.sent.append((subscription.subscription_id, [e["id"] for e in cloud_events], cloud_events))
        script = self.script.get(subscription.subscription_id) or []
        return script.pop(0) if script else OK

    def ids(self, subscription_id):
        return [ids for sub, ids, _ in self.sent if sub == subscription_id]


class Outbox:
    def __init__(self):
        self.flushed = []

    def event(self, event_type, subject, data, correlationid=None):
        return {"type": event_type, "subject": subject, "data": data}

    def flush(self, collection, doc_id, events=None):
        self.flushed.append((collection, doc_id, events))


class Ledger:
    def __init__(self):
        self.events = []

    def add(self, *events):
        self.events.extend(events)

    def read_page(self, after, limit):
        items = [{"seq": i, "leaf_hash": f"{i:064x}", "event": e} for i, e in enumerate(self.events) if i > after]
        return {"items": items[:limit], "tree_size": len(self.events)}


def referral(case, agency="police-a", region="gwent"):
    return {"id": f"{case}-r", "type": "referral.received", "time": "2026-03-02T10:00:00Z", "subject": case,
            "data": {"case_id": case, "agency": agency, "region": region, "offence_category": "theft"}}


def step(case, n, kind="case.status_changed"):
    return {"id": f"{case}-{n}", "type": kind, "time": "2026-03-02T10:00:00Z", "subject": case,
            "data": {"case_id": case, "status": f"S{n}"}}


class World:
    def __init__(self, **settings):
        self.store = InMemorySubscriptionsStore()
        self.clock = Clock()
        self.channel = Channel()
        self.outbox = Outbox()
        self.ledger = Ledger()
        self.feed = FeedFollower(self.store, profiles, page=4)
        settings = {"refresh": 0, "flush": 0, **settings}
        self.dispatcher = Dispatcher(self.store, {"webhook": self.channel}, profiles,
                                     Settings(region="test", statistic_key=KEY, **settings),
                                     clock=self.clock, rand=lambda: 1.0)
        self._version = {}

    def subscribe(self, sub_id, agency="police-a", types=("case.*", "referral.received"), **fields):
        subscription = Subscription(subscription_id=sub_id, agency=agency, kind="webhook", event_types=tuple(types),
                                    url="https://receiver.example/hook", secrets=(Secret(new_secret()),), **fields)
        self.store.add_subscription(subscription)
        return subscription

    def agree(self, agency, profile, regions=()):
        self._version[agency] = self._version.get(agency, 0) + 1
        self.store.add_agreement(Agreement(agency, profile, tuple(regions), self._version[agency]))

    def run(self, rounds=1):
        for _ in range(rounds):
            self.dispatcher.heard(self.feed.follow(self.ledger.read_page))
            self.dispatcher.round(self.outbox)
            self.dispatcher.wait()

    def cursor(self, sub_id):
        return self.dispatcher.cursors[sub_id]


def test_entries_go_in_ledger_order_and_what_is_not_sent_just_moves_the_cursor():
    world = World()
    world.agree("police-a", "own_cases")
    world.subscribe("s1")
    world.ledger.add(referral("c1"), step("c1", 1), referral("c2", agency="police-b"), step("c2", 1),
                     step("c1", 2, "notification.sent"), step("c1", 3))
    world.run(10)
    # c2 is another agency's case; the notification is withheld by the profile
    assert world.channel.ids("s1") == [["s1.0"], ["s1.1"], ["s1.5"]]
    assert world.cursor("s1").position == 5
    assert world.store.cursors["s1"].position == 5   # written
    single = world.channel.sent[1][2][0]
    assert single["data"] == {"case_id": "c1", "status": "S1"}
    assert (single["ledgerposition"], single["leafhash"], single["subject"]) == (1, f"{1:064x}", "c1")
    assert (single["profile"], single["profileversion"], single["source"]) == ("own_cases", 7,
                                                                             "/amends/test/subscriptions")
    attempts = world.store.attempts("s1", 100, 10)
    assert [(a.number, a.positions, a.result, a.retry) for a in attempts] == [
        (3, (5,), "settled", 1), (2, (1,), "settled", 1), (1, (0,), "settled", 1)]


def test_a_batch_holds_up_to_max_batch_events():
    world = World()
    world.agree("police-a", "own_cases")
    world.subscribe("s1", max_batch=3)
    world.ledger.add(referral("c1"), *[step("c1", n) for n in range(1, 7)])
    world.run(5)
    assert world.channel.ids("s1") == [["s1.0", "s1.1", "s1.2"], ["s1.3", "s1.4", "s1.5"], ["s1.6"]]


def test_a_failure_is_retried_with_the_same_positions_after_a_backoff_and_nothing_overtakes_it():
    world = World(backoff=Backoff(base=1, cap=60, window=3600))
    world.agree("police-a", "own_cases")
    world.subscribe("s1", max_batch=2)
    world.channel.script["s1"] = [FAILED, FAILED]
    world.ledger.add(referral("c1"), step("c1", 1))
    world.run()
    world.ledger.add(step("c1", 2), step("c1", 3))      # arrive while the first two wait
    world.run(3)                                         # not due yet: nothing is sent
    assert world.channel.ids("s1") == [["s1.0", "s1.1"]]
    assert world.cursor("s1").next_attempt_at == world.clock.now + 1.0   # full jitter at its ceiling
    world.clock.now += 1.0
    world.run()
    world.clock.now += 2.0                               # the second wait's ceiling: twice the first
    world.run(3)
    assert world.channel.ids("s1") == [["s1.0", "s1.1"]] * 3 + [["s1.2", "s1.3"]]
    first, retried = world.channel.sent[0][2], world.channel.sent[2][2]
    assert first == retried   # the same events: the receiver drops what it already has by id
    attempts = sorted(world.store.attempts("s1", 100, 10), key=lambda a: a.number)
    assert [(a.positions, a.retry, a.result, a.status) for a in attempts] == [
        ((0, 1), 1, "failed", 500), ((0, 1), 2, "failed", 500), ((0, 1), 3, "settled", 204),
        ((2, 3), 1, "settled", 204)]
    assert attempts[0].next_retry_at == attempts[0].at + 1.0 and attempts[1].next_retry_at == attempts[1].at + 2.0
    assert world.cursor("s1").failures == 0 and world.cursor("s1").position == 3


def test_a_410_disables_the_subscription_and_tells_its_owner():
    world = World()
    world.agree("police-a", "own_cases")
    world.subscribe("s1")
    world.channel.script["s1"] = [GONE]
    world.ledger.add(referral("c1"), step("c1", 1))
    world.run(3)
    assert world.channel.ids("s1") == [["s1.0"]]
    stored = world.store.cursors["s1"]
    assert stored.disabled == "gone" and stored.position == -1
    told = world.store.outboxes["cursors"]["s1"]
    assert [e["type"] for e in told] == ["subscription.disabled"]
    assert told[0]["data"] == {"subscription_id": "s1", "agency": "police-a", "kind": "webhook", "reason": "gone"}
    assert world.outbox.flushed == [("cursors", "s1", told)]
    # a new dispatcher (a restart) leaves it disabled
    world.dispatcher.stop(world.outbox)
    again = Dispatcher(world.store, {"webhook": world.channel}, profiles, Settings("test", KEY, refresh=0),
                       clock=world.clock)
    again.round(world.outbox)
    again.wait()
    assert again.leading and world.channel.ids("s1") == [["s1.0"]]


def test_failing_for_the_whole_retry_window_disables_the_subscription():
    world = World(backoff=Backoff(base=1, cap=4, window=20))
    world.agree("police-a", "own_cases")
    world.subscribe("s1")
    world.subscribe("s2")
    world.channel.script["s1"] = [FAILED] * 100
    world.ledger.add(referral("c1"))
    for _ in range(100):
        world.run()
        if world.cursor("s1").disabled:
            break
        world.clock.now += 1
    world.run()   # the next round writes the disable, its event and the log
    assert world.store.cursors["s1"].disabled == "retries_exhausted"
    attempts = sorted(world.store.attempts("s1", 1000, 1000), key=lambda a: a.number)
    assert attempts[-1].result == "retries_exhausted" and attempts[-1].at - attempts[0].at >= 20
    assert all(a.result == "failed" and a.positions == (0,) for a in attempts[:-1])
    # waits of 1, 2, 4, 4, ...: the cap holds
    assert [round(a.next_retry_at - a.at) for a in attempts[:5]] == [1, 2, 4, 4, 4]
    assert [e["data"]["reason"] for e in world.store.outboxes["cursors"]["s1"]] == ["retries_exhausted"]
    # the owner is told since when it failed: the first failure's time
    since = world.store.outboxes["cursors"]["s1"][0]["data"]["failing_since"]
    assert datetime.fromisoformat(since).timestamp() == attempts[0].at
    # the other subscription was never held back
    assert world.channel.ids("s2") == [["s2.0"]]


def test_a_replay_sends_again_from_the_position_asked_with_the_same_ids():
    world = World()
    world.agree("police-a", "own_cases")
    subscription = world.subscribe("s1")
    world.ledger.add(referral("c1"), step("c1", 1), step("c1", 2))
    world.run(5)
    assert world.channel.ids("s1") == [["s1.0"], ["s1.1"], ["s1.2"]]
    world.store.save_subscription(subscription.__class__(**{**subscription.__dict__, "replay": Replay(
        "rp-1", 1, None, "referrer:x")}))
    world.run(5)
    assert world.channel.ids("s1")[3:] == [["s1.1"], ["s1.2"]]
    assert world.store.cursors["s1"].replay_applied == "rp-1"
    world.run(3)   # applied once
    assert len(world.channel.ids("s1")) == 5


def test_a_new_subscription_starts_after_its_start_position():
    world = World()
    world.agree("police-a", "own_cases")
    world.ledger.add(referral("c1"), step("c1", 1), step("c1", 2))
    world.run()
    world.subscribe("s1", start_after=1)
    world.run(3)
    assert world.channel.ids("s1") == [["s1.2"]]


def test_a_hanging_receiver_holds_back_no_other_subscription():
    world = World()
    world.agree("police-a", "own_cases")
    world.subscribe("stuck")
    world.subscribe("fine")
    release = world.channel.hold["stuck"] = eventlet.event.Event()
    world.ledger.add(referral("c1"), step("c1", 1), step("c1", 2))
    for _ in range(6):   # rounds without waiting for the turns in progress, as the service runs them
        world.dispatcher.heard(world.feed.follow(world.ledger.read_page))
        world.dispatcher.round(world.outbox)
        eventlet.sleep(0.01)
    assert world.channel.ids("fine") == [["fine.0"], ["fine.1"], ["fine.2"]]
    assert world.channel.ids("stuck") == [] and "stuck" in world.dispatcher.busy
    del world.channel.hold["stuck"]
    release.send()
    world.run(4)
    assert world.channel.ids("stuck") == [["stuck.0"], ["stuck.1"], ["stuck.2"]]


def test_an_agreement_withdrawn_between_retries_stops_what_it_no_longer_covers():
    world = World(backoff=Backoff(base=1, cap=1, window=3600))
    world.agree("police-a", "own_cases")
    world.subscribe("s1")
    world.channel.script["s1"] = [FAILED]
    world.ledger.add(referral("c1"), step("c1", 1))
    world.run()
    world.agree("police-a", "none")
    world.clock.now += 5
    world.run(3)
    assert world.channel.ids("s1") == [["s1.0"]]
    assert world.cursor("s1").position == 1 and world.cursor("s1").in_flight == ()


def test_the_filter_narrows_what_the_agreement_allows():
    world = World()
    world.agree("yot-a", "area_cases", regions=("gwent", "dyfed-powys"))
    world.subscribe("everything", agency="yot-a")
    world.subscribe("dyfed", agency="yot-a", regions=("dyfed-powys",))
    world.subscribe("own", agency="yot-a", own_referrals_only=True)
    world.subscribe("closures", agency="yot-a", types=("case.closed",))
    world.ledger.add(referral("c1", agency="police-a", region="gwent"), referral("c2", agency="yot-a",
                                                                              region="dyfed-powys"),
                     referral("c3", agency="yot-a", region="north-wales"), step("c1", 1, "case.closed"))
    world.run(8)
    assert world.channel.ids("everything") == [["everything.0"], ["everything.1"], ["everything.3"]]
    assert world.channel.ids("dyfed") == [["dyfed.1"]]
    assert world.channel.ids("own") == [["own.1"]]   # c3 is theirs, but outside the agreement's regions
    assert world.channel.ids("closures") == [["closures.3"]]


def test_under_statistics_nothing_leads_back_to_the_case():
    world = World()
    world.agree("commissioner", "statistics", regions=("gwent",))
    world.subscribe("stats", agency="commissioner")
    world.ledger.add(referral("c1", agency="police-a"), step("c1", 1))
    world.run(4)
    delivered = [events[0] for _, _, events in world.channel.sent]
    assert [e["data"] for e in delivered] == [{"event_type": "referral.received", "region": "gwent"},
                                             {"event_type": "case.status_changed", "region": "gwent"}]
    for event in delivered:
        assert not {"subject", "ledgerposition", "leafhash", "time"} & set(event)
        assert event["id"].startswith("stats.") and event["id"] not in ("stats.0", "stats.1")
        assert "c1" not in str(event)
    world.store.save_subscription(world.store.subscription("stats").__class__(
        **{**world.store.subscription("stats").__dict__, "replay": Replay("rp", 0, None, "auditor:x")}))
    world.run(4)
    assert [e[2][0]["id"] for e in world.channel.sent[2:]] == [e["id"] for e in delivered]   # stable ids


def test_cursors_are_written_in_batches_and_a_restart_resumes_from_the_last_written():
    world = World(flush=1.0, sends_per_turn=1)
    world.agree("police-a", "own_cases")
    world.subscribe("s1")
    world.ledger.add(referral("c1"), *[step("c1", n) for n in range(1, 10)])
    for _ in range(10):
        world.run()
        world.clock.now += 0.25
    assert len(world.channel.ids("s1")) == 10
    assert world.store.writes <= 4            # ten moves, a few writes
    written = world.store.cursors["s1"].position
    assert written < 9                         # the last moves are not written yet
    # a crash, and a restart once its lease has lapsed, sends again what was not written: at
    # least once, never a gap
    world.clock.now += Settings("test", KEY).lease
    again = World()
    again.store, again.ledger = world.store, world.ledger
    again.feed = FeedFollower(world.store, profiles)
    again.dispatcher = Dispatcher(world.store, {"webhook": again.channel}, profiles, Settings("test", KEY, refresh=0,
                                                                                             flush=0),
                                  clock=world.clock)
    again.run(12)
    assert again.channel.ids("s1") == [[f"s1.{p}"] for p in range(written + 1, 10)]


def test_the_feed_stores_each_entry_once_with_its_case_facts():
    world = World()
    world.ledger.add(referral("c1", region="gwent"), step("c1", 1), {"id": "k", "type": "key.issued",
                                                                    "time": "2026-03-02T10:00:00Z", "subject": "k",
                                                                    "data": {}}, step("c1", 2))
    follower = FeedFollower(world.store, profiles, page=2)
    assert [e.position for e in follower.follow(world.ledger.read_page)] == [0, 1, 2, 3]
    other = FeedFollower(world.store, profiles, page=2)   # a second follower, from the same store
    assert other.follow(world.ledger.read_page) == []
    entries = world.store.entries_after(-1, 10)
    assert [e.facts for e in entries] == [{"agency": "police-a", "region": "gwent", "offence_category": "theft"}] * 2 + [
        None, {"agency": "police-a", "region": "gwent", "offence_category": "theft"}]
    assert world.store.case_facts("c1")["region"] == "gwent"
    assert world.store.highest_position() == 3


def test_a_feed_that_skips_a_position_is_refused():
    world = World()
    follower = FeedFollower(world.store, profiles)
    with pytest.raises(ValueError):
        follower.follow(lambda after, limit: {"items": [{"seq": 1, "leaf_hash": "00", "event": step("c", 1)}],
                                              "tree_size": 2})
    assert world.store.entries == {}


def test_a_retry_after_max_batch_was_lowered_sends_no_more_than_it_and_loses_nothing():
    world = World(backoff=Backoff(base=1, cap=1, window=3600))
    world.agree("police-a", "own_cases")
    subscription = world.subscribe("s1", max_batch=3)
    world.channel.script["s1"] = [FAILED]
    world.ledger.add(referral("c1"), step("c1", 1), step("c1", 2, "notification.sent"), step("c1", 3))
    world.run()
    assert world.channel.ids("s1") == [["s1.0", "s1.1", "s1.3"]]
    world.store.save_subscription(subscription.__class__(**{**subscription.__dict__, "max_batch": 1}))
    world.clock.now += 5
    world.run(4)
    assert world.channel.ids("s1")[1:] == [["s1.0"], ["s1.1"], ["s1.3"]]


def test_one_turn_sends_on_while_its_receiver_keeps_settling_and_stops_at_a_failure():
    world = World(sends_per_turn=4)
    world.agree("police-a", "own_cases")
    world.subscribe("s1")
    world.ledger.add(referral("c1"), *[step("c1", n) for n in range(1, 9)])
    world.run()
    assert world.channel.ids("s1") == [[f"s1.{p}"] for p in range(4)]   # one round, one turn, four requests
    world.channel.script["s1"] = [OK, FAILED]
    world.run()
    assert world.channel.ids("s1")[4:] == [["s1.4"], ["s1.5"]]          # the failure ends the turn
    assert world.cursor("s1").in_flight == (5,)


def test_one_process_delivers_at_a_time_and_another_takes_over_when_it_stops():
    world = World()
    world.agree("police-a", "own_cases")
    world.subscribe("s1")
    world.ledger.add(referral("c1"), step("c1", 1))
    standby_channel = Channel()
    standby = Dispatcher(world.store, {"webhook": standby_channel}, profiles, Settings("test", KEY, refresh=0, flush=0),
                         clock=world.clock)
    world.run(2)
    standby.round(world.outbox)
    standby.wait()
    assert world.channel.ids("s1") == [["s1.0"], ["s1.1"]] and standby_channel.sent == []
    assert world.dispatcher.leading and not standby.leading
    world.dispatcher.stop(world.outbox)        # lets go of the lease, its cursors written
    world.ledger.add(step("c1", 2))
    world.feed.follow(world.ledger.read_page)
    standby.round(world.outbox)
    standby.wait()
    assert standby.leading and standby_channel.ids("s1") == [["s1.2"]]
