"""One case from referral to closure and its survey, through the HTTP APIs, with the four
services running as processes: preparation, a letter exchange, an agreement with one item
completed and one missed, closure, and the harmed person's satisfaction survey. What each
step must have caused is read back from the ledger, the case and the mailbox."""
import json
from collections import Counter

import requests
from kombu import Connection

from scripts.journey import WORDS, Journey, survey_token_in
from services.matching import facilitators
from services.matching.store import MatchingStore
from shared.messaging import national
from tests.factories import days_ago, referral_body
from tests.support import ids_in, mails, provision_keys, strings_in, wait_until

HARMED_EMAIL = "mair@mail.example"   # sample 4's harmed person: Welsh, by email
REFERRER_EMAIL = "huw.thomas@probation.example"


def test_a_case_goes_from_referral_to_closure_and_its_survey(platform):
    config, ports, mail_dir = platform
    keys = provision_keys(config, facilitator="fac-e2e")
    store = MatchingStore.open(config)
    facilitators.register(store, {"facilitator_id": "fac-e2e", "level": "advanced", "regions": ["south-wales"],
                                  "languages": ["en", "cy"], "capacity": 2, "last_active": days_ago(30)})
    urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    referred = requests.post(f"{urls['referrals']}/v1/referrals", json=referral_body(4),
                             headers={"Authorization": f"Bearer {keys['referrer']}"}, timeout=10)
    assert referred.status_code == 201, referred.text
    case_id = referred.json()["case_id"]

    journey = Journey(urls, keys, "fac-e2e")
    done = journey.take_to_closure(case_id, lambda _: survey_token_in(mails(mail_dir), HARMED_EMAIL))
    assert len(journey.said) == 10

    coordinator = {"Authorization": f"Bearer {keys['coordinator']}"}
    case = requests.get(f"{urls['referrals']}/v1/cases/{case_id}", headers=coordinator, timeout=10).json()
    assert case["status"] == "CLOSED" and case["closure"]["reason"] == "partial"
    assert [h["to_status"] for h in case["history"]][-5:] == [
        "PREPARATION", "INTERVENTION", "AGREEMENT_MONITORING", "FOLLOW_UP", "CLOSED"]
    assert case["safety"]["decision"] == "indirect_only"
    assert case["deadline"]["state"] in ("met", "met_late") and case["support_referral"]["state"] in (
        "met", "met_late")
    assert sorted(i["status"] for i in case["agreement"]["items"]) == ["completed", "missed"]

    def ledger():
        answer = requests.get(f"{urls['records']}/v1/cases/{case_id}/timeline", headers=coordinator, timeout=10)
        entries = answer.json()["entries"] if answer.status_code == 200 else []
        return entries if "survey.answered" in [e["type"] for e in entries] else None

    entries = wait_until(ledger, timeout=60)
    types = [e["type"] for e in entries]
    in_order = ["referral.received", "assignment.accepted", "preparation.contact_recorded", "risk.assessed",
                "case.safety_decided", "intervention.chosen", "voice.item_released", "agreement.recorded",
                "agreement.item_completed", "agreement.item_missed", "case.outcome_recorded", "case.closed",
                "survey.requested", "survey.answered"]
    assert [types.index(t) for t in in_order] == sorted(types.index(t) for t in in_order), types
    assert types.count("voice.item_released") == 4 and types.count("risk.assessed") == 2
    outcome = entries[types.index("case.outcome_recorded")]["data"]
    assert outcome["outcome"] == "agreement_not_completed"
    answered = entries[types.index("survey.answered")]["data"]
    assert answered["stage"] == "closure" and answered["participant_role"] == "harmed"
    # nothing the parties wrote, nor any survey token, went into the ledger
    ledger_text = str(entries)
    assert not [words for words in WORDS.values() if words in ledger_text]

    # the harmed person heard, in Welsh, that the intervention ended and was asked for the survey;
    # the referrer was told the outcome
    def told():
        found = mails(mail_dir)
        to_harmed = [m for m in found if m["To"] == HARMED_EMAIL]
        to_referrer = [m for m in found if m["To"] == REFERRER_EMAIL]
        return (to_harmed, to_referrer) if len(to_harmed) >= 3 and len(to_referrer) >= 5 else None

    to_harmed, to_referrer = wait_until(told, timeout=60)
    assert {m["Content-Language"] for m in to_harmed} == {"cy"}
    templates = {m["X-Amends-Template"] for m in to_harmed}
    assert {"harmed.case_closed", "harmed.survey_requested"} <= templates, templates
    assert "referrer.case_outcome_recorded" in {m["X-Amends-Template"] for m in to_referrer}
    everything = "\n".join(str(m) for m in mails(mail_dir))
    assert not [words for words in WORDS.values() if words in everything]
    verified = requests.get(f"{urls['records']}/v1/ledger/verify", headers=coordinator, timeout=60).json()
    assert verified["valid"] is True
    assert done["harmed"] != done["harmer"]

    # the national view heard of every step, and of nothing that names the case or its people
    def statistics():
        with Connection(config["AMQP_URI"]) as connection:
            queue = national.outbound_queue().bind(connection.channel())
            while (message := queue.get(no_ack=True)) is not None:
                sent.append(message.body if isinstance(message.body, str) else message.body.decode())
        kinds = Counter(json.loads(body)["event_type"] for body in sent)
        return kinds if kinds == Counter(types) else None

    sent = []
    assert wait_until(statistics, timeout=60)
    identifiers = {case_id, done["harmed"], done["harmer"], "fac-e2e"}.union(*(ids_in(e["data"]) for e in entries))
    # what the referral said of the people (names, addresses, numbers), but not its codes
    personal = {text for text in strings_in(referral_body(4)) if len(text) >= 4} - {"south-wales", "robbery"}
    leaked = [text for text in identifiers | personal | set(WORDS.values()) if any(text in body for body in sent)]
    assert not leaked, leaked
    assert {json.loads(body)["offence_category"] for body in sent} == {referral_body(4)["offence"]["category"]}

