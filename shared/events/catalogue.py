"""Every event type on the Amends bus, with the marshmallow schema of its `data`.

Events carry pseudonymous ids and the attributes a decision needs, never personal
data: no names, contact details, addresses, crime references or dates of birth.
The schemas live in `shared/events/schemas/`, one module per producing service.
"""
from shared.events.schemas import identity, matching, notifications, records, referrals
from shared.events.schemas import agreements, casework, sessions, subscriptions
from shared.events.schemas.spec import EventSpec
from shared.events.vocabulary import *  # noqa: F401,F403  (the vocabularies, for callers that know them as catalogue.X)

_SPECS = {spec.type: spec for module in (referrals, matching, notifications, records, identity, casework, sessions,
                                         agreements, subscriptions)
          for spec in module.SPECS}

EVENT_TYPES = tuple(_SPECS)
PRODUCERS = tuple(sorted({spec.producer for spec in _SPECS.values()}))

__all__ = ["EventSpec", "EVENT_TYPES", "PRODUCERS", "spec", "types_produced_by"]


def spec(event_type):
    return _SPECS[event_type]


def types_produced_by(service):
    return tuple(t for t, s in _SPECS.items() if s.producer == service)
