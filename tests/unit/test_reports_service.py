"""The reports service's own rules, without a broker or a database: the state saved and read
back, the ledger followed (and resumed, handed over and rebuilt) through an in-memory store,
small numbers suppressed in the national view, and what each caller's query gives."""
import csv
import io
from collections import Counter
from datetime import date

import pytest

from services.reports import disclosure, measures, national, projection, snapshot, views
from services.reports.follower import FeedSkipped, LedgerFollower, rebuild
from services.reports.memory_store import InMemoryReportsStore
from shared import statistics_profile as profile
from shared.security.api_keys import Principal
from tests.unit.test_reports import NORTH, WORLD, T, event, events_of, month
from tests.unit.test_statistics_profile import KEY

STORIES = WORLD + (NORTH,)


@pytest.fixture(scope="module")
def ledger():
    """The stories' events as records' feed serves them: positions from 0, in order."""
    return [{"seq": seq, "event": e, "leaf_hash": "00"} for seq, e in enumerate(events_of(STORIES))]


@pytest.fixture(scope="module")
def state(ledger):
    return projection.fold(item["event"] for item in ledger)


def all_rows(state):
    return {name: measures.compute(name, state) for name in measures.MEASURES}


# --- the state saved, and read back -------------------------------------------------------

def test_a_saved_state_reads_back_equal_and_gives_the_same_reports(state):
    data = snapshot.dump(state)
    back = snapshot.load(data)
    assert back == state
    assert all_rows(back) == all_rows(state)
    assert back.cases["case-a"].counted and back.cases["case-a"].referral.region == "south-wales"


@pytest.mark.parametrize("data", [b"", b"not compressed", __import__("zlib").compress(b'{"format": 99}'),
                                  __import__("zlib").compress(b"[1, 2]")])
def test_bytes_that_are_no_saved_state_are_refused_plainly(data):
    with pytest.raises(snapshot.UnreadableSnapshot):
        snapshot.load(data)


# --- following the ledger -----------------------------------------------------------------

class Feed:
    """records' `entries_after`, over a list of entries, counting what it served."""

    def __init__(self, entries):
        self.entries = entries
        self.served = []

    def __call__(self, after, limit):
        items = [e for e in self.entries if e["seq"] > after][:limit]
        self.served += [e["seq"] for e in items]
        return {"items": items, "tree_size": len(self.entries)}


def test_the_follower_folds_the_feed_page_by_page_and_saves_state_and_position_together(ledger, state):
    store, feed = InMemoryReportsStore(), Feed(ledger)
    follower = LedgerFollower(store, page=7, pages_per_round=2)
    assert follower.round(feed, now=0) == 14 and follower.position == 13
    saved = store.latest()
    assert (saved.generation, saved.position) == (0, 13)
    assert snapshot.load(store.state_of(saved)) == projection.fold(e["event"] for e in ledger[:14])
    while follower.round(feed, now=1):
        pass
    assert follower.position == len(ledger) - 1 and follower.state == state
    assert feed.served == list(range(len(ledger)))   # each entry asked for once


def test_a_restart_resumes_after_the_saved_position_and_counts_nothing_twice(ledger, state):
    store = InMemoryReportsStore()
    first = LedgerFollower(store, page=10)
    first.round(Feed(ledger[:25]), now=0)
    first.stop(now=0)
    again, feed = LedgerFollower(store, page=10), Feed(ledger)
    again.round(feed, now=1)
    assert feed.served[0] == 25 and feed.served == list(range(25, len(ledger)))
    assert again.state == state and all_rows(again.state) == all_rows(state)


def test_saves_are_spaced_and_what_is_folded_meanwhile_is_saved_on_stopping(ledger, state):
    store = InMemoryReportsStore()
    follower = LedgerFollower(store, page=10, pages_per_round=1, save_every=5)
    follower.round(Feed(ledger), now=0)
    follower.round(Feed(ledger), now=2)
    assert store.saves == 1 and store.latest().position == 9 and follower.position == 19
    follower.round(Feed(ledger), now=5)
    assert store.saves == 2 and store.latest().position == 29
    follower.round(Feed(ledger), now=6)
    follower.stop(now=7)
    assert store.saves == 3 and store.latest().position == follower.position == 39
    assert store.lease is None


def test_one_process_follows_at_a_time_and_the_other_serves_what_it_saved(ledger, state):
    store, feed = InMemoryReportsStore(), Feed(ledger)
    leader, standby = LedgerFollower(store, lease=10), LedgerFollower(store, lease=10)
    leader.round(feed, now=0)
    assert standby.round(feed, now=1) == 0 and not standby.leading
    assert standby.state == state and standby.position == leader.position   # loaded, not folded
    assert feed.served == list(range(len(ledger)))
    # the leader goes quiet; once its lease lapses the standby takes over where it had got to
    grown = ledger + [{"seq": len(ledger), "event": event("referral.received", T("2026-04-20 10:00"),
                                                            case_id="case-late"), "leaf_hash": "00"}]
    assert standby.round(Feed(grown), now=20) == 1 and standby.leading
    assert "case-late" in standby.state.cases and store.latest().position == len(ledger)


def test_a_rebuild_folds_the_ledger_again_from_the_beginning_to_the_same_state(ledger, state):
    store, feed = InMemoryReportsStore(), Feed(ledger)
    follower = LedgerFollower(store)
    follower.round(feed, now=0)
    head = rebuild(store)
    assert (head.generation, head.position) == (1, -1)
    feed.served.clear()
    follower.round(feed, now=1)
    assert feed.served == list(range(len(ledger)))   # all of it again
    assert follower.generation == 1 and follower.state == state
    assert store.latest().generation == 1 and store.latest().position == len(ledger) - 1


def test_a_feed_that_skips_a_position_stops_the_follower_without_saving(ledger):
    store = InMemoryReportsStore()
    gap = Feed(ledger[:3] + ledger[4:8])
    with pytest.raises(FeedSkipped):
        LedgerFollower(store).round(gap, now=0)
    assert store.latest() is None


# --- the national view, from the read model -----------------------------------------------

def test_the_national_view_from_the_read_model_equals_the_one_from_the_statistics_sent(ledger, state):
    events = [item["event"] for item in ledger]
    key = profile.key_from_text(KEY)
    sent = [profile.statistic(e, region="test", offence_category=offence, key=key) for e in events
            for offence in [next(r["data"]["offence_category"] for r in events if r["type"] == "referral.received"
                                 and r["data"]["case_id"] == e["data"]["case_id"])]]
    sent = [s for s in sent if s is not None]
    ours = list(national.statistics_of(state, "test"))
    for name in national.MEASURES:
        assert national.compute(name, ours) == national.compute(name, sent), name


# --- small numbers ----------------------------------------------------------------------------

def test_counts_from_one_to_four_are_hidden_and_zero_and_five_are_shown():
    rows = [{"period": "2026-W10", "region": "test", "offence_category": c, "referrals": n}
            for c, n in (("theft", 0), ("assault", 1), ("burglary", 4), ("criminal_damage", 5))]
    hidden = disclosure.suppress("referrals", rows)
    assert [r["referrals"] for r in hidden] == [0, None, None, 5]
    assert [r["suppressed"] for r in hidden] == [[], ["referrals"], ["referrals"], []]
    assert [r["referrals"] for r in disclosure.csv_rows(hidden)] == [0, "[c]", "[c]", 5]


def test_a_hidden_count_hides_its_rate_and_the_count_that_would_give_it_back():
    row = {"period": "2026-W10", "region": "test", "agreements_recorded": 12, "outcomes_recorded": 10,
           "completed": 8, "not_completed": 2, "completion_rate": 0.8}
    [hidden] = disclosure.suppress("agreements", [row])
    assert hidden["suppressed"] == ["completed", "completion_rate", "not_completed"]
    assert (hidden["agreements_recorded"], hidden["outcomes_recorded"]) == (12, 10)


def test_a_hidden_process_count_hides_every_share_of_its_week_and_region():
    rows = [{"period": "2026-W10", "region": "test", "process_class": "direct", "cases": 10, "share": 0.7692},
            {"period": "2026-W10", "region": "test", "process_class": "indirect", "cases": 3, "share": 0.2308},
            {"period": "2026-W11", "region": "test", "process_class": "direct", "cases": 6, "share": 1.0}]
    hidden = disclosure.suppress("processes", rows)
    assert [(r["cases"], r["share"]) for r in hidden] == [(10, None), (None, None), (6, 1.0)]


def test_every_national_measure_has_its_suppression_rules():
    assert set(disclosure.RULES) == set(national.MEASURES)
    for name, rules in disclosure.RULES.items():
        columns = set(national.MEASURES[name].columns)
        assert set(rules.counts) | set(rules.rates) | set(rules.group_rates) <= columns


# --- what a caller sees -----------------------------------------------------------------------

def principal(role, regions=(), national_key=False):
    return Principal(role=role, agency="test-agency", key_id="k", subject="s", regions=frozenset(regions),
                     national=national_key)


COORDINATOR = principal("coordinator", ["gwent"])
AUDITOR = principal("auditor", national_key=True)


def test_who_sees_which_view():
    assert views.audience(COORDINATOR) == views.Audience(views.REGIONAL, frozenset({"gwent"}))
    assert views.audience(principal("coordinator", national_key=True)) == views.Audience(views.REGIONAL, None)
    assert views.audience(AUDITOR) == views.Audience(views.NATIONAL, None)
    for refused in (principal("auditor", ["gwent"]), principal("referrer", ["gwent"]), principal("facilitator")):
        with pytest.raises(views.NotAllowed):
            views.audience(refused)


@pytest.mark.parametrize("args, seen_by, param", [
    ({"period": "fortnight"}, COORDINATOR, "period"),
    ({"period": "month"}, AUDITOR, "period"),
    ({"from": "2026-13-01"}, COORDINATOR, "from"),
    ({"to": "yesterday"}, COORDINATOR, "to"),
    ({"from": "2026-04-02", "to": "2026-04-01"}, COORDINATOR, "to"),
])
def test_a_bad_query_is_refused_naming_the_parameter(args, seen_by, param):
    with pytest.raises(views.InvalidQuery) as refused:
        views.query(args, views.audience(seen_by))
    assert refused.value.param == param and f"'{param}'" in str(refused.value)


def test_a_coordinator_s_report_is_the_full_report_s_rows_of_their_regions(state):
    seen_by = views.audience(COORDINATOR)
    made = views.report("referrals", state, seen_by, views.query({}, seen_by), "test")
    full = measures.compute("referrals", state)
    assert made.rows == [row for row in full if row["region"] == "gwent"] and made.rows
    assert Counter(row["region"] for row in made.rows) == Counter({"gwent": len(made.rows)})


def test_from_and_to_keep_the_periods_the_days_fall_in(state):
    seen_by = views.audience(principal("coordinator", national_key=True))
    asked = views.query({"period": "month", "from": "2026-04-01", "to": "2026-04-30"}, seen_by)
    made = views.report("referrals", state, seen_by, asked, "test")
    expected = Counter((month(s.referred), s.region) for s in STORIES if month(s.referred) == "2026-04")
    assert Counter((r["period"], r["region"]) for r in made.rows for _ in range(r["referrals"])) == expected
    assert expected   # the stories have April referrals


def test_unknown_measures_and_those_the_national_view_cannot_have_are_not_found(state):
    for name, who in (("nonesuch", COORDINATOR), ("attrition", AUDITOR), ("referrals.csv", COORDINATOR)):
        seen_by = views.audience(who)
        with pytest.raises(views.UnknownMeasure):
            views.report(name, state, seen_by, views.query({}, seen_by), "test")


def test_the_json_gives_each_series_its_values_per_period_as_the_rows_have_them(state):
    seen_by = views.audience(principal("coordinator", national_key=True))
    made = views.report("suitability", state, seen_by, views.query({}, seen_by), "test")
    body = views.as_json(made, state, 41)
    assert body["ledger_position"] == 41 and body["title"] == "Suitability decisions"
    assert [c["kind"] for c in body["columns"]] == ["period", "dimension", "dimension", "dimension", "count", "count"]
    assert body["periods"] == sorted({r["period"] for r in made.rows})
    for row in made.rows:
        [series] = [s for s in body["series"] if s["key"] == {"region": row["region"], "decision": row["decision"],
                                                              "basis": row["basis"]}]
        assert series["values"]["decisions"][body["periods"].index(row["period"])] == row["decisions"]
    assert sum(sum(s["values"]["decisions"]) for s in body["series"]) == sum(r["decisions"] for r in made.rows)


def test_the_national_json_and_csv_hide_small_numbers(state):
    seen_by = views.audience(AUDITOR)
    made = views.report("referrals", state, seen_by, views.query({}, seen_by), "test")
    assert made.rows and all(r["referrals"] is None for r in made.rows)   # one or two a week: all small
    assert {r["region"] for r in made.rows} == {"test"} and "agency" not in made.rows[0]
    body = views.as_json(made, state, 0)
    assert body["suppression"] == {"below": 5, "csv_marker": "[c]"}
    parsed = list(csv.DictReader(io.StringIO(views.as_csv(made))))
    assert [r["referrals"] for r in parsed] == ["[c]"] * len(made.rows)


def test_the_catalogue_lists_each_measure_the_caller_may_ask_for_with_its_title():
    regional = views.catalogue(views.audience(COORDINATOR))
    assert [m["name"] for m in regional] == list(measures.MEASURES)
    assert all(m["title"] == views.TITLES[m["name"]] for m in regional)
    assert [m["name"] for m in views.catalogue(views.audience(AUDITOR))] == [
        n for n in measures.MEASURES if n in national.MEASURES]


def test_days_from_and_to_are_echoed_as_asked(state):
    seen_by = views.audience(COORDINATOR)
    asked = views.query({"from": "2026-03-01"}, seen_by)
    assert (asked.start, asked.end, asked.first, asked.last) == (date(2026, 3, 1), None, "2026-03", None)
