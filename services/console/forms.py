"""The console's forms: what each takes, and each field's error as a catalogue key.

A form's `check(raw)` gives (values, errors): the values as typed (trimmed), to show
again, and field -> message key for each field at fault. Nothing is sent to a service
until the form has no errors; a 400 from the service (fields named by the API) is shown
beside the same fields.
"""
import re
from datetime import date, timedelta

from services.referrals.lifecycle import STATUSES
from shared.events.vocabulary import CODE_PATTERN

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
        try:
            day = date.fromisoformat(values["due_before"]) if len(values["due_before"]) == 10 else None
        except ValueError:
            day = None
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
