"""Consent: opt-in, granular and withdrawable, per party and per scope. Pure rules.

A consent record says who consented (or withdrew) to what: taking part
(`participation`), sharing a given item with a given party (`share_item`), or sharing
the outcome with a prosecutor or court (`share_outcome_with_court`). Records are only
ever appended; the latest record for a (party, scope, item, with_role) is in force.
"""
from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from shared.events.vocabulary import CONSENT_SCOPES, ROLES

METHODS = ("written", "verbal", "online", "via_representative")
_code = validate.Regexp(r"^[a-z0-9][a-z0-9_.-]*$", error="Use lower-case letters, digits, '-', '_' or '.'.")


class ConsentSchema(Schema):
    participant_id = fields.Str(required=True, validate=validate.Regexp(r"^p-[0-9a-f]{32}$",
                                                                        error="Not a participant id of this case."))
    scope = fields.Str(required=True, validate=validate.OneOf(CONSENT_SCOPES))
    granted = fields.Bool(required=True)
    # share_item only: what is shared (a code, never the content) and with which party
    item = fields.Str(validate=[_code, validate.Length(max=100)])
    with_role = fields.Str(validate=validate.OneOf(ROLES + ("court",)))
    # how the consent was given, for the record of every share
    method = fields.Str(load_default="written", validate=validate.OneOf(METHODS))

    @validates_schema
    def scope_details(self, data, **kwargs):
        scope = data.get("scope")
        if scope == "share_item":
            missing = {k: ["Required for the share_item scope."] for k in ("item", "with_role") if not data.get(k)}
            if missing:
                raise ValidationError(missing)
        elif scope in CONSENT_SCOPES:
            extra = {k: [f"Not used with the {scope} scope."] for k in ("item", "with_role") if k in data}
            if extra:
                raise ValidationError(extra)


def record_for(data):
    """The consent record to store, and the data of the event that announces it."""
    with_role = "court" if data["scope"] == "share_outcome_with_court" else data.get("with_role")
    key = {"participant_id": data["participant_id"], "scope": data["scope"],
           "item": data.get("item"), "with_role": with_role}
    return {**key, "granted": data["granted"], "method": data["method"]}, {**key, "granted": data["granted"]}


def event_type(record):
    return "consent.recorded" if record["granted"] else "consent.withdrawn"


def in_force(records, participant_id, scope, item=None, with_role=None):
    """The latest record for this party and scope (records are in the order given), or None."""
    latest = None
    for record in records:
        if (record["participant_id"], record["scope"], record.get("item"), record.get("with_role")) == (
                participant_id, scope, item, with_role):
            latest = record
    return latest
