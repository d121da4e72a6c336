"""Two processes of a service on one backlog (competing consumers, as `SCALE=` runs them;
docs/scaling.md): every event takes effect exactly once.

- notifications: referral.received and a suitable case.assessed for each case, some of
  them twice (as an outbox relay may send them), drained by two processes: every notice
  is mailed once (one message per Message-ID, the expected number in all), and one
  notification.sent per notification.
- matching: referral.received for more cases than the registry has seats, drained by two
  processes: one assessment per case, no facilitator past their capacity, every seat
  held by an offer and every offer by a seat, no case offered twice for one role.
- records: two processes on one ledger, the active one stopped half way: the standby
  takes over, and the ledger holds every event once and verifies.

Each runs the services as `nameko run` processes of a vhost and database prefix of the
test's own (tests/scaleout.py).
"""
import collections
import os
import signal
import time
from email import message_from_bytes
from email.policy import default as default_policy

import pytest

from services.matching import facilitators
from services.matching.facilitator_records import parse
from services.matching.store import MatchingStore
from services.records.store import Ledger, entry_view
from shared.config import settings_for
from shared.storage import connect
from tests.factories import days_ago
from tests.scaleout import Rig, assessed_events, cpu_seconds, referral_events
from tests.support import Tap, disconnect_all, mails, smtp_server, wait_until


@pytest.fixture
def rig(tmp_path):
    made = []

    def make(name, **options):
        made.append(Rig(name, str(tmp_path / "logs" / name), **options))
        return made[-1]

    yield make
    for one in made:
        one.close()
    disconnect_all()


def test_two_notifications_processes_send_each_notice_once(rig, tmp_path):
    cases = 25
    mail_dir = str(tmp_path / "mail")
    with smtp_server(mail_dir) as smtp_port:
        scale = rig("scale-notify", smtp_port=smtp_port)
        tap = Tap(scale.amqp_uri, [("notifications", "notification.sent")], name="scale-tap")
        referrals = referral_events(cases, "nt")
        backlog = []
        for index, (received, assessed) in enumerate(zip(referrals, assessed_events(referrals))):
            backlog += [received, assessed]
            if index % 5 == 0:
                backlog += [received, assessed]   # a copy, as a relay after a crash sends it
        scale.fill("notifications.notify", backlog)
        scale.start_holders()
        scale.start("notifications", 2)
        expected = cases * 4   # the referrer told of the referral; referrer, harmed and harmer of the assessment

        wait_until(lambda: len(mails(mail_dir)) >= expected and scale.depth("notifications.notify") == 0,
                   timeout=180, interval=1)
        time.sleep(3)   # anything sent twice would be sent by now
        sent = [message_from_bytes(bytes(m), policy=default_policy) for m in mails(mail_dir)]
        ids = collections.Counter(m["Message-ID"] for m in sent)
        assert [i for i, n in ids.items() if n > 1] == []
        assert len(sent) == expected
        announced = {}
        for event in tap.drain():
            announced.setdefault(event["data"]["notification_id"], set()).add(event["id"])
        tap.close()
        assert len(announced) == expected
        assert [n for n, events in announced.items() if len(events) > 1] == []
        logs = "".join(open(os.path.join(scale.log_dir, f)).read() for f in os.listdir(scale.log_dir))
        assert "Traceback" not in logs


def facilitator(index, capacity):
    return {"facilitator_id": f"fac-s{index}", "name": f"Facilitator {index}", "email": f"fac{index}@rj.example",
            "level": "advanced", "complex_case_trained": True, "trained_on": days_ago(400),
            "last_process_on": days_ago(30), "endorsements": [], "prison_vetted_until": None,
            "languages": ["en"], "regions": ["south-wales", "gwent", "north-wales", "dyfed-powys"],
            "capacity": capacity, "conflicts": []}


def test_two_matching_processes_assess_once_and_never_overbook(rig):
    cases, registry = 40, [facilitator(i, 3) for i in range(6)]   # 18 seats for 40 cases
    scale = rig("scale-match")
    store = MatchingStore.open(scale.config)
    store.insert_facilitators([facilitators.from_record(parse(r)) for r in registry])
    tap = Tap(scale.amqp_uri, [("matching", "case.assessed"), ("matching", "facilitator.assigned")],
              name="scale-tap")
    backlog = referral_events(cases, "mt")
    scale.fill("matching.assess", backlog + backlog[::4])   # a quarter of them twice
    scale.start("matching", 2, MATCHING_SWEEP_INTERVAL="2")

    wait_until(lambda: store.count_assessments() >= cases and scale.depth("matching.assess") == 0,
               timeout=180, interval=1)
    time.sleep(5)   # the sweeps' waitlist retries, in both processes, and any work in hand

    assert store.count_assessments() == cases
    seen = tap.drain()
    tap.close()
    assessed = collections.Counter(e["data"]["case_id"] for e in {e["id"]: e for e in seen}.values()
                                   if e["type"] == "case.assessed")
    assert set(assessed.values()) == {1} and len(assessed) == cases
    offers = collections.defaultdict(set)
    for event in seen:
        if event["type"] == "facilitator.assigned":
            offers[(event["data"]["case_id"], event["data"]["role"])].add(event["data"]["assignment_id"])
    assert [key for key, ids in offers.items() if len(ids) > 1] == []
    held = collections.Counter()
    active = set()
    for case in store.all_assignments():
        for slot in case.slots:
            if slot.state in ("offered", "accepted"):
                held[slot.facilitator_id] += 1
                active.add((slot.facilitator_id, case.case_id))
    seats = {(seat["facilitator_id"], seat["case_id"]) for seat in store.db.seats.find({})}
    assert seats == active
    assert max(held.values()) <= 3 and sum(held.values()) == len(registry) * 3   # all seats used, none twice
    assert len(offers) == sum(held.values())


def test_a_second_records_process_stands_by_and_takes_over(rig):
    events = 600
    scale = rig("scale-ledger")
    processes = scale.start("records", 2, RECORDS_BATCH_SIZE="50")
    wait_until(lambda: scale.attached("records.ledger") == 2, timeout=30, interval=0.5)
    batch = referral_events(events, "lg")
    ledger = Ledger(connect("records", settings_for("records", scale.config)))
    before = {p: cpu_seconds(p.pid) for p in processes}
    scale.fill("records.ledger", batch[: events // 2])
    wait_until(lambda: ledger.head().size >= events // 4, timeout=60, interval=0.2)
    # the one the broker gave the queue to is the one that has been working
    worked = {p: cpu_seconds(p.pid) - before[p] for p in processes}
    active, standby = sorted(processes, key=worked.get, reverse=True)
    assert worked[active] > 3 * worked[standby]   # the standby only stood by
    active.send_signal(signal.SIGTERM)   # it finishes the batch in hand; the standby takes over
    scale.fill("records.ledger", batch[events // 2:] + batch[:50])   # and some again, as a relay may
    active.wait(timeout=30)
    wait_until(lambda: ledger.head().size >= events and scale.depth("records.ledger") == 0, timeout=120,
               interval=0.5)
    time.sleep(2)
    assert ledger.head().size == events
    assert ledger.audit()["entries"] == events
    recorded = [entry_view(doc)["event"]["id"] for doc in ledger.entries_after(-1, events + 10, below=events)]
    assert sorted(recorded) == sorted(e["id"] for e in batch)
