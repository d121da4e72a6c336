"""The notifications workflow after the intervention, on the in-memory store: the survey
link travels only from the holder to the message, a closure withdraws what waits for a
window but not what the closure itself sets off, and the lead facilitator is the one who
accepted."""
import pytest

from services.notifications import workflow
from tests.unit.test_notifications_workflow import CASE, EVENINGS, HARMED, HARMER, OPENS, World, person

LINK = "https://rj.example/v1/surveys/Zx9_-aSecretTokenOf43Characters0123456789ab"


@pytest.fixture
def world():
    return World()


def survey_event(world, role="harmed", stage="closure"):
    workflow.remember(world.referral(), world.store)
    return world.event("survey.requested", {"survey_id": "srv-1", "participant_id": HARMED if role == "harmed"
                                            else HARMER, "participant_role": role, "stage": stage})


def test_a_survey_invitation_carries_the_link_the_holder_released_and_stores_none_of_it(world):
    world.holder.answers[HARMED] = person(survey_link=LINK)
    sent = []
    world.courier.send = lambda channel, address, message, nid: sent.append(message)
    event = survey_event(world)
    workflow.handle(event, world.ports)
    (message,) = sent
    assert LINK in message.text and f'href="{LINK}"' in message.html and message.language == "cy"
    assert world.holder.asked == [(HARMED, "survey_invitation")]
    delivery = world.delivery(event, HARMED)
    assert delivery.status == "sent" and LINK not in repr(delivery) and "survey_link" not in delivery.facts
    assert LINK not in repr(world.outbox.published)


def test_a_survey_invitation_without_a_link_is_not_sent(world):
    world.holder.answers[HARMED] = person()   # granted, but no open survey to give
    event = survey_event(world)
    workflow.handle(event, world.ports)
    delivery = world.delivery(event, HARMED)
    assert (delivery.status, delivery.reason) == ("suppressed", "no_open_survey")
    assert world.courier.sent == []


def test_a_deferred_survey_invitation_asks_for_its_link_again_at_send_time(world):
    world.holder.answers[HARMED] = person(EVENINGS, survey_link=LINK)
    sent = []
    world.courier.send = lambda channel, address, message, nid: sent.append(message)
    event = survey_event(world)
    workflow.handle(event, world.ports)
    assert world.delivery(event, HARMED).status == "deferred" and sent == []
    world.clock.now = OPENS
    assert workflow.send_due(world.ports) == 1
    assert LINK in sent[0].text and world.holder.asked.count((HARMED, "survey_invitation")) == 2


def test_closing_withdraws_a_waiting_reminder_but_tells_the_end_of_the_intervention(world):
    world.holder.answers[HARMER] = person(EVENINGS)
    world.holder.answers[HARMED] = person(EVENINGS)
    workflow.remember(world.referral(), world.store)
    reminder = world.event("agreement.item_due", {"agreement_id": "agr-1", "item_id": "agi-1", "kind": "apology",
                                                  "owner_id": HARMER, "owner_role": "harmer", "due_on": "2026-11-30"})
    workflow.handle(reminder, world.ports)
    assert world.delivery(reminder, HARMER).status == "deferred"
    closed = world.event("case.closed", {"from_status": "AGREEMENT_MONITORING", "reason": "partial"})
    assert workflow.handle(closed, world.ports) == 1          # the reminder, withdrawn
    assert (world.delivery(reminder, HARMER).status, world.delivery(reminder, HARMER).reason) == (
        "suppressed", "case_closed")
    # the harmed person's end-of-intervention message waits for their window; the referrer is told now
    assert world.delivery(closed, HARMED).status == "deferred"
    assert [t for _, _, t, _ in world.courier.sent] == ["referrer.case_closed"]
    assert workflow.handle(closed, world.ports) == 0          # a redelivery withdraws nothing of its own
    assert world.delivery(closed, HARMED).status == "deferred"
    world.clock.now = OPENS
    workflow.send_due(world.ports)
    assert ("email", "sam@mail.example", "harmed.case_closed", "cy") in world.courier.sent
    assert "harmer.agreement_item_due" not in [t for _, _, t, _ in world.courier.sent]


def test_a_missed_item_goes_to_the_facilitator_who_accepted_the_lead(world):
    workflow.remember(world.referral(), world.store)
    for assignment, facilitator in (("asg-1", "fac-declined"), ("asg-2", "fac-lead")):   # the first declined
        workflow.remember(world.event("facilitator.assigned", {"assignment_id": assignment, "assessment_id": "as-1",
                                                               "facilitator_id": facilitator, "role": "lead"}),
                          world.store)
    world.holder.answers["fac-lead"] = person(language="en")
    world.holder.answers[HARMED] = person()
    world.holder.answers[HARMER] = person()
    workflow.handle(world.event("assignment.accepted", {"assignment_id": "asg-2", "facilitator_id": "fac-lead"}),
                    world.ports)
    assert list(world.store.acceptances(CASE)) == ["asg-2"]
    missed = world.event("agreement.item_missed", {"agreement_id": "agr-1", "item_id": "agi-1", "kind": "apology",
                                                   "owner_role": "harmer", "due_on": "2026-11-30",
                                                   "detected": "due_date_passed"})
    workflow.handle(missed, world.ports)
    assert world.delivery(missed, "fac-lead").status == "sent"
    assert (("fac-lead", "case_update")) in world.holder.asked and world.delivery(missed, "fac-declined") is None
