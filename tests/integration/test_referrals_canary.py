"""A log, bus and ledger canary: unique personal values planted in a referral must
appear in no log line, no message on any events exchange, no dead letter and no
document of any service (the ledger included) once the referral has gone through
all four services, its Victims' Code clocks have run out (the coordinating team is
emailed: nothing of anyone's in that either), and the case has been worked on and a
participant erased.

The case then goes on to a session, with a venue and notes planted too: the venue's name
and address may be kept by referrals (they are operational data) and told to those invited,
but go on no bus, into no log, ledger or other service's database; the notes are sealed.
And no message anyone is sent carries another person's details.

After the intervention, an agreed item's description, a note on it, a survey's comment and
the survey's token reach no log line, message or ledger entry either, and are stored only
sealed (the token only as its keyed hash).

Three agencies subscribe to the case's events by webhook, one under each data-sharing profile
(own_cases, area_cases, statistics), and the referring force also by an AMQP feed: nothing
planted reaches any delivery's body or headers, nor any feed message's body or properties."""
import json
import logging
import uuid
from types import SimpleNamespace
from datetime import datetime, timedelta, timezone
from email import message_from_bytes
from email.policy import default as default_policy

import bson
import pymongo
import requests
from nameko.standalone.rpc import ServiceRpcProxy
from nameko.testing.services import entrypoint_hook

from services.matching import facilitators
from services.matching.store import MatchingStore
from services.matching.service import MatchingService
from services.notifications.service import NotificationsService
from services.records.service import RecordsService
from services.referrals.deadlines import today_in_london
from services.referrals.service import ReferralsService
from services.subscriptions.service import SubscriptionsService
from shared.events import catalogue
from shared.jsonlog import JsonFormatter
from shared.messaging import topology
from shared.messaging.management import Management
from tests.conftest import MONGO_URI, management_admin_url
from tests.factories import days_ago, referral_body
from tests.integration.referrals_helpers import referrals_store
from tests.integration.test_referrals_casework import FACTORS
from tests.integration.test_subscription_feeds import agency_uri, read_all
from tests.integration.test_referrals_api import MASTER_KEY
from tests.platform import TEST_SUBSCRIPTIONS_KEY
from tests.support import Tap, issue_key, mails, provision_keys, read_dead_letters, smtp_server, wait_until
from tests.webhook_receiver import Receiver


class Capture(logging.Handler):
    """Every log record of the process, at every level, formatted as the services format it."""

    def __init__(self):
        super().__init__(level=logging.DEBUG)
        self.formatter_ = JsonFormatter("canary")
        self.lines = []

    def emit(self, record):
        self.lines.append(self.formatter_.format(record))


def canary_referral():
    tag = uuid.uuid4().hex[:12]
    values = {
        "officer": f"PC Canary{tag}", "officer_email": f"officer{tag}@police.example",
        "role_title": f"Title{tag}", "team": f"Team{tag}", "crime_reference": f"CAN/{tag}",
        "harmed": f"Harmed{tag} Person", "harmed_email": f"harmed{tag}@mail.example",
        "harmed_phone": f"+44 7700 {int(tag[:6], 16) % 900000 + 100000}",
        "harmed_address": f"{tag} Harmed Street", "safe_address": f"{tag} Safe House",
        "harmer": f"Harmer{tag} Person", "harmer_address": f"{tag} Harmer Road",
        "supporter": f"Supporter{tag} Person", "supporter_email": f"supporter{tag}@mail.example",
        "interpreter": f"Interpreter{tag} Person", "interpreter_email": f"interpreter{tag}@mail.example",
        # a session's: the venue (operational data, kept by referrals only) and the notes (sealed)
        "venue_name": f"Venue{tag} Hall", "venue_address": f"{tag} Venue Lane", "notes": f"Notes{tag} for the day",
        # after the intervention: what an agreed item says, a caseworker's note on it, a survey comment
        "description": f"Apologise{tag} to the shopkeeper", "note": f"Note{tag} read aloud",
        "comment": f"Comment{tag} thank you",
    }
    # reported a fortnight ago: both Victims' Code clocks have run out
    body = referral_body(0, crime_reference=values["crime_reference"], crime_reported_on=days_ago(14))
    body["referrer"] = {"officer_name": values["officer"], "role_title": values["role_title"],
                        "team": values["team"], "contact": {"email": values["officer_email"]}}
    body["participants"] = [
        {"role": "harmed", "name": values["harmed"], "age_band": "50_64", "language": "cy",
         "contact": {"email": values["harmed_email"], "phone": values["harmed_phone"],
                     "address": values["harmed_address"]},
         "preferred_channels": ["email", "letter"], "safe_addresses": [values["safe_address"]],
         "safe_contact_windows": [{"days": ["mon"], "start": "09:00", "end": "12:00"}]},
        {"role": "harmer", "name": values["harmer"], "age_band": "25_34",
         "contact": {"address": values["harmer_address"]}, "preferred_channels": ["letter"], "contact_safe": False},
        {"role": "supporter", "name": values["supporter"], "age_band": "35_49",
         "contact": {"email": values["supporter_email"]}},
        {"role": "interpreter", "name": values["interpreter"], "age_band": "35_49",
         "contact": {"email": values["interpreter_email"]}},
    ]
    return body, values


# whose each planted value is (None: nobody's message may carry it); the venue's may be told to anyone invited
OWNERS = {"officer": "referrer", "officer_email": "referrer", "role_title": "referrer", "team": "referrer",
          "crime_reference": None, "harmed": "harmed", "harmed_email": "harmed", "harmed_phone": "harmed",
          "harmed_address": "harmed", "safe_address": "harmed", "harmer": "harmer", "harmer_address": "harmer",
          "supporter": "supporter", "supporter_email": "supporter", "interpreter": "interpreter",
          "interpreter_email": "interpreter", "venue_name": "anyone", "venue_address": "anyone", "notes": None,
          "description": None, "note": None, "comment": None}
# planted values referrals keeps in the clear, by design: a session's venue
KEPT_BY_REFERRALS = ("venue_name", "venue_address")


def mail_text(message):
    mail = message_from_bytes(bytes(message), policy=default_policy)
    return str(mail["Subject"]) + "\n" + "\n".join(part.get_content() for part in mail.walk()
                                                   if part.get_content_maintype() == "text")


def choose_a_shuttle(url, auth, case_id, parties):
    """The case on towards a session: PREPARATION, the risk assessed with each party, the
    facilitator's safety decision (indirect only), a shuttle."""
    assert requests.post(f"{url}/v1/cases/{case_id}/transitions", json={"to": "PREPARATION"},
                         headers=auth).status_code == 200
    for party in parties:
        assessed = requests.post(f"{url}/v1/cases/{case_id}/risk-assessments", headers=auth,
                                 json={"participant_id": party, "factors": FACTORS})
        assert assessed.status_code == 201, assessed.text
    decided = requests.post(f"{url}/v1/cases/{case_id}/safety-decision", headers=auth,
                            json={"decision": "indirect_only", "reasons": ["canary"]})
    assert decided.status_code == 200, decided.text
    chosen = requests.post(f"{url}/v1/cases/{case_id}/intervention", json={"process_type": "shuttle"}, headers=auth)
    assert chosen.status_code == 200, chosen.text


def after_the_intervention(url, auth, config, case_id, harmed, harmer, values):
    """Work the case on from its intervention: an agreement with a note, closure, and the
    harmed person's survey answered with a comment. Returns the survey's token (as
    notifications would get it)."""
    today = today_in_london().isoformat()
    recorded = requests.post(f"{url}/v1/cases/{case_id}/agreement", headers=auth, json={
        "items": [{"kind": "apology", "owner_id": harmer, "due_on": today, "description": values["description"]}],
        "agreed_on": today})
    assert recorded.status_code == 201, recorded.text
    item_id = recorded.json()["agreement"]["items"][0]["item_id"]
    assert requests.post(f"{url}/v1/cases/{case_id}/agreement/items/{item_id}", headers=auth,
                         json={"status": "completed", "note": values["note"]}).status_code == 200
    assert values["description"] in requests.get(f"{url}/v1/cases/{case_id}", headers=auth).text
    assert requests.post(f"{url}/v1/cases/{case_id}/transitions", headers=auth,
                         json={"to": "CLOSED", "reason": "completed_direct"}).status_code == 200
    with ServiceRpcProxy("referrals", config) as referrals:
        link = referrals.get_contact(harmed, "survey_invitation", "notifications")["details"]["survey_link"]
    token = link.rsplit("/", 1)[1]
    answered = requests.post(f"{url}/v1/surveys/{token}", json={
        "satisfied_with_process": 5, "felt_safe": 5, "would_recommend": True, "harm_repaired": 4,
        "comments": values["comment"]})
    assert answered.status_code == 201, answered.text
    return token


# agencies subscribed under every profile: (the key's role, the agency, the agreement's regions)
PROFILES = {"own_cases": ("referrer", "test-police", ()), "area_cases": ("yot", "yot-south", ("south-wales",)),
            "statistics": ("commissioner", "commissioner-sw", ("south-wales",))}
SUBSCRIBING = {"AMENDS_SUBSCRIPTIONS_KEY": TEST_SUBSCRIPTIONS_KEY, "SUBSCRIPTIONS_ALLOW_LOCAL_HTTP": "1",
               "SUBSCRIPTIONS_REFRESH": "0.2", "SUBSCRIPTIONS_BROKER_ADMIN_URL": management_admin_url()}
FEED_AGENCY = PROFILES["own_cases"][1]
EVERYTHING = sorted({f"{t.split('.')[0]}.*" for t in catalogue.EVENT_TYPES})


def subscribe_under_every_profile(url, config, keys, receivers):
    """An agency per profile, with its agreement and a webhook subscription to every event
    type; {profile: (subscription id, the agency's auth header)}."""
    keys = dict(keys, yot=issue_key(config, "referrer", "yot-south", "yot-1", regions=("south-wales",)),
                commissioner=issue_key(config, "auditor", "commissioner-sw", "comm-1", regions=("south-wales",)))
    subscribed = {}
    for profile, (role, agency, regions) in PROFILES.items():
        shared = requests.put(f"{url}/v1/agencies/{agency}/sharing", timeout=10,
                              headers={"Authorization": f"Bearer {keys['coordinator']}"},
                              json={"profile": profile, "regions": list(regions),
                                    "agreement_reference": f"DSA/{agency}/canary"})
        assert shared.status_code == 200, shared.text
        auth = {"Authorization": f"Bearer {keys[role]}"}
        answer = requests.post(f"{url}/v1/subscriptions", headers=auth, timeout=10, json={
            "kind": "webhook", "url": receivers[profile].url, "event_types": EVERYTHING})
        assert answer.status_code == 201, answer.text
        receivers[profile].secrets.append(answer.json()["secret"])
        subscribed[profile] = (answer.json()["subscription_id"], auth)
    return subscribed


def subscribe_a_feed(url, auth):
    """The referring force's AMQP feed of every event type: (subscription id, its access)."""
    answer = requests.post(f"{url}/v1/subscriptions", headers=auth, timeout=30,
                           json={"kind": "amqp", "event_types": EVERYTHING})
    assert answer.status_code == 201, answer.text
    return answer.json()["subscription_id"], answer.json()["amqp"]


def delivered_up_to(url, subscribed, position):
    """Whether every subscription has settled the ledger up to `position`."""
    for subscription_id, auth in subscribed.values():
        answer = requests.get(f"{url}/v1/subscriptions/{subscription_id}", headers=auth, timeout=10)
        if answer.status_code != 200 or answer.json()["delivery"]["position"] < position:
            return False
    return True


def test_planted_personal_data_reaches_no_log_bus_or_ledger(run_services, amqp_uri, db_prefix, tmp_path,
                                                            monkeypatch):
    monkeypatch.setenv("AMENDS_MASTER_KEY", MASTER_KEY)
    capture = Capture()
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(capture)
    root.setLevel(logging.DEBUG)
    mail_dir = str(tmp_path / "mail")
    body, values = canary_referral()
    management = Management.from_url(management_admin_url())
    management.delete_user(f"agency.{FEED_AGENCY}")   # broker users are broker-wide: a fresh one, with its password
    try:
        with smtp_server(mail_dir) as smtp_port:
            monkeypatch.setenv("SMTP_PORT", str(smtp_port))
            with run_services(ReferralsService) as (url, config), run_services(MatchingService), \
                    run_services(NotificationsService), run_services(RecordsService) as (records_url, _), \
                    run_services(SubscriptionsService, **SUBSCRIBING) as (subscriptions_url, _), \
                    Receiver() as own_cases, Receiver() as area_cases, Receiver() as statistics:
                tap = Tap(amqp_uri, [(s, "#") for s in topology.SERVICES], name="canary-tap")
                keys = provision_keys(config)
                receivers = {"own_cases": own_cases, "area_cases": area_cases, "statistics": statistics}
                subscribed = subscribe_under_every_profile(subscriptions_url, config, keys, receivers)
                feed_id, feed = subscribe_a_feed(subscriptions_url, subscribed["own_cases"][1])
                subscribed["own_cases_feed"] = (feed_id, subscribed["own_cases"][1])
                facilitators.register(MatchingStore.open(config), {"facilitator_id": "fac-canary", "level": "advanced",
                                       "regions": ["south-wales"], "languages": ["en", "cy"], "capacity": 3,
                                       "last_active": days_ago(30)})
                auth = {"Authorization": f"Bearer {keys['coordinator']}"}
                response = requests.post(f"{url}/v1/referrals", json=body, timeout=10,
                                         headers={"Authorization": f"Bearer {keys['referrer']}",
                                                  "Idempotency-Key": "canary-1"})
                assert response.status_code == 201, response.text
                case_id = response.json()["case_id"]
                wait_until(lambda: len(mails(mail_dir)) >= 1, timeout=60)
                with referrals_store(config) as store:
                    wait_until(lambda: store.load_case(case_id).status == "ASSESSMENT", timeout=30)
                    case = store.load_case(case_id)
                harmed, harmer, supporter, interpreter = (p["party_id"] for p in case.participants)
                # the clocks run out before anyone was told (the harmed person's window is Monday
                # mornings): the coordinating team of the region is emailed
                with entrypoint_hook(run_services.containers[0], "check_deadlines") as tick:
                    tick()
                team = "rj-coordinators.south-wales@example.org"
                wait_until(lambda: len([m for m in mails(mail_dir) if m["To"] == team]) >= 4, timeout=60)
                # work the case: read it, consent, move it on, erase someone
                assert values["harmed"] in requests.get(f"{url}/v1/cases/{case_id}", headers=auth).text
                for consent in ({"participant_id": harmed, "scope": "participation", "granted": True},
                                {"participant_id": harmer, "scope": "share_item", "granted": True,
                                 "item": "apology_letter", "with_role": "harmed"}):
                    assert requests.post(f"{url}/v1/cases/{case_id}/consents", json=consent,
                                         headers=auth).status_code == 201
                assert requests.post(f"{url}/v1/cases/{case_id}/support-referrals", headers=auth, json={
                    "participant_id": harmed, "outcome": "referred", "service": "victim_support"}).status_code == 201
                assert requests.post(f"{url}/v1/cases/{case_id}/transitions", json={"to": "ALLOCATED"},
                                     headers=auth).status_code == 200
                assert requests.post(f"{url}/v1/cases/{case_id}/participants/{supporter}/erasure",
                                     headers=auth).status_code == 200
                requests.post(f"{url}/v1/referrals", json=dict(body, region="x y"), headers=auth)   # a 400
                # a session, with its venue and notes planted: the interpreter is invited by email
                choose_a_shuttle(url, auth, case_id, (harmed, harmer))
                starts = (datetime.now(timezone.utc) + timedelta(days=3)).replace(microsecond=0)
                arranged = requests.post(f"{url}/v1/cases/{case_id}/sessions", headers=auth, json={
                    "starts_at": starts.isoformat(), "duration_minutes": 60, "attendees": [harmed, interpreter],
                    "venue": {"kind": "community", "name": values["venue_name"], "address": values["venue_address"]},
                    "notes": values["notes"]})
                assert arranged.status_code == 201, arranged.text
                invited = wait_until(lambda: [m for m in mails(mail_dir) if m["To"] == values["interpreter_email"]],
                                     timeout=60)
                # then the agreement, closure and a survey answered
                token = after_the_intervention(url, auth, config, case_id, harmed, harmer, values)
                expected = {"referral.received", "case.assessed", "facilitator.assigned", "notification.sent",
                            "case.status_changed", "consent.recorded", "participant.erased", "case.deadline_due",
                            "case.deadline_missed", "support.referral_recorded", "risk.assessed",
                            "case.safety_decided", "intervention.chosen", "session.scheduled", "agreement.recorded",
                            "agreement.item_completed", "case.outcome_recorded", "case.closed",
                            "survey.requested", "survey.answered"}

                def ledger():
                    answer = requests.get(f"{records_url}/v1/cases/{case_id}/timeline", headers=auth, timeout=5)
                    entries = answer.json()["entries"] if answer.status_code == 200 else []
                    return entries if expected <= {e["type"] for e in entries} else None

                entries = wait_until(ledger, timeout=60)
                # every agency has been sent all it is entitled to of the case
                wait_until(lambda: delivered_up_to(subscriptions_url, subscribed, max(e["seq"] for e in entries)),
                           timeout=60, interval=0.5)
                feed_messages = read_all(agency_uri(SimpleNamespace(**feed)), feed["queue"])
                messages = tap.drain()
                tap.close()
                dead = [body for service in topology.SERVICES for body, _ in read_dead_letters(amqp_uri, service)]
        assert len(entries) >= 9 and len(messages) >= len(entries)
        # the referrer was emailed, the region's coordinating team alerted (two clocks, each due
        # and missed), and the interpreter invited to the session (with where it is)
        sent = mails(mail_dir)
        recipients = {values["officer_email"]: "referrer", values["harmed_email"]: "harmed",
                      values["interpreter_email"]: "interpreter", team: "coordinator"}
        assert {values["officer_email"], team, values["interpreter_email"]} <= {m["To"] for m in sent}
        assert len([m for m in sent if m["To"] == team]) == 4
        invitation = mail_text(invited[0])
        assert values["venue_name"] in invitation and values["venue_address"] in invitation
        assert values["interpreter"] in invitation
        # every message carries its recipient's own details and the venue's, never anyone else's;
        # the team's alerts carry nobody's (not even the venue's), only the case
        for message in sent:
            recipient = recipients[message["To"]]
            text = mail_text(message)
            if recipient == "coordinator":
                assert case_id in text
                assert [label for label, value in values.items() if value in text] == [], "in a coordinator's alert"
                continue
            foreign = [label for label, value in values.items()
                       if OWNERS[label] not in (recipient, "anyone") and value in text]
            assert foreign == [], (recipient, foreign)
        bus = "\n".join(str(m) for m in messages) + "\n".join(str(d) for d in dead)
        # each agency got its events of the case, signed; the canary looks at bodies and headers
        webhooks = ""
        for profile, receiver in receivers.items():
            events = receiver.unique_events()
            # verified as each arrived (the test outlasts the verifier's five minutes' tolerance)
            assert events and all(r.verified_by == tuple(receiver.secrets) for r in receiver.requests), profile
            if profile != "statistics":
                assert {e["type"] for e in events} >= {"referral.received", "case.assessed", "case.closed"}, profile
                assert {e.get("subject") for e in events} == {case_id}, profile
            webhooks += "\n".join(r.body + "\n" + repr(r.headers) for r in receiver.requests)
        # the feed: the same events of its own case, as its agency reads them
        feed_events = [json.loads(m.body) for m in feed_messages]
        assert {e["type"] for e in feed_events} >= {"referral.received", "case.assessed", "case.closed"}
        assert {e.get("subject") for e in feed_events} == {case_id}
        for message in feed_messages:
            text = message.body if isinstance(message.body, str) else message.body.decode()
            webhooks += f"\n{text}\n{message.properties!r}{message.headers!r}"
        assert token not in webhooks
        logs = "\n".join(capture.lines)
        ledger_text = str(entries)
        stored, elsewhere = [], []   # every service's documents; those of every service but referrals
        client = pymongo.MongoClient(MONGO_URI)
        for name in client.list_database_names():
            if name.startswith(db_prefix + "_"):
                for collection in client[name].list_collection_names():
                    documents = [bson.encode(doc) for doc in client[name][collection].find()]
                    stored += documents
                    if name != f"{db_prefix}_referrals":
                        elsewhere += documents
        client.close()
        assert len(capture.lines) > 50 and stored
        # a survey's token: the test's own HTTP client (urllib3) logs the paths it asks for
        service_logs = "\n".join(line for line in capture.lines if '"logger": "urllib3.' not in line)
        assert "/v1/surveys/<token>" in service_logs
        assert token not in service_logs and token not in bus and token not in ledger_text
        assert not any(token.encode() in doc for doc in stored)
        for label, value in values.items():
            assert value not in logs, f"{label} is in a log line"
            assert value not in bus, f"{label} is in a message on the bus"
            assert value not in ledger_text, f"{label} is in the ledger"
            assert value not in webhooks, f"{label} is in a webhook delivery or a feed message"
            if label in KEPT_BY_REFERRALS:
                assert not any(value.encode() in doc for doc in elsewhere), f"{label} is stored outside referrals"
                assert any(value.encode() in doc for doc in stored), f"{label}: the canary cannot see referrals keep it"
            else:
                assert not any(value.encode() in doc for doc in stored), f"{label} is stored in the clear"
    finally:
        management.delete_user(f"agency.{FEED_AGENCY}")
        root.removeHandler(capture)
        root.setLevel(old_level)
