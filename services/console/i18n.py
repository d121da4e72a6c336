"""The console's words in English and Welsh, from one catalogue (messages.yaml).

Every string a page shows is a key of the catalogue with an `en` and a `cy` text;
`tests/unit/test_console_language.py` checks that both are there for every key, and that
every key the templates and the code use exists. A text may hold `{name}` fields, filled
by `translate(..., name=value)`.
"""
import os
from functools import lru_cache

import yaml

LANGUAGES = ("en", "cy")
DEFAULT = "en"
CATALOGUE = os.path.join(os.path.dirname(__file__), "messages.yaml")


class MissingText(KeyError):
    """A key the catalogue does not have: a fault of the code, found by the tests."""


@lru_cache(maxsize=1)
def catalogue():
    with open(CATALOGUE, encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def language_of(value):
    """A supported language code, or the default."""
    return value if value in LANGUAGES else DEFAULT


def translate(language, key, **fields):
    entry = catalogue().get(key)
    if entry is None:
        raise MissingText(key)
    text = entry.get(language_of(language)) or entry[DEFAULT]
    return text.format(**fields) if fields else text


def translator(language):
    """`_(key, **fields)` for the templates, in `language`."""
    return lambda key, **fields: translate(language, key, **fields)
