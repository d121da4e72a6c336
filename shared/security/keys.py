"""Issue, list, revoke and rotate API keys: the operators' command line.

    python -m shared.security.keys issue --role coordinator --agency swp-rj --subject coord-0042 \\
        --region south-wales --region gwent [--days 90] [--label "..."] [--by operator:alice]
    python -m shared.security.keys issue --role auditor --agency hmic --subject aud-7 --national
    python -m shared.security.keys issue --role operator --agency ops --subject op-3 --region south-wales
    python -m shared.security.keys list [--agency A] [--subject S] [--all]
    python -m shared.security.keys revoke KEY_ID [--reason compromised] [--by operator:alice]
    python -m shared.security.keys rotate KEY_ID [--days 90] [--by operator:alice]
    python -m shared.security.keys relay

A plain key is printed once, when it is issued or rotated, and never stored. Every
issue and revocation (a rotation is both) is saved with its `key.issued` or
`key.revoked` event in the key's own document, then published to the identity events
exchange, which the ledger records. If the broker cannot be reached the event stays in
the document, and any later run of this command (`relay` does only that) sends it.

`--by` names who acts (pseudonymously); it defaults to AMENDS_OPERATOR, else
`operator:<login name>`. Settings come from the environment: MONGO_URI,
AMENDS_DB_PREFIX, AMQP_URI, AMENDS_REGION.
"""
import eventlet

eventlet.monkey_patch()

import argparse  # noqa: E402
import getpass  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
from datetime import datetime, timedelta, timezone  # noqa: E402

from shared.config import settings_for  # noqa: E402
from shared.events import new_event  # noqa: E402
from shared.messaging.outbox import Relay  # noqa: E402
from shared.messaging.publisher import EventPublisher  # noqa: E402
from shared.security import api_keys  # noqa: E402
from shared.security.api_keys import ApiKey, KeyRefused  # noqa: E402

PRODUCER = "identity"


class Keys:
    """The key administration, on the identity store and the bus."""

    def __init__(self, settings):
        self.settings = settings
        api_keys.connect_identity(settings)

    def _event(self, event_type, record, by, related=None, reason=None):
        key_id = str(record.pk)
        return new_event(event_type, key_id, {
            "key_id": key_id, "subject": record.subject, "role": record.role, "agency": record.agency,
            "regions": list(record.regions or ()), "national": bool(record.national), "by": by,
            "expires_at": api_keys._aware(record.expires_at).isoformat(), "related_key_id": related,
            "reason": reason,
        }, source=f"/amends/{self.settings.region}/{PRODUCER}", region=self.settings.region,
            correlationid=key_id)

    def issue(self, role, agency, subject, regions=(), national=False, days=None, label=None, by=None,
              replaces=None):
        lifetime = timedelta(days=days) if days else api_keys.DEFAULT_LIFETIME
        by = by or default_actor()
        key, record = api_keys.issue(
            role, agency, label or f"{role} {subject}", subject=subject, regions=regions, national=national,
            by=by, lifetime=lifetime, replaces=replaces,
            events=lambda r: [self._event("key.issued", r, by, related=replaces,
                                          reason="rotated" if replaces else None)])
        return key, record

    def revoke(self, key_id, by, reason="revoked", replaced_by=None):
        """Revoke a key; False if there is no such key or it was revoked already."""
        by = by or default_actor()
        record = _find(key_id)
        if record is None or record.revoked_at is not None:
            return False
        now = datetime.now(timezone.utc)
        record.revoked_at, record.revoked_by, record.revoke_reason = now, by, reason
        event = self._event("key.revoked", record, by, related=replaced_by, reason=reason)
        api_keys.record_revocation(record, replaced_by, event)
        return True

    def rotate(self, key_id, by, days=None):
        """A new key for the same person, role, agency and regions; the old one is revoked
        at once. Returns (the new plain key, its record), or None if the old key is not usable."""
        old = _find(key_id)
        if old is None or not api_keys.usable(old):
            return None
        key, record = self.issue(old.role, old.agency, old.subject, old.regions, old.national, days,
                                 old.label, by, replaces=str(old.pk))
        self.revoke(key_id, by, reason="rotated", replaced_by=str(record.pk))
        return key, record

    def listing(self, agency=None, subject=None, include_ended=False):
        query = {k: v for k, v in (("agency", agency), ("subject", subject)) if v}
        found = ApiKey.objects(**query).order_by("created_at")
        return [r for r in found if include_ended or api_keys.usable(r)]

    def relay(self):
        """Publish every key event left unsent; returns how many were sent."""
        publisher = EventPublisher(self.settings.amqp_uri, PRODUCER)
        return Relay(publisher, [api_keys.keys_collection()]).relay_pending()


def _find(key_id):
    from bson import ObjectId
    from bson.errors import InvalidId
    try:
        return ApiKey.objects(pk=ObjectId(key_id)).first()
    except (InvalidId, TypeError):
        return None


def state(record):
    if record.revoked_at is not None:
        return f"revoked ({record.revoke_reason})"
    return "active" if api_keys.usable(record) else "expired"


def describe(record):
    regions = "national" if record.national else ",".join(record.regions or ()) or "-"
    return (f"{record.pk}  {record.subject or '-':<20} {record.role:<12} {record.agency:<20} {regions:<30} "
            f"expires {api_keys._aware(record.expires_at).date() if record.expires_at else '-'}  {state(record)}")


def default_actor():
    return os.environ.get("AMENDS_OPERATOR") or f"operator:{getpass.getuser()}"


def _relay(keys):
    try:
        keys.relay()
    except Exception as error:  # the broker may be down: the events wait in the documents
        print(f"warning: key events not yet published ({type(error).__name__}); "
              "run `python -m shared.security.keys relay` once the broker is back", file=sys.stderr)
        return False
    return True


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m shared.security.keys",
                                     description="Issue, list, revoke and rotate Amends API keys.")
    commands = parser.add_subparsers(dest="command", required=True)
    issue = commands.add_parser("issue", help="issue a key to one person")
    issue.add_argument("--role", required=True, choices=api_keys.ROLES)
    issue.add_argument("--agency", required=True)
    issue.add_argument("--subject", required=True, help="the holder's pseudonymous id (a facilitator's id)")
    issue.add_argument("--region", action="append", default=[], help="a region the key covers (repeatable)")
    issue.add_argument("--national", action="store_true",
                       help="an auditor's or operator's key covering every region")
    issue.add_argument("--days", type=int, default=None, help=f"lifetime (default {api_keys.DEFAULT_LIFETIME.days})")
    issue.add_argument("--label", default=None)
    issue.add_argument("--by", default=None)
    listing = commands.add_parser("list", help="list keys (never the keys themselves)")
    listing.add_argument("--agency")
    listing.add_argument("--subject")
    listing.add_argument("--all", action="store_true", help="include expired and revoked keys")
    revoke = commands.add_parser("revoke", help="revoke a key at once")
    revoke.add_argument("key_id")
    revoke.add_argument("--reason", default="revoked", help="a code, e.g. compromised, left_post")
    revoke.add_argument("--by", default=None)
    rotate = commands.add_parser("rotate", help="replace a key with a new one and revoke the old")
    rotate.add_argument("key_id")
    rotate.add_argument("--days", type=int, default=None)
    rotate.add_argument("--by", default=None)
    commands.add_parser("relay", help="publish key events left unsent")
    args = parser.parse_args(argv)

    keys = Keys(settings_for(PRODUCER))
    by = getattr(args, "by", None) or default_actor()
    if args.command == "issue":
        try:
            key, record = keys.issue(args.role, args.agency, args.subject, args.region, args.national, args.days,
                                     args.label, by)
        except KeyRefused as refused:
            print(f"error: {refused}", file=sys.stderr)
            return 2
        print(f"key id {record.pk}; the key (shown once, store it now):\n{key}")
    elif args.command == "list":
        for record in keys.listing(args.agency, args.subject, args.all):
            print(describe(record))
    elif args.command == "revoke":
        if not keys.revoke(args.key_id, by, args.reason):
            print("error: no such key, or it is already revoked", file=sys.stderr)
            return 2
        print(f"revoked {args.key_id}")
    elif args.command == "rotate":
        rotated = keys.rotate(args.key_id, by, args.days)
        if rotated is None:
            print("error: no such key, or it is expired or revoked (issue a new one instead)", file=sys.stderr)
            return 2
        key, record = rotated
        print(f"key id {record.pk} replaces {args.key_id}, which is revoked; the key (shown once):\n{key}")
    _relay(keys)
    return 0


if __name__ == "__main__":
    sys.exit(main())
