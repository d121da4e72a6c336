"""Who may see and act on a case: one set of rules for every service. Pure, no I/O.

A role alone is never enough: what a person may reach follows their relation to the
case.

- referrer: the cases their own agency referred; never personal data; no case actions.
- coordinator: the cases in their regions, with personal data; acts on them.
- facilitator: a case while they hold an open offer on it (no personal data), or an
  accepted assignment (personal data, for that case only); acts only on cases they hold.
- auditor: the cases in their regions (or every region, for a national auditor);
  never personal data; no case actions.
- operator: the cases in their key's regions (or every region, for a national key), and
  only through the few routes that let an operator in at all (a case's ledger bundle);
  never personal data; no case actions; no listing.

A case the caller may not see answers 404, as if it did not exist: even a case's
existence (that a given person is a party to a crime) is sensitive. A case the caller
may see but not act on answers 403.
"""
from dataclasses import dataclass, field


@dataclass(frozen=True)
class CaseRelation:
    """What a service knows of a case that decides who may reach it."""
    agency: str = None
    region: str = None
    offered_to: frozenset = field(default_factory=frozenset)  # facilitator ids with an open offer
    held_by: frozenset = field(default_factory=frozenset)     # facilitator ids with an accepted assignment


def may_see(principal, case):
    role = principal.role
    if role == "referrer":
        return case.agency is not None and case.agency == principal.agency
    if role in ("coordinator", "auditor", "operator"):
        return case.region is not None and principal.covers(case.region)
    if role == "facilitator":
        return principal.subject in case.offered_to or principal.subject in case.held_by
    return False


def may_act(principal, case):
    """Change the case: its lifecycle, consents, and the work on it."""
    if principal.role == "coordinator":
        return may_see(principal, case)
    if principal.role == "facilitator":
        return principal.subject in case.held_by
    return False


def sees_personal_data(principal, case):
    # the people who act on a case are the people whose work needs its personal data: the
    # coordinator of its region, and the facilitator holding it (for that case only)
    return may_act(principal, case)


def listing_filter(principal):
    """What a listing of cases is narrowed to, as field -> allowed values (None: no narrowing
    on that field); a role with no listing gets None."""
    if principal.role == "referrer":
        return {"agency": [principal.agency]}
    if principal.role in ("coordinator", "auditor"):
        return {} if principal.national else {"region": sorted(principal.regions)}
    if principal.role == "facilitator":
        return {"facilitators": [principal.subject]}
    return None


# --- who holds a case, followed from matching's events ---------------------------------

# matching's events that change who holds a case, and the state each leaves an offer in
STAFFING_EVENTS = {"facilitator.assigned": "offered", "assignment.accepted": "accepted",
                   "assignment.declined": "ended", "facilitator.released": "ended"}
_ORDER = ("offered", "accepted", "ended")


def follow_staffing(staffing, event_type, data):
    """`staffing` (assignment id -> {facilitator_id, state}) after one of matching's events.
    An offer only moves forward (offered, accepted, ended), so events that arrive out of
    order, or twice, leave the same result."""
    state = STAFFING_EVENTS.get(event_type)
    if state is None or "assignment_id" not in data:
        return staffing
    current = staffing.get(data["assignment_id"])
    if current is not None and _ORDER.index(current["state"]) >= _ORDER.index(state):
        return staffing
    return {**staffing, data["assignment_id"]: {"facilitator_id": data["facilitator_id"], "state": state}}


def holders(staffing):
    """(offered_to, held_by): the facilitators with an open offer, and with an accepted one."""
    offered = frozenset(s["facilitator_id"] for s in staffing.values() if s["state"] == "offered")
    held = frozenset(s["facilitator_id"] for s in staffing.values() if s["state"] == "accepted")
    return offered, held


def relation_from_events(events):
    """A case's relation, from its events in any order (the ledger's view of a case)."""
    agency = region = None
    staffing = {}
    for event in events:
        if event["type"] == "referral.received":
            agency, region = event["data"].get("agency"), event["data"].get("region")
        staffing = follow_staffing(staffing, event["type"], event["data"])
    offered, held = holders(staffing)
    return CaseRelation(agency=agency, region=region, offered_to=offered, held_by=held)
