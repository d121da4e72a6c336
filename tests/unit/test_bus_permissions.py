"""The permission table and the sender rules, as plain logic (the broker enforcing them is
tested in tests/integration/test_bus_identity.py)."""
import re

import pytest

from shared.events import catalogue
from shared.messaging import identity, topology
from shared.messaging.permissions import ADMIN_USER, GRANTS, OPERATOR, OPERATOR_USER, identity_of, may_call, uri_user, user_for


def matches(regex, name):
    return re.fullmatch(regex.strip("^$") if regex != "^$" else "", name) is not None


@pytest.mark.parametrize("service", topology.SERVICES)
def test_a_service_writes_to_its_own_events_exchange_only(service):
    grant = GRANTS[service]
    for other in topology.SERVICES:
        assert matches(grant.write, f"{other}.events") is (other == service)
        assert matches(grant.write, f"{other}.dlx") is (other == service)
        # declaring is deleting: no service may declare any events exchange, its own included
        assert not matches(grant.configure, f"{other}.events")


@pytest.mark.parametrize("service", topology.SERVICES)
def test_a_service_publishes_only_the_event_types_it_produces(service):
    write, _ = GRANTS[service].topics[topology.events_exchange(service).name]
    for event_type in catalogue.EVENT_TYPES:
        assert matches(write, event_type) is (catalogue.spec(event_type).producer == service)


def test_a_consumer_binds_with_the_keys_it_listens_to_and_may_declare_its_own_queues():
    matching = GRANTS["matching"]
    assert matches(matching.topics["referrals.events"][1], "referral.received")
    assert not matches(matching.topics["referrals.events"][1], "#")
    assert matches(matching.configure, topology.retry_queue("matching.assess", 0.2).name)
    assert not matches(matching.configure, topology.retry_queue("notifications.notify", 0.2).name)
    assert not matches(matching.configure, "notifications.notify")
    assert not matches(matching.read, "notifications.notify")


def test_notifications_hears_the_deadline_events_from_referrals_and_trusts_them_from_referrals_only():
    bindings = topology.CONSUMERS[("notifications", "notify")]
    assert {("referrals", "case.deadline_due"), ("referrals", "case.deadline_missed")} <= set(bindings)
    _, bind = GRANTS["notifications"].topics["referrals.events"]
    assert matches(bind, "case.deadline_due") and matches(bind, "case.deadline_missed")
    assert not matches(bind, "support.referral_recorded")
    for event_type in ("case.deadline_due", "case.deadline_missed", "support.referral_recorded"):
        assert catalogue.spec(event_type).producer == "referrals"
        event = {"type": event_type, "source": "/amends/wales/referrals"}
        identity.check_event(event, user_for("referrals"))
        with pytest.raises(identity.NotTheirs):
            identity.check_event(dict(event, source="/amends/wales/matching"), user_for("matching"))
    write, _ = GRANTS["referrals"].topics["referrals.events"]
    assert matches(write, "support.referral_recorded")


def test_only_notifications_may_call_for_contact_details_and_only_rpc_servers_reply():
    assert may_call("notifications", "referrals", "get_contact")
    assert not may_call("matching", "referrals", "get_contact")
    assert not may_call(OPERATOR, "referrals", "get_contact")
    assert not may_call(None, "matching", "get_facilitator_contact")
    assert may_call(OPERATOR, "matching", "register_facilitator")
    publish, _ = GRANTS["notifications"].topics["nameko-rpc"]
    assert matches(publish, "referrals.get_contact") and not matches(publish, "matching.register_facilitator")
    assert "nameko-rpc" not in GRANTS["statistics"].topics and not matches(GRANTS["statistics"].write, "nameko-rpc")


def test_only_subscriptions_may_follow_the_ledger_feed_and_records_only_answers():
    assert may_call("subscriptions", "records", "entries_after")
    assert not may_call("notifications", "records", "entries_after") and not may_call(OPERATOR, "records", "entries_after")
    publish, bind = GRANTS["subscriptions"].topics["nameko-rpc"]
    assert matches(publish, "records.entries_after") and not matches(publish, "referrals.get_contact")
    publish, bind = GRANTS["records"].topics["nameko-rpc"]
    # records answers (to a caller's reply queue) and calls nothing
    assert matches(bind, "records.*") and not matches(publish, "referrals.get_contact")
    assert not matches(publish, "records.entries_after")


def test_broker_users_map_to_services():
    assert identity_of(user_for("records")) == "records"
    assert identity_of(ADMIN_USER) == OPERATOR and identity_of(OPERATOR_USER) == OPERATOR
    assert identity_of("guest") is None and identity_of(None) is None
    assert uri_user("amqp://amends-matching:secret@127.0.0.1:5672/") == "amends-matching"


def test_the_publisher_header_is_believed_only_from_the_consumer_itself_or_the_operator():
    header = {identity.PUBLISHER_HEADER: user_for("referrals")}
    assert identity.publisher_of({"user_id": user_for("matching")}, header, "matching") == user_for("referrals")
    assert identity.publisher_of({"user_id": ADMIN_USER}, header, "matching") == user_for("referrals")
    assert identity.publisher_of({"user_id": user_for("notifications")}, header, "matching") == user_for("notifications")
    assert identity.publisher_of({}, header, "matching") is None
    assert identity.publisher_of({"user_id": user_for("matching")}, {}, "matching") == user_for("matching")


def test_an_event_must_be_its_senders_by_type_and_source():
    event = {"type": "case.assessed", "source": "/amends/wales/matching"}
    identity.check_event(event, user_for("matching"))
    for sender, source, reason in [
        (user_for("referrals"), "/amends/wales/matching", "matching's to send, not referrals's"),
        (user_for("matching"), "/amends/wales/referrals", "is not matching's"),
        (user_for("matching"), "/elsewhere/wales/matching", "is not matching's"),
        (ADMIN_USER, "/amends/wales/matching", "no service"),
        (None, "/amends/wales/matching", "no user_id"),
    ]:
        with pytest.raises(identity.NotTheirs, match=reason):
            identity.check_event(dict(event, source=source), sender)


def test_key_events_are_the_operators_alone():
    """Keys are administered by operators (shared.security.keys, as the admin user): the
    ledger takes key.issued from them, and from no service."""
    event = {"type": "key.issued", "source": "/amends/wales/identity"}
    identity.check_event(event, ADMIN_USER)
    with pytest.raises(identity.NotTheirs, match="identity's to send, not referrals's"):
        identity.check_event(event, user_for("referrals"))
    with pytest.raises(identity.NotTheirs, match="is not identity's"):
        identity.check_event(dict(event, source="/amends/wales/referrals"), ADMIN_USER)
    with pytest.raises(identity.NotTheirs, match="no service"):  # the operator sends no service's events
        identity.check_event({"type": "case.assessed", "source": "/amends/wales/matching"}, ADMIN_USER)


def test_a_replayed_letter_carries_only_the_sender_its_consumer_vouched_for():
    from shared.messaging.deadletters import replay_headers
    header = identity.PUBLISHER_HEADER
    ours = {"x-amends-dead-letter-id": "abc", "x-amends-error": "refused: no user_id"}
    own = {"user_id": user_for("matching")}
    # refused as unattributable: replayed with no sender, not as the consumer's own
    assert header not in replay_headers(ours, own, "matching")
    assert replay_headers({**ours, header: user_for("referrals")}, own, "matching")[header] == user_for("referrals")
    # dead-lettered by the broker (delivery limit): the original user_id, never its own claim
    claimed = {header: user_for("referrals")}
    assert replay_headers(claimed, {"user_id": user_for("notifications")}, "matching")[header] == \
        user_for("notifications")
