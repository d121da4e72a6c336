"""Each console account's API key, sealed at rest with the console's own key (Fernet:
AES-128-CBC with HMAC-SHA256, from `cryptography`), from AMENDS_CONSOLE_KEY.

The console calls the other services with the signed-in person's own key, so it must
be able to recover the key; a copy of the console's database without AMENDS_CONSOLE_KEY
gives none of them away.
"""
from cryptography.fernet import Fernet, InvalidToken

KEY_SETTING = "AMENDS_CONSOLE_KEY"


class VaultError(ValueError):
    """The console key is missing or malformed, or a sealed key does not open with it."""


class KeyVault:
    def __init__(self, key_text):
        if not (key_text or "").strip():
            raise VaultError(f"{KEY_SETTING} is not set (Fernet.generate_key() makes one)")
        try:
            self._fernet = Fernet(key_text.strip().encode())
        except (ValueError, TypeError):
            raise VaultError(f"{KEY_SETTING} is not a Fernet key (32 random bytes, urlsafe base64)") from None

    def seal(self, api_key):
        return self._fernet.encrypt(api_key.encode()).decode()

    def open(self, sealed):
        try:
            return self._fernet.decrypt(sealed.encode()).decode()
        except (InvalidToken, AttributeError):
            raise VaultError("a sealed API key does not open with this console key") from None


def new_key():
    return Fernet.generate_key().decode()
