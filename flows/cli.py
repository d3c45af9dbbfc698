"""`psyllm`: one verb per pipeline step, plus `run` for the whole graph and the release verbs.

The step verbs come from the table in flows/steps.py (crawl adds options for an ad-hoc crawl,
which change the active profile's crawl settings for one call); each reads the active profile
from params.yaml and calls its component, and DVC's stages run exactly these verbs. Each verb
imports its own step, so a stage (and `psyllm screen`) pays only for the libraries it uses. User
errors print one clear line and exit 2; nothing a user does should ever show a traceback (set
PSYLLM_DEBUG=1 to see one).
"""

import logging
import os
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from components.config import load_params
from components.errors import TRANSIENT_EXIT_CODE, PsyllmError, is_transient
from components.locations import DEBUG_ENV
from flows.steps import STEPS, Step, run_step, step_named

if TYPE_CHECKING:
    from components.console.accounts import Accounts
    from components.serving.store import Store

app = typer.Typer(
    name="psyllm",
    help="Psy-LLM: crawl, prepare, train, evaluate and serve counselling language models.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
log = logging.getLogger("psyllm")


@app.command()
def config(
    profile: Annotated[str | None, typer.Option(help="The profile (default: the active one).")] = None,
    write: Annotated[
        bool,
        typer.Option(
            help="Write each section to paths.config/<section>.json, and the digests of prepare's input files, "
            "instead (the DVC stage `config`)."
        ),
    ] = False,
) -> None:
    """Print a profile's effective settings: params.yaml's defaults with that profile's changes."""
    from components.config import PREPARE_INPUTS_FILE, profile_yaml, write_sections
    from components.jsonl import write_json
    from components.lineage import input_digests

    params = load_params()
    name = profile or params.profile
    if not write:
        typer.echo(profile_yaml(params, name), nl=False)
        return
    params.check_profile_name(name)
    prepare = params.profiles[name].prepare
    written = write_sections(params.profiles[name], params.paths.config)
    inputs = input_digests([*prepare.qa_sources, *(corpus_file.path for corpus_file in prepare.corpus_files)])
    write_json(params.paths.config / PREPARE_INPUTS_FILE, inputs)
    missing = "".join(f"; {path} is missing" for path, digest in inputs.items() if digest == "missing")
    typer.echo(f"config: profile {name}; {len(written)} sections in {params.paths.config}/{missing}")


@app.command()
def crawl(
    seed: Annotated[list[str] | None, typer.Option(help="Start URL; replaces the profile's seeds.")] = None,
    allow_domain: Annotated[
        list[str] | None, typer.Option(help="Host to stay within (default: the seeds' hosts).")
    ] = None,
    max_pages: Annotated[int | None, typer.Option(min=1, help="Stop after storing this many pages.")] = None,
    out: Annotated[Path | None, typer.Option(help="Output folder (default: paths.crawl).")] = None,
) -> None:
    """Fetch psychology articles politely (robots.txt, rate limits) and store their main text.

    Without options it crawls what the active profile says: the default and smoke
    profiles serve data/sample_site on loopback and crawl it over HTTP. The options change the
    active profile's crawl settings for this call only (an ad-hoc crawl of another site). A killed
    crawl rerun with the same output folder resumes without refetching stored pages.
    """
    params = load_params()
    changes: dict[str, object] = {}
    if seed:
        changes |= {"sample_site": None, "seeds": seed, "allowed_domains": []}
    if allow_domain:
        changes["allowed_domains"] = allow_domain
    if max_pages is not None:
        changes["max_pages"] = max_pages
    profile = params.active()
    profile = profile.model_copy(update={"crawl": profile.crawl.model_copy(update=changes)})
    paths = params.paths.model_copy(update={"crawl": out}) if out else params.paths
    params = params.model_copy(update={"profiles": {**params.profiles, params.profile: profile}, "paths": paths})
    for line in run_step(step_named("crawl"), params):
        typer.echo(line)


@app.command("freeze-benchmark")
def freeze_benchmark(
    version: Annotated[str, typer.Argument(help="The new benchmark version's name, e.g. real-v2.")],
) -> None:
    """Pin the real benchmark's sources as they are now under a new version (once per version)."""
    from components.benchmark import FROZEN_FILE, freeze

    frozen = freeze(load_params().paths.shared_data, version)
    counts = ", ".join(f"{source} {entry['questions']} questions" for source, entry in frozen["sources"].items())
    typer.echo(f"freeze-benchmark: version {version}: {counts}; pinned in {FROZEN_FILE}")


@app.command("fetch-data")
def fetch_data(
    dest: Annotated[Path | None, typer.Option(help="Where to put them (default: paths.shared_data).")] = None,
    mirror: Annotated[
        str | None, typer.Option(help="A base URL that serves the sources as <host>/<path> (default: the sources).")
    ] = None,
) -> None:
    """Fetch the public data sets once, from their sources at pinned commits, checked by sha256 (needs a network)."""
    from components.public_data import fetch

    destination = dest or load_params().paths.shared_data
    fetched = fetch(destination, mirror)
    typer.echo(f"fetch-data: {destination}: {len(fetched.fetched)} fetched, {len(fetched.present)} already there")
    for name in fetched.fetched:
        typer.echo(f"  fetched {name}")
    if fetched.refused:
        refused = "; ".join(f"{name} ({why})" for name, why in fetched.refused.items())
        raise PsyllmError(f"fetch-data: not written, the content differs from its pin: {refused}")


def _step_command(step: Step) -> Callable[[], None]:
    def command() -> None:
        for line in run_step(step, load_params()):
            typer.echo(line)

    command.__doc__ = step.help
    return command


for _step in STEPS:
    if _step.name != "crawl":  # crawl takes options for an ad-hoc crawl, above
        app.command(_step.name)(_step_command(_step))


@app.command()
def screen(
    message: Annotated[str, typer.Argument(help="The message to screen.")],
    region: Annotated[str, typer.Option(help="Region for crisis services: US, GB, AU, CN, ...")] = "US",
    language: Annotated[str, typer.Option(help="Reply language: en or zh.")] = "en",
) -> None:
    """Screen one message and print the verdict, and the crisis reply if it is urgent or elevated."""
    from components.screening import Screener, crisis_reply

    params = load_params()
    verdict = Screener.load(params.paths.screener).screen(message)
    typer.echo(f"level: {verdict.level}; categories: {', '.join(verdict.categories) or '-'}")
    for reason in verdict.reasons:
        typer.echo(f"  - {reason}")
    reply = crisis_reply(verdict, region, language)
    if reply is not None:
        typer.echo(f"\n{reply.text}")


@app.command()
def run(
    profile: Annotated[
        str | None,
        typer.Option(help="Switch params.yaml to this profile first (one under `profiles`)."),
    ] = None,
    wait: Annotated[
        float, typer.Option(min=0, help="Seconds to wait if another run holds this project (default: refuse).")
    ] = 0.0,
    stage_workers: Annotated[
        int,
        typer.Option(
            min=1,
            help="Stages to run at a time where the graph allows (the screener beside the model). "
            "More than 1 pays where cores outnumber what one stage uses.",
        ),
    ] = 1,
) -> None:
    """Run the training flow: every stale DVC stage, then register and gate the promotion."""
    from components.progress import duration_text
    from components.run_lock import run_lock

    if profile is not None:
        load_params().check_profile_name(profile)
    _prepare_flow_environment()
    with run_lock(wait):  # before Prefect starts, so a refused run never touches its database
        from flows.training import training

        summary = training(profile=profile, stage_workers=stage_workers)
    stages = ", ".join(
        f"{stage} {outcome} ({duration_text(summary['stage_seconds'][stage])})"
        for stage, outcome in summary["stages"].items()
    )
    typer.echo(f"run: profile {summary['profile']}; {stages}")
    novelty = "new version" if summary["new_version"] else "unchanged model, no new version"
    verdict = "promoted to champion" if summary["promoted"] else "not promoted"
    typer.echo(f"run: registered psyllm version {summary['version']} ({novelty}) as challenger; {verdict}:")
    for reason in summary["reasons"]:
        typer.echo(f"  - {reason}")
    champion = f"version {summary['champion']}" if summary["champion"] else "none yet"
    pushed = f"; data pushed to DVC remote {summary['pushed_to']!r}" if summary["pushed_to"] else ""
    typer.echo(f"run: champion: {champion}{pushed}. Reports: {_reports()}")
    serve = "psyllm serve" if summary["champion"] else "psyllm serve --model models:/psyllm@challenger"
    typer.echo(f"next: `{serve}` (the web page is at http://127.0.0.1:3000/), then ask:")
    typer.echo(
        "  curl -s -X POST http://127.0.0.1:3000/answer -H 'content-type: application/json' "
        """-d '{"question": "How can I stop worrying at night?"}'"""
    )


def _prepare_flow_environment() -> None:
    """Prefect's project-local settings, and this environment's `psyllm` and `dvc` first on PATH for the stages."""
    from flows.environment import configure_prefect

    configure_prefect(Path.cwd())
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"


def _reports() -> str:
    from components.crawl import REPORT_FILE as CRAWL_REPORT
    from components.modelling.evaluate import REPORT_FILE as MODEL_REPORT
    from components.prepare import STATS_FILE
    from components.screening.evaluate import REPORT_FILE as SCREENER_REPORT

    paths = load_params().paths
    reports = (
        paths.crawl / CRAWL_REPORT,
        paths.prepared / STATS_FILE,
        paths.model_eval / MODEL_REPORT,
        paths.screener_eval / SCREENER_REPORT,
    )
    return ", ".join(str(path) for path in reports)


@app.command()
def register() -> None:
    """Register the evaluated fine-tuned model in MLflow as `psyllm@challenger` (once per model)."""
    from components import release

    result = release.register(load_params(), {})
    novelty = "new version" if result.created else "already registered, no new version"
    typer.echo(f"register: psyllm version {result.version.number} ({novelty}) is the challenger")


@app.command()
def promote(
    version: Annotated[
        str | None, typer.Argument(help="Make this version the champion (a human decision); omit to apply the gate.")
    ] = None,
    reason: Annotated[str, typer.Option(help="Why; recorded on the version.")] = "promoted by hand",
) -> None:
    """Apply the promotion gate to the challenger, or move `champion` to VERSION by hand."""
    import getpass

    from components import registry, release

    if version is None:
        outcome = release.gate(load_params())
        verdict = "promoted to champion" if outcome.decision.promote else "not promoted"
        typer.echo(f"promote: challenger version {outcome.challenger.number} {verdict}:")
        for line in outcome.decision.reasons:
            typer.echo(f"  - {line}")
        return
    previous = registry.by_alias(registry.CHAMPION)
    registry.move_alias(registry.CHAMPION, version, reason, getpass.getuser())
    was = f" (was version {previous.number})" if previous is not None else ""
    typer.echo(f"promote: psyllm version {version} is the champion{was}")
    if registry.get(version).tags.get(f"{registry.GATE_TAG}.promote") == "false":
        typer.echo(f"promote: note: the promotion gate refused version {version}; its reasons are on the version")


@app.command()
def rollback(
    reason: Annotated[str, typer.Option(help="Why; recorded on the version.")] = "rolled back by hand",
) -> None:
    """Make the previous champion the champion again."""
    import getpass

    from components import registry

    restored = registry.rollback(reason, getpass.getuser())
    typer.echo(f"rollback: psyllm version {restored.number} is the champion again")


@app.command()
def schedule(
    cron: Annotated[
        str | None, typer.Option(help="Retraining's cron expression (UTC); default: Sundays 03:00.")
    ] = None,
    profile: Annotated[str | None, typer.Option(help="Profile for scheduled runs (default: params.yaml's).")] = None,
    write_prefect_yaml: Annotated[
        bool, typer.Option(help="Write prefect.yaml for a work pool instead of serving.")
    ] = False,
    work_pool: Annotated[str, typer.Option(help="Work pool named in prefect.yaml.")] = "psyllm",
) -> None:
    """Serve scheduled retraining and the daily feedback report from this machine, or write the same deployments
    to prefect.yaml."""
    from flows import deployment

    if cron is not None:
        deployment.check_cron(cron)
    if profile is not None:
        load_params().check_profile_name(profile)
    specs = deployment.with_schedule(cron, profile)
    if write_prefect_yaml:
        path = deployment.write_prefect_yaml(specs, work_pool)
        typer.echo(f"schedule: wrote {path} (deploy with `prefect deploy --all` on a server with pool {work_pool!r})")
        return
    _prepare_flow_environment()
    for spec in specs:
        typer.echo(f"schedule: serving {spec.name!r} on cron {spec.cron!r} ({spec.timezone})")
    typer.echo("schedule: Ctrl-C stops them")
    deployment.serve(specs)


ModelSource = Annotated[
    str | None, typer.Option("--model", help="A models:/psyllm@ALIAS or models:/psyllm/N URI, or a model folder.")
]


@app.command()
def serve(
    model: ModelSource = None,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = 3000,
) -> None:
    """Serve answers, screening, ratings, the case queue and the web page (BentoML; default: the champion)."""
    from components.locations import MODEL_ENV
    from components.serving.runtime import model_version, served_folders, source_folder
    from components.serving.settings import serve_config

    # Resolved here, so a missing champion or screener is one clear line rather than a server log.
    folder = source_folder(model or serve_config(Path.cwd()).model, Path.cwd())
    answer_model, _ = served_folders(folder, Path.cwd())
    typer.echo(f"serve: {model_version(answer_model)} on http://{host}:{port}/ (Ctrl-C stops it)")
    bentoml = Path(sys.executable).parent / "bentoml"
    os.environ[MODEL_ENV] = str(folder.resolve())
    drain = str(serve_config(Path.cwd()).shutdown_timeout_s)
    os.execv(bentoml, [str(bentoml), "serve", "service:PsyLLM", "--host", host, "--port", str(port),
                       "--timeout-graceful-shutdown", drain])  # fmt: skip


StoreUrl = Annotated[
    str | None,
    typer.Option("--store", help="The service's store URL (default: $PSYLLM_STORE_URL, else serve.store_url)."),
]


def _store(url: str | None) -> "Store":
    from components.serving.settings import service_store

    return service_store(Path.cwd(), url)


@app.command()
def report(
    store: StoreUrl = None,
    out: Annotated[Path, typer.Option(help="Folder for report.md and its plots.")] = Path("reports/human"),
) -> None:
    """Summarise human ratings (live ones and every campaign): intervals, plots, agreement, blind comparisons;
    logged to each registered version they cover (the `feedback-report` flow)."""
    _store(store).close()  # a bad URL or an unreachable store is one clear line here, not a failed flow run
    _prepare_flow_environment()
    from flows.feedback import HUMAN_EVAL_ARTIFACTS, feedback_report

    summary = feedback_report(store_url=store, out=str(out))
    typer.echo(f"report: {summary['ratings']} ratings, {summary['campaigns']} campaign(s); {summary['report']}")
    if summary["logged_to"]:
        logged = ", ".join(summary["logged_to"])
        typer.echo(f"report: logged to the register run of {logged} (artefacts `{HUMAN_EVAL_ARTIFACTS}/`)")


@app.command("export-feedback")
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

    folder = out or load_params().paths.feedback
    engine = _store(store).engine
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
app.add_typer(campaign_app, name="campaign")


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

    for rater, progress in CampaignStore(_store(store).engine).progress(name).items():
        typer.echo(f"{rater}: {progress['done']}/{progress['total']}")


counsellor_app = typer.Typer(help="Counsellors' accounts for the console (/console).")
app.add_typer(counsellor_app, name="counsellor")


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
app.add_typer(conversations_app, name="conversations")


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
    engine = _store(store).engine
    typer.echo(f"conversations: emptied the text of {purge_text(engine, days)} messages older than {days:g} days")


@app.command()
def package(
    model: ModelSource = None,
) -> None:
    """Build a Bento that carries the champion (or --model) and the screener; it serves with no tracking server."""
    from components.serving.bento import package as build
    from components.serving.settings import serve_config

    tag = build(Path.cwd(), model or serve_config(Path.cwd()).model)
    typer.echo(f"package: built Bento {tag}; serve it with `bentoml serve {tag}`")
    typer.echo(f"package: `bentoml containerize {tag}` builds a container image (needs a Docker engine)")


def main() -> None:
    """Console entry point: runs the app and turns errors into one readable line."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    # Step summaries say what happened; per-shard and per-batch progress bars (tqdm, which every
    # library here uses) and library deprecation notices only add noise to a pipeline's log.
    os.environ.setdefault("TQDM_DISABLE", "1")
    warnings.filterwarnings("ignore", category=FutureWarning)
    for noisy in ("httpx", "httpcore", "trafilatura", "filelock"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        app()
    except PsyllmError as error:
        typer.secho(f"error: {error}", err=True, fg=typer.colors.RED)
        transient = getattr(error, "transient", False) or is_transient(error)
        raise SystemExit(TRANSIENT_EXIT_CODE if transient else 2) from None
    except KeyboardInterrupt:
        typer.secho("interrupted; rerun the same command to resume", err=True)
        raise SystemExit(130) from None
    except Exception as error:
        if os.environ.get(DEBUG_ENV):
            raise
        if is_transient(error):
            typer.secho(f"error: temporary failure, retry later ({type(error).__name__}): {error}", err=True)
            raise SystemExit(TRANSIENT_EXIT_CODE) from None
        typer.secho(
            f"unexpected error ({type(error).__name__}): {error}\nrerun with {DEBUG_ENV}=1 for the traceback",
            err=True,
            fg=typer.colors.RED,
        )
        raise SystemExit(1) from None
