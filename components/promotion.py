"""The promotion gate: is a newly trained model (the challenger) fit to replace the champion?

A pure function of the evidence, the screening evaluation and a policy from params, so it can be
tested on constructed cases and audited from its recorded reasons. It promotes only when every
check passes; missing evidence is a failed check, never a pass, so a failed, partial or missing
evaluation can never promote.

The evidence is the challenger against a reference (the champion, or with none the base model)
on the same questions, scored in the same run: the real benchmark where it is present, else the
Q&A test split, named in the reasons. Comparing with numbers recorded when the champion was
evaluated would compare two test sets after a retraining. The challenger must lower perplexity
by more than `min_perplexity_gain` with the whole paired 95 % interval of the change below it,
and the lower end of its ROUGE-L change's interval must stay above −`max_rouge_l_drop`: a gain
inside the noise does not promote. The screening evaluation must also meet its recall and
precision bars in every language on both frozen test splits, the written messages and the real
ones: an answer model is never promoted beside a weak safety net. With
`require_human_comparison`, raters must also have compared the challenger with the champion blind
(`psyllm campaign`), and the challenger must not lose that comparison significantly (a sign test on
the pooled preferences); automatic scores cannot see everything a counsellor would.
"""

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from components.config import PromotionPolicy
from components.human_eval import BlindComparison

Metrics = Mapping[str, float | None]


@dataclass(frozen=True)
class Decision:
    """Whether to promote, and every check with its outcome, in words a reviewer can read."""

    promote: bool
    reasons: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Evidence:
    """The challenger against its reference on one question set, or why there is no comparison.

    `changes` is `scoring.compare`'s overall scope: `perplexity` (relative change) and `rouge_l`
    (mean difference), each a `{value, low, high}` interval.
    """

    question_set: str  # e.g. "real benchmark real-v1, 10 questions per source"
    reference: str  # "champion v3" or "base model"
    changes: Mapping[str, Any] | None
    problem: str | None = None


@dataclass(frozen=True)
class HumanEvidence:
    """Raters' blind preferences between the challenger and the champion, from the challenger's side.

    `reference` is None when there is no champion (nothing to compare by hand); `comparison` is None
    when no campaign decided a pair, and `campaigns` names the campaigns pooled.
    """

    reference: str | None
    campaigns: tuple[str, ...] = ()
    comparison: BlindComparison | None = None


def _interval(change: Mapping[str, Any] | None) -> tuple[float, float, float] | None:
    if not isinstance(change, Mapping):
        return None
    values = tuple(change.get(key) for key in ("value", "low", "high"))
    if all(isinstance(v, int | float) and math.isfinite(v) for v in values):
        return values  # type: ignore[return-value]
    return None


def _model_checks(evidence: Evidence, policy: PromotionPolicy) -> list[tuple[bool, str]]:
    where = f"vs {evidence.reference} on {evidence.question_set}"
    if evidence.problem is not None or evidence.changes is None:
        return [(False, f"perplexity and ROUGE-L {where}: {evidence.problem or 'no comparison'}")]
    checks = []
    perplexity = _interval(evidence.changes.get("perplexity"))
    if perplexity is None:
        checks.append((False, f"perplexity {where}: missing"))
    else:
        value, low, high = perplexity
        checks.append(
            (
                high < -policy.min_perplexity_gain,
                f"perplexity {where}: {value:+.1%} [{low:+.1%}, {high:+.1%}] "
                f"(needs the whole interval below {-policy.min_perplexity_gain:+.1%})",
            )
        )
    rouge = _interval(evidence.changes.get("rouge_l"))
    if rouge is None:
        checks.append((False, f"ROUGE-L {where}: missing"))
    else:
        value, low, high = rouge
        checks.append(
            (
                low > -policy.max_rouge_l_drop,
                f"ROUGE-L {where}: {value:+.4f} [{low:+.4f}, {high:+.4f}] "
                f"(needs the lower end above {-policy.max_rouge_l_drop:+.4f})",
            )
        )
    return checks


def _number(metrics: Metrics | None, name: str) -> float | None:
    value = None if metrics is None else metrics.get(name)
    return value if isinstance(value, int | float) and math.isfinite(value) else None


def _screening_checks(
    screening: Mapping[str, Mapping[str, Metrics]], policy: PromotionPolicy
) -> list[tuple[bool, str]]:
    checks: list[tuple[bool, str]] = []
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
    return checks


def _human_checks(human: HumanEvidence | None, policy: PromotionPolicy) -> list[tuple[bool, str]]:
    if not policy.require_human_comparison:
        return []
    if human is None:
        return [(False, "human blind comparison: not gathered")]
    if human.reference is None:
        return [(True, "human blind comparison: no champion to compare with")]
    where = f"human blind comparison vs {human.reference}"
    if not human.campaigns:
        return [(False, f"{where}: no campaign compares them (see `psyllm campaign create`)")]
    if human.comparison is None:
        return [(False, f"{where} ({', '.join(human.campaigns)}): no pair decided yet")]
    compared = human.comparison
    lost = compared.significant and compared.second_wins > compared.first_wins
    return [
        (
            not lost,
            f"{where} ({', '.join(human.campaigns)}): {compared.first_wins} wins, {compared.second_wins} losses, "
            f"{compared.ties} ties, sign test p = {compared.p_value:.3f} (needs no significant loss)",
        )
    ]


def judge_challenger(
    evidence: Evidence,
    screening: Mapping[str, Mapping[str, Metrics]],
    policy: PromotionPolicy,
    human: HumanEvidence | None = None,
) -> Decision:
    """Check the challenger's evidence, the screening evaluation and (if the policy asks) the raters'
    blind comparison against the policy.

    `screening` maps each frozen test split (`written`, `real`) and language to its
    `urgent_recall` and `urgent_precision`.
    """
    checks = _model_checks(evidence, policy) + _screening_checks(screening, policy) + _human_checks(human, policy)
    reasons = [f"{'pass' if passed else 'FAIL'}: {text}" for passed, text in checks]
    return Decision(promote=all(passed for passed, _ in checks), reasons=reasons)
