"""The fault suite's judge must be able to say no: missing, doubled and absent events."""
from email.message import EmailMessage

from tests.reliability.audit import audit_cases, duplicate_mails


def event(event_id, type_, case="c1", **data):
    return {"id": event_id, "type": type_, "subject": case, "data": {"case_id": case, **data}}


BUS = [event("e1", "referral.received"), event("e2", "case.assessed", assessment_id="a1", decision="suitable"),
       event("e2", "case.assessed", assessment_id="a1", decision="suitable")]  # republished after a crash


def test_a_complete_ledger_passes():
    [audit] = audit_cases(["c1"], BUS, BUS[:2], ("referral.received", "case.assessed"))
    assert (audit.expected, audit.found, audit.missing, audit.duplicates, audit.absent_types) == (2, 2, [], [], [])


def test_a_missing_entry_is_named():
    [audit] = audit_cases(["c1"], BUS, BUS[:1], ("referral.received",))
    assert audit.missing == ["e2"]


def test_the_same_fact_under_a_new_id_is_a_duplicate():
    again = event("e3", "case.assessed", assessment_id="a2", decision="suitable")  # the handler ran twice
    [audit] = audit_cases(["c1"], BUS + [again], BUS[:2] + [again])
    assert audit.duplicates == ["case.assessed x2"] and audit.found == 3 and audit.expected == 2


def test_a_required_type_nobody_published_is_absent():
    [audit] = audit_cases(["c1"], BUS, BUS[:2], ("referral.received", "notification.sent"))
    assert audit.absent_types == ["notification.sent"]


def mail(to, subject, body, delivery=None):
    message = EmailMessage()
    message["To"], message["Subject"] = to, subject
    if delivery:
        message["X-Amends-Delivery"] = delivery
    message.set_content(body)
    return message


def test_duplicate_mails_are_found_by_delivery_or_by_content():
    assert duplicate_mails([mail("a@x", "s", "b", "k1"), mail("a@x", "s", "b", "k2")]) == {}
    assert list(duplicate_mails([mail("a@x", "s", "b", "k1"), mail("a@x", "s", "b", "k1")]).values()) == [2]
    assert list(duplicate_mails([mail("a@x", "s", "b"), mail("a@x", "s", "b")]).values()) == [2]


def test_an_entry_the_bus_never_showed_is_unexplained_and_a_fault():
    stray = event("e9", "facilitator.assigned", assignment_id="s1", facilitator_id="f1")
    [audit] = audit_cases(["c1"], BUS, BUS[:2] + [stray])
    assert audit.unexplained == ["e9"] and audit.found == 3 and audit.expected == 2 and audit.faults


def test_a_complete_ledger_has_no_faults():
    [audit] = audit_cases(["c1"], BUS, BUS[:2], ("referral.received",))
    assert not audit.faults
