"""The console's registry form and the waiting list's times: pure rules."""
from datetime import datetime, timedelta, timezone

from werkzeug.datastructures import MultiDict

from services.console import forms, registry_pages

GOOD = {"facilitator_id": "fac-new-1", "name": " Owain Davies ", "email": "owain@rj.example", "language": "cy",
        "level": "advanced", "regions": "south-wales, gwent, south-wales", "capacity": "4",
        "last_process_on": "2026-01-05", "trained_on": "", "prison_vetted_until": "", "available_from": "",
        "complex_case_trained": "yes"}


def form(**changes):
    raw = MultiDict({**GOOD, **changes})
    raw.setlist("languages", ["en", "cy"])
    raw.setlist("endorsements", ["youth"])
    return raw


def test_a_good_form_becomes_the_api_s_record_with_empty_fields_cleared():
    values, errors, body = forms.facilitator(form(), creating=True)
    assert errors == {}
    assert body == {"facilitator_id": "fac-new-1", "name": "Owain Davies", "email": "owain@rj.example",
                    "language": "cy", "level": "advanced", "regions": ["south-wales", "gwent"], "capacity": 4,
                    "languages": ["en", "cy"], "endorsements": ["youth"], "complex_case_trained": True,
                    "trained_on": None, "last_process_on": "2026-01-05", "prison_vetted_until": None,
                    "available_from": None}
    _, _, edited = forms.facilitator(form(), creating=False)
    assert "facilitator_id" not in edited


def test_each_field_at_fault_is_named_and_what_was_typed_is_kept():
    raw = form(facilitator_id="Fac 1", email="nope", level="expert", regions="South Wales!", capacity="lots",
               last_process_on="2026-02-30", language="fr")
    raw.setlist("languages", [])
    values, errors, body = forms.facilitator(raw, creating=True)
    assert body is None
    assert errors == {"facilitator_id": "error.code_format", "email": "error.email_format",
                      "level": "error.level_choose", "regions": "error.regions_format",
                      "capacity": "error.capacity_range", "last_process_on": "error.date_format",
                      "language": "error.choose_from_list", "languages": "error.languages_required"}
    assert (values["facilitator_id"], values["regions"], values["capacity"]) == ("Fac 1", "South Wales!", "lots")


def test_a_new_facilitator_needs_a_day_their_currency_counts_from_and_a_capacity_up_to_fifty():
    _, errors, _ = forms.facilitator(form(last_process_on="", capacity="51"), creating=True)
    assert errors == {"last_process_on": "error.currency_date_required", "capacity": "error.capacity_range"}
    _, errors, _ = forms.facilitator(form(last_process_on=""), creating=False)   # kept as it is
    assert errors == {}


def test_a_record_fills_the_form_to_edit_it():
    values = forms.facilitator_values({"facilitator_id": "f", "level": "foundation", "regions": ["gwent", "dyfed"],
                                       "capacity": 0, "languages": ["en"], "endorsements": [], "name": None})
    assert (values["regions"], values["capacity"], values["name"], values["languages"]) == ("gwent, dyfed", "0", "",
                                                                                            ["en"])


def test_how_long_a_case_has_waited():
    now = datetime(2026, 12, 3, 12, 0, tzinfo=timezone.utc)
    assert registry_pages._waited(None, now) is None
    assert registry_pages._waited((now - timedelta(minutes=59)).isoformat(), now) == ("waiting.under_an_hour", {})
    assert registry_pages._waited((now - timedelta(days=2, hours=5, minutes=3)).isoformat(), now) == (
        "waiting.days_hours", {"days": 2, "hours": 5})
