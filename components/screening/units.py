"""What the learned heads read of each message: the whole text, and windows of a long one.

A long question can carry its risk in one sentence among many ordinary ones. Read whole, the
ordinary sentences dilute that sentence, and many mildly sad ones can add up to a false alarm;
read as windows of `WINDOW_SENTENCES` neighbouring sentences, the one that matters stands on its
own and ordinary ones score as ordinary. A message scores as its highest unit.

Each unit keeps its character span in its message, so the sentence encoder can read a message
once and pool each window from the states of its own tokens, read in context
(`sentence_encoder.embed`).
"""

from dataclasses import dataclass

import numpy as np

from components.screening.labelled import LEVELS
from components.screening.normalize import SENTENCE

WINDOW_SENTENCES = 3


def sentence_spans(folded: str) -> list[tuple[int, int]]:
    """Each sentence's (start, end) in the text, without its surrounding whitespace."""
    spans = []
    for match in SENTENCE.finditer(folded):
        sentence = match.group(0)
        if sentence.strip():
            start = match.start() + len(sentence) - len(sentence.lstrip())
            spans.append((start, match.end() - len(sentence) + len(sentence.rstrip())))
    return spans


@dataclass(frozen=True)
class Units:
    """Every message whole, then its windows (none for a message of `WINDOW_SENTENCES` sentences or fewer).

    `owner[i]` is the index of the message unit i belongs to, `whole[i]` is True for the
    whole-message unit, and `spans[i]` is unit i's (start, end) in `messages[owner[i]]`. A window's
    text joins its sentences with single spaces.
    """

    messages: list[str]
    texts: list[str]
    owner: np.ndarray
    whole: np.ndarray
    spans: np.ndarray

    @classmethod
    def of(cls, folded: list[str]) -> "Units":
        texts, owner, whole, spans = [], [], [], []
        for index, message in enumerate(folded):
            sentences = sentence_spans(message)
            windows = (
                [sentences[first : first + WINDOW_SENTENCES] for first in range(len(sentences) - WINDOW_SENTENCES + 1)]
                if len(sentences) > WINDOW_SENTENCES
                else []
            )
            texts += [message, *(" ".join(message[start:end] for start, end in window) for window in windows)]
            spans += [(0, len(message)), *((window[0][0], window[-1][1]) for window in windows)]
            owner += [index] * (1 + len(windows))
            whole += [True] + [False] * len(windows)
        return cls(
            folded,
            texts,
            np.asarray(owner, dtype=np.int64),
            np.asarray(whole, dtype=bool),
            np.asarray(spans, dtype=np.int64).reshape(-1, 2),
        )

    def training_rows(self, messages: np.ndarray, levels: np.ndarray) -> np.ndarray:
        """The units the heads learn from: every chosen message whole, and the windows of its "none" ones.

        A window of a message with no risk has no risk either, so it is a negative of the
        length and style the screener reads at run time; a window of a risky message may or
        may not hold the risk, so it is left out.
        """
        chosen = np.isin(self.owner, messages)
        quiet = levels[self.owner] == LEVELS.index("none")
        return np.flatnonzero(chosen & (self.whole | quiet))


def highest_per_message(rows: np.ndarray, owners: np.ndarray, messages: int) -> np.ndarray:
    """(messages, columns): each column's highest value over the rows each message owns."""
    result = np.full((messages, rows.shape[1]), -np.inf)
    np.maximum.at(result, owners, rows)
    return result
