"""Events of the subscriptions service: who allowed an agency which data, and what became
of its subscriptions. They are for the ledger (an audit of every sharing decision) and for
notifications (a subscription's owner is told when it is disabled).

They name agencies and subscriptions by code and id, and people by pseudonymous subject,
never by name; no URL or secret travels.
"""
from marshmallow import Schema, fields, validate

from shared.events.schemas.spec import EventSpec
from shared.events.vocabulary import CODE, ID

SHARING_PROFILES = ("none", "own_cases", "area_cases", "statistics")
SUBSCRIPTION_KINDS = ("webhook", "amqp")
# why a subscription stopped: its endpoint answered 410 Gone; its deliveries failed for the
# whole retry window; or its owner disabled it
DISABLED_REASONS = ("gone", "retries_exhausted", "owner")


class SharingAgreementSet(Schema):
    agency = fields.Str(required=True, validate=CODE)
    profile = fields.Str(required=True, validate=validate.OneOf(SHARING_PROFILES))
    regions = fields.List(fields.Str(validate=CODE), required=True)
    agreement_reference = fields.Str(required=True, validate=validate.Length(min=1, max=64))
    version = fields.Int(required=True, validate=validate.Range(min=1))
    # the coordinator who set it, as "coordinator:<subject>"
    set_by = fields.Str(required=True, validate=validate.Length(min=1, max=120))


class SubscriptionChanged(Schema):
    """`subscription.created`, `subscription.deleted`, `subscription.disabled`."""
    subscription_id = fields.Str(required=True, validate=ID)
    agency = fields.Str(required=True, validate=CODE)
    kind = fields.Str(required=True, validate=validate.OneOf(SUBSCRIPTION_KINDS))
    reason = fields.Str(load_default=None, allow_none=True, validate=validate.OneOf(DISABLED_REASONS))
    # `subscription.disabled` after retries_exhausted: when its deliveries began to fail
    failing_since = fields.DateTime()


SPECS = (
    EventSpec("sharing.agreement_set", "subscriptions", SharingAgreementSet()),
    EventSpec("subscription.created", "subscriptions", SubscriptionChanged()),
    EventSpec("subscription.deleted", "subscriptions", SubscriptionChanged()),
    EventSpec("subscription.disabled", "subscriptions", SubscriptionChanged()),
)
