"""Subscription owners: the agency whose subscription was disabled is told, through its
contact (agencies.py). Pure rules over the event: who is told, and the facts the message
is made from. No case is involved, so nothing here reads the case directory.

| event                  | recipient                     | purpose of the lookup |
|------------------------|-------------------------------|-----------------------|
| subscription.disabled  | the owning agency's contact   | subscription_notice (notifications' own agency contacts) |

The message says which subscription, why (its endpoint answered 410 Gone, or its
deliveries failed since a time for the whole retry window), and how to switch it back on
(a disabled subscription is not resumed: a new one is made, starting from the position
where delivery stopped).
"""
from services.notifications import sessions
from services.notifications.agencies import contact_id
from services.notifications.audience import AGENCIES, Notice

DISABLED = "subscription.disabled"
EVENTS = (DISABLED,)
ROLE = "agency"
PURPOSE = "subscription_notice"


def notice(event):
    """The one notice a subscription event gives rise to: to its owning agency."""
    return Notice(event["type"], ROLE, contact_id(event["data"]["agency"]), PURPOSE, AGENCIES)


def facts(event):
    """What the message may say: the subscription's id and kind, the agency's code, the
    reason code, and when (London time, in each language). Codes and times only."""
    data = event["data"]
    since = data.get("failing_since")
    return {"subscription_id": data["subscription_id"], "agency": data["agency"], "kind": data["kind"],
            "reason": data.get("reason"), "event_type": event["type"], "role": ROLE,
            "disabled_at": sessions.when(event["time"]),
            "failing_since": sessions.when(since) if since else None}
