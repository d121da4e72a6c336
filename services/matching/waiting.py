"""Cases waiting for staff: the cases no facilitator could yet be offered (waitlisted, or
pending between offers), longest-waiting first, for a coordinator to act on. Pure, but
for the store it reads.

Each entry says why the case waits as a code, never who is in it: the reason matching
recorded when it last failed to staff the case (`no_eligible_facilitator`: nobody fits
the lead role; `no_eligible_co_facilitator`: a lead fits, a co-facilitator does not),
`being_staffed` for a case between offers (it is being offered to someone now), or
`not_recorded` for a case waitlisted before reasons were kept. With it, the shortfall
(`allocation.shortfall`): how many facilitators work in the case's region, and how many
of them each hard constraint (capacity, level, languages, endorsements...) rules out for
the role nobody could fill.
"""
from marshmallow import Schema, fields, validate

from services.matching import assignments

REASONS = ("no_eligible_facilitator", "no_eligible_co_facilitator", "being_staffed", "not_recorded")


class WaitingQuery(Schema):
    """The query of the list of cases waiting for staff."""
    region = fields.Str(validate=validate.Length(min=1, max=50))
    limit = fields.Int(load_default=50, validate=validate.Range(min=1, max=500))
    offset = fields.Int(load_default=0, validate=validate.Range(min=0, max=1_000_000))


WAITING_QUERY = WaitingQuery()


def reason(case):
    if case.status == assignments.WAITLISTED:
        return case.waitlist_reason or "not_recorded"
    return "being_staffed"


def entry(case):
    """One case as the list shows it: ids, codes, times and counts only."""
    states = [slot.state for slot in case.slots]
    return {"case_id": case.case_id, "region": case.region, "status": case.status,
            "waiting_since": case.waitlisted_at.isoformat() if case.waitlisted_at else None,
            "reason": reason(case), "shortfall": case.waitlist_shortfall if case.status == assignments.WAITLISTED else None,
            "declined": states.count("declined"), "expired": states.count("expired")}


def page(store, regions, limit, offset):
    """A page of the list, in `regions` (None: every region), with the total and the next
    page's offset (None on the last page)."""
    found = store.waiting_cases(regions)
    shown = found[offset:offset + limit]
    following = offset + limit if offset + limit < len(found) else None
    return {"cases": [entry(case) for case in shown], "total": len(found), "limit": limit, "offset": offset,
            "next_offset": following}
