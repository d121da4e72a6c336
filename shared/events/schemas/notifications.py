"""Events the notifications service emits."""
from marshmallow import Schema, fields, validate

from shared.events.schemas.spec import EventSpec
from shared.events.vocabulary import CHANNELS, CODE, ID, LANGUAGES, RECIPIENT_ROLES


class NotificationSent(Schema):
    case_id = fields.Str(required=True, validate=ID)
    notification_id = fields.Str(required=True, validate=ID)
    recipient_role = fields.Str(required=True, validate=validate.OneOf(RECIPIENT_ROLES))
    recipient_id = fields.Str(required=True, validate=ID)
    channel = fields.Str(required=True, validate=validate.OneOf(CHANNELS))
    template = fields.Str(required=True, validate=CODE)
    language = fields.Str(required=True, validate=validate.OneOf(LANGUAGES))


class NotificationSuppressed(Schema):
    case_id = fields.Str(required=True, validate=ID)
    notification_id = fields.Str(required=True, validate=ID)
    recipient_role = fields.Str(required=True, validate=validate.OneOf(RECIPIENT_ROLES))
    recipient_id = fields.Str(required=True, validate=ID)
    template = fields.Str(required=True, validate=CODE)
    reason = fields.Str(required=True, validate=CODE)


class NotificationFailed(Schema):
    case_id = fields.Str(required=True, validate=ID)
    notification_id = fields.Str(required=True, validate=ID)
    recipient_role = fields.Str(required=True, validate=validate.OneOf(RECIPIENT_ROLES))
    recipient_id = fields.Str(required=True, validate=ID)
    channel = fields.Str(required=True, validate=validate.OneOf(CHANNELS))
    template = fields.Str(required=True, validate=CODE)
    reason = fields.Str(required=True, validate=CODE)
    attempts = fields.Int(required=True, validate=validate.Range(min=1))


class NotificationDeferred(Schema):
    case_id = fields.Str(required=True, validate=ID)
    notification_id = fields.Str(required=True, validate=ID)
    recipient_role = fields.Str(required=True, validate=validate.OneOf(RECIPIENT_ROLES))
    recipient_id = fields.Str(required=True, validate=ID)
    channel = fields.Str(required=True, validate=validate.OneOf(CHANNELS))
    template = fields.Str(required=True, validate=CODE)
    until = fields.DateTime(required=True)


SPECS = (
    EventSpec("notification.sent", "notifications", NotificationSent()),
    EventSpec("notification.suppressed", "notifications", NotificationSuppressed()),
    EventSpec("notification.failed", "notifications", NotificationFailed()),
    EventSpec("notification.deferred", "notifications", NotificationDeferred()),
)
