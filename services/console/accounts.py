"""Console accounts: who may sign in, in which role, and with which API key.

A person signs in with their own account, and acts through the APIs with their own API
key of the same role (issued with `shared.security.keys`, sealed in the account by
key_vault.py), so what they see is what the APIs allow that key. An operator's key reaches
only the ledger (its head, verification and the bundles of its regions' cases); the other
operator pages use the console's own broker credentials, and only an operator's account
may open them.
"""
import re
from dataclasses import dataclass, replace
from datetime import datetime, timezone

ROLES = ("coordinator", "facilitator", "auditor", "operator")
# the roles that act through the APIs, each with a key of the same role (every role: an
# operator's key reaches the ledger only)
API_ROLES = ("coordinator", "facilitator", "auditor", "operator")
USERNAME_PATTERN = r"^[a-z0-9][a-z0-9_.-]{1,63}$"


class AccountRefused(ValueError):
    """An account that cannot be made as asked (the message says why)."""


@dataclass(frozen=True)
class Account:
    username: str
    role: str
    password_hash: str
    subject: str = None        # the person's pseudonymous id, as on their API key (a facilitator's id)
    sealed_key: str = None     # their API key, sealed (key_vault.KeyVault)
    active: bool = True
    created_at: datetime = None


def check(username, role, subject, has_key):
    """Why an account with these attributes may not be made, or None."""
    if not re.match(USERNAME_PATTERN, username or ""):
        return "a username is 2 to 64 lower-case letters, digits, '.', '_' or '-'"
    if role not in ROLES:
        return f"role must be one of {', '.join(ROLES)}"
    if role in API_ROLES and not has_key:
        return f"a {role} acts through the APIs: give their API key"
    if role == "facilitator" and not subject:
        return "a facilitator's account names their facilitator id (the subject of their key)"
    return None


def new_account(username, role, password_hash, subject=None, sealed_key=None, now=None):
    problem = check(username, role, subject, sealed_key is not None)
    if problem:
        raise AccountRefused(problem)
    return Account(username, role, password_hash, subject, sealed_key, True, now or datetime.now(timezone.utc))


def with_key(account, sealed_key):
    return replace(account, sealed_key=sealed_key)
