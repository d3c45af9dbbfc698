"""The console's numbers on the service's /metrics: who waits for a person, and how long the first reply took.

Made when the service's worker starts, after BentoML has pointed prometheus_client at its
multiprocess folder, so BentoML's /metrics exports them with its own.
"""

from prometheus_client import Gauge, Histogram

from components.console.schema import LEVELS

# From a minute to a day: a crisis line aims at minutes, a counselling service at hours.
REPLY_BUCKETS_S = (60, 300, 900, 1800, 3600, 7200, 14400, 43200, 86400)


class ConsoleMetrics:
    def __init__(self) -> None:
        self._waiting = Gauge(
            "psyllm_conversations_waiting",
            "Conversations waiting for a person's reply, by screening level",
            ["level"],
            multiprocess_mode="mostrecent",
        )
        self._first_reply = Histogram(
            "psyllm_first_human_reply_seconds",
            "Time from a conversation's first message to its first counsellor reply, by screening level",
            ["level"],
            buckets=REPLY_BUCKETS_S,
        )

    def waiting(self, by_level: dict[str, int]) -> None:
        for level in LEVELS:
            self._waiting.labels(level=level).set(by_level.get(level, 0))

    def first_reply(self, level: str, waited_s: float) -> None:
        self._first_reply.labels(level=level).observe(waited_s)
