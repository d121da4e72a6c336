"""The console's database: its accounts and its sessions, nothing of any other service.

`ConsoleStore` is the one object that touches it; `MemoryStore` (memory_store.py) has
the same methods for the unit tests. A session is found by the hash of its id (an
indexed `_id`), an account by its username (`_id` too); expired sessions are deleted as
they are met and by `sweep`, which uses the index on `expires_at` (FerretDB has no TTL
indexes).
"""
from datetime import datetime, timezone

from pymongo.errors import DuplicateKeyError

from services.console.accounts import Account
from services.console.sessions import Session
from shared.storage import Store
from shared.storage.indexes import Index


class AccountExists(Exception):
    pass


def _aware(moment):
    return moment if moment is None or moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _account(doc):
    return Account(username=doc["_id"], role=doc["role"], password_hash=doc["password_hash"],
                   subject=doc.get("subject"), sealed_key=doc.get("sealed_key"), active=doc.get("active", True),
                   created_at=_aware(doc.get("created_at")))


def _session(doc):
    return Session(id_hash=doc["_id"], username=doc["username"], csrf_token=doc["csrf_token"],
                   created_at=_aware(doc["created_at"]), expires_at=_aware(doc["expires_at"]))


class ConsoleStore(Store):
    indexes = {"sessions": [Index("expires_at"), Index("username")]}

    @property
    def _accounts(self):
        return self.db["accounts"]

    @property
    def _sessions(self):
        return self.db["sessions"]

    # --- accounts ---
    def add_account(self, account):
        doc = {"_id": account.username, "role": account.role, "password_hash": account.password_hash,
               "subject": account.subject, "sealed_key": account.sealed_key, "active": account.active,
               "created_at": account.created_at}
        try:
            self._accounts.insert_one(doc)
        except DuplicateKeyError:
            raise AccountExists(account.username) from None

    def account(self, username):
        doc = self._accounts.find_one({"_id": username})
        return _account(doc) if doc else None

    def set_password_hash(self, username, password_hash):
        self._accounts.update_one({"_id": username}, {"$set": {"password_hash": password_hash}})

    def set_sealed_key(self, username, sealed_key):
        self._accounts.update_one({"_id": username}, {"$set": {"sealed_key": sealed_key}})

    def set_active(self, username, active):
        self._accounts.update_one({"_id": username}, {"$set": {"active": active}})
        if not active:
            self._sessions.delete_many({"username": username})

    def accounts(self):
        return [_account(doc) for doc in self._accounts.find().sort("_id", 1)]

    # --- sessions ---
    def add_session(self, session):
        self._sessions.insert_one({"_id": session.id_hash, "username": session.username,
                                   "csrf_token": session.csrf_token, "created_at": session.created_at,
                                   "expires_at": session.expires_at})

    def session(self, id_hash, now=None):
        """The live session with this id hash, or None (an expired one is deleted)."""
        doc = self._sessions.find_one({"_id": id_hash})
        if doc is None:
            return None
        session = _session(doc)
        if session.expired(now or datetime.now(timezone.utc)):
            self.end_session(id_hash)
            return None
        return session

    def end_session(self, id_hash):
        self._sessions.delete_one({"_id": id_hash})

    def sweep(self, now=None):
        """Delete every expired session; returns how many."""
        return self._sessions.delete_many({"expires_at": {"$lte": now or datetime.now(timezone.utc)}}).deleted_count
