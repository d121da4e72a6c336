"""What notifications does with each event it hears. Orchestration only."""
import uuid
from datetime import timedelta

from pymongo.errors import DuplicateKeyError

from services.notifications import messages
from services.notifications.deliveries import CaseDirectory, Delivery, delivery_key, utcnow

PURPOSE = "referrer_update"
# A claim this old belongs to a worker that died mid-send.
STALE_CLAIM = timedelta(minutes=5)


class CaseNotYetKnown(RuntimeError):
    """An event for a case whose referral has not reached us yet; retrying will fix it."""


def remember_case(event):
    data = event["data"]
    CaseDirectory(
        case_id=data["case_id"],
        referrer_id=data["referrer_id"],
        participants=[{"participant_id": p["participant_id"], "role": p["role"], "language": p["language"]}
                      for p in data["participants"]],
    ).save()


class DeliveryInProgress(RuntimeError):
    """Another worker holds this delivery's claim; retrying later finds it finished."""


def claim(key, common, template):
    """Claim a delivery key so that only one worker ever sends it. Returns the finished
    Delivery if there is one, else None once this worker holds the claim."""
    now = utcnow()
    try:
        Delivery(key=key, channel="email", template=template, status="sending", claimed_at=now, **common
                 ).save(force_insert=True)
        return None
    except DuplicateKeyError:
        existing = Delivery.objects(key=key).first()
    if existing.status != "sending":
        return existing
    if existing.claimed_at > now - STALE_CLAIM:
        raise DeliveryInProgress(f"delivery {key} is being sent by another worker")
    # The claimant died mid-send: take the claim over, at the risk of one repeat.
    taken = Delivery._get_collection().update_one(
        {"_id": key, "status": "sending", "claimed_at": existing.claimed_at}, {"$set": {"claimed_at": now}})
    if taken.modified_count != 1:
        raise DeliveryInProgress(f"delivery {key} was taken over by another worker")
    return None


def tell_referrer_of_assignment(event, outbox, contacts, mailer):
    """Email the referrer that a facilitator is assigned: once per event, whatever happens."""
    case_id = event["data"]["case_id"]
    case = CaseDirectory.objects(case_id=case_id).first()
    if case is None:
        raise CaseNotYetKnown(f"case {case_id} is not in the directory yet")
    key = delivery_key(event["id"], case.referrer_id, "email")
    template = "referrer.facilitator_assigned"
    notification_id = str(uuid.uuid5(uuid.NAMESPACE_URL, key))
    common = {"case_id": case_id, "notification_id": notification_id,
              "recipient_role": "referrer", "recipient_id": case.referrer_id}
    done = claim(key, common, template)
    if done is not None:
        outbox.flush(done)  # a crash may have left its event unsent
        return done
    answer = contacts.get_contact(case.referrer_id, PURPOSE, "notifications")
    if not answer["granted"]:
        status, reason = "suppressed", answer["reason"]
        event_out = outbox.event("notification.suppressed", case_id, {**common, "template": template, "reason": reason})
    else:
        details = answer["details"]
        message = messages.facilitator_assigned_for_referrer(case_id, details["name"])
        mailer.send(messages.as_email(
            message, sender=mailer.sender, recipient=details["email"],
            message_id=f"<{notification_id}@amends.local>",
        ))
        status, reason = "sent", None
        event_out = outbox.event("notification.sent", case_id, {
            **common, "channel": "email", "template": message.template, "language": "en",
        })
    # The outcome and its event, in one single-document write.
    Delivery._get_collection().update_one(
        {"_id": key}, {"$set": {"status": status, "reason": reason, "outbox": [event_out], "at": utcnow()}})
    delivery = Delivery.objects(key=key).first()
    outbox.flush(delivery)
    return delivery
