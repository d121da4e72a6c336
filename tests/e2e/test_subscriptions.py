"""Subscriptions end to end: every service a `nameko run` process of its own on the real broker
and database, and real webhook receivers on 127.0.0.1 (tests/webhook_receiver.py) verifying
every request with `standardwebhooks`.

What each agency receives is compared with records' own ledger (its feed, read with a national
auditor's key) put through the same profile: that is what "entitled and redacted" means, so
that is what arrives, once per position after dedup by id, in ledger order."""
import json
import time
import uuid
from types import SimpleNamespace
from urllib.parse import quote

import pytest
import requests
from amqp.exceptions import AccessRefused
from kombu import Connection

from services.matching import facilitators
from services.matching.store import MatchingStore
from services.subscriptions import profiles
from services.subscriptions.subscription import Subscription
from shared import statistics_profile
from shared.events import catalogue
from shared.messaging import topology
from shared.messaging.management import Management
from tests.conftest import AMQP_HOST, MANAGEMENT, MONGO_URI, RABBIT_AUTH, management_admin_url
from tests.factories import days_ago, referral_body
from tests.integration.test_subscription_feeds import agency_uri, read_all
from tests.platform import TEST_SUBSCRIPTIONS_KEY, Platform
from tests.support import (SERVED_REGIONS, disconnect_all, drop_databases, issue_key, mails, provision_keys,
                           smtp_server, wait_until)
from tests.webhook_receiver import Receiver, verifies

OVERLAP = 4   # seconds an old secret signs beside the new one, here
# small waits, so that retries happen within a test; a receiver that hangs is waited on for long
SETTINGS = {"SUBSCRIPTIONS_RETRY_BASE": "0.05", "SUBSCRIPTIONS_RETRY_CAP": "0.2",
            "SUBSCRIPTIONS_RETRY_WINDOW": "300", "SUBSCRIPTIONS_SECRET_OVERLAP": str(OVERLAP),
            "SUBSCRIPTIONS_TIMEOUT": "60", "SUBSCRIPTIONS_REFRESH": "0.2",
            # agencies' AMQP feeds are made on the shared broker (the Platform hands it to subscriptions alone)
            "SUBSCRIPTIONS_BROKER_ADMIN_URL": management_admin_url(),
            # the tests read the whole ledger often
            "AMENDS_RATE_LIMIT": "100000", "AMENDS_RATE_BURST": "10000"}
EVERYTHING = sorted({f"{t.split('.')[0]}.*" for t in catalogue.EVENT_TYPES})
PERSONAL = ("Sian Jones", "sian.jones@mail.example", "Liam Evans", "+44 7700 900123", "Dafydd",
            "dafydd.morgan@police.example", "SWP/26/104455")
KEY = statistics_profile.key_from_text(TEST_SUBSCRIPTIONS_KEY)
# the contact notifications tells when one of test-police's subscriptions is disabled
OWNER_EMAIL = "rj-data-sharing@test-police.example.org"
AGENCIES = f"agencies:\n  test-police:\n    name: Data-sharing lead\n    email: {OWNER_EMAIL}\n    language: en\n"


class Stack:
    def __init__(self, config, platform, keys):
        self.config, self.platform, self.keys = config, platform, keys
        self.url = {name: platform.url(name) for name in platform.ports}

    def auth(self, key):
        return {"Authorization": f"Bearer {self.keys.get(key, key)}"}

    def subscribe(self, key, url, **body):
        answer = requests.post(f"{self.url['subscriptions']}/v1/subscriptions", headers=self.auth(key), timeout=10,
                               json={"kind": "webhook", "url": url, "event_types": EVERYTHING, **body})
        assert answer.status_code == 201, answer.text
        return answer.json()["subscription_id"], answer.json()["secret"]

    def share(self, agency, profile, regions=(), reference=None):
        answer = requests.put(f"{self.url['subscriptions']}/v1/agencies/{agency}/sharing", headers=self.auth("coordinator"),
                              json={"profile": profile, "regions": list(regions),
                                    "agreement_reference": reference or f"DSA/{agency}/{uuid.uuid4().hex[:6]}"},
                              timeout=10)
        assert answer.status_code == 200, answer.text
        return answer.json()["current"]

    def refer(self, key="referrer", index=0, **changes):
        answer = requests.post(f"{self.url['referrals']}/v1/referrals", json=referral_body(index, **changes),
                               headers=self.auth(key), timeout=10)
        assert answer.status_code == 201, answer.text
        return answer.json()["case_id"]

    def ledger(self):
        """Every entry in records' tree, in order."""
        items, after = [], -1
        while True:
            page = requests.get(f"{self.url['records']}/v1/ledger/entries", headers=self.auth("auditor"),
                                params={"after": after, "limit": 1000}, timeout=30).json()
            items += page["items"]
            if not page["items"]:
                return items
            after = page["next_after"]

    def case_types(self, case_id, ledger=None):
        return [e["event"]["type"] for e in ledger or self.ledger() if e["event"].get("subject") == case_id]

    def subscription(self, key, subscription_id):
        return requests.get(f"{self.url['subscriptions']}/v1/subscriptions/{subscription_id}", headers=self.auth(key),
                            timeout=10)


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """One platform for the module (starting it is the slow part): a vhost and databases of
    its own, the services as processes, a registered facilitator, and keys."""
    vhost, prefix = f"test-{uuid.uuid4().hex[:10]}", f"t{uuid.uuid4().hex[:10]}"
    requests.put(f"{MANAGEMENT}/api/vhosts/{vhost}", auth=RABBIT_AUTH, timeout=10).raise_for_status()
    requests.put(f"{MANAGEMENT}/api/permissions/{vhost}/{RABBIT_AUTH[0]}", auth=RABBIT_AUTH, timeout=10,
                 json={"configure": ".*", "write": ".*", "read": ".*"}).raise_for_status()
    user, password = RABBIT_AUTH
    config = {"AMQP_URI": f"amqp://{quote(user, safe='')}:{quote(password, safe='')}@{AMQP_HOST}/{vhost}",
              "MONGO_URI": MONGO_URI, "AMENDS_DB_PREFIX": prefix, "AMENDS_REGION": "test",
              "AMENDS_REGIONS": SERVED_REGIONS}
    topology.declare(config["AMQP_URI"], (0.2, 0.4))
    base = tmp_path_factory.mktemp("subscriptions")
    (base / "agencies.yaml").write_text(AGENCIES)
    try:
        with smtp_server(str(base / "mail")) as smtp_port:
            platform = Platform(config["AMQP_URI"], MONGO_URI, prefix, smtp_port, str(base / "logs"),
                                extra_env=dict(SETTINGS, NOTIFICATIONS_AGENCY_CONTACTS=str(base / "agencies.yaml")))
            try:
                platform.start()
                keys = provision_keys(config, facilitator="fac-sub")
                keys["yot"] = issue_key(config, "referrer", "yot-south", "yot-1", regions=("south-wales",))
                keys["commissioner"] = issue_key(config, "auditor", "commissioner-sw", "comm-1",
                                                 regions=("south-wales",))
                facilitators.register(MatchingStore.open(config), {
                    "facilitator_id": "fac-sub", "level": "advanced", "regions": ["south-wales", "gwent"],
                    "languages": ["en", "cy"], "capacity": 50, "last_active": days_ago(30)})
                stack = Stack(config, platform, keys)
                stack.mail_dir = str(base / "mail")
                yield stack
            finally:
                platform.stop()
                disconnect_all()
    finally:
        requests.delete(f"{MANAGEMENT}/api/vhosts/{vhost}", auth=RABBIT_AUTH, timeout=10)
        drop_databases(MONGO_URI, prefix)


def expected(ledger, subscription, agreement):
    """What `subscription` must receive of `ledger` (records' feed items) under `agreement`,
    as (id, type, data, ledger position or None), in ledger order."""
    facts_of, found = {}, []
    for item in ledger:
        event = item["event"]
        case_id = profiles.case_of(event)
        facts = profiles.follow_case(facts_of.get(case_id), event) if case_id else None
        if case_id:
            facts_of[case_id] = facts
        if not subscription.receives(agreement, event, facts, profiles.entitled):
            continue
        data = profiles.redact(agreement.profile, event, facts, KEY)
        if data is None:
            continue
        statistics = agreement.profile == "statistics"
        found.append((f"{subscription.subscription_id}."
                      + (statistics_profile.statistic_id(KEY, event["id"]) if statistics else str(item["seq"])),
                      event["type"], data, None if statistics else item["seq"]))
    return found


def assessed(stack, *case_ids):
    """Whether matching has assessed each case (the ledger then holds the case's first steps)."""
    ledger = stack.ledger()
    return all({"case.assessed", "case.needs_review"} & set(stack.case_types(c, ledger)) for c in case_ids)


def new_case(stack, sub_id, index, agency="test-police"):
    """Refer a case and wait until it is assessed; (its id, where its entries begin in the ledger,
    and what `sub_id` must receive from there on)."""
    case_id = stack.refer("referrer", index)
    wait_until(lambda: assessed(stack, case_id), timeout=90, interval=0.5)
    ledger = stack.ledger()
    start = min(i["seq"] for i in ledger if i["event"].get("subject") == case_id)
    wanted = [w for w in expected(ledger, as_subscription(sub_id, agency), agreement_of(stack, agency)) if w[3] >= start]
    return case_id, start, wanted


def received(receiver):
    return [(e["id"], e["type"], e["data"], e.get("ledgerposition")) for e in receiver.unique_events()]


def agreement_of(stack, agency):
    from services.subscriptions.sharing import SharingAgreement
    current = requests.get(f"{stack.url['subscriptions']}/v1/agencies/{agency}/sharing",
                           headers=stack.auth("coordinator"), timeout=10).json()["current"]
    return SharingAgreement(agency=agency, profile=current["profile"], regions=tuple(current["regions"]),
                            agreement_reference=current["agreement_reference"], version=current["version"],
                            set_by=current["set_by"], set_at=None)


def as_subscription(subscription_id, agency, **fields):
    return Subscription(subscription_id, agency, "webhook", tuple(EVERYTHING), **fields)


def test_each_agency_receives_the_ledger_under_its_profile_and_a_replay_sends_it_again(stack):
    stack.share("test-police", "own_cases")
    stack.share("yot-south", "area_cases", ["south-wales"])
    stack.share("commissioner-sw", "statistics", ["south-wales"])
    with Receiver() as police, Receiver() as yot, Receiver() as commissioner:
        subscribers = {}
        for name, key, receiver, batch in [("test-police", "referrer", police, 1), ("yot-south", "yot", yot, 10),
                                           ("commissioner-sw", "commissioner", commissioner, 5)]:
            sub_id, secret = stack.subscribe(key, receiver.url, start={"position": 0}, max_batch=batch)
            receiver.secrets.append(secret)
            subscribers[name] = (sub_id, secret, receiver)
        own = stack.refer("referrer", 0)                            # police, south-wales
        other = stack.refer("other_agency_referrer", 1, region="south-wales")
        away = stack.refer("referrer", 2, region="gwent")         # police, outside the area agreements
        wait_until(lambda: assessed(stack, own, other, away), timeout=90, interval=0.5)
        ledger = stack.ledger()

        for agency, (sub_id, secret, receiver) in subscribers.items():
            wanted = expected(ledger, as_subscription(sub_id, agency), agreement_of(stack, agency))
            receiver.wait_for(lambda r: len(received(r)) >= len(wanted), timeout=60)
            assert received(receiver)[:len(wanted)] == wanted, agency
            assert receiver.all_verify(secret)
            bodies = " ".join(r.body for r in receiver.requests)
            for personal in PERSONAL:
                assert personal not in bodies, (agency, personal)

        police_ids = {e[0] for e in received(police)}
        subjects = {e.get("subject") for e in police.unique_events()}
        assert own in subjects and away in subjects and other not in subjects   # its own referrals only
        assert {e.get("subject") for e in yot.unique_events()} >= {own, other}
        assert away not in {e.get("subject") for e in yot.unique_events()}
        assert not any({"subject", "ledgerposition", "leafhash"} & set(e) for e in commissioner.unique_events())
        for case_id in (own, other, away):
            assert case_id not in " ".join(r.body for r in commissioner.requests)
        assert all(len(r.events) == 1 for r in police.requests)
        assert any(len(r.events) > 1 for r in yot.requests) and all(len(r.events) <= 10 for r in yot.requests)

        # a delivered event's leaf hash is the ledger's, with its inclusion proof by position
        first = police.unique_events()[0]
        proof = requests.get(f"{stack.url['records']}/v1/ledger/proof/inclusion", params={"seq": first["ledgerposition"]},
                             headers=stack.auth("referrer"), timeout=10).json()
        assert proof["leaf_hash"] == first["leafhash"] and proof["seq"] == first["ledgerposition"]

        # replay from 0: the same events again, in the same order, with the same ids
        sub_id = subscribers["test-police"][0]
        original = [e["id"] for r in police.requests for e in r.events]
        asked = requests.post(f"{stack.url['subscriptions']}/v1/subscriptions/{sub_id}/replay",
                              headers=stack.auth("referrer"), json={"from_position": 0}, timeout=10)
        assert asked.status_code == 202 and asked.json()["from_position"] == 0

        def replayed(receiver):
            ids = [e["id"] for r in receiver.requests for e in r.events]
            restart = ids.index(original[0], 1) if original[0] in ids[1:] else None
            return restart is not None and ids[restart:restart + len(original)] == original
        police.wait_for(replayed, timeout=60)
        first_seen = {}
        for event in (e for r in police.requests for e in r.events):
            assert first_seen.setdefault(event["id"], event) == event   # the same id, the same event
        assert police_ids <= set(first_seen)


def test_a_receiver_failing_ten_times_gets_every_event_once_in_order(stack):
    stack.share("test-police", "own_cases")
    with Receiver(answers=[500] * 10) as receiver:
        sub_id, secret = stack.subscribe("referrer", receiver.url)
        receiver.secrets.append(secret)
        _, start, wanted = new_case(stack, sub_id, 3)
        # (earlier tests' cases may still be sending their last events: this case's are compared)
        ours = lambda r: [e for e in received(r) if e[3] >= start]  # noqa: E731
        receiver.wait_for(lambda r: len(ours(r)) >= len(wanted), timeout=60)
        assert ours(receiver)[:len(wanted)] == wanted
        positions = [e[3] for e in received(receiver)]
        assert positions == sorted(positions) and len(set(positions)) == len(positions)
        # the first request was sent eleven times, with the same webhook-id each time
        first = [r for r in receiver.requests if r.headers["webhook-id"] == receiver.requests[0].headers["webhook-id"]]
        assert [r.status for r in first] == [500] * 10 + [204]
        assert receiver.all_verify(secret)

        def failed():   # the delivery log is written every SUBSCRIPTIONS_FLUSH seconds
            log = requests.get(f"{stack.url['subscriptions']}/v1/subscriptions/{sub_id}/deliveries",
                               params={"limit": 100}, headers=stack.auth("referrer"), timeout=10).json()["items"]
            return [a for a in log if a["result"] == "failed"] if len(log) >= len(receiver.requests) else None
        failed = wait_until(failed, timeout=10, interval=0.5)
        assert len(failed) == 10 and all(a["status_code"] == 500 and a["next_retry_at"] for a in failed)
        assert sorted(a["retry"] for a in failed) == list(range(1, 11))
        # another agency cannot see it at all
        assert stack.subscription("other_agency_referrer", sub_id).status_code == 404


def test_a_hanging_receiver_delays_no_other_subscriber(stack):
    stack.share("test-police", "own_cases")
    with Receiver(answers=[None]) as stuck, Receiver() as fine:
        stuck_id, stuck_secret = stack.subscribe("referrer", stuck.url)
        fine_id, fine_secret = stack.subscribe("referrer", fine.url)
        fine.secrets.append(fine_secret)
        _, start, wanted = new_case(stack, fine_id, 0)
        wanted = [w[3] for w in wanted]
        fine.wait_for(lambda r: [e[3] for e in received(r) if e[3] >= start][:len(wanted)] == wanted, timeout=60)
        # all of it arrived while the other subscription's first request still hangs
        assert stuck.requests == []
        assert fine.all_verify(fine_secret)
        stuck.secrets.append(stuck_secret)
        stuck.release()
        stuck.wait_for(lambda r: [e[3] for e in received(r) if e[3] >= start][:len(wanted)] == wanted, timeout=60)
        assert stuck.all_verify(stuck_secret)


def test_a_410_disables_the_subscription_and_the_ledger_records_it(stack):
    stack.share("test-police", "own_cases")
    with Receiver(answers=[410]) as receiver:
        sub_id, secret = stack.subscribe("referrer", receiver.url)
        stack.refer("referrer", 1)
        wait_until(lambda: stack.subscription("referrer", sub_id).json()["delivery"]["status"] == "disabled",
                   timeout=60)
        assert stack.subscription("referrer", sub_id).json()["delivery"]["disabled_reason"] == "gone"
        told = wait_until(lambda: [e["event"] for e in stack.ledger() if e["event"]["type"] == "subscription.disabled"
                                   and e["event"]["data"]["subscription_id"] == sub_id], timeout=30, interval=0.5)
        assert told[0]["data"] == {"subscription_id": sub_id, "agency": "test-police", "kind": "webhook",
                                   "reason": "gone"}
        assert told[0]["source"] == "/amends/test/subscriptions"
        # the agency's contact is emailed, once, saying which subscription and why
        owner = wait_until(lambda: [m for m in mails(stack.mail_dir) if sub_id in str(m["Subject"])], timeout=60)
        assert [m["To"] for m in owner] == [OWNER_EMAIL]
        text = owner[0].get_payload()[0].get_payload(decode=True).decode()
        assert "410 Gone" in text and f"DELETE /v1/subscriptions/{sub_id}" in text
        created = [e["event"] for e in stack.ledger() if e["event"]["type"] == "subscription.created"
                   and e["event"]["data"]["subscription_id"] == sub_id]
        assert len(created) == 1
        later = stack.refer("referrer", 2)
        # more events come and go: none is sent to a disabled subscription
        wait_until(lambda: "case.assessed" in stack.case_types(later), timeout=60, interval=0.5)
        assert len(receiver.requests) == 1
        assert len([m for m in mails(stack.mail_dir) if sub_id in str(m["Subject"])]) == 1


def test_a_rotated_secret_signs_beside_the_old_one_until_the_overlap_ends(stack):
    stack.share("test-police", "own_cases")
    with Receiver() as receiver:
        sub_id, old = stack.subscribe("referrer", receiver.url)

        def requests_about(case_id):
            found = [r for r in receiver.requests if any(e.get("subject") == case_id for e in r.events)]
            return found if len(found) >= 2 else None

        first = stack.refer("referrer", 0)
        before = wait_until(lambda: requests_about(first), timeout=60)
        rotated = requests.post(f"{stack.url['subscriptions']}/v1/subscriptions/{sub_id}/rotate-secret",
                                headers=stack.auth("referrer"), timeout=10)
        assert rotated.status_code == 200
        new, rotated_at = rotated.json()["secret"], time.time()
        assert new != old and new.startswith("whsec_")
        time.sleep(1)     # the dispatcher takes the new secret in
        second = stack.refer("referrer", 1)
        during = wait_until(lambda: requests_about(second), timeout=60)
        time.sleep(max(0.0, rotated_at + OVERLAP + 1 - time.time()))
        third = stack.refer("referrer", 2)
        after = wait_until(lambda: requests_about(third), timeout=60)

    assert all(verifies(old, r) and not verifies(new, r) for r in before)
    assert all(verifies(old, r) and verifies(new, r) for r in during)
    assert all(r.headers["webhook-signature"].count("v1,") == 2 for r in during)
    assert all(verifies(new, r) and not verifies(old, r) for r in after)
    assert all(r.headers["webhook-signature"].count("v1,") == 1 for r in after)


# --- AMQP feeds -------------------------------------------------------------------------------

def feed_messages(access, enough, timeout=60):
    """What the agency's queue holds, read with the credentials the API gave (consumed and acked
    as the agency would), until `enough(messages)`."""
    got, uri = [], agency_uri(SimpleNamespace(**access))

    def more():
        got.extend(read_all(uri, access["queue"]))
        return enough(got)
    wait_until(more, timeout=timeout, interval=0.2)
    return got


def test_an_agency_reads_its_redacted_events_from_its_own_amqp_feed_and_no_other_can(stack):
    run = uuid.uuid4().hex[:8]
    police, probation = f"police-{run}", f"probation-{run}"     # broker users are broker-wide: ours alone
    stack.keys[police] = issue_key(stack.config, "referrer", police, f"ref-{run}")
    stack.keys[probation] = issue_key(stack.config, "referrer", probation, f"pro-{run}")
    stack.share(police, "own_cases")
    stack.share(probation, "own_cases")
    management = Management.from_url(management_admin_url())
    url = f"{stack.url['subscriptions']}/v1/subscriptions"
    try:
        made = requests.post(url, headers=stack.auth(police), json={"kind": "amqp", "event_types": EVERYTHING},
                             timeout=30)
        assert made.status_code == 201, made.text
        sub_id, access = made.json()["subscription_id"], made.json()["amqp"]
        assert access == {"host": AMQP_HOST.split(":")[0], "port": int(AMQP_HOST.split(":")[1]),
                          "vhost": stack.config["AMQP_URI"].rsplit("/", 1)[1], "queue": f"feed.{police}.{sub_id}",
                          "username": f"agency.{police}", "password": access["password"]}
        assert len(access["password"]) >= 43 and "secret" not in made.json()
        shown = stack.subscription(police, sub_id).json()
        assert shown["kind"] == "amqp" and shown["amqp"] == {"queue": access["queue"], "username": access["username"]}
        assert access["password"] not in str(shown)
        rival = requests.post(url, headers=stack.auth(probation), json={"kind": "amqp", "event_types": EVERYTHING},
                              timeout=30).json()["amqp"]

        case_id = stack.refer(police, 4)
        wait_until(lambda: assessed(stack, case_id), timeout=90, interval=0.5)
        ledger = stack.ledger()
        wanted = expected(ledger, as_subscription(sub_id, police), agreement_of(stack, police))
        assert {w[1] for w in wanted} >= {"referral.received", "case.assessed"}
        messages = feed_messages(access, lambda got: len({m.properties["message_id"] for m in got}) >= len(wanted))
        events, seen = [], set()
        for message in messages:          # an agency drops a second copy by message_id
            event = json.loads(message.body)
            assert message.properties["message_id"] == event["id"] and message.content_type == \
                "application/cloudevents+json"
            if event["id"] not in seen:
                seen.add(event["id"])
                events.append(event)
        # in ledger order, once per position, redacted by its profile, its own case only
        assert [(e["id"], e["type"], e["data"], e["ledgerposition"]) for e in events][:len(wanted)] == wanted
        positions = [e["ledgerposition"] for e in events]
        assert positions == sorted(set(positions))
        assert {e["subject"] for e in events} == {case_id} and {e["profile"] for e in events} == {"own_cases"}
        bodies = " ".join(m.body.decode() if isinstance(m.body, bytes) else m.body for m in messages)
        for personal in PERSONAL:
            assert personal not in bodies, personal
        # every publish is in the delivery log, as a webhook's request would be
        log = requests.get(f"{url}/{sub_id}/deliveries", params={"limit": 100}, headers=stack.auth(police),
                           timeout=10).json()["items"]
        assert {p for a in log if a["result"] == "settled" for p in a["positions"]} >= {w[3] for w in wanted}

        # the other agency's credentials are refused on this one's queue (and read nothing of it)
        with Connection(agency_uri(SimpleNamespace(**rival))) as connection:
            with pytest.raises(AccessRefused) as refused:
                connection.channel().basic_get(access["queue"])
        assert refused.value.reply_code == 403 and "ACCESS_REFUSED" in str(refused.value)
        assert read_all(agency_uri(SimpleNamespace(**rival)), rival["queue"]) == []

        # a new password replaces the old one at once
        reset = requests.post(f"{url}/{sub_id}/rotate-secret", headers=stack.auth(police), timeout=30)
        assert reset.status_code == 200, reset.text
        new = reset.json()["amqp"]
        assert new == {**access, "password": new["password"]} and new["password"] != access["password"]
        with pytest.raises(AccessRefused):
            Connection(agency_uri(SimpleNamespace(**access))).connect()
        with Connection(agency_uri(SimpleNamespace(**new))) as connection:
            assert connection.channel().queue_declare(access["queue"], passive=True).queue == access["queue"]

        # deleted: its queue and (its agency's last feed) its user are gone, and the credentials with them
        assert requests.delete(f"{url}/{sub_id}", headers=stack.auth(police), timeout=30).status_code == 204
        assert management.queue(access["vhost"], access["queue"]) is None
        assert management.user(access["username"]) is None
        with pytest.raises(AccessRefused):
            Connection(agency_uri(SimpleNamespace(**new))).connect()
    finally:
        for agency in (police, probation):
            management.delete_user(f"agency.{agency}")


def test_the_demo_police_webhook_verifies_what_it_receives_reports_it_and_cleans_up(stack):
    """scripts/demo_webhook.py, as `make demo` uses it (there for dev-police, here for test-police)."""
    from scripts.demo_webhook import PoliceWebhook
    with PoliceWebhook(stack.url["subscriptions"], stack.keys, agency="test-police") as hook:
        case_id = stack.refer("referrer", 0)
        wait_until(lambda: assessed(stack, case_id), timeout=90, interval=0.5)
        assert hook.wait_for_position(max(i["seq"] for i in stack.ledger()), timeout=60)
        report, sub_id = hook.report(), hook.subscription_id
        requests_ = list(hook.receiver.requests)
    assert report[0].endswith("signatures verified: yes") and sub_id in report[0]
    lines = report[1:]
    assert len(lines) == sum(len(r.events) for r in requests_) >= 2
    assert any("referral.received" in line and case_id in line for line in lines)
    assert all(" verified yes " in line for line in lines)
    for personal in PERSONAL:
        assert personal not in "\n".join(report)
    # the subscription was deleted on the way out, and the receiver stopped
    assert stack.subscription("referrer", sub_id).status_code == 404
    with pytest.raises(requests.ConnectionError):
        requests.post(hook.receiver.url, data="{}", timeout=5)
