"""Every string the console shows has an English and a Welsh text, with the same fields,
and every key the templates and the code use is in the catalogue."""
import os
import re
import string

from services.console import i18n
from services.reports import measures, national
from services.reports.periods import GRANULARITIES
from services.reports.views import TITLES
from services.matching import allocation, waiting

CONSOLE = os.path.join(os.path.dirname(i18n.__file__))
# keys the templates build from a prefix and a value, with every value they can take
BUILT = {
    "clock.": ("running", "due", "missed", "met", "met_late", "stopped"),
    "role.": ("coordinator", "facilitator", "auditor", "operator"),
    "language.": i18n.LANGUAGES,
    "letter.": ("queue", "error", "attempts", "event_id", "event_type", "original_exchange", "original_routing_key",
                "bytes"),
    "letters.done_": ("replay", "discard"),
    "offers.answered_": ("accept", "decline"),
    # the report pages: every measure, every column of a regional or national report, every period
    "reports.title.": tuple(TITLES),
    "reports.about.": tuple(TITLES),
    "reports.column.": tuple({c for m in (*measures.MEASURES.values(), *national.MEASURES.values()) for c in m.columns}),
    "reports.period.": GRANULARITIES,
    "reports.view_": ("regional", "national"),
    "reports.": ("from", "to"),
    "registry.done_": ("created", "changed", "deactivated"),
    "registry.level_": ("foundation", "intermediate", "advanced"),
    "registry.endorsement_": ("domestic_abuse", "sexual_violence", "youth", "hate_crime"),
    "waiting.reason_": waiting.REASONS,
    "waiting.ruled_out_": allocation.RULED_OUT,
}
KEY = re.compile(r"""["']((?:app|nav|language|role|form|sign_in|cases|case|consent|clock|due|review|decide|offers|"""
                 r"""my_cases|pipeline|letters|letter|ledger|error|reports|registry|waiting)\.[a-z_.]*)["']""")


def fields(text):
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def used_keys():
    found = set()
    for folder in (CONSOLE, os.path.join(CONSOLE, "templates")):
        for name in os.listdir(folder):
            if name.endswith((".py", ".html")):
                with open(os.path.join(folder, name), encoding="utf-8") as handle:
                    found |= set(KEY.findall(handle.read()))
    keys = set()
    for key in found:
        if key.endswith(".html"):   # a template's name, not a key
            continue
        if key in BUILT:
            keys |= {key + value for value in BUILT[key]}
        elif not key.endswith(".") and not key.endswith("_"):
            keys.add(key)
    return keys


def test_every_entry_has_english_and_welsh_with_the_same_fields():
    catalogue = i18n.catalogue()
    assert len(catalogue) > 100
    for key, entry in catalogue.items():
        assert set(entry) == set(i18n.LANGUAGES), key
        assert all(isinstance(entry[lang], str) and entry[lang].strip() for lang in i18n.LANGUAGES), key
        assert fields(entry["en"]) == fields(entry["cy"]), key


def test_every_key_used_is_in_the_catalogue():
    used = used_keys()
    assert len(used) > 100   # the scan finds the keys (a broken pattern would pass vacuously)
    assert sorted(used - set(i18n.catalogue())) == []


def test_welsh_is_not_a_copy_of_english():
    same = [k for k, e in i18n.catalogue().items() if e["en"] == e["cy"] and not k.startswith("language.")]
    assert same == []


def test_a_missing_key_is_an_error_and_an_unknown_language_falls_back_to_english():
    try:
        i18n.translate("en", "no.such.key")
    except i18n.MissingText:
        pass
    else:
        raise AssertionError("a missing key must raise")
    assert i18n.translate("fr", "sign_in.title") == "Sign in"
    assert i18n.translate("cy", "sign_in.title") == "Mewngofnodi"
    assert i18n.translate("cy", "case.title", case_id="c-1") == "Achos c-1"
