"""Near-duplicate detection with MinHash and LSH (datasketch), for corpus and answer dedup.

Texts become sets of k-token shingles (words, or characters for CJK, via `tokens`), so
the same notion of "almost the same text" holds in English and Chinese.
"""

from datasketch import LeanMinHash, MinHash, MinHashLSH

from components.text import word_tokens

SHINGLE_TOKENS = 5
_SEED = 1


def shingles(text: str, size: int = SHINGLE_TOKENS) -> set[str]:
    """Overlapping `size`-token windows; a short text is one shingle of all its tokens."""
    words = word_tokens(text)
    if len(words) <= size:
        return {" ".join(words)}
    return {" ".join(words[start : start + size]) for start in range(len(words) - size + 1)}


def jaccard(first: str, second: str) -> float:
    """Exact Jaccard similarity of two texts' shingle sets (for checks, not for indexing)."""
    a, b = shingles(first), shingles(second)
    return len(a & b) / len(a | b) if a | b else 1.0


class NearDuplicateIndex:
    """An LSH index that answers "which stored texts are at least `threshold` similar?"."""

    def __init__(self, threshold: float, permutations: int) -> None:
        self._threshold = threshold
        self._permutations = permutations
        self._lsh = MinHashLSH(threshold=threshold, num_perm=permutations)
        self._signatures: dict[str, LeanMinHash] = {}
        self._order: dict[str, int] = {}

    def signature(self, text: str) -> LeanMinHash:
        minhash = MinHash(num_perm=self._permutations, seed=_SEED)
        minhash.update_batch([shingle.encode() for shingle in shingles(text)])
        return LeanMinHash(minhash)

    def similar(self, text: str) -> list[str]:
        """Keys of stored texts whose estimated Jaccard similarity reaches the threshold."""
        return self._similar_to(self.signature(text))

    def add(self, key: str, text: str) -> list[str]:
        """Store `text` under `key`; returns keys of near-duplicates stored before it, oldest first."""
        signature = self.signature(text)
        matches = self._similar_to(signature)
        self._lsh.insert(key, signature)
        self._signatures[key] = signature
        self._order[key] = len(self._order)
        return matches

    def _similar_to(self, signature: LeanMinHash) -> list[str]:
        """Matches in the order they were stored: LSH answers in hash order, which differs per process."""
        found = [
            key for key in self._lsh.query(signature) if self._signatures[key].jaccard(signature) >= self._threshold
        ]
        return sorted(found, key=self._order.__getitem__)
