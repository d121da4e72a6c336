"""A subscription's owner told it was disabled (services/notifications/owners.py, agencies.py and
workflow.tell_owner): the agencies' contacts file, strictly checked; the message in English and
Welsh; once per event however often it comes; an agency with no contact refused loudly."""
import logging

import pytest

from services.notifications import agencies, messages, owners, workflow
from shared.events import new_event, validate_event
from tests.unit.test_notifications_workflow import World

CONTACT = {"name": "Rhian Data-Lead", "email": "rj-data@police.example.org", "language": "cy"}
GOOD = {"agencies": {"test-police": dict(CONTACT)}}
SUBSCRIPTION = "sub-0f3a9c"


def disabled(reason="gone", agency="test-police", **extra):
    return validate_event(new_event("subscription.disabled", SUBSCRIPTION, {
        "subscription_id": SUBSCRIPTION, "agency": agency, "kind": "webhook", "reason": reason, **extra},
        source="/amends/test/subscriptions", region="test", correlationid=SUBSCRIPTION))


@pytest.fixture
def world():
    world = World()
    contacts = agencies.parse(GOOD)
    world.holder.lookup = lambda notice: contacts.lookup(notice.recipient_id)
    return world


# -- the agencies' contacts file -------------------------------------------------------------

def test_the_demo_file_names_a_contact_for_the_demo_police_force():
    contacts = agencies.load()
    assert "dev-police" in contacts.entries
    assert contacts.entries["dev-police"].email.endswith("@dev-police.example.org")


@pytest.mark.parametrize("change, fault", [
    (lambda d: d["agencies"]["test-police"].update(email="nope"), "agencies.test-police.email: Not a valid email"),
    (lambda d: d["agencies"]["test-police"].update(language="de"), "agencies.test-police.language: Must be one of"),
    (lambda d: d["agencies"]["test-police"].pop("name"), "agencies.test-police.name: Missing data"),
    (lambda d: d["agencies"]["test-police"].update(phone="01632 960000"), "agencies.test-police.phone: Unknown"),
    (lambda d: d["agencies"].update({"Test Police": CONTACT}), "agencies.Test Police: Not an agency code."),
    (lambda d: d.update(teams={}), "teams: Unknown field."),
    (lambda d: d.update(agencies=None), "agencies: Field may not be null."),
])
def test_every_fault_in_the_file_is_named_with_the_file(change, fault):
    document = {"agencies": {"test-police": dict(CONTACT)}}
    change(document)
    with pytest.raises(agencies.AgencyContactsError) as refused:
        agencies.parse(document, "agencies.yaml")
    assert str(refused.value).startswith("agencies.yaml: ") and fault in str(refused.value)


def test_a_file_that_cannot_be_read_or_parsed_is_refused(tmp_path):
    with pytest.raises(agencies.AgencyContactsError, match="cannot be read"):
        agencies.load(str(tmp_path / "missing.yaml"))
    broken = tmp_path / "broken.yaml"
    broken.write_text("agencies:\n  x: [\n")
    with pytest.raises(agencies.AgencyContactsError, match=r"broken.yaml:\d+: not valid YAML"):
        agencies.load(str(broken))


def test_a_lookup_answers_in_the_holders_shape_and_an_unknown_agency_names_itself():
    contacts = agencies.parse(GOOD)
    assert contacts.lookup("agencies.test-police") == {"granted": True, "reason": "granted", "details": {
        **CONTACT, "preferred_channels": ["email"]}}
    with pytest.raises(agencies.NoAgencyContact) as missing:
        contacts.lookup("agencies.yot-south")
    assert missing.value.agency == "yot-south" and "'yot-south'" in str(missing.value)


# -- who is told, and what the message says --------------------------------------------------

def test_the_owner_is_the_agency_the_event_names_through_notifications_own_directory():
    notice = owners.notice(disabled())
    assert (notice.event_type, notice.recipient_role, notice.recipient_id, notice.purpose, notice.holder) == (
        "subscription.disabled", "agency", "agencies.test-police", "subscription_notice", "agencies")
    assert notice.template == "agency.subscription_disabled"


def test_a_410_message_says_which_subscription_why_and_how_to_replace_it_in_either_language():
    facts = owners.facts(disabled("gone"))
    english = messages.render("subscription.disabled", "agency", "en", facts, name="Sam")
    welsh = messages.render("subscription.disabled", "agency", "cy", facts, name="Sam")
    for message in (english, welsh):
        assert SUBSCRIPTION in message.subject and SUBSCRIPTION in message.text and SUBSCRIPTION in message.html
        assert "410 Gone" in message.text and '"start": {"position": N}' in message.text
        assert "POST /v1/subscriptions" in message.text and message.sms is None
    assert "How to start receiving events again" in english.text and "failing since" not in english.text
    assert "Sut i ddechrau derbyn digwyddiadau eto" in welsh.text and welsh.text.startswith("Helo Sam,")
    assert 'lang="cy"' in welsh.html


def test_repeated_failure_says_since_when_in_london_time_in_either_language():
    facts = owners.facts(disabled("retries_exhausted", failing_since="2026-11-30T10:00:00+00:00"))
    english = messages.render("subscription.disabled", "agency", "en", facts)
    welsh = messages.render("subscription.disabled", "agency", "cy", facts)
    assert "failing since Monday 30 November 2026 at 10:00 (UK time)" in english.text
    assert "methu ers Dydd Llun 30 Tachwedd 2026 am 10:00" in welsh.text
    assert "410" not in english.text and "410" not in welsh.text
    summer = owners.facts(disabled("retries_exhausted", failing_since="2026-07-01T10:00:00+00:00"))
    assert "Wednesday 1 July 2026 at 11:00" in messages.render("subscription.disabled", "agency", "en", summer).text


# -- the workflow: once, by email, in the contact's language ---------------------------------

def test_the_owner_is_emailed_once_however_often_the_event_comes_and_nothing_goes_on_the_bus(world):
    event = disabled()
    for _ in range(3):
        workflow.handle(event, world.ports)
    assert world.courier.sent == [("email", CONTACT["email"], "agency.subscription_disabled", "cy")]
    delivery = world.store.delivery_for(event["id"], "agencies.test-police")
    assert (delivery.status, delivery.recipient_role, delivery.holder, delivery.case_id, delivery.language) == (
        "sent", "agency", "agencies", None, "cy")
    # the contact's name and address are in the message only: not in the delivery, not on the bus
    assert CONTACT["email"] not in repr(delivery) and CONTACT["name"] not in repr(delivery)
    assert world.outbox.published == []


def test_an_agency_with_no_contact_is_refused_loudly_naming_it_and_stores_nothing(world, caplog):
    event = disabled(agency="yot-south")
    with caplog.at_level(logging.ERROR), pytest.raises(agencies.NoAgencyContact,
                                                       match="no contact is configured for agency 'yot-south'"):
        workflow.handle(event, world.ports)
    assert "yot-south" in caplog.text and SUBSCRIPTION in caplog.text
    assert world.store.delivery_for(event["id"], "agencies.yot-south") is None and world.courier.sent == []


def test_a_failing_send_is_retried_through_the_queue_then_fails_on_the_last_run(world):
    world.courier.failures = ["smtp_451"] * 3
    event = disabled("retries_exhausted", failing_since="2026-11-30T10:00:00+00:00")
    for run in (1, 2):
        with pytest.raises(workflow.SendFailed, match="smtp_451"):
            workflow.handle(event, world.ports)
        assert world.store.delivery_for(event["id"], "agencies.test-police").status == "retrying"
    with pytest.raises(workflow.NotificationFailed, match="smtp_451 after 3 attempts"):
        workflow.handle(event, world.ports)
    assert world.store.delivery_for(event["id"], "agencies.test-police").status == "failed"
    workflow.handle(event, world.ports)   # settled: a later copy sends nothing
    assert world.courier.sent == [] and world.outbox.published == []


def test_canary_the_facts_keep_codes_and_times_only():
    """Whatever else an event might carry, the owner's message is made from codes and times."""
    event = disabled("gone")
    event["data"].update(url="https://CANARYurl.example/hook", contact_name="CANARYname", secret="whsec_CANARY")
    found = owners.facts(event)
    assert "CANARY" not in repr(found)
    assert set(found) == {"subscription_id", "agency", "kind", "reason", "event_type", "role", "disabled_at",
                          "failing_since"}


def test_notifications_hears_subscription_disabled_from_subscriptions_and_trusts_it_from_them_only():
    import re
    from shared.events import catalogue
    from shared.messaging import identity, topology
    from shared.messaging.permissions import GRANTS, user_for
    assert ("subscriptions", "subscription.disabled") in topology.CONSUMERS[("notifications", "notify")]
    _, bind = GRANTS["notifications"].topics["subscriptions.events"]
    assert re.fullmatch(bind.strip("^$"), "subscription.disabled")
    assert not re.fullmatch(bind.strip("^$"), "subscription.created")
    assert catalogue.spec("subscription.disabled").producer == "subscriptions"
    event = {"type": "subscription.disabled", "source": "/amends/test/subscriptions"}
    identity.check_event(event, user_for("subscriptions"))
    for sender in ("referrals", "matching", "records"):
        with pytest.raises(identity.NotTheirs):
            identity.check_event(dict(event, source=f"/amends/test/{sender}"), user_for(sender))
        with pytest.raises(identity.NotTheirs):
            identity.check_event(event, user_for(sender))
