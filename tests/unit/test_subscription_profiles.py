"""The data-sharing profiles: every event type of the catalogue against every profile.

Each event is built with a canary in every free value, named after its field's place
(tests/factories.valid_event), so a canary found in what a subscriber receives says
which field leaked. The table's loader is checked against broken tables, and the
entitlement rules per profile."""
import base64
import copy
from datetime import datetime, timezone

import pytest
import yaml

from services.subscriptions import profiles
from services.subscriptions.profiles import CaseFacts
from services.subscriptions.sharing import SharingAgreement
from shared import statistics_profile
from shared.events import catalogue
from tests.factories import valid_event
from tests.support import strings_in

KEY = statistics_profile.key_from_text(base64.urlsafe_b64encode(b"s" * 32).decode())
FACTS = CaseFacts(agency="police-a", region="gwent", offence_category="theft")


def _canaries(value):
    return {s for s in strings_in(value) if s.startswith("canary-")}


def _places_passed(event, paths):
    """The canaries of the fields `paths` name, wherever they sit in the event's data."""
    allowed = set()
    for path in paths:
        values = [event["data"]]
        for name in path.split("."):
            values = [v for value in values for v in (value if isinstance(value, list) else [value])]
            values = [value[name] for value in values if isinstance(value, dict) and name in value]
        allowed |= _canaries(values)
    return allowed


def _names_someone(canary):
    """A canary of an id (but the case's and the assignment's), or of a key's holder or actor."""
    field = canary.removesuffix("-0")
    return field.endswith(("-id", "-ids", "-subject", "-by")) and not field.endswith(("-case-id", "-assignment-id"))


@pytest.mark.parametrize("profile", profiles.PROFILE_NAMES)
@pytest.mark.parametrize("event_type", catalogue.EVENT_TYPES)
def test_every_event_type_under_every_profile_gives_only_its_declared_fields(event_type, profile):
    event = valid_event(event_type, canaries=True)
    original = copy.deepcopy(event)
    data = profiles.redact(profile, event, FACTS, KEY)
    assert event == original, "redaction must not change the event"
    passed = profiles.fields_passed(profile, event_type)
    if passed is None:
        assert data is None
        return
    assert data is not None
    leaked_people = {c for c in _canaries(data) if _names_someone(c)}
    assert not leaked_people, f"{event_type} under {profile} gives away {leaked_people}"
    if profile == "statistics":
        assert set(data) == set(statistics_profile.FIELDS)
        assert statistics_profile.validate_statistic(data) is data
        facts = profiles.follow_case(FACTS, event)  # a referral brings its own
        assert _canaries(data) <= {facts.region}, "a statistic carries no value of the event's but its codes"
        assert {event["id"], event["subject"]}.isdisjoint(strings_in(data)) and "case_id" not in data
        assert (data["event_type"], data["region"], data["offence_category"]) == (
            event_type, facts.region, facts.offence_category)
        return
    assert data["case_id"] == event["data"]["case_id"]
    assert set(data) == {path.split(".")[0] for path in passed}
    assert _canaries(data) <= _places_passed(event, passed), "only the declared fields' values pass"
    schema = type(catalogue.spec(event_type).schema)(only=passed)
    assert schema.validate(data) == {}, "what passes is valid under the type's own schema"


@pytest.mark.parametrize("event_type", catalogue.EVENT_TYPES)
def test_no_profile_passes_a_person_id_free_text_or_an_identity_or_sharing_event(event_type):
    spec = catalogue.spec(event_type)
    for profile in profiles.PROFILE_NAMES:
        passed = profiles.fields_passed(profile, event_type)
        if spec.producer in ("identity", "subscriptions"):
            assert passed is None, f"{event_type} under {profile}"
        if profile == "statistics":
            continue  # the statistic's own fields (its statistic_id names no event)
        for path in passed or ():
            name = path.rsplit(".", 1)[-1]
            assert not name.endswith(("_id", "_ids")) or name in ("case_id", "assignment_id"), (profile, path)
            assert name not in ("text", "participants", "by", "subject", "set_by"), (profile, path)


def test_the_table_covers_every_catalogue_type_in_every_profile():
    assert profiles.PROFILES_VERSION == 1
    table = profiles.load()
    for profile in profiles.PROFILE_NAMES:
        assert set(table.rows[profile]) == set(catalogue.EVENT_TYPES), profile


def test_area_cases_gives_what_own_cases_gives():
    for event_type in catalogue.EVENT_TYPES:
        assert profiles.fields_passed("area_cases", event_type) == profiles.fields_passed("own_cases", event_type)


def test_statistics_exports_exactly_what_the_national_profile_does():
    exported = {t for t in catalogue.EVENT_TYPES if profiles.fields_passed("statistics", t) is not None}
    assert exported == set(statistics_profile.EXPORTED)


def test_an_assessment_passes_its_reason_codes_and_never_their_text():
    event = valid_event("case.assessed", canaries=True)
    data = profiles.redact("own_cases", event, FACTS, KEY)
    assert data == {"case_id": "canary-case-id", "decision": "suitable", "reasons": [{"code": "canary-reasons-0-code"}],
                    "policy_version": "canary-policy-version"}


def test_an_assignment_passes_without_its_facilitator():
    event = valid_event("facilitator.assigned", canaries=True)
    assert profiles.redact("area_cases", event, FACTS, KEY) == {
        "case_id": "canary-case-id", "assignment_id": "canary-assignment-id", "role": "lead"}


def test_a_statistic_is_made_under_the_key_passed_in():
    event = valid_event("case.closed")
    other = statistics_profile.key_from_text(base64.urlsafe_b64encode(b"o" * 32).decode())
    one, again, two = (profiles.redact("statistics", event, FACTS, key) for key in (KEY, KEY, other))
    assert one["statistic_id"] == again["statistic_id"] == statistics_profile.statistic_id(KEY, event["id"])
    assert one["statistic_id"] != two["statistic_id"]


def test_a_statistic_of_a_case_not_seen_is_refused_rather_than_guessed():
    with pytest.raises(ValueError):
        profiles.redact("statistics", valid_event("case.closed"), None, KEY)
    referral = valid_event("referral.received")  # brings its own facts
    assert profiles.redact("statistics", referral, None, KEY)["region"] == referral["data"]["region"]


def test_the_profile_none_gives_nothing_and_an_unknown_profile_is_an_error():
    assert profiles.redact("none", valid_event("case.closed"), FACTS, KEY) is None
    with pytest.raises(ValueError):
        profiles.redact("everything", valid_event("case.closed"), FACTS, KEY)


# --- the loader refuses a broken table -----------------------------------------------

def _table():
    with open(profiles.PATH) as handle:
        document = yaml.safe_load(handle)
    named = document["profiles"]
    named["area_cases"] = copy.deepcopy(named["area_cases"])  # no longer the same as own_cases
    return document


def _refusal(document):
    with pytest.raises(profiles.ProfilesError) as refused:
        profiles.parse(yaml.safe_dump(document, sort_keys=False), "broken.yaml")
    return str(refused.value)


def test_the_real_table_loads_and_a_copy_of_it_too():
    assert profiles.parse(yaml.safe_dump(_table(), sort_keys=False)).version == 1


@pytest.mark.parametrize("break_it, words", [
    (lambda d: d["profiles"]["own_cases"].pop("case.closed"), "'case.closed' is not classified"),
    (lambda d: d["profiles"]["statistics"].pop("key.issued"), "'key.issued' is not classified"),
    (lambda d: d["profiles"]["area_cases"].update({"case.reopened": "withheld"}), "'case.reopened' is not an event"),
    (lambda d: d["profiles"]["own_cases"]["case.closed"].append("closed_by"), "'closed_by' is not a field"),
    (lambda d: d["profiles"]["own_cases"].update({"consent.recorded": ["case_id", "participant_id"]}),
     "'participant_id' may not"),
    (lambda d: d["profiles"]["area_cases"]["facilitator.assigned"].append("facilitator_id"), "'facilitator_id' may not"),
    (lambda d: d["profiles"]["own_cases"].update({"referral.received": ["case_id", "referrer_id"]}),
     "'referrer_id' may not"),
    (lambda d: d["profiles"]["own_cases"].update({"referral.received": ["case_id", {"participants": ["role"]}]}),
     "'participants' holds records"),
    (lambda d: d["profiles"]["own_cases"]["case.assessed"][2].update({"reasons": ["code", "text"]}),
     "'text' is free text"),
    (lambda d: d["profiles"]["own_cases"]["case.assessed"].__setitem__(2, "reasons"), "'reasons' is a structure"),
    (lambda d: d["profiles"]["own_cases"].update({"case.closed": ["case_id", {"reason": ["code"]}]}),
     "'reason' is a value"),
    (lambda d: d["profiles"]["own_cases"].update({"case.closed": ["from_status", "reason"]}), "with its case_id"),
    (lambda d: d["profiles"]["own_cases"].update({"case.closed": ["case_id", "reason", "reason"]}), "listed twice"),
    (lambda d: d["profiles"]["own_cases"].update({"case.closed": "maybe"}), "must be withheld or a list"),
    (lambda d: d["profiles"]["own_cases"].update({"key.issued": ["agency"]}), "identity events are never shared"),
    (lambda d: d["profiles"]["area_cases"].update({"subscription.created": ["agency"]}),
     "subscriptions events are never shared"),
    (lambda d: d["profiles"]["statistics"].update({"key.issued": "exported"}), "must be withheld"),
    (lambda d: d["profiles"]["statistics"].update({"case.closed": "withheld"}), "must be exported"),
    (lambda d: d["profiles"]["statistics"].update({"case.closed": ["case_id"]}), "must be a name"),
    (lambda d: d["profiles"].pop("area_cases"), "profile 'area_cases' is missing"),
    (lambda d: d["profiles"].update({"everything": {}}), "unknown profile 'everything'"),
    (lambda d: d.update({"version": "one"}), "version must be a whole number"),
    (lambda d: d.pop("version"), "'version' is missing"),
])
def test_a_broken_table_is_refused_naming_the_fault(break_it, words):
    document = _table()
    break_it(document)
    refusal = _refusal(document)
    assert words in refusal and refusal.startswith("broken.yaml:"), refusal


def test_a_fault_names_its_line():
    text = open(profiles.PATH).read().replace("case.closed: [case_id, from_status, reason]",
                                              "case.closed: [case_id, from_status, reason, closed_by]")
    with pytest.raises(profiles.ProfilesError) as refused:
        profiles.parse(text, "profiles.yaml")
    line = next(n for n, text_line in enumerate(text.splitlines(), 1) if "closed_by" in text_line)
    assert refused.value.line == line


# --- entitlement ---------------------------------------------------------------------

def _agreement(profile, agency="police-a", regions=()):
    return SharingAgreement(agency=agency, profile=profile, regions=tuple(regions), agreement_reference="DSA/1",
                            version=1, set_by="coordinator:c-1", set_at=datetime(2026, 1, 5, tzinfo=timezone.utc))


CLOSED = valid_event("case.closed")


@pytest.mark.parametrize("agreement, facts, expected", [
    (_agreement("own_cases"), FACTS, True),
    (_agreement("own_cases", agency="police-b"), FACTS, False),
    (_agreement("own_cases", regions=["gwent"]), FACTS, True),
    (_agreement("own_cases", regions=["dyfed-powys"]), FACTS, False),  # its own case, outside the regions agreed
    (_agreement("area_cases", agency="yot-b", regions=["gwent", "south-wales"]), FACTS, True),
    (_agreement("area_cases", agency="police-a", regions=["south-wales"]), FACTS, False),  # own agency, other area
    (_agreement("statistics", agency="pcc", regions=["gwent"]), FACTS, True),
    (_agreement("statistics", agency="pcc", regions=["north-wales"]), FACTS, False),
    (_agreement("own_cases"), None, False),  # a case not seen
    (_agreement("area_cases", regions=["gwent"]), None, False),
    (_agreement("statistics", regions=["gwent"]), None, False),
    (_agreement("area_cases", regions=["gwent"]), CaseFacts(None, None, None), False),
    (_agreement("none", regions=()), FACTS, False),
    (None, FACTS, False),
])
def test_entitlement_per_profile(agreement, facts, expected):
    assert profiles.entitled(agreement, CLOSED, facts) is expected


@pytest.mark.parametrize("event_type", ["key.issued", "sharing.agreement_set", "subscription.disabled"])
@pytest.mark.parametrize("profile", profiles.PROFILE_NAMES)
def test_nobody_is_entitled_to_an_event_about_no_case(event_type, profile):
    assert profiles.case_of(valid_event(event_type)) is None
    assert not profiles.entitled(_agreement(profile, regions=["gwent"]), valid_event(event_type), FACTS)


def test_a_referral_brings_its_own_facts():
    referral = valid_event("referral.received")
    referral["data"].update(agency="police-a", region="gwent", offence_category="robbery")
    assert profiles.follow_case(None, referral) == CaseFacts("police-a", "gwent", "robbery")
    assert profiles.follow_case(FACTS, CLOSED) is FACTS
    assert profiles.entitled(_agreement("own_cases"), referral, None)
    assert not profiles.entitled(_agreement("own_cases", agency="police-b"), referral, None)


def test_the_case_of_an_event_is_its_case_id():
    event = valid_event("session.held", canaries=True)
    assert profiles.case_of(event) == "canary-case-id"
