"""`psyllm export-feedback`: what raters judged, turned into data for the next training run.

From every rating campaign in the service's store (the answers raters saw are stored there; live
answers are not), per question and model:
- `pairs.jsonl`: answers that at least `MIN_RATERS` raters rated with a mean of at least
  `GOOD_MEAN` on every one of the four scales, as Q&A pairs in the JSON Lines format `load_qa`
  reads, so a profile trains on them by listing the file in `prepare.qa_sources` (off until then);
- `review.jsonl`: questions whose best answer averaged below `POOR_MEAN`, for counsellors to write
  a better one.
Answers counsellors sent from the console (components/console/conversations.py) are the best pairs
of all: each becomes a pair, and with the draft it started from a row of `drafts.jsonl` (the draft
and what a person made of it). A campaign question that screened urgent or elevated, and a
conversation that screened urgent, is never exported, and every text is PII-scrubbed as the corpus
is. `manifest.json` counts what was kept and why the rest was not, with a digest of the files; the
folder is a DVC-tracked output (`dvc add`), so each export is a version.
"""

import hashlib
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from statistics import mean
from typing import Any

from components.jsonl import write_json, write_jsonl
from components.privacy import scrub_pair, scrub_pii
from components.qa_data import qa_pair
from components.serving.campaign_store import SIDES, CampaignStore
from components.serving.store import RATING_SCALES

PAIRS_FILE, REVIEW_FILE, DRAFTS_FILE, MANIFEST_FILE = "pairs.jsonl", "review.jsonl", "drafts.jsonl", "manifest.json"
MIN_RATERS = 2
GOOD_MEAN = 4.0
POOR_MEAN = 3.0


def _means(judgements: Iterable[Mapping[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    """Per (item, side): how many raters judged it and its mean on each scale."""
    scores: dict[tuple[str, str], dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    for row in judgements:
        for side in SIDES:
            for scale in RATING_SCALES:
                scores[(row["item_id"], side)][scale].append(row[f"{side}_{scale}"])
    return {
        key: {"raters": len(by_scale[RATING_SCALES[0]]), **{scale: mean(by_scale[scale]) for scale in RATING_SCALES}}
        for key, by_scale in scores.items()
    }


def write_feedback(
    campaigns: CampaignStore, folder: Path, counsellor_answers: Sequence[Mapping[str, Any]] = ()
) -> dict[str, Any]:
    """Write pairs, the review list, the counsellors' drafts and the manifest into `folder`; returns the manifest."""
    pairs, review, drafts = [], [], []
    counts = {"screened_out": 0, "too_few_raters": 0, "below_bar": 0, "empty_answer": 0, "urgent_conversation": 0}
    for sent in counsellor_answers:
        if sent["level"] == "urgent":
            counts["urgent_conversation"] += 1
            continue
        pair = scrub_pair(
            qa_pair(f"conversation:{sent['message_id']}", sent["question"], "", sent["answer"], "counsellor")
        )
        pairs.append(pair.as_record())
        if sent["draft"]:
            draft = scrub_pii(sent["draft"])
            drafts.append({"question_id": pair.question_id, "question": pair.question, "draft": draft,
                           "draft_source": sent["draft_source"], "answer": pair.answer})  # fmt: skip
    for name in campaigns.names():
        campaign = campaigns.campaign(name)
        means = _means(campaign["judgements"])
        for item in campaigns.items(name):
            rated = [(side, means[(item.item_id, side)]) for side in SIDES if (item.item_id, side) in means]
            if not rated:
                continue
            if item.level != "none":
                counts["screened_out"] += 1
                continue
            for side, scores in rated:
                answer = item.first_answer if side == "first" else item.second_answer
                if scores["raters"] < MIN_RATERS:
                    counts["too_few_raters"] += 1
                elif min(scores[scale] for scale in RATING_SCALES) < GOOD_MEAN:
                    counts["below_bar"] += 1
                else:
                    model = campaign["models"][SIDES.index(side)]
                    pair = qa_pair(f"{name}:{item.item_id}", item.question, "", answer, f"feedback:{name}:{model}")
                    if pair.answer.strip():
                        pairs.append(scrub_pair(pair).as_record())
                    else:  # nothing to learn from, however it was rated
                        counts["empty_answer"] += 1
            best = max(mean(scores[scale] for scale in RATING_SCALES) for _, scores in rated)
            if best < POOR_MEAN:
                question = scrub_pii(item.question)
                review.append({"campaign": name, "item_id": item.item_id, "question": question, "best_mean": best})
    folder.mkdir(parents=True, exist_ok=True)
    write_jsonl(folder / PAIRS_FILE, pairs)
    write_jsonl(folder / REVIEW_FILE, review)
    write_jsonl(folder / DRAFTS_FILE, drafts)
    digest = hashlib.sha256()
    for name in (PAIRS_FILE, REVIEW_FILE, DRAFTS_FILE):
        digest.update((folder / name).read_bytes())
    manifest = {
        "pairs": len(pairs),
        "review": len(review),
        "counsellor_answers": len(counsellor_answers) - counts["urgent_conversation"],
        "not_exported": counts,
        "rules": {"min_raters": MIN_RATERS, "good_mean_every_scale": GOOD_MEAN, "review_below_best_mean": POOR_MEAN},
        "campaigns": campaigns.names(),
        "sha256": digest.hexdigest(),
    }
    write_json(folder / MANIFEST_FILE, manifest)
    return manifest
