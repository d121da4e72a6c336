"""Events of the identity store: API keys issued, rotated and revoked.

They say who holds which key (a pseudonymous subject id, a role, an agency and its
regions) and who acted on it, never the key or its hash, and never a name.
"""
from marshmallow import Schema, fields, validate

from shared.events.schemas.spec import EventSpec
from shared.events.vocabulary import CODE, ID, SUBJECT

KEY_ROLES = ("referrer", "coordinator", "facilitator", "auditor", "operator")


class KeyChanged(Schema):
    key_id = fields.Str(required=True, validate=ID)
    subject = fields.Str(required=True, validate=SUBJECT)
    role = fields.Str(required=True, validate=validate.OneOf(KEY_ROLES))
    agency = fields.Str(required=True, validate=CODE)
    regions = fields.List(fields.Str(validate=CODE), required=True)
    national = fields.Bool(required=True)
    # who did it: a subject id, or "operator:<name>" for the command line run by an operator
    by = fields.Str(required=True, validate=validate.Length(min=1, max=120))
    expires_at = fields.Str(required=True, validate=validate.Length(min=1, max=40))
    # rotation: the key this one replaces (key.issued) or the one that replaces it (key.revoked)
    related_key_id = fields.Str(load_default=None, allow_none=True, validate=ID)
    reason = fields.Str(load_default=None, allow_none=True, validate=CODE)


SPECS = (
    EventSpec("key.issued", "identity", KeyChanged()),
    EventSpec("key.revoked", "identity", KeyChanged()),
)
