"""The notification templates: every one in English and Welsh, text and HTML, and the
safeguarding canary: nothing of one party ever appears in what another is sent."""
import os
import re
import uuid
from types import SimpleNamespace

import pytest

from services.notifications import audience, messages, owners
from shared.events.vocabulary import CODE

# who gets the participants' messages: the parties, and (sessions) everyone attending, by one template
PARTICIPANT_ROLES = ("harmed", "harmer", "attendee")
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
        "deadline": "support_referral", "due_at": "2026-11-21T00:00:00+00:00", "last_day": "2026-11-20",
        "enhanced_rights": True, "measured_from": "referral_received", "region": "gwent",
        # a subscription's owner told it was disabled (no case: its reference is the subscription)
        "subscription_id": "sub-77", "agency": "test-police", "failing_since": None,
        "disabled_at": {"en": "Thursday 3 December 2026 at 10:00", "cy": "Dydd Iau 3 Rhagfyr 2026 am 10:00"},
        # a session's (services/notifications/sessions.py), and the venue its holder released
        "session_id": "ses-" + "5" * 32, "revision": 2, "process_type": "direct_conference",
        "starts_at": "2026-12-03T10:00:00+00:00", "when": {"en": "Thursday 3 December 2026 at 10:00",
                                                            "cy": "Dydd Iau 3 Rhagfyr 2026 am 10:00"},
        "duration_minutes": 90, "venue_kind": "community", "removed": False,
        "attendee_roles": ["harmed", "harmer", "supporter"],
        "venue": {"kind": "community", "name": "Canolfan y Gymuned", "address": "Heol y Bont, Caerdydd"},
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
    assert len(messages.template_names()) == 2 * len(audience.MESSAGES) == 62


@pytest.mark.parametrize("event_type,role,language", ALL)
def test_each_template_renders_a_subject_text_and_html(event_type, role, language):
    message = messages.render(event_type, role, language, facts(event_type, role), name="Alex")
    reference = "sub-77" if event_type in owners.EVENTS else "case-77"
    assert message.subject and "\n" not in message.subject
    assert "Alex" in message.text and reference in message.text
    assert message.html.startswith("<!DOCTYPE html>") and f'<html lang="{language}">' in message.html
    assert reference in message.html and "{{" not in message.text + message.html
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


@pytest.mark.parametrize("event_type", ["case.deadline_due", "case.deadline_missed"])
def test_a_coordinator_is_told_which_clock_when_and_what_to_do_in_either_language(event_type):
    for deadline, english_words, welsh_words in (
            ("support_referral", "support service", "wasanaeth cymorth"),
            ("victim_told_about_rj", "about restorative justice as soon as possible" if event_type.endswith("missed")
             else "told about restorative justice", "cyfiawnder adferol")):
        for measured_from in ("crime_reported", "referral_received"):
            found = facts(event_type, "coordinator", deadline=deadline, measured_from=measured_from)
            english = messages.render(event_type, "coordinator", "en", found, name="Gwent coordinators")
            welsh = messages.render(event_type, "coordinator", "cy", found, name="Cydlynwyr")
            assert "case-77" in english.subject and "case-77" in welsh.subject
            assert "Friday 20 November 2026" in english.text and "Dydd Gwener 20 Tachwedd 2026" in welsh.text
            assert english_words in english.text and welsh_words in welsh.text
            assert "What to do" in english.text and "Beth i'w wneud" in welsh.text
            assert ("missed" in english.subject) is (event_type == "case.deadline_missed")
            assert "enhanced rights" in english.text and "hawliau uwch" in welsh.text
            # a clock counted from the day received says so: the real deadline may be earlier
            assert ("may be earlier" in english.text) is (measured_from == "referral_received")
            assert ("gynharach" in welsh.text) is (measured_from == "referral_received")
            assert english.sms is None and welsh.sms is None


def test_the_last_day_of_a_clock_is_its_london_day():
    assert messages.last_day("2026-12-01T00:00:00+00:00") == "2026-11-30"   # GMT
    assert messages.last_day("2026-07-01T23:00:00+00:00") == "2026-07-01"   # BST


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


PEOPLE = ("referrer", "facilitator", "harmed", "harmer", "supporter", "coordinator", "agency")


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


def recipients_of(role):
    """Who a template's messages go to: a session's attendee template serves the parties and
    those who help them alike."""
    return ("harmed", "harmer", "supporter") if role == "attendee" else (role,)


@pytest.mark.parametrize("event_type,role,language", ALL)
def test_canary_no_template_shows_anyone_elses_details(event_type, role, language):
    for person in recipients_of(role):
        people = world()
        message = messages.render(event_type, person, language, poisoned(people, event_type, person),
                                  name=people[person]["name"])
        assert leaked(people, person, message) == []
        # the canary can see a leak: the recipient's own name is there
        assert people[person]["name"] in message.text


@pytest.mark.parametrize("event_type,role", [m for m in audience.MESSAGES if m[0] not in owners.EVENTS])
def test_canary_facts_for_keeps_only_non_personal_attributes(event_type, role):
    """Personal details planted in the event and the case directory never reach the facts."""
    people = world()
    data = {"case_id": "case-77", "decision": "unsuitable", "outcome": "agreement_completed", "role": "lead",
            "facilitator_id": "fac-1", "assignment_id": "as-1", "deadline": "victim_told_about_rj",
            "due_at": "2026-12-01T00:00:00+00:00", "enhanced_rights": False, "measured_from": "crime_reported",
            "reasons": [{"code": "c", "text": "Reason text."}], "name": people["harmer"]["name"],
            # a session event's (a cancellation's reason is a code, as a closure's below)
            "session_id": "ses-1", "revision": 1, "process_type": "shuttle", "starts_at": "2026-12-03T10:00:00+00:00",
            "duration_minutes": 60, "venue_kind": "prison", "attendee_ids": ["p-1"], "facilitator_led": False,
            "facilitator_ids": ["fac-1"], "removed_attendee_ids": ["p-2"],
            "venue": {"name": people["harmed"]["address"], "address": people["harmer"]["address"]},
            # after the intervention
            "reason": "no_contact", "from_status": "INTERVENTION", "kind": "apology", "due_on": "2026-12-10",
            "owner_id": "p-2", "owner_role": "harmer", "detected": "recorded", "item_id": "agi-1",
            "agreement_id": "agr-1", "stage": "follow_up", "survey_id": "srv-1", "participant_id": "p-1",
            "participant_role": "harmed"}
    case = SimpleNamespace(
        case_id="case-77", referrer_id="ref-1", assignments={},
        summary={"offence_category": "theft", "cjs_stage": "pre_charge", "flags": [], "region": "gwent",
                 "initiated_by": "harmed", "crime_reference": people["harmed"]["crime_reference"]},
        assessment={"risk_level": "low", "process_types": [], "co_facilitation": False},
        participants=[{"participant_id": "p-1", "role": "harmed", "age_band": "25_34", "language": "en",
                       "access_needs": [], **people["harmed"]},
                      {"participant_id": "p-2", "role": "harmer", "age_band": "35_49", "language": "cy",
                       "access_needs": [], **people["harmer"]}])
    case.participant = lambda pid: next((p for p in case.participants if p["participant_id"] == pid), None)
    for person in recipients_of(role):
        notice = audience.Notice(event_type, person, "someone", "purpose")
        found = messages.facts_for(notice, {"type": event_type, "data": data}, case)
        flat = repr(found)
        assert [v for details in people.values() for v in details.values() if v in flat] == []
        for language in messages.LANGUAGES:
            message = messages.render(event_type, person, language, found, name=people[person]["name"])
            assert leaked(people, person, message) == []


@pytest.mark.parametrize("language", messages.LANGUAGES)
def test_an_offer_says_when_contact_is_the_facilitators_to_lead(language):
    led = messages.render("facilitator.assigned", "facilitator", language, facts("facilitator.assigned", "facilitator"))
    plain = messages.render("facilitator.assigned", "facilitator", language,
                            facts("facilitator.assigned", "facilitator", contact_led=False))
    marker = "Amends will not write to the parties" if language == "en" else "ni fydd Amends yn ysgrifennu at y partïon"
    assert marker in led.text and marker in led.html
    assert marker not in plain.text and marker not in plain.html
