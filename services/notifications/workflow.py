"""What notifications does with each event it hears. Orchestration only."""
import uuid

from pymongo.errors import DuplicateKeyError

from services.notifications import messages
from services.notifications.deliveries import CaseDirectory, Delivery, delivery_key

PURPOSE = "referrer_update"


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


def tell_referrer_of_assignment(event, outbox, contacts, mailer):
    """Email the referrer that a facilitator is assigned: once per event, whatever happens."""
    case_id = event["data"]["case_id"]
    case = CaseDirectory.objects(case_id=case_id).first()
    if case is None:
        raise CaseNotYetKnown(f"case {case_id} is not in the directory yet")
    key = delivery_key(event["id"], case.referrer_id, "email")
    done = Delivery.objects(key=key).first()
    if done is not None:
        outbox.flush(done)
        return done
    notification_id = str(uuid.uuid4())
    common = {"case_id": case_id, "notification_id": notification_id,
              "recipient_role": "referrer", "recipient_id": case.referrer_id}
    template = "referrer.facilitator_assigned"
    answer = contacts.get_contact(case.referrer_id, PURPOSE, "notifications")
    if not answer["granted"]:
        status, reason = "suppressed", answer["reason"]
        event_out = outbox.event("notification.suppressed", case_id, {**common, "template": template, "reason": reason})
    else:
        details = answer["details"]
        message = messages.facilitator_assigned_for_referrer(case_id, details["name"])
        mailer.send(messages.as_email(
            message, sender=mailer.sender, recipient=details["email"],
            message_id=f"<{notification_id}.{uuid.uuid5(uuid.NAMESPACE_URL, key).hex}@amends.local>",
        ))
        status, reason = "sent", None
        event_out = outbox.event("notification.sent", case_id, {
            **common, "channel": "email", "template": message.template, "language": "en",
        })
    delivery = Delivery(key=key, channel="email", template=template, status=status, reason=reason,
                        outbox=[event_out], **common)
    try:
        delivery.save(force_insert=True)
    except DuplicateKeyError:
        return Delivery.objects(key=key).first()
    outbox.flush(delivery)
    return delivery
