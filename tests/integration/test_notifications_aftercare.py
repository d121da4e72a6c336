"""Notifications after the intervention on the real broker, FerretDB and a real SMTP
server (aiosmtpd): the item owner's reminder, the lead facilitator's missed-item notice,
the referrer's outcome and closure reason, the harmed person's end of intervention in
Welsh and in English, a survey invitation carrying its link, and the facilitator told
instead of a party in a facilitator-led case.

Contact details come over real RPC from the test-only holders in notifications_holders.py."""
import json
import uuid

from tests.integration.notifications_holders import PEOPLE
from tests.integration.test_notifications import assessed, assigned, new_case, platform, text_and_html  # noqa: F401
from tests.support import wait_until

FACILITATOR = {"name": "Gwen Facilitator", "email": "gwen@rj.example", "language": "en"}


def staffed(p, received, facilitator_id="fac-1"):
    """A case the directory knows, found suitable, whose lead has accepted it."""
    case_id = received["case_id"]
    PEOPLE.facilitators[facilitator_id] = dict(FACILITATOR)
    p.publish("referral.received", case_id, received, "referrals")
    p.publish("case.assessed", case_id, assessed(case_id), "matching")
    p.publish("facilitator.assigned", case_id, assigned(case_id, facilitator_id), "matching")
    p.publish("assignment.accepted", case_id, {"case_id": case_id, "assignment_id": f"asg-{facilitator_id}",
                                               "facilitator_id": facilitator_id}, "matching")
    wait_until(lambda: any(m["To"] == FACILITATOR["email"] for m in p.mails()), timeout=30)
    wait_until(lambda: f"asg-{facilitator_id}" in p.store().acceptances(case_id), timeout=30)
    return case_id


def mails_to(p, address, subject_part):
    return [m for m in p.mails() if m["To"] == address and subject_part in str(m["Subject"])]


def one_mail(p, address, subject_part, timeout=30):
    found = wait_until(lambda: mails_to(p, address, subject_part), timeout=timeout)
    assert len(found) == 1, [str(m["Subject"]) for m in found]
    return found[0]


ITEM = {"agreement_id": "agr-1", "item_id": "agi-" + "1" * 32, "kind": "restitution", "due_on": "2026-12-10"}


def test_the_owner_is_reminded_and_the_lead_facilitator_told_of_a_missed_item(platform):  # noqa: F811
    with platform() as p:
        received, ids = new_case(harmer={"preferred_channels": ["email"]})
        case_id = staffed(p, received)
        harmer = PEOPLE.parties[ids["harmer"]]
        p.publish("agreement.item_due", case_id, {"case_id": case_id, **ITEM, "owner_id": ids["harmer"],
                                                  "owner_role": "harmer"}, "referrals", times=2)
        reminder = one_mail(p, harmer["email"], "a reminder about your agreement")
        text, html = text_and_html(reminder)
        assert text.startswith("Hello Liam Evans,") and "a payment (restitution)" in text
        assert "Thursday 10 December 2026" in text and "reply with the word NO" in text and "Thursday" in html
        assert (ids["harmer"], "agreement_reminder", "notifications") in PEOPLE.calls
        p.publish("agreement.item_missed", case_id, {"case_id": case_id, **ITEM, "owner_role": "harmer",
                                                     "detected": "due_date_passed"}, "referrals", times=2)
        notice = one_mail(p, FACILITATOR["email"], "an agreed item was missed")
        text, _ = text_and_html(notice)
        assert f"In case {case_id}, an item of the outcome agreement was not completed" in text
        assert "for the person responsible to do by Thursday 10 December 2026" in text
        assert "Amends has recorded it as missed" in text and "Liam" not in text
        assert ("fac-1", "case_update", "notifications") in PEOPLE.calls
        # nobody else heard of the missed item
        assert not mails_to(p, harmer["email"], "missed") and not mails_to(
            p, PEOPLE.parties[ids["harmed"]]["email"], "missed")


def test_the_outcome_and_the_end_of_the_intervention_in_welsh_and_in_english(platform):  # noqa: F811
    with platform() as p:
        for language, subject, greeting, ended in (
                ("cy", "Cyfiawnder adferol: mae eich achos wedi dod i ben", "Helo Siân Jones,",
                 "Mae'r gwaith cyfiawnder adferol yn eich achos bellach wedi dod i ben"),
                ("en", "Restorative justice: your case has ended", "Hello Siân Jones,",
                 "The restorative justice work in your case has now ended")):
            received, ids = new_case(harmed={"language": language})
            case_id = staffed(p, received)
            harmed, referrer = PEOPLE.parties[ids["harmed"]], PEOPLE.parties[ids["referrer"]]
            p.publish("case.outcome_recorded", case_id, {"case_id": case_id, "outcome": "agreement_completed"},
                      "referrals")
            outcome = one_mail(p, referrer["email"], "outcome of the agreement")
            text, _ = text_and_html(outcome)
            assert f"Referral {case_id}: outcome of the agreement" == str(outcome["Subject"])
            assert "has been settled: the agreement was completed." in text and "Siân" not in text
            one_mail(p, harmed["email"], "cytundeb" if language == "cy" else "agreement")
            p.publish("case.closed", case_id, {"case_id": case_id, "from_status": "FOLLOW_UP",
                                               "reason": "completed_direct"}, "referrals", times=2)
            end = one_mail(p, harmed["email"], subject)
            text, html = text_and_html(end)
            assert end["Content-Language"] == language and text.startswith(greeting) and ended in text
            assert f'lang="{language}"' in html
            closure = one_mail(p, referrer["email"], "case closed")
            text, _ = text_and_html(closure)
            assert "The reason: completed (face to face)." in text and "Siân" not in text
        sent = p.emitted("notification.sent")
        assert sorted(e["data"]["template"] for e in sent if e["data"]["template"].endswith("case_closed")) == [
            "harmed.case_closed", "harmed.case_closed", "referrer.case_closed", "referrer.case_closed"]


def test_a_survey_invitation_carries_the_persons_own_link_and_the_bus_never_does(platform):  # noqa: F811
    link = f"https://rj.example/v1/surveys/{uuid.uuid4().hex}{uuid.uuid4().hex[:11]}"
    with platform() as p:
        received, ids = new_case(harmed={"survey_link": link}, harmer={"preferred_channels": ["email"]})
        case_id = staffed(p, received)
        p.publish("survey.requested", case_id, {"case_id": case_id, "survey_id": "srv-1", "participant_id":
                                                ids["harmed"], "participant_role": "harmed", "stage": "follow_up"},
                  "referrals")
        invitation = one_mail(p, PEOPLE.parties[ids["harmed"]]["email"], "sut aeth pethau i chi")
        text, html = text_and_html(invitation)
        assert f"Atebwch y cwestiynau yma: {link}" in text and f'href="{link}"' in html
        assert "Ychydig fisoedd yn ôl" in text   # the follow-up's words
        # the harmer has no open survey: nothing to invite them to
        p.publish("survey.requested", case_id, {"case_id": case_id, "survey_id": "srv-2", "participant_id":
                                                ids["harmer"], "participant_role": "harmer", "stage": "closure"},
                  "referrals")
        suppressed = wait_until(lambda: [e for e in p.emitted("notification.suppressed")
                                         if e["data"]["recipient_id"] == ids["harmer"]], timeout=30)
        assert suppressed[0]["data"]["reason"] == "no_open_survey"
        assert link not in json.dumps(p.emitted()) and link not in p.listing(case_id).text
        assert not any(link in str(d.facts) for d in p.store().deliveries_for_case(case_id))


def test_in_a_facilitator_led_case_the_facilitator_is_told_instead_of_the_parties(platform):  # noqa: F811
    with platform() as p:
        received, ids = new_case(flags=["domestic_abuse"])
        case_id = staffed(p, received)
        harmed, harmer = PEOPLE.parties[ids["harmed"]], PEOPLE.parties[ids["harmer"]]
        p.publish("case.outcome_recorded", case_id, {"case_id": case_id, "outcome": "agreement_not_completed"},
                  "referrals")
        p.publish("agreement.item_due", case_id, {"case_id": case_id, **ITEM, "owner_id": ids["harmer"],
                                                  "owner_role": "harmer"}, "referrals")
        p.publish("case.closed", case_id, {"case_id": case_id, "from_status": "AGREEMENT_MONITORING",
                                           "reason": "terminated_noncompliance"}, "referrals")
        outcome = one_mail(p, FACILITATOR["email"], "outcome of the agreement")
        assert "Amends has not told the person harmed" in text_and_html(outcome)[0]
        assert "Amends has not reminded them" in text_and_html(one_mail(p, FACILITATOR["email"], "falls due"))[0]
        closed = text_and_html(one_mail(p, FACILITATOR["email"], "case closed"))[0]
        assert "ended because the agreement was not kept" in closed and "Amends has not told the person" in closed
        one_mail(p, PEOPLE.parties[ids["referrer"]]["email"], "case closed")
        assert [m for m in p.mails() if m["To"] in (harmed["email"], harmer["email"])] == []
