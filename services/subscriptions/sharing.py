"""An agency's data-sharing agreement: which profile of case events it may receive, for
which regions, under which signed agreement, and who allowed it (docs/subscriptions.md).
Pure: the store keeps the versions, the service announces each as `sharing.agreement_set`.

Only a coordinator sets an agreement, and only for regions their key covers; each change
is a new version, so the old ones stay as the record of what was allowed when.
"""
import re
from dataclasses import dataclass
from datetime import datetime

from marshmallow import RAISE, Schema, ValidationError, fields, post_load, validate, validates_schema

from shared.events.schemas.subscriptions import SHARING_PROFILES
from shared.events.vocabulary import CODE_PATTERN

# the profiles that name the regions they cover (own_cases may narrow its agency's cases to some)
REGIONAL_PROFILES = ("area_cases", "statistics")
MAX_REGIONS = 50
# `$(?!\n)`: a plain `$` would let a final newline through, and `\Z` is not a pattern OpenAPI (ECMA-262) knows
AGREEMENT_REFERENCE_PATTERN = r"^[A-Za-z0-9/._-]{1,64}$(?!\n)"

CODE_ERROR = "Use lower-case letters, digits, '-', '_' or '.'."


def _code(value):
    # fullmatch: `$` in the pattern would let a final newline through
    if not isinstance(value, str) or re.fullmatch(CODE_PATTERN, value) is None:
        raise ValidationError(CODE_ERROR)


class InvalidSharing(ValueError):
    """400: the request is not valid; `errors` maps each field at fault to what is wrong."""

    def __init__(self, errors):
        self.errors = errors
        super().__init__("the sharing request is not valid: " + ", ".join(sorted(errors)))


class SharingRefused(PermissionError):
    """403: the caller may not set this sharing; `fields` names what is at fault, if a field is."""

    def __init__(self, message, fields_at_fault=None):
        self.fields = fields_at_fault or {}
        super().__init__(message)


@dataclass(frozen=True)
class SharingChange:
    """What a coordinator asks for (the body of PUT /v1/agencies/{agency}/sharing)."""
    profile: str
    regions: tuple
    agreement_reference: str


@dataclass(frozen=True)
class SharingAgreement:
    agency: str
    profile: str            # none | own_cases | area_cases | statistics
    regions: tuple
    agreement_reference: str
    version: int
    set_by: str             # "coordinator:<subject>"
    set_at: datetime

    def event_data(self):
        """The data of its `sharing.agreement_set` event (its time is the event's)."""
        return {"agency": self.agency, "profile": self.profile, "regions": list(self.regions),
                "agreement_reference": self.agreement_reference, "version": self.version, "set_by": self.set_by}


class SharingRequest(Schema):
    """The body of PUT /v1/agencies/{agency}/sharing; loads as a SharingChange."""

    class Meta:
        unknown = RAISE

    profile = fields.Str(required=True, validate=validate.OneOf(SHARING_PROFILES))
    regions = fields.List(fields.Str(validate=[_code, validate.Length(max=50)]), load_default=list,
                          validate=validate.Length(max=MAX_REGIONS))
    agreement_reference = fields.Str(required=True, validate=validate.Regexp(
        AGREEMENT_REFERENCE_PATTERN, error="Use 1 to 64 letters, digits, '/', '.', '_' or '-'."))

    @validates_schema
    def regions_fit_the_profile(self, data, **kwargs):
        profile, regions = data.get("profile"), data.get("regions") or []
        if profile in REGIONAL_PROFILES and not regions:
            raise ValidationError(f"Name the regions the agreement covers: {profile} shares by region.", "regions")
        if profile == "none" and regions:
            raise ValidationError("An agreement to share nothing covers no regions.", "regions")

    @post_load
    def change(self, data, **kwargs):
        return SharingChange(data["profile"], tuple(sorted(set(data["regions"]))), data["agreement_reference"])


_request = SharingRequest()


def read_request(body):
    """The SharingChange a request body asks for; InvalidSharing naming every field at fault."""
    if not isinstance(body, dict):
        raise InvalidSharing({"_schema": ["The body must be a JSON object."]})
    try:
        return _request.load(body)
    except ValidationError as invalid:
        raise InvalidSharing(invalid.messages) from None


def check_may_set(principal, agency, request):
    """Refuse (SharingRefused) anyone but a coordinator, and a coordinator whose key does
    not cover every region the agreement names; InvalidSharing for an agency that is no code."""
    try:
        _code(agency)
    except ValidationError as invalid:
        raise InvalidSharing({"agency": invalid.messages}) from None
    if principal.role != "coordinator":
        raise SharingRefused("only a coordinator may set an agency's data sharing")
    uncovered = [region for region in request.regions if not principal.covers(region)]
    if uncovered:
        raise SharingRefused("your key does not cover every region the agreement names",
                             {"regions": [f"Not covered by your key: {', '.join(uncovered)}."]})


def next_version(current, request, principal, now, agency=None):
    """The agreement `request` makes, one version after `current` (the agency's agreement in
    force, or None: then it is version 1 and `agency` names whose it is)."""
    if current is None and agency is None:
        raise ValueError("an agency's first agreement needs its agency")
    if current is not None and agency is not None and agency != current.agency:
        raise ValueError("the agreement in force is another agency's")
    return SharingAgreement(
        agency=current.agency if current is not None else agency,
        profile=request.profile,
        regions=tuple(request.regions),
        agreement_reference=request.agreement_reference,
        version=current.version + 1 if current is not None else 1,
        set_by=principal.who,
        set_at=now,
    )
