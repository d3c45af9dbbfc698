"""The exception users see, and which failures are worth retrying.

Components raise `PsyllmError` for anything a user can fix (a missing file, a malformed
record, a bad parameter). The CLI prints its message and exits non-zero, without a trace.
A failure caused by something temporarily unreachable (a tracking server, a remote, a busy
database) is transient: the CLI exits with `TRANSIENT_EXIT_CODE`, and the flow retries only those.
"""

import sqlite3

TRANSIENT_EXIT_CODE = 75  # EX_TEMPFAIL from sysexits.h: "try again later"


class PsyllmError(Exception):
    """A problem the user can act on; `str(error)` is the whole message they see."""


def is_transient(error: BaseException) -> bool:
    """Whether `error`, or anything in its cause chain, is a connection, timeout or lock failure."""
    import httpx
    import requests

    transient = (ConnectionError, TimeoutError, httpx.TransportError, requests.ConnectionError, requests.Timeout)
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, transient):
            return True
        if isinstance(current, sqlite3.OperationalError) and "locked" in str(current):
            return True
        current = current.__cause__ or current.__context__
    return False
