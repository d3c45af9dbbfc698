"""Urgent-case screening: every answer path screens a message before any model text is shown.

`Screener.load(folder).screen(text) -> Screening` gives `urgent`, `level` (none / elevated / urgent),
`categories`, human-readable `reasons` and, when urgent, its `basis` (an explicit statement or the
classifier alone); `crisis_reply(screening, region, language)`
gives the fixed reply that leads an answer to an urgent message. Curated patterns
(`rules`) and learned per-language heads (`linear_heads`, trained by `train`) decide
together in `decide`; `evaluate` measures them on the frozen written and real test splits.
"""

from components.screening.crisis import CrisisDirectory, CrisisReply, crisis_reply, load_directory
from components.screening.screener import Basis, InvalidMessage, Screener, Screening

__all__ = [
    "Basis",
    "CrisisDirectory",
    "CrisisReply",
    "InvalidMessage",
    "Screener",
    "Screening",
    "crisis_reply",
    "load_directory",
]
