"""The console's forms: what each takes, and each field's error as a catalogue key.

A form's `check(raw)` gives (values, errors): the values as typed (trimmed), to show
again, and field -> message key for each field at fault. Nothing is sent to a service
until the form has no errors; a 400 from the service (fields named by the API) is shown
beside the same fields.
"""
import re
import uuid
from datetime import date, timedelta

from services.matching import facilitator_records
from services.referrals.lifecycle import STATUSES
from shared.events.vocabulary import CODE_PATTERN, FACILITATOR_LEVELS, LANGUAGES

REASON_MAX = 2000
CODE_MAX = 100
FILTER_MAX = 100
# how far ahead the case list's "due before" reaches (the referrals API takes 53 weeks)
DUE_AHEAD = timedelta(days=365)


def _text(raw, name):
    return (raw.get(name) or "").strip()


def sign_in(raw):
    values = {"username": _text(raw, "username").lower()}
    errors = {}
    if not values["username"]:
        errors["username"] = "error.username_required"
    if not raw.get("password"):
        errors["password"] = "error.password_required"
    return values, errors


def decision(raw):
    """A coordinator's decision on a case under review (matching's POST /decision)."""
    values = {name: _text(raw, name) for name in ("decision", "reason_code", "reason")}
    errors = {}
    if values["decision"] not in ("suitable", "unsuitable"):
        errors["decision"] = "error.decision_choose"
    if not values["reason_code"]:
        errors["reason_code"] = "error.reason_code_required"
    elif len(values["reason_code"]) > CODE_MAX or not re.match(CODE_PATTERN, values["reason_code"]):
        errors["reason_code"] = "error.reason_code_format"
    if not values["reason"]:
        errors["reason"] = "error.reason_required"
    elif len(values["reason"]) > REASON_MAX:
        errors["reason"] = "error.reason_too_long"
    return values, errors


def case_filters(raw, today=None):
    """The case list's filters as typed (`overdue` "1" when ticked); `due_before` a day
    (YYYY-MM-DD, what a date input sends) from 2000 to a year ahead."""
    values = {name: _text(raw, name) for name in ("status", "region", "agency", "due_before")}
    values["overdue"] = "1" if raw.get("overdue") else ""
    errors = {}
    if values["status"] and values["status"] not in STATUSES:
        errors["status"] = "error.status_unknown"
    for name in ("region", "agency"):
        if values[name] and (len(values[name]) > FILTER_MAX or not re.match(CODE_PATTERN, values[name])):
            errors[name] = "error.code_format"
    if values["due_before"]:
        day = day_of(values["due_before"])
        if day is None:
            errors["due_before"] = "error.date_format"
        elif not date(2000, 1, 1) <= day <= (today or date.today()) + DUE_AHEAD:
            errors["due_before"] = "error.due_before_range"
    return values, errors


def case_query(values):
    """The referrals API's query for the case list's filters (empty ones left out by Apis)."""
    return {**{name: values[name] for name in ("status", "region", "agency", "due_before")},
            "overdue": "true" if values["overdue"] else None}


# the catalogue key for a case-list field the referrals API refused (400 naming it)
CASE_FILTER_REFUSED = {"status": "error.status_unknown", "due_before": "error.due_before_range",
                       "overdue": "error.api_field"}


def statuses():
    return STATUSES


def case_reference(raw):
    """A case's reference (its id, a UUID as referrals gives it), to fetch the case's bundle:
    the values are the reference as typed, and as `case` its canonical spelling."""
    typed = _text(raw, "case_id")
    values, errors = {"case_id": typed}, {}
    if not typed:
        errors["case_id"] = "error.case_reference_required"
    else:
        try:
            values["case"] = str(uuid.UUID(typed))
        except ValueError:
            errors["case_id"] = "error.case_reference_format"
    return values, errors


# --- the facilitator registry (matching's /v1/facilitators) ---------------------------------

FACILITATOR_TEXTS = ("facilitator_id", "name", "email", "language", "level", "trained_on", "last_process_on",
                     "prison_vetted_until", "available_from", "regions", "capacity")
FACILITATOR_DATES = ("trained_on", "last_process_on", "prison_vetted_until", "available_from")
FACILITATOR_CHOICES = ("endorsements", "languages")
FACILITATOR_FIELDS = FACILITATOR_TEXTS + FACILITATOR_CHOICES + ("complex_case_trained",)
ENDORSEMENTS = facilitator_records.ENDORSEMENTS
LEVELS = FACILITATOR_LEVELS
SPOKEN = LANGUAGES
NAME_MAX, EMAIL_MAX, REGIONS_MAX = 200, 254, 20
DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def facilitator(raw, creating):
    """A facilitator's record as a coordinator types it: (values as typed, errors, the API's
    body). Editing sends every field but the id, so a field left empty is cleared."""
    values = {name: _text(raw, name) for name in FACILITATOR_TEXTS}
    values.update({name: [v for v in raw.getlist(name) if v] for name in FACILITATOR_CHOICES})
    values["complex_case_trained"] = raw.get("complex_case_trained") == "yes"
    errors = {}
    if creating:
        if not values["facilitator_id"]:
            errors["facilitator_id"] = "error.facilitator_id_required"
        elif len(values["facilitator_id"]) > CODE_MAX or not re.match(CODE_PATTERN, values["facilitator_id"]):
            errors["facilitator_id"] = "error.code_format"
    if len(values["name"]) > NAME_MAX:
        errors["name"] = "error.name_too_long"
    if values["email"] and (len(values["email"]) > EMAIL_MAX or not re.match(r"^[^@\s]+@[^@\s]+\.[^@\s]+$",
                                                                               values["email"])):
        errors["email"] = "error.email_format"
    if values["language"] not in SPOKEN:
        errors["language"] = "error.choose_from_list"
    if values["level"] not in LEVELS:
        errors["level"] = "error.level_choose"
    for name in FACILITATOR_DATES:
        if values[name] and day_of(values[name]) is None:
            errors[name] = "error.date_format"
    if creating and not values["trained_on"] and not values["last_process_on"] and "last_process_on" not in errors:
        errors["last_process_on"] = "error.currency_date_required"
    if not values["languages"]:
        errors["languages"] = "error.languages_required"
    elif set(values["languages"]) - set(SPOKEN):
        errors["languages"] = "error.choose_from_list"
    if set(values["endorsements"]) - set(ENDORSEMENTS):
        errors["endorsements"] = "error.choose_from_list"
    regions = regions_of(values["regions"])
    if not regions:
        errors["regions"] = "error.regions_required"
    elif len(regions) > REGIONS_MAX or any(len(r) > 50 or not re.match(CODE_PATTERN, r) for r in regions):
        errors["regions"] = "error.regions_format"
    if not re.match(r"^\d{1,3}$", values["capacity"]) or int(values["capacity"]) > facilitator_records.MAX_CAPACITY:
        errors["capacity"] = "error.capacity_range"
    if errors:
        return values, errors, None
    body = {name: values[name] or None for name in ("name", "email", *FACILITATOR_DATES)}
    body.update(language=values["language"], level=values["level"], languages=values["languages"],
                endorsements=values["endorsements"], regions=regions, capacity=int(values["capacity"]),
                complex_case_trained=values["complex_case_trained"])
    if creating:
        body["facilitator_id"] = values["facilitator_id"]
    return values, errors, body


def facilitator_values(record):
    """The form's values from a record as matching shows it (to edit it)."""
    values = {name: record.get(name) or "" for name in FACILITATOR_TEXTS}
    values.update(regions=", ".join(record.get("regions") or ()), capacity=str(record.get("capacity", "")),
                  endorsements=list(record.get("endorsements") or ()), languages=list(record.get("languages") or ()),
                  complex_case_trained=bool(record.get("complex_case_trained")))
    return values


def regions_of(text):
    """Regions typed as a list split by commas (the first is home), without repeats."""
    return list(dict.fromkeys(part.strip() for part in text.split(",") if part.strip()))


def registry_filters(raw):
    """The registry list's filters, as matching's listing takes them."""
    values = {"region": _text(raw, "region"), "active": _text(raw, "active")}
    errors = {}
    if values["region"] and (len(values["region"]) > 50 or not re.match(CODE_PATTERN, values["region"])):
        errors["region"] = "error.code_format"
    if values["active"] not in ("", "true", "false"):
        errors["active"] = "error.choose_from_list"
    return values, errors


def day_of(text):
    """The day a field holds as YYYY-MM-DD (what a date input sends), or None."""
    if not DATE.match(text):
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None
