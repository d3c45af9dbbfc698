"""How much MinHash-LSH saves over exhaustive Jaccard when finding near-duplicate answers.

The baseline compares every pair of answers exactly; the candidate is the project's
`NearDuplicateIndex`. Both run here, on the same CounselChat answers, and the result is a
ratio (baseline time / LSH time) plus the LSH's recall of the exact pairs. Results go to
bench/results/near_dup.json.

    .venv/bin/python bench/near_dup.py [--answers 800]
"""

import argparse
import json
import time
from itertools import combinations
from pathlib import Path

from components.config import load_params
from components.near_dup import NearDuplicateIndex, shingles
from components.qa_data import load_qa

ROOT = Path(__file__).resolve().parents[1]
COUNSELCHAT = ROOT.parent / "shared/data/counsel-chat/20200325_counsel_chat.csv"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--answers", type=int, default=800, help="how many answers to compare")
    arguments = parser.parse_args()
    if not COUNSELCHAT.is_file():
        raise SystemExit(f"skipped: {COUNSELCHAT} is not present")
    config = load_params(ROOT / "params.yaml").profiles["default"].prepare
    answers = [pair.answer for pair in load_qa(COUNSELCHAT)][: arguments.answers]

    started = time.perf_counter()
    sets = [shingles(answer) for answer in answers]
    exact_pairs = {
        (i, j)
        for i, j in combinations(range(len(sets)), 2)
        if len(sets[i] & sets[j]) >= config.near_duplicate_threshold * len(sets[i] | sets[j])
    }
    baseline_s = time.perf_counter() - started

    started = time.perf_counter()
    index = NearDuplicateIndex(config.near_duplicate_threshold, config.minhash_permutations)
    lsh_pairs = {
        (int(match), number) for number, answer in enumerate(answers) for match in index.add(str(number), answer)
    }
    lsh_s = time.perf_counter() - started

    recall = len(lsh_pairs & exact_pairs) / len(exact_pairs) if exact_pairs else 1.0
    result = {
        "answers": len(answers),
        "threshold": config.near_duplicate_threshold,
        "permutations": config.minhash_permutations,
        "exact_pairs": len(exact_pairs),
        "lsh_pairs": len(lsh_pairs),
        "lsh_recall_of_exact_pairs": round(recall, 4),
        "baseline_exhaustive_s": round(baseline_s, 3),
        "lsh_s": round(lsh_s, 3),
        "speedup_ratio": round(baseline_s / lsh_s, 2),
    }
    out = ROOT / "bench/results/near_dup.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
