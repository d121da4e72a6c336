"""Listing cases by due date: the rule of a case's next due (due_dates.py), the buckets a
window reads, and the listing on the in-memory store as the clocks change state."""
from datetime import date, datetime, timedelta, timezone

import pytest

from services.referrals import deadlines, due_dates, views, workflow
from services.referrals.cases import Case
from shared.web import BadRequest
from tests.factories import days_ago, referral_body
from tests.unit.test_referrals_workflow import (  # noqa: F401  (fixtures)
    COORDINATOR, REFERRER, SERVED, outbox, principal, refer, store, vault)

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=timezone.utc)   # a Thursday


def case(status="ASSESSMENT", **fields):
    return Case(case_id="c-1", status=status, agency="a", region="south-wales", attributes={},
                referrer={"party_id": "r"}, **fields)


def test_the_next_due_is_the_earliest_open_deadline_and_a_met_or_stopped_one_is_not_open():
    rj, support = NOW + timedelta(days=4), NOW + timedelta(days=1)
    both = case(deadline_due_at=rj, support_due_at=support)
    assert both.next_due == due_dates.NextDue(support, "support_referral")
    assert case(deadline_due_at=rj, support_due_at=support, support_settled_at=NOW).next_due.kind == \
        "victim_told_about_rj"
    assert case(deadline_due_at=rj, victim_told_at=NOW).next_due is None
    assert case(deadline_due_at=rj, support_due_at=support, status="CLOSED").next_due is None
    item = {"status": "open", "due_on": "2026-12-01"}
    with_item = case(deadline_due_at=rj, agreement={"items": [item, {"status": "completed", "due_on": "2026-11-01"}]})
    assert with_item.next_due == due_dates.NextDue(deadlines.end_of_day(date(2026, 12, 1)), "agreement_item")


def test_a_case_is_bucketed_by_its_week_until_a_deadline_passes_or_is_announced_missed():
    ahead = NOW + timedelta(days=5)   # Tuesday 8 December
    assert due_dates.stored_fields(case(deadline_due_at=ahead), NOW) == {
        "next_due_at": ahead, "next_due_kind": "victim_told_about_rj", "due_bucket": "2026-12-07"}
    assert due_dates.stored_fields(case(deadline_due_at=NOW - timedelta(seconds=1)), NOW)["due_bucket"] == "overdue"
    announced = case(deadline_due_at=NOW - timedelta(days=1), support_due_at=ahead, support_missed_sent=True)
    assert due_dates.stored_fields(announced, NOW)["due_bucket"] == "overdue"
    assert due_dates.stored_fields(case(), NOW) == {"next_due_at": None, "next_due_kind": None, "due_bucket": None}
    # London weeks: Sunday 23:30 UTC in summer is already Monday in London
    assert due_dates.week_of(datetime(2026, 6, 7, 23, 30, tzinfo=timezone.utc)) == "2026-06-08"


def test_a_window_reads_overdue_and_each_week_it_covers_from_the_oldest_unswept_day():
    window = due_dates.DueWindow(now=NOW, before=NOW + timedelta(days=14))
    assert window.buckets(date(2026, 12, 2)) == ["overdue", "2026-11-30", "2026-12-07", "2026-12-14"]
    # a timer behind by a week: its week is read too, for deadlines passed and not yet announced
    assert window.buckets(date(2026, 11, 25))[:2] == ["overdue", "2026-11-23"]
    later = due_dates.DueWindow(now=NOW, before=NOW + timedelta(days=14), after=NOW + timedelta(days=8))
    assert later.buckets(date(2026, 12, 2)) == ["2026-12-07", "2026-12-14"]
    assert due_dates.DueWindow(now=NOW, overdue=True).buckets(date(2026, 12, 2)) == ["overdue", "2026-11-30"]
    assert later.holds(NOW + timedelta(days=8)) and not later.holds(NOW + timedelta(days=14))
    assert not later.holds(None)
    assert due_dates.DueWindow(now=NOW, overdue=True).holds(NOW - timedelta(days=300))
    assert not due_dates.DueWindow(now=NOW, overdue=True).holds(NOW + timedelta(seconds=1))


def test_the_query_takes_a_date_or_a_time_with_its_offset_and_names_what_is_wrong():
    schema = views.CaseQuerySchema()
    loaded = schema.load({"due_before": "2026-12-10", "due_after": "2026-12-03T09:00:00+01:00"})
    assert loaded["due_before"] == deadlines.start_of_day(date(2026, 12, 10))
    assert loaded["due_after"] == datetime(2026, 12, 3, 8, 0, tzinfo=timezone.utc)
    for query, field in (({"due_before": "next week"}, "due_before"),
                         ({"due_before": "2026-12-10T09:00:00"}, "due_before"),   # no offset: which time?
                         ({"due_before": "1999-12-31"}, "due_before"),
                         ({"due_before": (date.today() + timedelta(weeks=60)).isoformat()}, "due_before"),
                         ({"due_after": "2026-12-01"}, "due_after"),               # a window needs its end
                         ({"due_before": "2026-12-01", "due_after": "2026-12-02"}, "due_after"),
                         ({"overdue": "perhaps"}, "overdue"),
                         ({"due_before": "9999-12-31T23:59:59-23:59"}, "due_before")):
        with pytest.raises(Exception) as bad:
            schema.load(query)
        assert list(bad.value.messages) == [field], query


def test_listing_by_due_date_follows_the_clocks_soonest_first_within_the_callers_reach(store, outbox, vault):
    late, _ = refer(store, outbox, vault, body=referral_body(0, crime_reported_on=days_ago(14)))
    fresh, _ = refer(store, outbox, vault, body=referral_body(0, crime_reported_on=days_ago(0)))
    elsewhere, _ = refer(store, outbox, vault, body=referral_body(2, crime_reported_on=days_ago(0)),
                         who=principal("referrer", regions=("gwent",)))
    soon = (date.today() + timedelta(days=30)).isoformat()

    def listed(who=COORDINATOR, **args):
        return [(item["case_id"], item["next_due"]["kind"], item["next_due"]["overdue"])
                for item in workflow.list_cases(store, args, who, served=SERVED)["items"]]

    assert listed(due_before=soon) == [(late, "support_referral", True), (fresh, "support_referral", False)]
    assert listed(overdue="true") == [(late, "support_referral", True)]
    assert listed(due_before=soon, due_after=date.today().isoformat()) == [(fresh, "support_referral", False)]
    assert [c for c, _, _ in listed(principal("coordinator", regions=("gwent",)), due_before=soon)] == [elsewhere]
    # elsewhere's victim has enhanced rights: told about RJ within 1 working day, before fresh's 2
    assert listed(REFERRER, due_before=soon) == [(late, "support_referral", True),
                                                 (elsewhere, "victim_told_about_rj", False),
                                                 (fresh, "support_referral", False)]

    harmed = store.load_case(fresh).participants[0]["party_id"]
    support_due = store.load_case(fresh).support_due_at
    workflow.record_support_referral(store, fresh, {"participant_id": harmed, "outcome": "declined"}, COORDINATOR,
                                     outbox)
    before_rj = (support_due + timedelta(minutes=1)).isoformat()
    assert fresh not in [c for c, _, _ in listed(due_before=before_rj, due_after=date.today().isoformat())]
    assert (fresh, "victim_told_about_rj", False) in listed(due_before=soon)
    workflow.record_consent(store, fresh, {"participant_id": harmed, "scope": "participation", "granted": True},
                            COORDINATOR, outbox)
    assert fresh not in [c for c, _, _ in listed(due_before=soon)]
    assert workflow.list_cases(store, {}, COORDINATOR, served=SERVED)["items"][0]["next_due"] is None

    with pytest.raises(BadRequest) as bad:
        workflow.list_cases(store, {"due_before": "soon"}, COORDINATOR, served=SERVED)
    assert list(bad.value.details["fields"]) == ["due_before"]
