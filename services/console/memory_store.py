"""An in-memory ConsoleStore, for the unit tests of the console's rules."""
from dataclasses import replace
from datetime import datetime, timezone

from services.console.store import AccountExists


class MemoryStore:
    def __init__(self):
        self.accounts_by_name = {}
        self.sessions_by_hash = {}

    def ensure_indexes(self, postgresql_url=""):
        pass

    def add_account(self, account):
        if account.username in self.accounts_by_name:
            raise AccountExists(account.username)
        self.accounts_by_name[account.username] = account

    def account(self, username):
        return self.accounts_by_name.get(username)

    def _change(self, username, **changes):
        if username in self.accounts_by_name:
            self.accounts_by_name[username] = replace(self.accounts_by_name[username], **changes)

    def set_password_hash(self, username, password_hash):
        self._change(username, password_hash=password_hash)

    def set_sealed_key(self, username, sealed_key):
        self._change(username, sealed_key=sealed_key)

    def set_active(self, username, active):
        self._change(username, active=active)
        if not active:
            self.sessions_by_hash = {h: s for h, s in self.sessions_by_hash.items() if s.username != username}

    def accounts(self):
        return [self.accounts_by_name[name] for name in sorted(self.accounts_by_name)]

    def add_session(self, session):
        self.sessions_by_hash[session.id_hash] = session

    def session(self, id_hash, now=None):
        session = self.sessions_by_hash.get(id_hash)
        if session is not None and session.expired(now or datetime.now(timezone.utc)):
            self.end_session(id_hash)
            return None
        return session

    def end_session(self, id_hash):
        self.sessions_by_hash.pop(id_hash, None)

    def sweep(self, now=None):
        now = now or datetime.now(timezone.utc)
        gone = [h for h, s in self.sessions_by_hash.items() if s.expired(now)]
        for h in gone:
            del self.sessions_by_hash[h]
        return len(gone)
