from datetime import date

from services.matching.allocation import Candidate, Requirement, conflict_keys, fits, rank, score, staff

TODAY = date(2026, 11, 26)
NEED = Requirement(level="intermediate", region="south-wales", languages=frozenset({"en"}))


def candidate(fid, **changes):
    values = dict(facilitator_id=fid, level="intermediate", regions=("south-wales",),
                  languages=frozenset({"en", "cy"}), endorsements=frozenset(), capacity=4, spare=2,
                  trained_on=date(2024, 1, 10), last_process_on=date(2026, 10, 1))
    values.update(changes)
    return Candidate(**values)


def ids(ranked):
    return [c.facilitator_id for c in ranked]


def test_hard_constraints_exclude_the_unfit():
    pool = [
        candidate("ok"),
        candidate("too-junior", level="foundation"),
        candidate("lapsed", trained_on=date(2024, 1, 1), last_process_on=date(2025, 11, 1)),
        candidate("never-trained", trained_on=None, last_process_on=None),
        candidate("elsewhere", regions=("gwent",)),
        candidate("full", spare=0),
        candidate("over-capacity", spare=-1),
        candidate("inactive", active=False),
        candidate("on-leave", available_from=date(2026, 12, 1)),
        candidate("english-only", languages=frozenset({"en"})),
        candidate("knows-the-harmer", conflicts=frozenset({"participant:p-2"})),
        candidate("works-for-referrer", conflicts=frozenset({"agency:south-wales-police"})),
        candidate("declined", ),
    ]
    welsh_need = Requirement("intermediate", "south-wales", frozenset({"en", "cy"}),
                             conflicts=conflict_keys(["p-1", "p-2"], "ref-1", "south-wales-police"),
                             excluded=frozenset({"declined"}))
    assert ids(rank(pool, welsh_need, TODAY)) == ["ok"]


def test_currency_counts_training_or_a_process_within_twelve_months():
    trained_recently = candidate("t", trained_on=date(2026, 2, 1), last_process_on=None)
    delivered_a_year_ago = candidate("d", trained_on=None, last_process_on=date(2025, 11, 26))
    delivered_too_long_ago = candidate("x", trained_on=None, last_process_on=date(2025, 11, 25))
    assert ids(rank([trained_recently, delivered_a_year_ago, delivered_too_long_ago], NEED, TODAY)) == ["d", "t"]


def test_missing_endorsement_excludes():
    need = Requirement("intermediate", "south-wales", frozenset({"en"}), frozenset({"youth"}))
    pool = [candidate("plain"), candidate("youth", endorsements=frozenset({"youth"}))]
    assert ids(rank(pool, need, TODAY)) == ["youth"]


def test_custody_needs_vetting_valid_today():
    need = Requirement("intermediate", "south-wales", frozenset({"en"}), prison_vetting=True)
    pool = [candidate("unvetted"), candidate("expired", prison_vetted_until=date(2026, 11, 25)),
            candidate("vetted", prison_vetted_until=date(2027, 3, 1))]
    assert ids(rank(pool, need, TODAY)) == ["vetted"]


def test_complex_cases_need_advanced_or_complex_trained_intermediate_leads():
    need = Requirement("advanced", "south-wales", frozenset({"en"}), co_facilitation=True)
    pool = [candidate("inter"), candidate("inter-complex", complex_case_trained=True),
            candidate("adv", level="advanced"), candidate("found", level="foundation")]
    assert set(ids(rank(pool, need, TODAY, "lead"))) == {"inter-complex", "adv"}
    assert set(ids(rank(pool, need, TODAY, "co_facilitator"))) == {"inter", "inter-complex", "adv", "found"}


def test_score_balances_caseloads_and_keeps_seniors_free():
    pool = [candidate("busy", spare=1), candidate("free", spare=3), candidate("senior", level="advanced", spare=3)]
    assert ids(rank(pool, NEED, TODAY)) == ["free", "senior", "busy"]


def test_score_rewards_continuity_home_region_and_preferred_specialism():
    base = candidate("a")
    assert score(base, NEED) == 40 * 0.5 + 30 * 0.5 + 10  # level fit, balance, home region
    away = candidate("b", regions=("gwent", "south-wales"))
    assert score(away, NEED) == score(base, NEED) - 10
    assert score(base, Requirement(**{**NEED.__dict__, "continuity": frozenset({"a"})})) == score(base, NEED) + 20
    prefers_youth = Requirement(**{**NEED.__dict__, "preferred_endorsements": frozenset({"youth"})})
    assert score(candidate("y", endorsements=frozenset({"youth"})), prefers_youth) == score(base, NEED) + 20


def test_staff_reserves_a_lead_and_a_different_co_facilitator():
    need = Requirement("advanced", "south-wales", frozenset({"en"}), co_facilitation=True)
    pool = [candidate("adv", level="advanced", spare=3), candidate("found", level="foundation", spare=3)]
    taken = []
    team = staff(need.roles(), need, TODAY, lambda n, role: pool,
                 lambda c, n, role: taken.append(c.facilitator_id) or True)
    assert team.reserved == {"lead": "adv", "co_facilitator": "found"} and team.unfilled == []


def test_staff_moves_on_when_a_reservation_is_refused_and_reports_unfilled_roles():
    need = Requirement("intermediate", "south-wales", frozenset({"en"}), co_facilitation=True)
    pool = [candidate("first", spare=4), candidate("second", spare=1)]
    team = staff(need.roles(), need, TODAY, lambda n, role: pool, lambda c, n, role: c.facilitator_id != "first")
    assert team.reserved == {"lead": "second"} and team.unfilled == ["co_facilitator"]
    assert fits(pool[0], need, TODAY)
