"""Properties of staffing, over random registries and cases (hypothesis, no broker).

The reservation callback here grants whatever it is asked for, so the only thing
keeping an unfit facilitator out is the selection itself; the oracle below restates
the constraints independently of `allocation`. The day of staffing is drawn too, and
every day in a registry is counted from it: the rules must hold on any day, leap days
and year ends included, not only on the day the test was written.
"""
from datetime import date, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from services.matching.allocation import Candidate, Requirement, staff

# any day, with the ones where counting days is easiest to get wrong drawn often
DAYS = st.one_of(st.sampled_from([date(2028, 2, 29), date(2028, 3, 1), date(2027, 12, 31), date(2028, 1, 1)]),
                 st.dates(min_value=date(2000, 1, 1), max_value=date(2199, 12, 31)))
LEVELS = ["foundation", "intermediate", "advanced"]
REGIONS = ["south-wales", "gwent", "north-wales"]
ENDORSEMENTS = ["domestic_abuse", "sexual_violence", "youth", "hate_crime"]
PEOPLE = ["participant:p-1", "participant:p-2", "referrer:r-1", "agency:swp"]


def candidates(today):
    """Facilitators whose days are counted from `today`."""
    def days_from_today(low, high):
        return st.integers(low, high).map(lambda n: today + timedelta(days=n))
    return st.builds(
        Candidate,
        facilitator_id=st.text("abcdefgh", min_size=1, max_size=4),
        level=st.sampled_from(LEVELS),
        regions=st.lists(st.sampled_from(REGIONS), min_size=1, max_size=3, unique=True).map(tuple),
        languages=st.sets(st.sampled_from(["en", "cy"]), min_size=1).map(frozenset),
        endorsements=st.sets(st.sampled_from(ENDORSEMENTS)).map(frozenset),
        capacity=st.integers(0, 4),
        spare=st.integers(-1, 4),
        trained_on=st.one_of(st.none(), days_from_today(-800, 0)),
        last_process_on=st.one_of(st.none(), days_from_today(-800, 0)),
        complex_case_trained=st.booleans(),
        prison_vetted_until=st.one_of(st.none(), days_from_today(-60, 60)),
        available_from=st.one_of(st.just(date.min), days_from_today(-30, 30)),
        conflicts=st.sets(st.sampled_from(PEOPLE), max_size=2).map(frozenset),
        active=st.booleans(),
    )

requirements = st.builds(
    Requirement,
    level=st.sampled_from(["intermediate", "advanced"]),
    region=st.sampled_from(REGIONS),
    languages=st.sets(st.sampled_from(["en", "cy"]), min_size=1).map(frozenset),
    endorsements=st.sets(st.sampled_from(ENDORSEMENTS), max_size=2).map(frozenset),
    prison_vetting=st.booleans(),
    co_facilitation=st.booleans(),
    conflicts=st.sets(st.sampled_from(PEOPLE), max_size=3).map(frozenset),
    preferred_endorsements=st.sets(st.sampled_from(ENDORSEMENTS), max_size=2).map(frozenset),
)


def oracle_fit(c, need, role, today):
    """The hard constraints, restated."""
    dates = [d for d in (c.trained_on, c.last_process_on) if d]
    current = bool(dates) and (today - max(dates)).days <= 365
    rank = LEVELS.index
    if role == "lead":
        level_ok = c.level != "foundation" and (
            rank(c.level) >= rank(need.level)
            or (need.level == "advanced" and c.level == "intermediate" and c.complex_case_trained))
    else:
        level_ok = True
    return (c.active and current and level_ok and c.available_from <= today and need.region in c.regions
            and need.languages <= c.languages and need.endorsements <= c.endorsements and c.spare > 0
            and (not need.prison_vetting or (c.prison_vetted_until is not None and c.prison_vetted_until >= today))
            and not (c.conflicts & need.conflicts))


def unique_ids(pool):
    seen = {}
    for c in pool:
        seen.setdefault(c.facilitator_id, c)
    return list(seen.values())


@settings(max_examples=400, deadline=None)
@given(today=DAYS, data=st.data(), need=requirements)
def test_nobody_unfit_is_ever_chosen_and_a_co_facilitator_is_there_when_required(today, data, need):
    pool = data.draw(st.lists(candidates(today), max_size=12).map(unique_ids), label="pool")
    by_id = {c.facilitator_id: c for c in pool}
    team = staff(need.roles(), need, today, lambda n, role: pool, lambda c, n, role: True)
    for role, facilitator_id in team.reserved.items():
        assert oracle_fit(by_id[facilitator_id], need, role, today), (role, by_id[facilitator_id])
    if need.co_facilitation and not team.unfilled:
        assert set(team.reserved) == {"lead", "co_facilitator"}
        assert team.reserved["lead"] != team.reserved["co_facilitator"]
    if not need.co_facilitation:
        assert "co_facilitator" not in team.reserved
    # a role is left unfilled only when nobody fit it
    if "lead" in team.unfilled:
        assert not any(oracle_fit(c, need, "lead", today) for c in pool)


@settings(max_examples=400, deadline=None)
@given(today=DAYS, data=st.data(), need=requirements, role=st.sampled_from(["lead", "co_facilitator"]))
def test_a_facilitator_is_ruled_out_for_a_reason_exactly_when_they_do_not_fit(today, data, need, role):
    from services.matching.allocation import RULED_OUT, fits, ruled_out, shortfall
    pool = data.draw(st.lists(candidates(today), max_size=8).map(unique_ids), label="pool")
    excluded = frozenset(c.facilitator_id for c in pool[:data.draw(st.integers(0, len(pool)), label="excluded")])
    need = need.excluding(*excluded)
    for c in pool:
        codes = ruled_out(c, need, today, role)
        fit = oracle_fit(c, need, role, today) and c.facilitator_id not in excluded
        assert (codes == []) == fits(c, need, today, role) == fit
        assert ("declined_or_on_case" in codes) == (c.facilitator_id in excluded)
        assert set(codes) <= set(RULED_OUT)
    short = shortfall(pool, need, today, role)
    assert short["in_region"] == len(pool)
    assert all(0 < count <= len(pool) for count in short["ruled_out"].values())
