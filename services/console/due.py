"""What is due next on a case, from the case as the referrals API shows it: pure."""

OPEN_CLOCKS = ("running", "due", "missed")


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
        if item.get("status") == "pending" and item.get("due_on"):
            found.append((item["due_on"], "due.agreement_item", item.get("kind") or ""))
    return sorted(found, key=lambda entry: entry[0])


def next_due(case):
    """The earliest open thing, or None."""
    found = upcoming(case)
    return found[0] if found else None
