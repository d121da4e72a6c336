"""The outcome agreement and its monitoring: pure rules over a case, no I/O.

An intervention can end in an agreement: a list of items (an apology, an explanation,
reparation, restitution with payments, work for the harmed person or the community,
agreed behaviour, a referral to support or a programme), each with an owner (a party:
usually the harmer), a due date and a monitoring status.

`case.agreement`, once recorded:

    {"agreement_id": "agr-<32 hex>", "agreed_on": "YYYY-MM-DD", "recorded_at", "by",
     "status": "open" | "completed" | "not_completed",
     "outcome": None | "agreement_completed" | "agreement_not_completed", "settled_at",
     "ended_by": None | "monitoring" | "closure",
     "items": [{"item_id": "agi-<32 hex>", "kind", "owner_id", "owner_role", "due_on",
                "amount_pence"?, "sealed" (the description, under the owner's key),
                "status": "open" | "completed" | "missed" | "waived", "reminded_at",
                "settled_at", "settled_by", "note_sealed"?}]}

- An item is settled once completed, waived or missed; a settled item is final.
- Once every item is settled, the agreement is completed (every item completed or waived)
  or not (any missed): its outcome is recorded once, and the case moves on to FOLLOW_UP.
- Before an open item's due date (`reminder_days` ahead) its owner is reminded, once;
  once its due date has passed (the end of that day in London) it is missed.
- Closing the case ends an open agreement as not completed.

Dates are London calendar days, kept as ISO text (`YYYY-MM-DD`).
"""
import re
import uuid
from datetime import date, datetime, timedelta

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from shared import safeguarding
from shared.events.schemas.agreements import ITEM_KINDS

KINDS = ITEM_KINDS
OPEN, COMPLETED, MISSED, WAIVED = "open", "completed", "missed", "waived"
SETTLED = (COMPLETED, MISSED, WAIVED)
NOT_COMPLETED = "not_completed"
AGREEMENT_COMPLETED, AGREEMENT_NOT_COMPLETED = "agreement_completed", "agreement_not_completed"
ITEM_EVENTS = {COMPLETED: "agreement.item_completed", WAIVED: "agreement.item_waived", MISSED: "agreement.item_missed"}
ITEM_ID = re.compile(r"^agi-[0-9a-f]{32}$")
MAX_ITEMS = 30
MAX_TEXT = 2000
MAX_PENCE = 100_000_000   # a million pounds: anything above is a typing error
DEFAULT_REMINDER_DAYS = 3
_text = validate.Regexp(r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$", error="Control characters are not allowed.")


def _not_blank(value):
    if not value.strip():
        raise ValidationError("Must not be blank.")


class ItemSchema(Schema):
    kind = fields.Str(required=True, validate=validate.OneOf(KINDS))
    owner_id = fields.Str(required=True, validate=validate.Regexp(r"^p-[0-9a-f]{32}$",
                                                                  error="Not a participant id of this case."))
    due_on = fields.Date(required=True)
    description = fields.Str(required=True, validate=[validate.Length(min=1, max=MAX_TEXT), _text, _not_blank])
    amount_pence = fields.Int(strict=True, validate=validate.Range(min=1, max=MAX_PENCE))

    @validates_schema
    def amount_only_for_restitution(self, data, **kwargs):
        if "amount_pence" in data and data.get("kind") != "restitution":
            raise ValidationError("Only a restitution item has an amount.", "amount_pence")


class AgreementSchema(Schema):
    """The body of POST /v1/cases/{id}/agreement (its dates are judged against the London
    day by `date_faults`, its owners against the case by `owner_faults`)."""
    items = fields.List(fields.Nested(ItemSchema), required=True, validate=validate.Length(min=1, max=MAX_ITEMS))
    agreed_on = fields.Date(required=True)


class ItemUpdateSchema(Schema):
    """The body of POST /v1/cases/{id}/agreement/items/{item_id}."""
    status = fields.Str(required=True, validate=validate.OneOf(SETTLED))
    note = fields.Str(validate=[validate.Length(min=1, max=MAX_TEXT), _text, _not_blank])


def date_faults(data, today):
    """Faults of the agreement's dates, as marshmallow words them: the agreement is made
    today or earlier, every item falls due today or later. `data` may be what loaded of a
    body with other faults (marshmallow's valid_data), so that all are named at once."""
    faults = {}
    agreed_on = data.get("agreed_on")
    if isinstance(agreed_on, date) and agreed_on > today:
        faults["agreed_on"] = ["Must be today or earlier."]
    items = {}
    for index, item in enumerate(data.get("items") or []):
        due = item.get("due_on") if isinstance(item, dict) else None
        if isinstance(due, date) and due < today:
            items[index] = {"due_on": ["Must be today or later."]}
    if items:
        faults["items"] = items
    return faults


def merged_faults(first, second):
    """Two sets of faults (marshmallow's shape: field -> messages, or nested) as one."""
    merged = dict(first)
    for key, value in second.items():
        if key not in merged:
            merged[key] = value
        elif isinstance(merged[key], dict) and isinstance(value, dict):
            merged[key] = merged_faults(merged[key], value)
        elif isinstance(merged[key], list) and isinstance(value, list):
            merged[key] = merged[key] + value
    return merged


def owner_faults(case, items):
    """Item owners who are not a party (harmed or harmer) of this case, by item index."""
    faults = {}
    for index, item in enumerate(items):
        owner = case.party(item["owner_id"])
        if owner is None or owner.get("role") not in safeguarding.PARTIES:
            faults[index] = {"owner_id": ["Not a party (harmed or harmer) of this case."]}
    return {"items": faults} if faults else {}


def new_agreement(case, data, sealed, now, by):
    """The agreement to record for `data` (validated), its descriptions already sealed
    (`sealed`, by item index, under each owner's key); and the data of agreement.recorded."""
    items = []
    for index, item in enumerate(data["items"]):
        entry = {"item_id": f"agi-{uuid.uuid4().hex}", "kind": item["kind"], "owner_id": item["owner_id"],
                 "owner_role": case.party(item["owner_id"])["role"], "due_on": item["due_on"].isoformat(),
                 "sealed": sealed[index], "status": OPEN, "reminded_at": None, "settled_at": None,
                 "settled_by": None}
        if "amount_pence" in item:
            entry["amount_pence"] = item["amount_pence"]
        items.append(entry)
    agreement = {"agreement_id": f"agr-{uuid.uuid4().hex}", "agreed_on": data["agreed_on"].isoformat(),
                 "recorded_at": now, "by": by, "status": OPEN, "outcome": None, "settled_at": None,
                 "ended_by": None, "items": items}
    return agreement, {"case_id": case.case_id, "agreement_id": agreement["agreement_id"],
                       "items": [{k: i[k] for k in ("item_id", "kind", "owner_role", "due_on")} for i in items]}


def item(agreement, item_id):
    return next((i for i in (agreement or {}).get("items", []) if i["item_id"] == item_id), None)


def item_event_data(case_id, agreement, entry, **extra):
    return {"case_id": case_id, "agreement_id": agreement["agreement_id"], "item_id": entry["item_id"],
            "kind": entry["kind"], "owner_role": entry["owner_role"], "due_on": entry["due_on"], **extra}


def settle(case_id, agreement, item_id, status, now, by, note_sealed=None, detected="recorded"):
    """The agreement with one open item settled as `status`, and the event (type, data)
    that says so."""
    items = []
    for entry in agreement["items"]:
        if entry["item_id"] == item_id:
            entry = {**entry, "status": status, "settled_at": now, "settled_by": by}
            if note_sealed is not None:
                entry["note_sealed"] = note_sealed
            settled = entry
        items.append(entry)
    extra = {"detected": detected} if status == MISSED else {}
    return {**agreement, "items": items}, (ITEM_EVENTS[status], item_event_data(case_id, agreement, settled, **extra))


def remind(agreement, item_id, now):
    """The agreement with one item's reminder noted."""
    return {**agreement, "items": [{**e, "reminded_at": now} if e["item_id"] == item_id else e
                                   for e in agreement["items"]]}


def outcome(agreement):
    """The outcome once every item is settled (None while any is open)."""
    items = agreement.get("items") or []
    if not items or any(i["status"] == OPEN for i in items):
        return None
    return AGREEMENT_NOT_COMPLETED if any(i["status"] == MISSED for i in items) else AGREEMENT_COMPLETED


def conclude(agreement, result, now, ended_by):
    """The agreement closed with its outcome."""
    return {**agreement, "status": COMPLETED if result == AGREEMENT_COMPLETED else NOT_COMPLETED,
            "outcome": result, "settled_at": now, "ended_by": ended_by}


def is_open(agreement):
    return bool(agreement) and agreement.get("status") == OPEN


def due_actions(agreement, today, reminder_days=DEFAULT_REMINDER_DAYS):
    """What monitoring owes on `today` (a London day): ("miss", item) for each open item
    whose due day has passed, ("remind", item) for each open item not yet reminded whose
    due day is at most `reminder_days` away."""
    if not is_open(agreement):
        return []
    actions = []
    horizon = today + timedelta(days=reminder_days)
    for entry in agreement["items"]:
        if entry["status"] != OPEN:
            continue
        due = date.fromisoformat(entry["due_on"])
        if due < today:
            actions.append(("miss", entry))
        elif due <= horizon and entry.get("reminded_at") is None:
            actions.append(("remind", entry))
    return actions


# -- the day buckets the store keeps for the timer (store.py) ---------------------------

def remind_days(agreement):
    """The due days of the open items not yet reminded, while the agreement is open: a
    reminder falls due `reminder_days` before each."""
    if not is_open(agreement):
        return []
    return sorted({i["due_on"] for i in agreement["items"] if i["status"] == OPEN and i.get("reminded_at") is None})


def open_days(agreement):
    """The due days of the open items, while the agreement is open: each is missed the day after."""
    if not is_open(agreement):
        return []
    return sorted({i["due_on"] for i in agreement["items"] if i["status"] == OPEN})


# -- what the case view shows ------------------------------------------------------------

def _iso(value):
    return value.isoformat() if isinstance(value, datetime) else value


def view(agreement, texts=None):
    """The agreement as the case view shows it: ids, codes, dates and monitoring for every
    caller; `texts` (item id -> {"description", "note"}, None once the owner is erased)
    only for a caller who may see personal data."""
    if not agreement:
        return None
    items = []
    for entry in agreement["items"]:
        shown = {k: _iso(entry.get(k)) for k in ("item_id", "kind", "owner_id", "owner_role", "due_on", "status",
                                                 "reminded_at", "settled_at", "settled_by")}
        if "amount_pence" in entry:
            shown["amount_pence"] = entry["amount_pence"]
        if texts is not None:
            text = texts.get(entry["item_id"]) or {}
            shown["description"] = text.get("description")
            shown["note"] = text.get("note")
        items.append(shown)
    return {"agreement_id": agreement["agreement_id"], "agreed_on": agreement["agreed_on"],
            "recorded_at": _iso(agreement.get("recorded_at")), "by": agreement.get("by"),
            "status": agreement["status"], "outcome": agreement.get("outcome"),
            "settled_at": _iso(agreement.get("settled_at")), "ended_by": agreement.get("ended_by"), "items": items}
