"""`psyllm` verbs over the service's store: the ratings report, the feedback export, blind rating
campaigns, counsellors' accounts and the console's conversations.

They serve the people around the model rather than the pipeline, and all open the store the
service writes to (`--store`, else `$PSYLLM_STORE_URL`, else `serve.store_url`); `flows/cli.py`
registers them beside the step verbs.
"""

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from components.config import load_params
from flows.environment import prepare_flow_run

if TYPE_CHECKING:
    from components.console.accounts import Accounts
    from components.serving.store import Store

StoreUrl = Annotated[
    str | None,
    typer.Option("--store", help="The service's store URL (default: $PSYLLM_STORE_URL, else serve.store_url)."),
]


def _store(url: str | None, create: bool = True) -> "Store":
    """The service's store; verbs that only read what the service wrote pass `create=False`."""
    from components.serving.settings import service_store

    return service_store(Path.cwd(), url, create)


def report(
    store: StoreUrl = None,
    out: Annotated[Path, typer.Option(help="Folder for report.md and its plots.")] = Path("reports/human"),
) -> None:
    """Summarise human ratings (live ones and every campaign): intervals, plots, agreement, blind comparisons;
    logged to each registered version they cover (the `feedback-report` flow)."""
    _store(store, create=False).close()  # a bad or missing store is one clear line here, not a failed flow run
    prepare_flow_run(Path.cwd())
    from flows.feedback import HUMAN_EVAL_ARTIFACTS, feedback_report

    summary = feedback_report(store_url=store, out=str(out))
    typer.echo(f"report: {summary['ratings']} ratings, {summary['campaigns']} campaign(s); {summary['report']}")
    if summary["logged_to"]:
        logged = ", ".join(summary["logged_to"])
        typer.echo(f"report: logged to the register run of {logged} (artefacts `{HUMAN_EVAL_ARTIFACTS}/`)")


def export_feedback(
    store: StoreUrl = None,
    out: Annotated[Path | None, typer.Option(help="Folder to write (default: paths.feedback).")] = None,
) -> None:
    """Campaign answers rated well by two or more raters as training pairs, poorly answered questions for
    review; nothing screened urgent or elevated, PII scrubbed; the folder is versioned with `dvc add`."""
    from dvc.exceptions import NotDvcRepoError
    from dvc.repo import Repo

    from components.console.conversations import Conversations
    from components.console.keys import ConsoleKeys
    from components.feedback_export import PAIRS_FILE, write_feedback
    from components.locations import CONSOLE_KEY_ENV
    from components.serving.campaign_store import CampaignStore

    engine = _store(store, create=False).engine
    folder = out or load_params().paths.feedback
    keys = ConsoleKeys.from_environment()
    sent: list[dict[str, Any]] = []
    if keys is None:
        typer.echo(f"export-feedback: counsellors' answers not exported: set {CONSOLE_KEY_ENV} to read them")
    else:
        sent = Conversations(engine, keys).sent_answers()
    manifest = write_feedback(CampaignStore(engine), folder, sent)
    typer.echo(
        f"export-feedback: {manifest['pairs']} pairs ({manifest['counsellor_answers']} from counsellors), "
        f"{manifest['review']} questions for review in {folder}/"
    )
    typer.echo(f"export-feedback: not exported: {manifest['not_exported']}")
    try:
        Repo(".").add(str(folder))
    except NotDvcRepoError:
        typer.echo("export-feedback: not a DVC project here, so this export is not versioned")
        return
    pairs = folder / PAIRS_FILE
    typer.echo(
        f"export-feedback: versioned as {folder}.dvc (commit it); train on it: add {pairs} to prepare.qa_sources"
    )


campaign_app = typer.Typer(
    help="Blind rating campaigns: two models' answers to fixed questions, rated by named raters."
)


@campaign_app.command("create")
def campaign_create(
    name: Annotated[str, typer.Option(help="The campaign's name (letters, digits, '.', '_', '-').")],
    questions: Annotated[Path, typer.Option(help="JSON Lines with `id`, `question` and optional `description`.")],
    models: Annotated[str, typer.Option(help="Two models, comma-separated: models:/ URIs or model folders.")],
    raters: Annotated[str, typer.Option(help="Rater names, comma-separated.")],
    store: StoreUrl = None,
    max_new_tokens: Annotated[int | None, typer.Option(min=1, help="Answer length (default: each model's).")] = None,
    url: Annotated[str, typer.Option(help="The service's address, for the raters' links.")] = "http://127.0.0.1:3000",
) -> None:
    """Answer a question set once with each model and store it; prints each rater's private link."""
    from components.campaign import create_campaign

    split = [model.strip() for model in models.split(",") if model.strip()]
    names = [rater.strip() for rater in raters.split(",") if rater.strip()]
    tokens = create_campaign(_store(store), name, questions, split, names, max_new_tokens)
    typer.echo(f"campaign {name}: stored; each rater's private link (shown once):")
    for rater, token in tokens.items():
        typer.echo(f"  {rater}: {url.rstrip('/')}/rate#{token}")


@campaign_app.command("status")
def campaign_status(name: Annotated[str, typer.Argument(help="The campaign.")], store: StoreUrl = None) -> None:
    """Each rater's progress: items judged out of the campaign's."""
    from components.serving.campaign_store import CampaignStore

    for rater, progress in CampaignStore(_store(store, create=False).engine).progress(name).items():
        typer.echo(f"{rater}: {progress['done']}/{progress['total']}")


counsellor_app = typer.Typer(help="Counsellors' accounts for the console (/console).")


def _accounts(store: str | None) -> "Accounts":
    """Counsellors' accounts in the service's store (opening it brings its schema up to date); the console key is
    required."""
    from components.console.accounts import Accounts
    from components.console.keys import ConsoleKeys, ConsoleOff

    keys = ConsoleKeys.from_environment()
    if keys is None:
        raise ConsoleOff()
    return Accounts(_store(store).engine, keys)


@counsellor_app.command("add")
def counsellor_add(
    name: Annotated[str, typer.Argument(help="The counsellor's name (letters, digits, '.', '_', '-').")],
    admin: Annotated[bool, typer.Option(help="May also read the audit trail.")] = False,
    store: StoreUrl = None,
) -> None:
    """Create a counsellor and print their sign-in token, once (only its hash is stored)."""
    token = _accounts(store).add(name, "admin" if admin else "counsellor")
    typer.echo(f"counsellor {name}: sign in at /console with this token (shown once, keep it secret):\n  {token}")


@counsellor_app.command("token")
def counsellor_token(
    name: Annotated[str, typer.Argument(help="The counsellor.")],
    revoke: Annotated[bool, typer.Option(help="Issue none: the counsellor can no longer sign in.")] = False,
    store: StoreUrl = None,
) -> None:
    """Void a counsellor's token and end their sessions; print a new token (shown once) unless --revoke."""
    token = _accounts(store).replace_token(name, issue=not revoke)
    if token is None:
        typer.echo(f"counsellor {name}: token revoked and sessions ended")
    else:
        typer.echo(f"counsellor {name}: new sign-in token (shown once; the old one no longer works):\n  {token}")


conversations_app = typer.Typer(help="The console's conversations: its key, schema and retention.")


@conversations_app.command("key")
def conversations_key() -> None:
    """Print a new console key: set it as PSYLLM_CONSOLE_KEY wherever the service runs, and keep it safe."""
    from components.console.keys import new_key
    from components.locations import CONSOLE_KEY_ENV

    typer.echo(f"{CONSOLE_KEY_ENV}={new_key()}")


@conversations_app.command("migrate")
def conversations_migrate(store: StoreUrl = None) -> None:
    """Bring the store's tables to the newest schema (opening the store, as the service does, does this too)."""
    from components.serving.migrate import migrate

    typer.echo(f"conversations: the store is at schema revision {migrate(_store(store).engine)}")


@conversations_app.command("purge")
def conversations_purge(
    older_than: Annotated[
        float | None, typer.Option("--older-than", min=0, help="Days (default: serve.retention_days).")
    ] = None,
    store: StoreUrl = None,
) -> None:
    """Delete the text of messages older than the retention period; who answered what, and when, stays."""
    from components.console.conversations import purge_text
    from components.serving.settings import serve_config

    days = older_than if older_than is not None else serve_config(Path.cwd()).retention_days
    engine = _store(store, create=False).engine
    typer.echo(f"conversations: emptied the text of {purge_text(engine, days)} messages older than {days:g} days")
