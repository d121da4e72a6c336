"""What is due next on a case, from the case as the referrals API shows it: pure."""

OPEN_CLOCKS = ("running", "due", "missed")
# the referrals listing's `next_due.kind` -> its message key
LISTED_KINDS = {"victim_told_about_rj": "due.victim_told", "support_referral": "due.support_referral",
                "agreement_item": "due.agreement_item"}


def upcoming(case):
    """Every open thing with a date, earliest first, as (ISO date or time, message key, detail)."""
    found = []
    clock = case.get("deadline") or {}
    if clock.get("state") in OPEN_CLOCKS and clock.get("due_at"):
        found.append((clock["due_at"], "due.victim_told", clock["state"]))
    support = case.get("support_referral") or {}
    if support.get("state") in OPEN_CLOCKS and support.get("due_at"):
        found.append((support["due_at"], "due.support_referral", support["state"]))
    for session in case.get("sessions") or ():
        if session.get("status") not in ("cancelled", "held") and session.get("starts_at"):
            found.append((session["starts_at"], "due.session", session.get("process_type") or ""))
    for item in (case.get("agreement") or {}).get("items") or ():
        if item.get("status") == "open" and item.get("due_on"):
            found.append((item["due_on"], "due.agreement_item", item.get("kind") or ""))
    return sorted(found, key=lambda entry: entry[0])


def next_due(case):
    """The earliest open thing, or None."""
    found = upcoming(case)
    return found[0] if found else None


def listed(summary):
    """What is due next on a case of a listing (its `next_due`), as (ISO time, message key,
    overdue), or None: the listing gives the earliest open deadline (Victims' Code clocks,
    agreement items; sessions are on the case page)."""
    found = summary.get("next_due")
    if not found:
        return None
    return found["at"], LISTED_KINDS.get(found["kind"], "due.other"), bool(found.get("overdue"))
