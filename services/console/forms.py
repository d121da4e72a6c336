"""The console's forms: what each takes, and each field's error as a catalogue key.

A form's `check(raw)` gives (values, errors): the values as typed (trimmed), to show
again, and field -> message key for each field at fault. Nothing is sent to a service
until the form has no errors; a 400 from the service (fields named by the API) is shown
beside the same fields.
"""
import re
import uuid

from services.referrals.lifecycle import STATUSES
from shared.events.vocabulary import CODE_PATTERN

REASON_MAX = 2000
CODE_MAX = 100
FILTER_MAX = 100


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


def case_filters(raw):
    """The case list's filters, as the referrals API takes them."""
    values = {name: _text(raw, name) for name in ("status", "region", "agency")}
    errors = {}
    if values["status"] and values["status"] not in STATUSES:
        errors["status"] = "error.status_unknown"
    for name in ("region", "agency"):
        if values[name] and (len(values[name]) > FILTER_MAX or not re.match(CODE_PATTERN, values[name])):
            errors[name] = "error.code_format"
    return values, errors


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
