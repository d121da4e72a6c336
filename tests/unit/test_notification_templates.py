"""The notification templates: every one in English and Welsh, text and HTML, and the
safeguarding canary: nothing of one party ever appears in what another is sent."""
import os
import re
import uuid
from types import SimpleNamespace

import pytest

from services.notifications import audience, messages
from shared.events.vocabulary import CODE

PARTICIPANT_ROLES = ("harmed", "harmer")
WELSH_MARKERS = ("Helo", "cyfiawnder adferol", "Cyfeirnod")


def facts(event_type, role, **extra):
    base = {
        "case_ref": "case-77", "event_type": event_type, "role": role,
        "decision": "unsuitable",
        "reasons": [{"code": "harmer_denies", "text": "The harmer does not accept responsibility."}],
        "outcome": "agreement_completed",
        # after the intervention: codes and days only
        "reason": "completed_direct", "from_status": "FOLLOW_UP", "reached_intervention": True,
        "kind": "restitution", "due_on": "2026-12-10", "owner_role": "harmer", "detected": "due_date_passed",
        "stage": "closure", "participant_role": "harmed",
        "assignment_role": "lead",
        "contact_led": True,
        "summary": {
            "offence_category": "burglary", "cjs_stage": "pre_sentence", "flags": ["youth", "domestic_abuse"],
            "region": "south-wales", "initiated_by": "harmed", "risk_level": "medium",
            "process_types": ["shuttle"], "co_facilitation": True,
            "participants": [
                {"role": "harmed", "age_band": "50_64", "language": "cy", "access_needs": ["wheelchair_access"]},
                {"role": "harmer", "age_band": "under_18", "language": "en", "access_needs": []}],
        },
    }
    base.update(extra)
    return base


ALL = [(e, r, lang) for e, r in audience.MESSAGES for lang in messages.LANGUAGES]


def test_every_message_has_a_template_in_english_and_welsh():
    for name in messages.template_names():
        assert os.path.isfile(os.path.join(messages.TEMPLATES, name)), name
    assert len(messages.template_names()) == 2 * len(audience.MESSAGES) == 42


@pytest.mark.parametrize("event_type,role,language", ALL)
def test_each_template_renders_a_subject_text_and_html(event_type, role, language):
    message = messages.render(event_type, role, language, facts(event_type, role), name="Alex")
    assert message.subject and "\n" not in message.subject
    assert "Alex" in message.text and "case-77" in message.text
    assert message.html.startswith("<!DOCTYPE html>") and f'<html lang="{language}">' in message.html
    assert "case-77" in message.html and "{{" not in message.text + message.html
    assert re.fullmatch(CODE.regex.pattern, message.template)
    if role in PARTICIPANT_ROLES:
        assert message.sms and len(message.sms) <= 459  # three SMS fragments at most
        assert ("reply NO" in message.sms) or ("atebwch NA" in message.sms) or event_type == "case.outcome_recorded"
    else:
        assert message.sms is None


@pytest.mark.parametrize("event_type,role", audience.MESSAGES)
def test_welsh_and_english_differ_and_each_is_in_its_language(event_type, role):
    english = messages.render(event_type, role, "en", facts(event_type, role), name="Alex")
    welsh = messages.render(event_type, role, "cy", facts(event_type, role), name="Alex")
    assert english.subject != welsh.subject and english.text != welsh.text
    assert english.text.startswith("Hello Alex,") and welsh.text.startswith("Helo Alex,")
    assert any(marker in welsh.text for marker in WELSH_MARKERS)
    for english_only in ("Hello", "What happens next", "Reference:"):
        assert english_only not in welsh.text


@pytest.mark.parametrize("event_type,role", [p for p in audience.MESSAGES if p[1] in PARTICIPANT_ROLES])
def test_participants_are_told_it_is_their_choice_and_how_to_say_no(event_type, role):
    english = messages.render(event_type, role, "en", facts(event_type, role)).text
    welsh = messages.render(event_type, role, "cy", facts(event_type, role)).text
    assert "reply" in english.lower() and "NO" in english
    assert "atebwch" in welsh.lower() and "NA" in welsh
    if event_type not in audience.AFTERCARE:   # an offer to take part, not what follows it
        assert "your choice" in english.lower() and "eich dewis chi" in welsh.lower()
        assert "Nothing will happen without your agreement" in english


def test_the_html_part_is_escaped_and_the_text_part_is_not():
    message = messages.render("referral.received", "referrer", "en", facts("referral.received", "referrer"),
                              name="O'Brien & <script>x</script>")
    assert "<script>" not in message.html and "&lt;script&gt;" in message.html and "&amp;" in message.html
    assert "Hello O'Brien & <script>x</script>," in message.text


def test_reasons_are_given_only_when_the_case_is_unsuitable():
    unsuitable = messages.render("case.assessed", "referrer", "en", facts("case.assessed", "referrer"))
    suitable = messages.render("case.assessed", "referrer", "en", facts("case.assessed", "referrer", decision="suitable"))
    assert "The harmer does not accept responsibility." in unsuitable.text
    assert "does not accept" not in suitable.text and "finding a trained facilitator" in suitable.text


def test_the_outcome_message_says_whether_the_agreement_was_completed():
    done = messages.render("case.outcome_recorded", "harmed", "en", facts("case.outcome_recorded", "harmed"))
    not_done = messages.render("case.outcome_recorded", "harmed", "cy",
                               facts("case.outcome_recorded", "harmed", outcome="agreement_not_completed"))
    assert "has now been completed" in done.text
    assert "nad yw'r cytundeb wedi'i gwblhau'n llawn" in not_done.text and "Nid eich bai chi" in not_done.text


def test_the_facilitator_summary_has_attributes_in_the_recipients_language():
    english = messages.render("facilitator.assigned", "facilitator", "en", facts("facilitator.assigned", "facilitator"))
    welsh = messages.render("facilitator.assigned", "facilitator", "cy", facts("facilitator.assigned", "facilitator"))
    for words in ("burglary", "before sentence", "domestic abuse", "under 18", "wheelchair access", "Welsh"):
        assert words in english.text
    for words in ("byrgleriaeth", "cyn dedfrydu", "cam-drin domestig", "dan 18", "Cymraeg"):
        assert words in welsh.text


# -- the safeguarding canary ------------------------------------------------------------

def canary(label):
    return f"CANARY{label}{uuid.uuid4().hex[:8]}"


PEOPLE = ("referrer", "facilitator", "harmed", "harmer", "supporter")


def world():
    """Every person's personal details, each value a unique canary."""
    return {person: {"name": canary(f"name{person}"), "email": f"{canary(person)}@mail.example",
                     "phone": "+4477" + str(uuid.uuid4().int)[:8], "address": canary(f"addr{person}"),
                     "crime_reference": canary(f"crime{person}")}
            for person in PEOPLE}


def poisoned(people, event_type, role):
    """Legitimate facts, plus every other person's details planted wherever a careless
    template (or a careless change to facts_for) might pick them up."""
    base = facts(event_type, role)
    others = {p: d for p, d in people.items() if p != role}
    for person, details in others.items():
        base[f"{person}_name"] = details["name"]
        base[person] = details
    base["other_party"] = others.get("harmer") if role == "harmed" else others.get("harmed")
    for participant in base["summary"]["participants"]:
        participant.update(people[participant["role"]])
    base["summary"]["referrer"] = people["referrer"]
    base["reasons"] = base["reasons"] + [{"code": "x", "text": "Reason text.", "name": people["harmer"]["name"]}]
    return base


def leaked(people, role, message):
    everything = " ".join(filter(None, (message.subject, message.text, message.html, message.sms)))
    return [value for person, details in people.items() if person != role
            for value in details.values() if value in everything]


@pytest.mark.parametrize("event_type,role,language", ALL)
def test_canary_no_template_shows_anyone_elses_details(event_type, role, language):
    people = world()
    message = messages.render(event_type, role, language, poisoned(people, event_type, role), name=people[role]["name"])
    assert leaked(people, role, message) == []
    # the canary can see a leak: the recipient's own name is there
    assert people[role]["name"] in message.text


@pytest.mark.parametrize("event_type,role", audience.MESSAGES)
def test_canary_facts_for_keeps_only_non_personal_attributes(event_type, role):
    """Personal details planted in the event and the case directory never reach the facts."""
    people = world()
    data = {"case_id": "case-77", "decision": "unsuitable", "outcome": "agreement_completed", "role": "lead",
            "reason": "no_contact", "from_status": "INTERVENTION", "kind": "apology", "due_on": "2026-12-10",
            "owner_id": "p-2", "owner_role": "harmer", "detected": "recorded", "item_id": "agi-1",
            "agreement_id": "agr-1", "stage": "follow_up", "survey_id": "srv-1", "participant_id": "p-1",
            "participant_role": "harmed",
            "facilitator_id": "fac-1", "assignment_id": "as-1",
            "reasons": [{"code": "c", "text": "Reason text."}], "name": people["harmer"]["name"]}
    case = SimpleNamespace(
        case_id="case-77", referrer_id="ref-1",
        summary={"offence_category": "theft", "cjs_stage": "pre_charge", "flags": [], "region": "gwent",
                 "initiated_by": "harmed", "crime_reference": people["harmed"]["crime_reference"]},
        assessment={"risk_level": "low", "process_types": [], "co_facilitation": False},
        participants=[{"participant_id": "p-1", "role": "harmed", "age_band": "25_34", "language": "en",
                       "access_needs": [], **people["harmed"]},
                      {"participant_id": "p-2", "role": "harmer", "age_band": "35_49", "language": "cy",
                       "access_needs": [], **people["harmer"]}])
    notice = audience.Notice(event_type, role, "someone", "purpose")
    found = messages.facts_for(notice, {"type": event_type, "data": data}, case)
    flat = repr(found)
    assert [v for details in people.values() for v in details.values() if v in flat] == []
    for language in messages.LANGUAGES:
        message = messages.render(event_type, role, language, found, name=people[role]["name"])
        assert leaked(people, role, message) == []


@pytest.mark.parametrize("language", messages.LANGUAGES)
def test_an_offer_says_when_contact_is_the_facilitators_to_lead(language):
    led = messages.render("facilitator.assigned", "facilitator", language, facts("facilitator.assigned", "facilitator"))
    plain = messages.render("facilitator.assigned", "facilitator", language,
                            facts("facilitator.assigned", "facilitator", contact_led=False))
    marker = "Amends will not write to the parties" if language == "en" else "ni fydd Amends yn ysgrifennu at y partïon"
    assert marker in led.text and marker in led.html
    assert marker not in plain.text and marker not in plain.html
