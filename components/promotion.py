"""The promotion gate: is a newly trained model (the challenger) fit to replace the champion?

A pure function of the challenger's metrics, the champion's (if there is one) and a policy
from params, so it can be tested on constructed cases and audited from its recorded reasons.
It promotes only when every check passes, and a missing or non-finite metric is a failed
check, never a pass: a failed, partial or missing evaluation can never promote.

With a champion, the challenger must lower test perplexity by `min_perplexity_gain` (relative)
and may not lose more than `max_rouge_l_drop` of ROUGE-L (absolute; ROUGE-L is in [0, 1]).
Without one, it must beat the base model's perplexity by the same margin and reach
`min_rouge_l`. Either way, the screening evaluation must meet its recall and precision bars in every
language on both frozen test splits, the written messages and the real ones: an answer
model is never promoted beside a weak safety net.
"""

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from components.config import PromotionPolicy

Metrics = Mapping[str, float | None]


@dataclass(frozen=True)
class Decision:
    """Whether to promote, and every check with its outcome, in words a reviewer can read."""

    promote: bool
    reasons: list[str] = field(default_factory=list)


def _number(metrics: Metrics | None, name: str) -> float | None:
    value = None if metrics is None else metrics.get(name)
    return value if isinstance(value, int | float) and math.isfinite(value) else None


def judge_challenger(
    challenger: Metrics,
    champion: Metrics | None,
    base: Metrics | None,
    screening: Mapping[str, Mapping[str, Metrics]],
    policy: PromotionPolicy,
) -> Decision:
    """Check the challenger against the champion (or, with none, the base model and the minimums).

    `challenger`, `champion` and `base` hold overall `perplexity` and `rouge_l`; `screening` maps
    each frozen test split (`written`, `real`) and language to its `urgent_recall` and
    `urgent_precision`.
    """
    checks: list[tuple[bool, str]] = []
    perplexity = _number(challenger, "perplexity")
    rouge = _number(challenger, "rouge_l")
    reference_name = "champion" if champion is not None else "base model"
    reference = champion if champion is not None else base
    reference_perplexity = _number(reference, "perplexity")
    if perplexity is None or reference_perplexity is None:
        missing = "challenger" if perplexity is None else reference_name
        checks.append((False, f"perplexity: missing for the {missing}"))
    else:
        ceiling = reference_perplexity * (1 - policy.min_perplexity_gain)
        checks.append(
            (
                perplexity <= ceiling,
                f"perplexity {perplexity:.3f} vs {reference_name} {reference_perplexity:.3f} "
                f"(needs ≤ {ceiling:.3f}, {policy.min_perplexity_gain:.0%} lower)",
            )
        )
    if rouge is None:
        checks.append((False, "ROUGE-L: missing for the challenger"))
    elif champion is not None:
        champion_rouge = _number(champion, "rouge_l")
        if champion_rouge is None:
            checks.append((False, "ROUGE-L: missing for the champion"))
        else:
            floor = champion_rouge - policy.max_rouge_l_drop
            checks.append(
                (rouge >= floor, f"ROUGE-L {rouge:.4f} vs champion {champion_rouge:.4f} (needs ≥ {floor:.4f})")
            )
    else:
        checks.append(
            (rouge >= policy.min_rouge_l, f"ROUGE-L {rouge:.4f} (needs ≥ {policy.min_rouge_l:.4f}, no champion)")
        )
    bars = {
        "written": (policy.screening_min_recall, policy.screening_min_precision),
        "real": (policy.screening_real_min_recall, policy.screening_real_min_precision),
    }
    for split, (min_recall, min_precision) in bars.items():
        languages = screening.get(split) or {}
        if not languages:
            checks.append((False, f"screening {split}: no evaluation"))
        for language, measured in sorted(languages.items()):
            for name, bar in (("urgent_recall", min_recall), ("urgent_precision", min_precision)):
                value = _number(measured, name)
                label = f"screening {split} {language} {name.replace('_', ' ')}"
                if value is None:
                    checks.append((False, f"{label}: missing"))
                else:
                    checks.append((value >= bar, f"{label} {value:.3f} (needs ≥ {bar:.3f})"))
    reasons = [f"{'pass' if passed else 'FAIL'}: {text}" for passed, text in checks]
    return Decision(promote=all(passed for passed, _ in checks), reasons=reasons)
