"""A subscription's owner is told it was disabled, through the real broker: on a RabbitMQ node
of the test's own with the bootstrap's users and permissions (so who sent what is checked),
notifications as its own broker user on FerretDB, and a real SMTP server.

subscription.disabled from the subscriptions service's user reaches the agency's contact once
however often it comes; the same event from anyone else is refused; an agency with no contact
is retried, then dead-lettered naming it, and nothing is sent."""
import json
import uuid
from email import message_from_bytes
from email.policy import default as default_policy

import eventlet
import pytest
from nameko.containers import ServiceContainer

from services.notifications.service import NotificationsService
from shared.events.envelope import new_event
from shared.messaging import identity
from shared.messaging.permissions import user_for
from shared.messaging.publisher import EventPublisher, publish_raw
from tests.conftest import MONGO_URI
# a RabbitMQ node of this module's own, with the bootstrap's users and permissions
from tests.integration.test_bus_identity import bus  # noqa: F401
from tests.support import SERVED_REGIONS, disconnect_all, free_port, mails, read_dead_letters, smtp_server, wait_until

CONTACT = "rj-data-sharing@police.example.org"
AGENCIES = f"""agencies:
  test-police:
    name: Data-sharing lead, Test Police
    email: {CONTACT}
    language: cy
"""


@pytest.fixture
def notifications(bus, db_prefix, tmp_path):
    """notifications as its own broker user, its agencies' contacts from a file of the test's,
    mailing a real SMTP server; yields the mailbox directory."""
    contacts = tmp_path / "agencies.yaml"
    contacts.write_text(AGENCIES)
    mail_dir = str(tmp_path / "mail")
    with smtp_server(mail_dir) as smtp_port:
        container = ServiceContainer(NotificationsService, {
            "AMQP_URI": bus.service_uris["notifications"], "MONGO_URI": MONGO_URI, "AMENDS_DB_PREFIX": db_prefix,
            "AMENDS_REGION": "test", "AMENDS_REGIONS": SERVED_REGIONS, "AMENDS_RETRY_DELAYS": "0.2,0.4",
            "AMENDS_OUTBOX_GRACE": "0", "WEB_SERVER_ADDRESS": f"127.0.0.1:{free_port()}",
            "SMTP_PORT": str(smtp_port), "NOTIFICATIONS_AGENCY_CONTACTS": str(contacts)})
        container.start()
        try:
            yield mail_dir
        finally:
            container.stop()
            disconnect_all()


def disabled(agency="test-police", reason="gone", source="/amends/test/subscriptions", **extra):
    subscription_id = f"sub-{uuid.uuid4().hex[:10]}"
    return new_event("subscription.disabled", subscription_id, {
        "subscription_id": subscription_id, "agency": agency, "kind": "webhook", "reason": reason, **extra},
        source=source, region="test", correlationid=subscription_id)


def inbox(mail_dir):
    return [message_from_bytes(bytes(m), policy=default_policy) for m in mails(mail_dir)]


def letters(bus):
    return {json.loads(body).get("id"): headers for body, headers in read_dead_letters(bus.uri, "notifications")}


def test_the_owning_agency_is_emailed_once_in_its_language(bus, notifications):
    event = disabled(reason="retries_exhausted", failing_since="2026-11-30T10:00:00+00:00")
    subscriptions = EventPublisher(bus.service_uris["subscriptions"], "subscriptions")
    for _ in range(3):   # the outbox publishes at least once
        subscriptions.publish(event)
    wait_until(lambda: [m for m in inbox(notifications) if m["To"] == CONTACT], timeout=30)
    subscriptions.publish(disabled(agency="test-police"))   # a later event
    wait_until(lambda: len([m for m in inbox(notifications) if m["To"] == CONTACT]) >= 2, timeout=30)
    eventlet.sleep(2)   # any copy held back behind another's claim (0.4 s at most) has come round
    mine = [m for m in inbox(notifications) if event["data"]["subscription_id"] in str(m["Subject"])]
    assert len(mine) == 1
    text = mine[0].get_body(preferencelist=("plain",)).get_content()
    assert str(mine[0]["Subject"]) == f"Mae tanysgrifiad Amends {event['data']['subscription_id']} wedi'i analluogi"
    assert text.startswith("Helo Data-sharing lead, Test Police,")
    assert "methu ers Dydd Llun 30 Tachwedd 2026 am 10:00" in text and '"start": {"position": N}' in text
    assert mine[0]["X-Amends-Template"] == "agency.subscription_disabled"


def test_the_event_is_believed_from_the_subscriptions_service_only(bus, notifications):
    # referrals may not even publish to subscriptions' exchange; matching, straight into
    # notifications' queue, with a header claiming subscriptions sent it, is not believed
    forged = disabled()
    publish_raw(bus.service_uris["matching"], json.dumps(forged), exchange="", routing_key="notifications.notify",
                headers={identity.PUBLISHER_HEADER: user_for("subscriptions")})
    # subscriptions' own user, but the event says it comes from referrals
    misattributed = disabled(source="/amends/test/referrals")
    EventPublisher(bus.service_uris["subscriptions"], "subscriptions").publish(misattributed)
    wanted = {forged["id"]: "refused: a subscription.disabled event is subscriptions's to send, not matching's",
              misattributed["id"]: "refused: source '/amends/test/referrals' is not subscriptions's"}
    found = {}
    wait_until(lambda: found.update(letters(bus)) or set(wanted) <= set(found), timeout=30)
    for event_id, reason in wanted.items():
        assert found[event_id]["x-amends-error"] == reason
    assert [m for m in inbox(notifications) if m["To"] == CONTACT] == []


def test_an_agency_with_no_contact_is_retried_then_dead_lettered_naming_it(bus, notifications):
    event = disabled(agency="yot-south")
    EventPublisher(bus.service_uris["subscriptions"], "subscriptions").publish(event)
    found = {}
    wait_until(lambda: found.update(letters(bus)) or event["id"] in found, timeout=30)
    assert found[event["id"]]["x-amends-error"] == (
        "NoAgencyContact: no contact is configured for agency 'yot-south' (NOTIFICATIONS_AGENCY_CONTACTS)")
    assert found[event["id"]]["x-amends-attempts"] == 3   # the first run and two retries
    assert inbox(notifications) == []
