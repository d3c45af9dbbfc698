"""The console's one secret: it encrypts message text at rest and signs counsellors' session cookies.

`PSYLLM_CONSOLE_KEY` (a Fernet key: `psyllm conversations key` prints a new one) comes only from
the environment, never a file in the repository. Without it the console is off and no message
text is stored at all. Two sub-keys are derived from it with HKDF, one per purpose, so the
cookie signature never reuses the encryption key.
"""

import base64
import hashlib
import hmac
import os
from collections.abc import Mapping

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from components.errors import PsyllmError
from components.locations import CONSOLE_KEY_ENV


class ConsoleOff(PsyllmError):
    """The console (and with it, storing message text) needs PSYLLM_CONSOLE_KEY."""

    def __init__(self) -> None:
        super().__init__(f"the counsellor console is off: set {CONSOLE_KEY_ENV} (`psyllm conversations key`)")


def new_key() -> str:
    return Fernet.generate_key().decode()


def _derive(key: bytes, purpose: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose).derive(key)


class ConsoleKeys:
    """Sealing (Fernet, authenticated) for stored text and HMAC for session cookies and CSRF tokens."""

    def __init__(self, key: str) -> None:
        try:
            stripped = key.strip()
            raw = base64.urlsafe_b64decode(stripped + "=" * (-len(stripped) % 4))  # padding is easily lost
        except ValueError:
            raw = b""
        if len(raw) != 32:
            raise PsyllmError(
                f"{CONSOLE_KEY_ENV}: not a key (expected 32 bytes in URL-safe base64; see `psyllm conversations key`)"
            )
        self._fernet = Fernet(base64.urlsafe_b64encode(_derive(raw, b"psyllm message text")))
        self._signing = _derive(raw, b"psyllm console sessions")

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] = os.environ) -> "ConsoleKeys | None":
        """The keys, or None when the console is off."""
        key = environ.get(CONSOLE_KEY_ENV, "").strip()
        return cls(key) if key else None

    def seal(self, text: str) -> str:
        return self._fernet.encrypt(text.encode()).decode("ascii")

    def open(self, sealed: str) -> str:
        try:
            return self._fernet.decrypt(sealed.encode("ascii")).decode()
        except InvalidToken:
            raise PsyllmError(
                f"stored text cannot be decrypted: {CONSOLE_KEY_ENV} is not the key it was sealed with"
            ) from None

    def sign(self, value: str, purpose: str) -> str:
        """An HMAC of `value` for one `purpose` (a session cookie, a CSRF token), URL-safe."""
        digest = hmac.new(self._signing, f"{purpose}\0{value}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")

    def verify(self, value: str, purpose: str, signature: str) -> bool:
        return hmac.compare_digest(self.sign(value, purpose), signature)


def sha256(token: str) -> str:
    """Stored instead of a secret token: the tokens are 32 random bytes, so a plain hash is enough."""
    return hashlib.sha256(token.encode()).hexdigest()
