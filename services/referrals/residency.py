"""Which referral regions this deployment serves, and the rule for a referral outside them.

`AMENDS_REGION` (singular) names this deployment's residency zone: its broker, databases and
ledger. `AMENDS_REGIONS` lists the referral region codes (police-force areas) it accepts, for
example `south-wales,gwent`. There is no default: a deployment that has not said which regions
it serves would take any, so referrals does not start without the setting (the local bootstrap
sets the demo's four Welsh areas for development).

A referral, or a listing, naming a region outside the list is a 400 naming `region`, decided
before anything is read or written. Pure: no I/O.
"""
import re

from shared.config import regions_of

SETTING = "AMENDS_REGIONS"
# A region code as the intake schema takes one (services/referrals/intake.py)
CODE = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")
MAX_LENGTH = 50
NOT_SERVED = "This region is not served by this deployment: send the referral to the deployment that serves it."


class NotConfigured(ValueError):
    """AMENDS_REGIONS is empty, or names something that is not a region code."""


def served_regions(text):
    """The regions AMENDS_REGIONS names (comma-separated codes), as a frozenset; raise
    NotConfigured if it names none or anything that is not a region code."""
    codes = regions_of(text)
    if not codes:
        raise NotConfigured(f"{SETTING} is not set: give the referral regions this deployment serves, "
                            "comma-separated (for example south-wales,gwent)")
    bad = [code for code in codes if len(code) > MAX_LENGTH or not CODE.match(code)]
    if bad:
        raise NotConfigured(f"{SETTING} names something that is not a region code: {', '.join(map(repr, bad))} "
                            f"(use lower-case letters, digits, '-', '_' or '.', at most {MAX_LENGTH})")
    return frozenset(codes)


def serves(served, region):
    return region in served


def refusal(served, region):
    """None if `region` is served; else the 400's fields (naming `region`, and nothing the
    request said)."""
    return None if serves(served, region) else {"region": [NOT_SERVED]}
