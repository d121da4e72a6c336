"""Events the notifications service emits."""
from marshmallow import Schema, fields, validate

from shared.events.schemas.spec import EventSpec
from shared.events.vocabulary import CHANNELS, CODE, ID, LANGUAGES, RECIPIENT_ROLES


class Notification(Schema):
    """What every notification event says: which case, which notice, to whom (by role and
    pseudonymous id), by which template. Never an address, a number or a name."""
    case_id = fields.Str(required=True, validate=ID)
    notification_id = fields.Str(required=True, validate=ID)
    recipient_role = fields.Str(required=True, validate=validate.OneOf(RECIPIENT_ROLES))
    recipient_id = fields.Str(required=True, validate=ID)
    template = fields.Str(required=True, validate=CODE)


class ByChannel(Notification):
    channel = fields.Str(required=True, validate=validate.OneOf(CHANNELS))


class NotificationSent(ByChannel):
    language = fields.Str(required=True, validate=validate.OneOf(LANGUAGES))


class NotificationSuppressed(Notification):
    reason = fields.Str(required=True, validate=CODE)


class NotificationFailed(ByChannel):
    reason = fields.Str(required=True, validate=CODE)
    attempts = fields.Int(required=True, validate=validate.Range(min=1))


class NotificationDeferred(ByChannel):
    until = fields.DateTime(required=True)


SPECS = (
    EventSpec("notification.sent", "notifications", NotificationSent()),
    EventSpec("notification.suppressed", "notifications", NotificationSuppressed()),
    EventSpec("notification.failed", "notifications", NotificationFailed()),
    EventSpec("notification.deferred", "notifications", NotificationDeferred()),
)
