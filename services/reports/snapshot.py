"""The read model's state as bytes, and back: what the store keeps beside its ledger position.

The state is plain data (projection.py: per case, codes, moments and pseudonymous ids), so it
is written as JSON, moments as RFC 3339 text, and compressed (a case's facts are repetitive:
the same codes and keys again and again). Never pickle: whoever could write the database
would then run code in the service.
"""
import json
import zlib
from dataclasses import fields
from datetime import datetime

from services.reports.projection import (Assessment, CaseFacts, Counted, Mark, Referral, ReportState,
                                         SurveyAnswer)

FORMAT = 1
# CaseFacts' fields holding one record, and those holding a dict of records; every other
# field is a moment (or None), or a dict of moments.
ONE = {"referral": Referral, "process": Mark, "outcome": Mark, "closure": Mark}
MANY = {"assessments": Assessment, "surveys": SurveyAnswer, "counted": Counted}
MOMENTS = {"victim_told_at"}
assert set(ONE) | set(MANY) | MOMENTS | {"case_id"} | {
    f.name for f in fields(CaseFacts) if f.type is dict} == {f.name for f in fields(CaseFacts)}


class UnreadableSnapshot(ValueError):
    """The stored state is not one this code can read: rebuild from the ledger."""


def _plain(value):
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value


def _record(cls, values):
    """A NamedTuple from its plain values (moments by the field's type, lists as tuples)."""
    made = []
    for (name, kind), value in zip(cls.__annotations__.items(), values):
        if kind is datetime and value is not None:
            value = datetime.fromisoformat(value)
        elif isinstance(value, list):
            value = tuple(value)
        made.append(value)
    return cls(*made)


def _case_plain(case):
    plain = {}
    for f in fields(CaseFacts):
        value = getattr(case, f.name)
        if isinstance(value, dict):
            value = {key: _plain(v) for key, v in value.items()}
        plain[f.name] = _plain(value)
    return plain


def _case(plain):
    values = {}
    for name, value in plain.items():
        if name in ONE:
            value = None if value is None else _record(ONE[name], value)
        elif name in MANY:
            value = {key: _record(MANY[name], v) for key, v in value.items()}
        elif name in MOMENTS:
            value = None if value is None else datetime.fromisoformat(value)
        elif isinstance(value, dict):
            value = {key: datetime.fromisoformat(v) for key, v in value.items()}
        values[name] = value
    return CaseFacts(**values)


def dump(state):
    """The state as compressed bytes."""
    plain = {"format": FORMAT, "latest": _plain(state.latest),
             "cases": [_case_plain(case) for case in state.cases.values()]}
    return zlib.compress(json.dumps(plain, separators=(",", ":")).encode(), 6)


def load(data):
    """The state `dump` wrote; UnreadableSnapshot if these bytes are not one."""
    try:
        plain = json.loads(zlib.decompress(data))
        found = plain.get("format") if isinstance(plain, dict) else None
    except (zlib.error, ValueError) as error:
        raise UnreadableSnapshot(f"the stored state cannot be read ({type(error).__name__})") from None
    if found != FORMAT:
        raise UnreadableSnapshot(f"the stored state is of format {found!r}, not {FORMAT}")
    try:
        cases = [_case(case) for case in plain["cases"]]
        latest = datetime.fromisoformat(plain["latest"]) if plain["latest"] else None
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise UnreadableSnapshot(f"the stored state cannot be read ({type(error).__name__})") from None
    return ReportState(cases={case.case_id: case for case in cases}, latest=latest)
