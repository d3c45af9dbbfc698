"""One pipeline run per project at a time.

Two `psyllm run` in one project would interleave stages, rewrite params.yaml under each
other and race on the registry aliases. The second waits for the lock up to a limit, then
refuses with a message that names the holder. The lock is an OS file lock, so a killed run
releases it with its process: there is never a stale lock to clean up by hand. It is re-entrant
within a process, so the CLI can take it before starting Prefect and the flow can take it too.
"""

import fcntl
import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from components.errors import PsyllmError
from components.locations import RUN_LOCK_FILE

POLL_S = 0.5
_held_here = False


@contextmanager
def run_lock(wait_s: float, path: Path = RUN_LOCK_FILE) -> Iterator[None]:
    """Hold the project's run lock for the block, waiting up to `wait_s` seconds for it."""
    global _held_here
    if _held_here:
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+") as handle:
        deadline = time.monotonic() + wait_s
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise PsyllmError(
                        f"another psyllm run is using this project ({_holder(handle)}); wait for it to "
                        "finish, or pass --wait SECONDS to queue behind it"
                    ) from None
                time.sleep(POLL_S)
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps({"pid": os.getpid(), "since": datetime.now(UTC).isoformat(timespec="seconds")}))
        handle.flush()
        _held_here = True
        try:
            yield
        finally:
            _held_here = False
            fcntl.flock(handle, fcntl.LOCK_UN)


def _holder(handle: TextIO) -> str:
    try:
        handle.seek(0)
        holder = json.loads(handle.read())
        return f"pid {holder['pid']}, started {holder['since']}"
    except (ValueError, KeyError, OSError):
        return "holder unknown"
