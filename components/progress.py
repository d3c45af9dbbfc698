"""A log line about every ten seconds from a long loop, so a run of many minutes is never silent.

Training, scoring and generating log how far they are (done of total), any running values
(the loss), the throughput and an estimate of the time left. Lines go through `logging`, so
they reach the console of `psyllm <step>`, DVC's output and Prefect's logs alike, and a test
or a quiet caller silences them by log level.
"""

import logging
import time

_logger = logging.getLogger(__name__)


class Progress:
    """Counts work done of `total`; `advance` logs when `interval_s` has passed, and at the end."""

    def __init__(self, what: str, total: int, done: int = 0, unit: str = "", interval_s: float = 10.0) -> None:
        self.what, self.total, self.unit, self.interval_s = what, total, unit, interval_s
        self.done = self.first = done
        self.tokens = 0
        self.started = self.last_logged = time.monotonic()

    def advance(self, count: int = 1, tokens: int = 0, **values: float) -> None:
        """Record `count` more items (and `tokens` processed); `values` are shown as they are (loss=…)."""
        self.done += count
        self.tokens += tokens
        now = time.monotonic()
        if now - self.last_logged < self.interval_s and self.done < self.total:
            return
        self.last_logged = now
        elapsed = max(now - self.started, 1e-9)
        parts = [f"{self.what}: {self.unit}{' ' if self.unit else ''}{self.done}/{self.total}"]
        parts += [f"{name} {value:.4g}" for name, value in values.items()]
        if self.tokens:
            parts.append(f"{self.tokens / elapsed:,.0f} tokens/s")
        left = (self.total - self.done) * elapsed / max(self.done - self.first, 1)
        parts.append("done" if self.done >= self.total else f"about {duration_text(left)} left")
        _logger.info(", ".join(parts))


def duration_text(seconds: float) -> str:
    """Seconds as "2 min 5 s" or "40 s"."""
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest} s" if minutes else f"{rest} s"
