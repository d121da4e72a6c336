"""A log, bus and ledger canary: unique personal values planted in a referral must
appear in no log line, no message on any events exchange, no dead letter and no
document of any service (the ledger included) once the referral has gone through
all four services and the case has been worked on and a participant erased."""
import logging
import uuid

from datetime import datetime, timezone

import bson
import pymongo
import requests
from nameko.standalone.rpc import ServiceRpcProxy

from services.matching import facilitators
from services.matching.store import MatchingStore
from services.matching.service import MatchingService
from services.notifications.service import NotificationsService
from services.records.service import RecordsService
from services.referrals.agreement import london_day
from services.referrals.service import ReferralsService
from shared.jsonlog import JsonFormatter
from shared.messaging import topology
from tests.conftest import MONGO_URI
from tests.factories import referral_body
from tests.integration.referrals_helpers import referrals_store
from tests.integration.test_referrals_api import MASTER_KEY
from tests.support import Tap, mails, provision_keys, read_dead_letters, smtp_server, wait_until


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
        # after the intervention: what an agreed item says, a caseworker's note on it, a survey comment
        "description": f"Apologise{tag} to the shopkeeper", "note": f"Note{tag} read aloud",
        "comment": f"Comment{tag} thank you",
    }
    body = referral_body(0, crime_reference=values["crime_reference"])
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
    ]
    return body, values


def after_the_intervention(url, auth, config, case_id, harmed, harmer, values):
    """Work the case on: an agreement with a note, closure, and the harmed person's survey
    answered with a comment. Returns the survey's token (as notifications would get it)."""
    today = london_day(datetime.now(timezone.utc)).isoformat()
    for status in ("PREPARATION", "INTERVENTION"):
        assert requests.post(f"{url}/v1/cases/{case_id}/transitions", json={"to": status},
                             headers=auth).status_code == 200
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
    try:
        with smtp_server(mail_dir) as smtp_port:
            monkeypatch.setenv("SMTP_PORT", str(smtp_port))
            with run_services(ReferralsService) as (url, config), run_services(MatchingService), \
                    run_services(NotificationsService), run_services(RecordsService) as (records_url, _):
                tap = Tap(amqp_uri, [(s, "#") for s in topology.SERVICES], name="canary-tap")
                keys = provision_keys(config)
                facilitators.register(MatchingStore.open(config), {"facilitator_id": "fac-canary", "level": "advanced",
                                       "regions": ["south-wales"], "languages": ["en", "cy"], "capacity": 3,
                                       "last_active": "2026-11-01"})
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
                harmed, harmer, supporter = (p["party_id"] for p in case.participants)
                # work the case: read it, consent, move it on, erase someone
                assert values["harmed"] in requests.get(f"{url}/v1/cases/{case_id}", headers=auth).text
                for consent in ({"participant_id": harmed, "scope": "participation", "granted": True},
                                {"participant_id": harmer, "scope": "share_item", "granted": True,
                                 "item": "apology_letter", "with_role": "harmed"}):
                    assert requests.post(f"{url}/v1/cases/{case_id}/consents", json=consent,
                                         headers=auth).status_code == 201
                assert requests.post(f"{url}/v1/cases/{case_id}/transitions", json={"to": "ALLOCATED"},
                                     headers=auth).status_code == 200
                assert requests.post(f"{url}/v1/cases/{case_id}/participants/{supporter}/erasure",
                                     headers=auth).status_code == 200
                requests.post(f"{url}/v1/referrals", json=dict(body, region="x y"), headers=auth)   # a 400
                token = after_the_intervention(url, auth, config, case_id, harmed, harmer, values)
                expected = {"referral.received", "case.assessed", "facilitator.assigned", "notification.sent",
                            "case.status_changed", "consent.recorded", "participant.erased", "agreement.recorded",
                            "agreement.item_completed", "case.outcome_recorded", "case.closed",
                            "survey.requested", "survey.answered"}

                def ledger():
                    answer = requests.get(f"{records_url}/v1/cases/{case_id}/timeline", headers=auth, timeout=5)
                    entries = answer.json()["entries"] if answer.status_code == 200 else []
                    return entries if expected <= {e["type"] for e in entries} else None

                entries = wait_until(ledger, timeout=60)
                messages = tap.drain()
                tap.close()
                dead = [body for service in topology.SERVICES for body, _ in read_dead_letters(amqp_uri, service)]
        assert len(entries) >= 9 and len(messages) >= len(entries)
        # the referrer was emailed: that one message is meant to carry their name
        assert mails(mail_dir)[0]["To"] == values["officer_email"]
        bus = "\n".join(str(m) for m in messages) + "\n".join(str(d) for d in dead)
        logs = "\n".join(capture.lines)
        ledger_text = str(entries)
        stored = []
        client = pymongo.MongoClient(MONGO_URI)
        for name in client.list_database_names():
            if name.startswith(db_prefix + "_"):
                for collection in client[name].list_collection_names():
                    stored += [bson.encode(doc) for doc in client[name][collection].find()]
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
            assert not any(value.encode() in doc for doc in stored), f"{label} is stored in the clear"
    finally:
        root.removeHandler(capture)
        root.setLevel(old_level)
