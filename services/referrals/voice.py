"""The parties' voice: what each party puts into words for the other (the harmed person's
impact statement and questions, the harmer's answers and apology, letters, messages), and
its release to the other party by the facilitator. Pure rules over the case; workflow.py
stores what they allow.

An item's content is personal: it is sealed under its author's own key, so erasing the
author (crypto-shredding that key) makes it unreadable, and only ids and codes reach the
bus. An item reaches the other party only when the facilitator releases it, and only if:
- the gate is open (safety.communication_refused: a safety decision, not `stop`, and a
  supervisor's approval where the case needs one);
- its author consents to sharing it with that party: their latest `share_item` consent
  record naming this item (by its id, or by its kind, e.g. `letter`) and that role is a
  grant (a withdrawal, or no record at all, refuses);
- a letter has been read by the facilitator first (`reviewed: true`);
- its author has not been erased.
Every release is recorded: who released what, when, to whom, how, under which consent.

The records, in the case (cases.Case), appended only:
- `voice_items`: item_id, author_id, author_role, kind, in_reply_to, sealed (the content,
  under the author's key; dropped on erasure), by, at
- `voice_releases`: release_id, item_id, kind, author_id, author_role, to_role, via,
  reviewed, consent (the record it was released under, and its place in case.consents), by, at
"""
import re
import uuid

from marshmallow import Schema, fields, validate

from services.referrals import safety
from services.referrals.consents import in_force
from services.referrals.preparation import PARTICIPANT_ID, work_refused
from shared.events.schemas.casework import ITEM_KINDS, PARTIES

CONTENT_MAX = 20000
ITEM_ID = re.compile(r"^item-[0-9a-f]{32}$")
# who may write what: the harmed person tells of the harm, the harmer apologises
WRITERS = {"impact_statement": ("harmed",), "apology": ("harmer",)}
# how the facilitator carries an item to the other party
VIA = {"letter": "letter_exchange"}
DEFAULT_VIA = "shuttle"

WHY = {
    # the gate (safety.communication_refused)
    "safety_decision_missing": "no safety decision has been made: nothing passes between the parties yet",
    "safety_stop": "the safety decision is to stop: nothing passes between the parties",
    "supervision_signoff_missing": "the safety decision awaits a supervisor's sign-off",
    "supervision_refused": "the supervisor refused the safety decision",
    "author_erased": "the author's personal data has been erased: the item cannot be released",
    "share_consent_missing": "the author has no share_item consent in force for this item with that party",
    "already_released": "this item has been released to that party already",
}


class ItemSchema(Schema):
    """The body of POST /v1/cases/{id}/items."""
    author_id = fields.Str(required=True, validate=PARTICIPANT_ID)
    kind = fields.Str(required=True, validate=validate.OneOf(ITEM_KINDS))
    in_reply_to = fields.Str(validate=validate.Regexp(ITEM_ID, error="Not an item id."))
    # personal: sealed under the author's own key, never on the bus or in a log
    content = fields.Str(required=True, validate=validate.Length(min=1, max=CONTENT_MAX))


class ReleaseSchema(Schema):
    """The body of POST /v1/cases/{id}/items/{item_id}/release."""
    to_role = fields.Str(required=True, validate=validate.OneOf(PARTIES))
    # the facilitator has read the item before it goes: required for a letter
    reviewed = fields.Bool(load_default=False)


def new_item_id():
    return f"item-{uuid.uuid4().hex}"


def find_item(case, item_id):
    if not ITEM_ID.match(item_id or ""):
        return None
    return next((item for item in case.voice_items if item["item_id"] == item_id), None)


def item_faults(case, author, data):
    """What is wrong with an item's body on this case, by field; {} if nothing."""
    if author is None or author["role"] not in PARTIES:
        return {"author_id": ["Not a party (harmed or harmer) of this case."]}
    faults = {}
    writers = WRITERS.get(data["kind"])
    if writers and author["role"] not in writers:
        faults["kind"] = [f"A {data['kind']} is written by the {' or '.join(writers)} party."]
    if "in_reply_to" in data:
        replied = find_item(case, data["in_reply_to"])
        if replied is None:
            faults["in_reply_to"] = ["No such item on this case."]
        elif data["kind"] == "answer" and replied["kind"] != "question":
            faults["in_reply_to"] = ["An answer replies to a question."]
    elif data["kind"] == "answer":
        faults["in_reply_to"] = ["An answer names the question it answers."]
    return faults


def item_record(data, author, by, at, sealed):
    return {"item_id": new_item_id(), "author_id": author["party_id"], "author_role": author["role"],
            "kind": data["kind"], "in_reply_to": data.get("in_reply_to"), "sealed": sealed, "by": by, "at": at}


def item_event(case, item):
    return {"case_id": case.case_id, "item_id": item["item_id"], "author_role": item["author_role"],
            "kind": item["kind"]}


# --- release --------------------------------------------------------------------

def release_faults(item, data):
    """What is wrong with a release's body for this item, by field; {} if nothing."""
    faults = {}
    if data["to_role"] == item["author_role"]:
        faults["to_role"] = [f"The item is the {item['author_role']}'s: release it to the other party."]
    if item["kind"] == "letter" and data["reviewed"] is not True:
        faults["reviewed"] = ["A letter is released only once the facilitator has read it (reviewed: true)."]
    return faults


def share_consent(consents, item, to_role):
    """(place in `consents`, record): the author's latest share_item record for this item,
    named by its id or its kind, with `to_role`; None if there is none. Records are in the
    order given, so the latest of the two in force is the author's latest word on it."""
    found = None
    for named in (item["item_id"], item["kind"]):
        record = _in_force(consents, item["author_id"], named, to_role)
        if record is not None and (found is None or record[0] > found[0]):
            found = record
    return found


def _in_force(consents, author_id, named, to_role):
    record = in_force(consents, author_id, "share_item", item=named, with_role=to_role)
    if record is None:
        return None
    return next(i for i, r in enumerate(consents) if r is record), record


def release_refused(case, item, to_role, author):
    """Why the item may not go to `to_role` now (a code of WHY, safety's gate or
    preparation.WHY), or None."""
    if author is None or not author.get("sealed") or not item.get("sealed"):
        return "author_erased"
    refused = safety.communication_refused(case) or work_refused(case)
    if refused:
        return refused
    consent = share_consent(case.consents, item, to_role)
    if consent is None or not consent[1]["granted"]:
        return "share_consent_missing"
    if any(r["item_id"] == item["item_id"] and r["to_role"] == to_role for r in case.voice_releases):
        return "already_released"
    return None


def release_record(case, item, data, by, at):
    """The record of a release that release_refused allowed."""
    place, consent = share_consent(case.consents, item, data["to_role"])
    return {"release_id": f"release-{uuid.uuid4().hex}", "item_id": item["item_id"], "kind": item["kind"],
            "author_id": item["author_id"], "author_role": item["author_role"], "to_role": data["to_role"],
            "via": VIA.get(item["kind"], DEFAULT_VIA), "reviewed": data["reviewed"],
            "consent": {"place": place, **{k: consent.get(k) for k in (
                "participant_id", "scope", "item", "with_role", "granted", "method", "by", "at")}},
            "by": by, "at": at}


def release_event(case, release):
    return {"case_id": case.case_id, **{k: release[k] for k in ("item_id", "kind", "author_role", "to_role")}}
