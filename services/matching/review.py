"""A coordinator's decision on a case the policy sent for review: what its body must hold.
Pure. The same schema validates the request and describes it in the OpenAPI document."""
from marshmallow import Schema, ValidationError, fields, post_load, validate

from shared.events.vocabulary import CODE_PATTERN

DECISIONS = ("suitable", "unsuitable")


def _not_blank(value):
    if not value.strip():
        raise ValidationError("Give the reason for the decision (1 to 2000 characters).")


class ReviewDecisionSchema(Schema):
    decision = fields.Str(required=True,
                          validate=validate.OneOf(DECISIONS, error="Must be 'suitable' or 'unsuitable'."))
    reason_code = fields.Str(required=True, validate=[
        validate.Regexp(CODE_PATTERN, error="A short code is required, e.g. 'specialist_risk_assessment_done'."),
        validate.Length(max=100)])
    reason = fields.Str(required=True, validate=[validate.Length(min=1, max=2000), _not_blank], metadata={
        "description": "the coordinator's words; they stay in matching and never go on the bus"})

    @post_load
    def trimmed(self, data, **kwargs):
        return dict(data, reason=data["reason"].strip())


DECISION = ReviewDecisionSchema()


class InvalidDecision(ValueError):
    def __init__(self, errors):
        self.errors = errors
        super().__init__("invalid decision: " + ", ".join(sorted(errors)))


def read(body):
    """The decision, checked: InvalidDecision names each field at fault."""
    try:
        return DECISION.load(body)
    except ValidationError as invalid:
        raise InvalidDecision(invalid.messages)
