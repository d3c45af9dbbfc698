"""The paper's automatic metrics: perplexity (with bits per character), ROUGE-L and Distinct-n.

Every metric counts tokens with `components.text.word_tokens`: a CJK character is one
token and other scripts are lower-cased words, punctuation dropped. `rouge-score`'s default
tokenizer deletes Chinese, which would score every Chinese answer 0; this one does not.
Perplexity depends on the model's tokenizer, so bits per character is reported beside it:
that one compares across tokenizers.
"""

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from components.text import word_tokens


def _lcs_length(first: Sequence[str], second: Sequence[str]) -> int:
    """Longest common subsequence length, in O(len(first) * len(second)) time and O(len(second)) memory."""
    previous = [0] * (len(second) + 1)
    for token in first:
        current = [0]
        for index, other in enumerate(second):
            current.append(previous[index] + 1 if token == other else max(previous[index + 1], current[index]))
        previous = current
    return previous[-1]


def rouge_l(prediction: str, reference: str | Sequence[str]) -> float:
    """ROUGE-L F-measure (harmonic mean of LCS precision and recall) in [0, 1].

    With several references (a question with several expert answers) the best one counts.
    """
    references = [reference] if isinstance(reference, str) else list(reference)
    predicted = word_tokens(prediction)
    best = 0.0
    for candidate in references:
        expected = word_tokens(candidate)
        common = _lcs_length(predicted, expected) if predicted and expected else 0
        if common:
            precision, recall = common / len(predicted), common / len(expected)
            best = max(best, 2 * precision * recall / (precision + recall))
    return best


def distinct_n(texts: Iterable[str], n: int) -> float:
    """Distinct n-grams over all texts divided by the total number of tokens (Li et al., 2016).

    n-grams do not cross from one text to the next. An empty input scores 0.
    """
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    seen: set[tuple[str, ...]] = set()
    total_tokens = 0
    for text in texts:
        tokens = word_tokens(text)
        total_tokens += len(tokens)
        seen.update(tuple(tokens[start : start + n]) for start in range(len(tokens) - n + 1))
    return len(seen) / total_tokens if total_tokens else 0.0


@dataclass
class NllTotals:
    """Summed negative log-likelihood (nats) over reference tokens, and what it was summed over.

    Accumulate batch by batch, then read the token-weighted perplexity and bits per character.
    """

    nll: float = 0.0
    tokens: int = 0
    characters: int = 0

    def add(self, nll: float, tokens: int, characters: int) -> None:
        self.nll += nll
        self.tokens += tokens
        self.characters += characters

    @property
    def perplexity(self) -> float:
        """exp of the mean NLL per token, weighted by token (not averaged per answer)."""
        if not self.tokens:
            raise ValueError("perplexity over zero tokens")
        return math.exp(self.nll / self.tokens)

    @property
    def bits_per_character(self) -> float:
        """Total NLL in bits divided by the number of characters scored."""
        if not self.characters:
            raise ValueError("bits per character over zero characters")
        return self.nll / (self.characters * math.log(2))
