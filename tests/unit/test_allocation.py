from datetime import date

from services.matching.allocation import Candidate, Requirement, rank

TODAY = date(2026, 11, 26)
NEED = Requirement(level="intermediate", region="south-wales", languages=frozenset({"en"}), endorsements=frozenset())


def candidate(fid, **changes):
    values = dict(facilitator_id=fid, level="intermediate", regions=frozenset({"south-wales"}),
                  languages=frozenset({"en", "cy"}), endorsements=frozenset(), spare=2,
                  last_active=date(2026, 10, 1), active=True)
    values.update(changes)
    return Candidate(**values)


def test_hard_constraints_exclude_the_unfit():
    pool = [
        candidate("ok"),
        candidate("too-junior", level="foundation"),
        candidate("lapsed", last_active=date(2025, 11, 1)),
        candidate("elsewhere", regions=frozenset({"gwent"})),
        candidate("full", spare=0),
        candidate("inactive", active=False),
        candidate("english-only", languages=frozenset({"en"})),
    ]
    welsh_need = Requirement("intermediate", "south-wales", frozenset({"en", "cy"}), frozenset())
    assert [c.facilitator_id for c in rank(pool, welsh_need, TODAY)] == ["ok"]


def test_missing_endorsement_excludes():
    need = Requirement("intermediate", "south-wales", frozenset({"en"}), frozenset({"youth"}))
    pool = [candidate("plain"), candidate("youth", endorsements=frozenset({"youth"}))]
    assert [c.facilitator_id for c in rank(pool, need, TODAY)] == ["youth"]


def test_more_spare_capacity_ranks_first_and_seniors_are_kept_free():
    pool = [candidate("busy", spare=1), candidate("free", spare=3), candidate("senior", level="advanced", spare=3)]
    assert [c.facilitator_id for c in rank(pool, NEED, TODAY)] == ["free", "senior", "busy"]
