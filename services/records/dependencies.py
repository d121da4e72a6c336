"""nameko plumbing for the records service: its ledger storage and its signing key."""
import logging
import os

from nameko.extensions import DependencyProvider

from services.records import residency
from services.records.checkpoints import NoteError, Signer
from services.records.store import Ledger
from shared.config import StartRefused, settings_for
from shared.storage import connect, disconnect

log = logging.getLogger(__name__)

SIGNING_KEY = "AMENDS_LEDGER_SIGNING_KEY"
UNSIGNED_FLAG = "AMENDS_DEV_UNSIGNED_LEDGER"


class LedgerStore(DependencyProvider):
    """One Ledger per container: it holds the single writer's view of the tree head
    (only the batch consumer appends) and a cache of immutable tiles."""

    def setup(self):
        service = self.container.service_name
        settings = settings_for(service, self.container.config)
        self.ledger = Ledger(connect(service, settings), postgresql_url=settings.ferretdb_postgresql_url)

    def start(self):
        # Not recover(): that is the writer's, at its first batch. With several instances
        # only the one the broker gives the ledger queue to writes, and a standby starting
        # up must not undo the batch the active writer has in hand.
        self.ledger.ensure_indexes()

    def stop(self):
        disconnect(self.container.service_name)

    def get_dependency(self, worker_ctx):
        return self.ledger


class LedgerKey(DependencyProvider):
    """The checkpoint signing key (a C2SP signer key string) from the config or the
    environment. Without one records does not start: an unsigned ledger proves nothing to
    anyone outside it. Development may run unsigned, by saying so: UNSIGNED_FLAG=1. The key's
    name, the checkpoints' origin, must be this region's ledger's, amends.<AMENDS_REGION>/ledger
    (residency.py): records does not start with another region's key."""

    def setup(self):
        text = self.container.config.get(SIGNING_KEY) or os.environ.get(SIGNING_KEY, "")
        self.signer = None
        if text.strip():
            try:
                self.signer = Signer.parse(text)
            except NoteError as error:
                raise ValueError(f"{SIGNING_KEY} is not a valid signer key: {error}") from None
            try:
                residency.check_origin(self.signer.name, settings_for(self.container.service_name,
                                                                      self.container.config).region)
            except residency.WrongOrigin as error:
                log.error("%s", error)
                raise StartRefused(self.container.service_name, str(error)) from None
            log.info("ledger checkpoints are signed by %s", self.signer.verifier)
        elif _flag(self.container.config.get(UNSIGNED_FLAG) or os.environ.get(UNSIGNED_FLAG, "")):
            log.warning("no %s and %s=1: checkpoints will not be signed (development only)", SIGNING_KEY, UNSIGNED_FLAG)
        else:
            log.error("no %s: records will not start without one (%s=1 runs unsigned, for development)",
                      SIGNING_KEY, UNSIGNED_FLAG)
            raise RuntimeError(f"{SIGNING_KEY} is not set")

    def get_dependency(self, worker_ctx):
        return self.signer


def _flag(value):
    return str(value).strip().lower() in ("1", "true", "yes")

