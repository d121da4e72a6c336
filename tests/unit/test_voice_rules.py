"""The parties' voice (pure): who writes what, and when an item may go to the other party:
the gate, the author's consent to share it (by item or by kind, the latest word), a letter
read first, an author not erased."""
import re

import pytest
from marshmallow import ValidationError

from services.referrals import consents, voice
from services.referrals.cases import Case
from shared.events.vocabulary import CODE_PATTERN

HARMED, HARMER = "p-" + "1" * 32, "p-" + "2" * 32


def case(decision="indirect_only", items=(), consent_records=(), releases=(), status="PREPARATION", erased=()):
    participants = [{"party_id": HARMED, "role": "harmed", "sealed": None if HARMED in erased else "x"},
                    {"party_id": HARMER, "role": "harmer", "sealed": None if HARMER in erased else "x"}]
    return Case(case_id="c-1", status=status, agency="a", region="r", attributes={"flags": [], "offence_category":
                                                                                  "burglary"},
                referrer={"party_id": "ref-1"}, participants=participants,
                safety={"decision": decision} if decision else {}, voice_items=list(items),
                consents=list(consent_records), voice_releases=list(releases))


def item(kind="impact_statement", author=HARMED, role="harmed", item_id=None, sealed="sealed"):
    return {"item_id": item_id or voice.new_item_id(), "author_id": author, "author_role": role, "kind": kind,
            "sealed": sealed}


def consent(named, granted=True, with_role="harmer", author=HARMED):
    record, _ = consents.record_for({"participant_id": author, "scope": "share_item", "granted": granted,
                                     "item": named, "with_role": with_role, "method": "verbal"})
    return record


def test_an_item_id_is_a_consent_item_code():
    item_id = voice.new_item_id()
    assert voice.ITEM_ID.match(item_id) and re.match(CODE_PATTERN, item_id)
    assert consents.ConsentSchema().load({"participant_id": HARMED, "scope": "share_item", "granted": True,
                                          "item": item_id, "with_role": "harmer"})["item"] == item_id


def test_an_item_body_names_every_fault():
    with pytest.raises(ValidationError) as bad:
        voice.ItemSchema().load({"author_id": "someone", "kind": "poem", "in_reply_to": "item-1",
                                 "content": "x" * 20001})
    assert set(bad.value.messages) == {"author_id", "kind", "in_reply_to", "content"}
    with pytest.raises(ValidationError) as empty:
        voice.ItemSchema().load({"author_id": HARMED, "kind": "letter", "content": ""})
    assert set(empty.value.messages) == {"content"}


def test_who_writes_what_and_what_an_answer_replies_to():
    question = item("question")
    on = case(items=[question])
    harmed, harmer = on.party(HARMED), on.party(HARMER)
    assert voice.item_faults(on, harmed, {"kind": "impact_statement"}) == {}
    assert set(voice.item_faults(on, harmer, {"kind": "impact_statement"})) == {"kind"}
    assert set(voice.item_faults(on, harmed, {"kind": "apology"})) == {"kind"}
    assert set(voice.item_faults(on, None, {"kind": "letter"})) == {"author_id"}
    assert set(voice.item_faults(on, {"party_id": "p-3", "role": "supporter"}, {"kind": "letter"})) == {"author_id"}
    assert voice.item_faults(on, harmer, {"kind": "answer", "in_reply_to": question["item_id"]}) == {}
    assert set(voice.item_faults(on, harmer, {"kind": "answer"})) == {"in_reply_to"}
    assert set(voice.item_faults(on, harmer, {"kind": "message", "in_reply_to": voice.new_item_id()})) == {
        "in_reply_to"}
    statement = item("impact_statement")
    on = case(items=[statement])
    assert set(voice.item_faults(on, harmer, {"kind": "answer", "in_reply_to": statement["item_id"]})) == {
        "in_reply_to"}
    assert voice.item_faults(on, harmer, {"kind": "apology", "in_reply_to": statement["item_id"]}) == {}


def test_a_release_goes_to_the_other_party_and_a_letter_is_read_first():
    assert voice.release_faults(item(), {"to_role": "harmer", "reviewed": False}) == {}
    assert set(voice.release_faults(item(), {"to_role": "harmed", "reviewed": False})) == {"to_role"}
    letter = item("letter", author=HARMER, role="harmer")
    assert set(voice.release_faults(letter, {"to_role": "harmed", "reviewed": False})) == {"reviewed"}
    assert voice.release_faults(letter, {"to_role": "harmed", "reviewed": True}) == {}


def refused(on, it, to_role="harmer"):
    return voice.release_refused(on, it, to_role, on.party(it["author_id"]))


def test_nothing_goes_through_a_closed_gate():
    statement = item()
    granted = [consent(statement["item_id"])]
    assert refused(case(None, [statement], granted), statement) == "safety_decision_missing"
    assert refused(case("stop", [statement], granted), statement) == "safety_stop"
    supervised = case("indirect_only", [statement], granted)
    supervised.attributes = {"flags": ["domestic_abuse"], "offence_category": "violence_against_the_person"}
    assert refused(supervised, statement) == "supervision_signoff_missing"
    supervised.supervision = {"decision": "approved"}
    assert refused(supervised, statement) is None
    assert refused(case("direct", [statement], granted, status="CLOSED"), statement) == "case_closed"


def test_the_authors_latest_word_on_sharing_the_item_or_its_kind_decides():
    statement = item()
    assert refused(case(items=[statement]), statement) == "share_consent_missing"
    # consent for the other role, or for another item, is no consent for this one
    assert refused(case(items=[statement], consent_records=[consent(statement["item_id"], with_role="supporter")]),
                   statement) == "share_consent_missing"
    assert refused(case(items=[statement], consent_records=[consent(voice.new_item_id())]),
                   statement) == "share_consent_missing"
    # by the item's id or its kind
    assert refused(case(items=[statement], consent_records=[consent(statement["item_id"])]), statement) is None
    assert refused(case(items=[statement], consent_records=[consent("impact_statement")]), statement) is None
    # withdrawn: refused; the latest record of either naming decides
    withdrawn = [consent(statement["item_id"]), consent(statement["item_id"], granted=False)]
    assert refused(case(items=[statement], consent_records=withdrawn), statement) == "share_consent_missing"
    kind_then_item = [consent("impact_statement"), consent(statement["item_id"], granted=False)]
    assert refused(case(items=[statement], consent_records=kind_then_item), statement) == "share_consent_missing"
    item_then_kind = [consent(statement["item_id"], granted=False), consent("impact_statement")]
    assert refused(case(items=[statement], consent_records=item_then_kind), statement) is None
    # someone else's consent is not the author's
    theirs = [consent(statement["item_id"], author=HARMER)]
    assert refused(case(items=[statement], consent_records=theirs), statement) == "share_consent_missing"


def test_an_erased_authors_item_never_goes_and_an_item_goes_to_a_party_once():
    statement = item()
    granted = [consent(statement["item_id"])]
    assert refused(case(items=[statement], consent_records=granted, erased=(HARMED,)), statement) == "author_erased"
    assert refused(case(items=[dict(statement, sealed=None)], consent_records=granted),
                   dict(statement, sealed=None)) == "author_erased"
    on = case(items=[statement], consent_records=granted)
    release = voice.release_record(on, statement, {"to_role": "harmer", "reviewed": False}, "facilitator:f", "now")
    assert release["consent"]["place"] == 0 and release["consent"]["item"] == statement["item_id"]
    assert (release["via"], release["to_role"], release["author_role"]) == ("shuttle", "harmer", "harmed")
    on.voice_releases = [release]
    assert refused(on, statement) == "already_released"
    letter = item("letter", author=HARMER, role="harmer")
    assert voice.release_record(case(items=[letter], consent_records=[consent("letter", author=HARMER,
                                                                              with_role="harmed")]),
                                letter, {"to_role": "harmed", "reviewed": True}, "f", "now")["via"] == \
        "letter_exchange"
