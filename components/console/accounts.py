"""Counsellors' accounts and sessions: a one-time token per counsellor, a session per sign-in.

`psyllm counsellor add NAME` prints a token once; only its SHA-256 is stored. Signing in with it
starts a session whose own random token travels in a cookie, signed with the console key; the
session row lets sign-out (and expiry) end it on the server, not only in the browser. The CSRF
token of a session is an HMAC of the session's token, so a page from elsewhere cannot forge it.
"""

import re
import secrets
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import Engine, insert, select, update
from sqlalchemy.exc import IntegrityError

from components.console.keys import ConsoleKeys, sha256
from components.console.schema import ROLES, aware, console_sessions, counsellors, utc_now
from components.errors import PsyllmError
from components.serving.store import needs_database

SESSION_HOURS = 12
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


class SignInRefused(PsyllmError):
    """An unknown token, or a session that ended or was never started."""


class Forbidden(PsyllmError, PermissionError):
    """Signed in, but this request lacks its CSRF token or the role it needs."""


@dataclass(frozen=True)
class Counsellor:
    name: str
    role: str

    @property
    def admin(self) -> bool:
        return self.role == "admin"


class Accounts:
    def __init__(self, engine: Engine, keys: ConsoleKeys) -> None:
        self.engine, self.keys = engine, keys

    @needs_database
    def add(self, name: str, role: str = "counsellor") -> str:
        """Create the counsellor; their sign-in token, which is shown once and never stored."""
        if not _NAME.fullmatch(name):
            raise PsyllmError(f"counsellor name {name!r}: use letters, digits, '.', '_' or '-' (up to 100)")
        if role not in ROLES:
            raise PsyllmError(f"role {role!r}: expected one of {', '.join(ROLES)}")
        token = secrets.token_urlsafe(32)
        try:
            with self.engine.begin() as connection:
                connection.execute(
                    insert(counsellors).values(name=name, role=role, token_sha256=sha256(token), created_at=utc_now())
                )
        except IntegrityError:
            raise PsyllmError(f"counsellor {name!r} exists already") from None
        return token

    @needs_database
    def replace_token(self, name: str, issue: bool) -> str | None:
        """End the counsellor's sessions and void their token: a new token when `issue`, else none (revoked)."""
        token = secrets.token_urlsafe(32)
        with self.engine.begin() as connection:
            changed = connection.execute(
                update(counsellors).where(counsellors.c.name == name).values(token_sha256=sha256(token))
            )
            if changed.rowcount == 0:
                raise PsyllmError(f"there is no counsellor {name!r}")
            connection.execute(
                update(console_sessions)
                .where(console_sessions.c.counsellor == name, console_sessions.c.ended_at.is_(None))
                .values(ended_at=utc_now())
            )
        return token if issue else None

    @needs_database
    def sign_in(self, token: str) -> tuple[str, Counsellor]:
        """A new session's cookie value and who signed in."""
        with self.engine.begin() as connection:
            row = connection.execute(select(counsellors).where(counsellors.c.token_sha256 == sha256(token))).first()
            if row is None:
                raise SignInRefused("that sign-in token belongs to no counsellor")
            session = secrets.token_urlsafe(32)
            connection.execute(
                insert(console_sessions).values(
                    token_sha256=sha256(session),
                    counsellor=row.name,
                    created_at=utc_now(),
                    expires_at=utc_now() + timedelta(hours=SESSION_HOURS),
                )
            )
        return f"{session}.{self.keys.sign(session, 'session')}", Counsellor(row.name, row.role)

    @needs_database
    def signed_in(self, cookie: str | None) -> Counsellor | None:
        """Who the cookie's session belongs to, if it is genuine, current and not signed out."""
        session = self._session(cookie)
        if session is None:
            return None
        query = (
            select(counsellors.c.name, counsellors.c.role, console_sessions.c.expires_at)
            .join(counsellors, counsellors.c.name == console_sessions.c.counsellor)
            .where(console_sessions.c.token_sha256 == sha256(session), console_sessions.c.ended_at.is_(None))
        )
        with self.engine.connect() as connection:
            row = connection.execute(query).first()
        if row is None or aware(row.expires_at) <= utc_now():
            return None
        return Counsellor(row.name, row.role)

    @needs_database
    def sign_out(self, cookie: str | None) -> None:
        session = self._session(cookie)
        if session is not None:
            with self.engine.begin() as connection:
                connection.execute(
                    update(console_sessions)
                    .where(console_sessions.c.token_sha256 == sha256(session))
                    .values(ended_at=utc_now())
                )

    def csrf_token(self, cookie: str) -> str:
        return self.keys.sign(cookie.partition(".")[0], "csrf")

    def csrf_valid(self, cookie: str | None, token: str | None) -> bool:
        return bool(cookie and token) and self.keys.verify(cookie.partition(".")[0], "csrf", token or "")

    def _session(self, cookie: str | None) -> str | None:
        session, _, signature = (cookie or "").partition(".")
        return session if session and self.keys.verify(session, "session", signature) else None
