"""The compiled event checks never accept what marshmallow refuses, and accept the
valid events the services send (else the fast path would be no faster).

Valid events of every type are built from the schemas themselves; hypothesis then puts
awkward values (None, 1.0, "yes", a newline, overlong text, bad dates, unknown keys) at
every place in them, and removes fields."""
import copy
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from marshmallow import Schema, fields, validate

from shared.events import InvalidEvent, catalogue, validate_event
from shared.events.compiled import Checks, Untranslatable, _Check
from shared.events.envelope import _envelope, schema_errors
from tests.factories import valid_event

CHECKS = Checks(_envelope)


def places(value, path=()):
    """Every key path inside an event (list items included)."""
    if isinstance(value, dict):
        for key, inner in value.items():
            yield path + (key,)
            yield from places(inner, path + (key,))
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            yield path + (index,)
            yield from places(inner, path + (index,))


awkward = st.one_of(
    st.none(), st.booleans(), st.integers(-2, 3), st.sampled_from([1.0, 2.0, 2.5, float("nan")]),
    st.sampled_from(["", "yes", "true", "1", "a-1\n", "A-1", "a" * 101, "a" * 100, "a 1", "-a",
                     "2026-11-26T09:30:00", "2026-11-26T09:30:00Z", "2026-13-26T09:30:00Z", "2026-11-26",
                     "2026-11-26 09:30:00+00:00", "1.0", "application/json", "referral.received"]),
    st.text(max_size=5),
    st.lists(st.sampled_from(["a-1", "", 1, None]), max_size=2),
    st.fixed_dictionaries({}, optional={"x": st.just(1), "code": st.just("a-1"), "text": st.just("t")}),
)


@settings(max_examples=3000, deadline=None)
@given(event_type=st.sampled_from(catalogue.EVENT_TYPES), data=st.data())
def test_the_compiled_check_never_accepts_what_marshmallow_refuses(event_type, data):
    event = valid_event(event_type)
    for _ in range(data.draw(st.integers(1, 3), label="changes")):
        path = data.draw(st.sampled_from(list(places(event))), label="path")
        parent = event
        for key in path[:-1]:
            parent = parent[key]
        action = data.draw(st.sampled_from(["replace", "remove", "add"]), label="action")
        if action == "replace":
            parent[path[-1]] = data.draw(awkward, label="value")
        elif action == "remove":
            del parent[path[-1]]
        elif isinstance(parent, dict):
            parent[data.draw(st.sampled_from(["name", "email", "extra"]), label="key")] = "x"
    try:
        errors = schema_errors(copy.deepcopy(event))
    except (KeyError, TypeError):
        errors = {"_schema": ["not an event marshmallow can judge"]}
    if CHECKS.passes(event):
        assert not errors, errors


@pytest.mark.parametrize("event_type", catalogue.EVENT_TYPES)
def test_the_compiled_check_accepts_valid_events_of_every_type(event_type):
    event = valid_event(event_type)
    assert not schema_errors(event)
    assert CHECKS.passes(event)
    for name, field in catalogue.spec(event_type).schema.load_fields.items():
        if not field.required:  # an optional field left out is valid too
            del event["data"][name]
            assert not schema_errors(event) and CHECKS.passes(event), name


@pytest.mark.parametrize("change, field", [
    (lambda e: e.update(schemaversion=1.0), "schemaversion"),  # JSON Schema's integer takes 1.0
    (lambda e: e.update(time="2026-02-30T09:30:00Z"), "time"),  # a regex for dates would take it
    (lambda e: e["data"].update(harmer_accepts_responsibility="yes"), None),  # marshmallow takes "yes"
    (lambda e: e["data"].update(case_id="a" * 101), "data"),
    (lambda e: e["data"].update(region="South Wales"), "data"),
    (lambda e: e["data"]["participants"][0].update(name="Jane"), "data"),
])
def test_awkward_cases_fall_to_marshmallow_which_judges_them(change, field):
    event = valid_event("referral.received")
    change(event)
    assert not CHECKS.passes(event)
    if field is None:
        assert validate_event(event) is event  # stricter than marshmallow: marshmallow says yes
    else:
        with pytest.raises(InvalidEvent) as raised:
            validate_event(event)
        assert field in raised.value.errors


def test_a_schema_the_translation_cannot_follow_is_refused_loudly():
    class WithEmail(Schema):
        contact = fields.Email()

    class WithPattern(Schema):
        code = fields.Str(validate=validate.Regexp("x", flags=re.IGNORECASE))

    for schema in (WithEmail(), WithPattern()):
        spec = catalogue.EventSpec("test.thing", "referrals", schema)
        with pytest.raises(Untranslatable):
            _Check(_envelope, spec)
