"""The `feedback-report` flow: the human-ratings report, logged where each version's evidence lives.

It writes the report (components/rating_report.py) from the service's store, logs the report's
folder to the register run of every registered version it covers (artefact path `human_eval`), and
publishes the report as the Prefect markdown artifact `human-ratings`. `psyllm report` runs it;
a team schedules it like the retraining (flows/deployment.py).
"""

from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact

from components import registry
from components.rating_report import covered_versions, write_report
from components.serving.campaign_store import CampaignStore
from components.serving.settings import service_store
from flows.environment import hide_console_tracebacks

FLOW_NAME = "feedback-report"
HUMAN_EVAL_ARTIFACTS = "human_eval"


@flow(name=FLOW_NAME, log_prints=False)
def feedback_report(store_url: str | None = None, out: str = "reports/human") -> dict[str, Any]:
    """Summarise live ratings and every campaign; attach the report to the versions it is about."""
    hide_console_tracebacks()
    logger = get_run_logger()
    store = service_store(Path.cwd(), store_url)
    try:
        ratings, campaigns = store.ratings(), CampaignStore(store.engine)
        judged = [campaigns.campaign(name) for name in campaigns.names()]
    finally:
        store.close()
    report = write_report(ratings, judged, Path(out))
    versions = covered_versions(ratings, judged)
    attached = [label for label in versions if registry.attach_report(label, report.parent, HUMAN_EVAL_ARTIFACTS)]
    for label in sorted(set(versions) - set(attached)):
        logger.info("%s is not a version in this registry; the report is not logged to it", label)
    create_markdown_artifact(key="human-ratings", markdown=report.read_text(encoding="utf-8"), description="report")
    return {"report": str(report), "ratings": len(ratings), "campaigns": len(judged), "logged_to": attached}
