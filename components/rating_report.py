"""`psyllm report`: the service's stored ratings and rating campaigns as a markdown report with plots.

Per model version and scale, the count, the mean and its 95 % bootstrap interval; a plot of the
score distributions; and per scale whether the raters agree (Krippendorff's alpha, ordinal, over
answers rated by two or more raters). Live traffic mostly rates each answer once, so agreement is
often not computable there, and the report says so rather than printing a number; a campaign has
every rater judge every item, and adds the blind comparison: wins, losses and ties from the first
model's side, overall (the raters' preference) and per scale, each with a sign test.
"""

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from components.human_eval import NotComputable, blind_comparison, krippendorff_alpha, summarise
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


def _scores(rows: Sequence[Mapping[str, Any]], models: list[str], plot: Path, what: str) -> list[str]:
    """The scores table, the distribution plot and agreement for rows of `(unit, rater_id, model_version, scales)`."""
    lines = ["| model | scale | ratings | mean | 95 % interval |", "|---|---|---|---|---|"]
    for model in models:
        for scale in RATING_SCALES:
            scores = summarise(row[scale] for row in rows if row["model_version"] == model)
            interval = f"[{scores.low:.2f}, {scores.high:.2f}]"
            lines.append(f"| {model} | {scale} | {scores.count} | {scores.mean:.2f} | {interval} |")
    _plot_distributions(rows, models, plot)
    lines += ["", f"![Score distributions per scale and model]({plot.name})", "", f"### Rater agreement ({what})", ""]
    lines += [f"Krippendorff's alpha ({AGREEMENT_LEVEL}) over answers rated by two or more raters:", ""]
    for scale, agreement in _agreement(rows).items():
        lines.append(f"- {scale}: {agreement}")
    return lines


def _live(ratings: Sequence[Mapping[str, Any]], folder: Path) -> list[str]:
    """Ratings people gave answers of the running service."""
    lines = ["## Live ratings", ""]
    if not ratings:
        return [*lines, "No ratings yet: nothing to summarise, and agreement cannot be computed.", ""]
    models = sorted({rating["model_version"] for rating in ratings})
    rows = [{**rating, "unit": rating["request_id"]} for rating in ratings]
    raters, answers = {rating["rater_id"] for rating in ratings}, {rating["request_id"] for rating in ratings}
    lines += [
        f"{len(ratings)} ratings of {len(answers)} answers by {len(raters)} raters, "
        f"for {len(models)} model version(s). Scores are 1-5; intervals are 95 % bootstrap intervals of the mean.",
        "",
    ]
    return [*lines, *_scores(rows, models, folder / "scores.png", "live"), ""]


def _campaign(campaign: Mapping[str, Any], folder: Path) -> list[str]:
    """One blind campaign: both models' scores, agreement, and the raters' preferences with a sign test."""
    name, (first, second), judgements = campaign["name"], campaign["models"], campaign["judgements"]
    lines = [f"## Campaign {name}: {first} (first) vs {second} (second)", ""]
    if not judgements:
        return [*lines, "No judgements yet.", ""]
    raters, items = {row["rater_id"] for row in judgements}, {row["item_id"] for row in judgements}
    lines += [f"{len(judgements)} judgements of {len(items)} items by {len(raters)} raters, answers shown blind.", ""]
    rows = [
        {"unit": f"{row['item_id']}/{side}", "rater_id": row["rater_id"], "model_version": model}
        | {scale: row[f"{side}_{scale}"] for scale in RATING_SCALES}
        for row in judgements
        for side, model in (("first", first), ("second", second))
    ]
    lines += _scores(rows, [first, second], folder / f"campaign-{name}.png", name)
    lines += ["", "### Blind comparison", "", f"From {first}'s side; p: two-sided sign test on decided pairs.", ""]
    lines += ["| judged on | wins | losses | ties | p | verdict |", "|---|---|---|---|---|---|"]
    verdicts = {
        "preference": [{"first": "win", "second": "loss", "tie": "tie"}[row["preferred"]] for row in judgements]
    }
    for scale in RATING_SCALES:
        verdicts[scale] = [_verdict(row[f"first_{scale}"], row[f"second_{scale}"]) for row in judgements]
    for judged_on, preferences in verdicts.items():
        lines.append(f"| {judged_on} | {_comparison(preferences)} |")
    return [*lines, ""]


def _verdict(first: int, second: int) -> str:
    return "win" if first > second else "loss" if first < second else "tie"


def _comparison(preferences: list[str]) -> str:
    try:
        compared = blind_comparison(preferences)
    except NotComputable as why:
        ties = preferences.count("tie")
        return f"0 | 0 | {ties} | - | not computable ({why})"
    verdict = "significant" if compared.significant else "no significant difference"
    return f"{compared.first_wins} | {compared.second_wins} | {compared.ties} | {compared.p_value:.3f} | {verdict}"


def write_report(ratings: Sequence[Mapping[str, Any]], campaigns: Sequence[Mapping[str, Any]], folder: Path) -> Path:
    """The report and its plots: `ratings` as the store's `ratings()` gives them, `campaigns` as
    `CampaignStore.campaign()` does; returns the report's path."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = ["# Human ratings", "", *_live(ratings, folder)]
    for campaign in campaigns:
        lines += _campaign(campaign, folder)
    (folder / REPORT_FILE).write_text("\n".join(lines).rstrip() + "\n", encoding="utf-8")
    return folder / REPORT_FILE


def covered_versions(ratings: Sequence[Mapping[str, Any]], campaigns: Sequence[Mapping[str, Any]]) -> list[str]:
    """Every model version the ratings and campaigns are about, in order of first appearance."""
    versions = [rating["model_version"] for rating in ratings]
    versions += [model for campaign in campaigns for model in campaign["models"]]
    return list(dict.fromkeys(versions))


def _agreement(rows: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """Per scale, alpha to three places, or the plain reason it cannot be computed."""
    by_scale: dict[str, str] = {}
    for scale in RATING_SCALES:
        triples = [(row["unit"], row["rater_id"], row[scale]) for row in rows]
        try:
            by_scale[scale] = f"{krippendorff_alpha(triples, AGREEMENT_LEVEL):.3f}"
        except NotComputable as why:
            by_scale[scale] = f"not computable ({why})"
    return by_scale
