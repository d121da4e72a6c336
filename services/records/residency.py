"""A region's ledger: its own origin, and its own region's events only. Pure: no I/O.

Each deployment (`AMENDS_REGION`, its residency zone) keeps a ledger of its own, whose signed
checkpoints name it: the origin line is the signing key's name, and it must be
`amends.<AMENDS_REGION>/ledger`. So records does not start with another region's key (a region
cannot sign as another), and a verifier that trusts `amends.gwent/ledger` trusts that region's
ledger and no other. And the ledger holds only its region's events: an event whose envelope
`region` is another's is dead-lettered with the reason, never appended.
"""
from services.records.ledger import leaf_bytes


def origin(region):
    """The origin (and signing key name) of `region`'s ledger."""
    return f"amends.{region}/ledger"


class WrongOrigin(ValueError):
    """The signing key's name is not this region's ledger origin."""


def check_origin(key_name, region):
    """Raise WrongOrigin unless `key_name` is `region`'s ledger origin."""
    expected = origin(region)
    if key_name != expected:
        raise WrongOrigin(f"the ledger signing key (AMENDS_LEDGER_SIGNING_KEY) is named {key_name!r}, but this "
                          f"deployment's region (AMENDS_REGION) is {region!r}: its ledger signs as {expected!r} "
                          f"only (make one: python -m services.records.keygen {expected})")


class ForeignRegion(ValueError):
    """An event of another region: it has no place in this region's ledger."""

    def __init__(self, region, own):
        # the dead letter's reason (batching.BatchEventConsumer): region codes only, no data
        self.reason = f"not admitted: region {region!r} is not this ledger's ({own!r}); a region's ledger " \
                      f"holds its own events only"
        super().__init__(self.reason)


def admission(region):
    """What the ledger's consumer admits: events of `region`, each as its leaf (the event's
    canonical form); raise ForeignRegion for another region's, ValueError for an event with
    no canonical form."""
    def admit(event):
        if event.get("region") != region:
            raise ForeignRegion(event.get("region"), region)
        return leaf_bytes(event)
    return admit


def ledger_admission(settings):
    """admission() for the service's own region (batching.BatchEventConsumer's `admission`)."""
    return admission(settings.region)
