"""How a service worker stops: with the server that started it, and by draining on SIGTERM.

BentoML starts each worker in a session of its own (its process manager, circus, calls setsid),
so killing the server's process group, as a crash or an out-of-memory kill of the server does,
leaves the workers running: each keeps the port and answers with the model it loaded, and a
restarted service shares the port with them. So a worker watches the process that started it,
and once that process has gone (the worker has been re-parented) it shuts down as on SIGTERM.

SIGTERM (from the server, an orchestrator, or the watch) starts a drain: uvicorn stops accepting
connections and lets requests in flight finish for up to `serve.shutdown_timeout_s`, then the
service closes its store; meanwhile `draining()` is true, so readiness says no and a request
that still reaches the worker gets 503 with Retry-After. A drain that outlasts its timeout by
more than a few seconds ends the worker hard.
"""

import logging
import os
import signal
import threading
import time
from types import FrameType

log = logging.getLogger(__name__)
_draining = threading.Event()
_WATCH_EVERY_S = 0.5
_HARD_EXIT_AFTER_S = 5.0  # past the drain timeout


def draining() -> bool:
    """Whether this worker has been told to stop (it still finishes what it started)."""
    return _draining.is_set()


def drain_on_sigterm(timeout_s: float) -> None:
    """Mark the worker draining on SIGTERM, then pass the signal on to the server's own handler.

    Must run in the main thread after the server installed its handler (BentoML creates the
    service there, inside the running server); elsewhere, or with no server handler to pass the
    signal on to (the service class built in a test), it does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        return
    previous = signal.getsignal(signal.SIGTERM)
    if not callable(previous):
        return

    def on_sigterm(number: int, frame: FrameType | None) -> None:
        if not _draining.is_set():
            _draining.set()
            log.info("SIGTERM: draining (up to %.0f s for requests in flight)", timeout_s)
            threading.Thread(target=_exit_hard_after, args=(timeout_s + _HARD_EXIT_AFTER_S,), daemon=True).start()
        previous(number, frame)

    signal.signal(signal.SIGTERM, on_sigterm)


def _exit_hard_after(seconds: float) -> None:
    time.sleep(seconds)
    log.warning("the drain outlasted its timeout; exiting now")
    os._exit(1)


def exit_with_parent() -> threading.Thread:
    """Watch the process that started this one; once it has gone, SIGTERM to itself (the drain above)."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(_WATCH_EVERY_S)
        log.warning("the server that started this worker (pid %d) has gone; shutting down", parent)
        os.kill(os.getpid(), signal.SIGTERM)

    watcher = threading.Thread(target=watch, name="psyllm-parent-watch", daemon=True)
    watcher.start()
    return watcher
