"""`psyllm report`: the service's stored ratings as a markdown report with plots.

Per model version and scale, the count, the mean and its 95 % bootstrap interval; a plot of the
score distributions; and per scale whether the raters agree (Krippendorff's alpha, ordinal, over
answers rated by two or more raters). Live traffic mostly rates each answer once, so agreement is
often not computable there, and the report says so rather than printing a number.
"""

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from components.human_eval import NotComputable, krippendorff_alpha, summarise
from components.serving.store import RATING_SCALES

REPORT_FILE = "report.md"
AGREEMENT_LEVEL = "ordinal"  # 1-5 ratings: ordered, but the steps need not be equal


def _plot_distributions(ratings: Sequence[Mapping[str, Any]], models: list[str], path: Path) -> None:
    """One panel per scale: how often each model got each score from 1 to 5."""
    import matplotlib

    matplotlib.use("Agg")  # files only; no display
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(RATING_SCALES), figsize=(4 * len(RATING_SCALES), 3.2), sharey=True)
    width = 0.8 / len(models)
    for axis, scale in zip(axes, RATING_SCALES, strict=True):
        for index, model in enumerate(models):
            values = [rating[scale] for rating in ratings if rating["model_version"] == model]
            counts = [values.count(score) for score in range(1, 6)]
            axis.bar([score - 0.4 + width * (index + 0.5) for score in range(1, 6)], counts, width, label=model)
        axis.set_title(scale)
        axis.set_xticks(range(1, 6))
        axis.set_xlabel("score")
    axes[0].set_ylabel("ratings")
    axes[-1].legend(fontsize="small")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def write_report(ratings: Sequence[Mapping[str, Any]], folder: Path) -> Path:
    """The report (and its plot) for `ratings`, rows as the store's `ratings()` gives them; returns its path."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = ["# Human ratings", ""]
    if not ratings:
        lines.append("No ratings yet: nothing to summarise, and agreement cannot be computed.")
        (folder / REPORT_FILE).write_text("\n".join(lines) + "\n", encoding="utf-8")
        return folder / REPORT_FILE
    models = sorted({rating["model_version"] for rating in ratings})
    raters = {rating["rater_id"] for rating in ratings}
    answers = {rating["request_id"] for rating in ratings}
    lines += [
        f"{len(ratings)} ratings of {len(answers)} answers by {len(raters)} raters, "
        f"for {len(models)} model version(s). Scores are 1-5; intervals are 95 % bootstrap intervals of the mean.",
        "",
        "## Scores",
        "",
        "| model | scale | ratings | mean | 95 % interval |",
        "|---|---|---|---|---|",
    ]
    for model in models:
        for scale in RATING_SCALES:
            scores = summarise(rating[scale] for rating in ratings if rating["model_version"] == model)
            interval = f"[{scores.low:.2f}, {scores.high:.2f}]"
            lines.append(f"| {model} | {scale} | {scores.count} | {scores.mean:.2f} | {interval} |")
    _plot_distributions(ratings, models, folder / "scores.png")
    lines += ["", "![Score distributions per scale and model](scores.png)", "", "## Rater agreement", ""]
    lines += [f"Krippendorff's alpha ({AGREEMENT_LEVEL}) over answers rated by two or more raters:", ""]
    for scale, agreement in _agreement(ratings).items():
        lines.append(f"- {scale}: {agreement}")
    (folder / REPORT_FILE).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder / REPORT_FILE


def _agreement(ratings: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """Per scale, alpha to three places, or the plain reason it cannot be computed."""
    by_scale: dict[str, str] = {}
    for scale in RATING_SCALES:
        triples = [(rating["request_id"], rating["rater_id"], rating[scale]) for rating in ratings]
        try:
            by_scale[scale] = f"{krippendorff_alpha(triples, AGREEMENT_LEVEL):.3f}"
        except NotComputable as why:
            by_scale[scale] = f"not computable ({why})"
    return by_scale
