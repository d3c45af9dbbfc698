"""`psyllm`: one verb per pipeline step, plus `run` for the whole graph and the release verbs (the verbs
over the service's store are in flows/store_cli.py).

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
from typing import Annotated

import typer

from components.config import load_params
from components.errors import TRANSIENT_EXIT_CODE, PsyllmError, is_transient
from components.locations import DEBUG_ENV
from flows import store_cli
from flows.environment import prepare_flow_run
from flows.steps import STEPS, Step, run_step, step_named

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
    prepare_flow_run(Path.cwd())
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
    prepare_flow_run(Path.cwd())
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
    from components.serving.runtime import served_folders, source_folder
    from components.serving.settings import serve_config
    from components.version_folder import model_version

    # Resolved here, so a missing champion or screener is one clear line rather than a server log.
    folder = source_folder(model or serve_config(Path.cwd()).model, Path.cwd())
    answer_model, _ = served_folders(folder, Path.cwd())
    typer.echo(f"serve: {model_version(answer_model)} on http://{host}:{port}/ (Ctrl-C stops it)")
    bentoml = Path(sys.executable).parent / "bentoml"
    os.environ[MODEL_ENV] = str(folder.resolve())
    drain = str(serve_config(Path.cwd()).shutdown_timeout_s)
    os.execv(bentoml, [str(bentoml), "serve", "service:PsyLLM", "--host", host, "--port", str(port),
                       "--timeout-graceful-shutdown", drain])  # fmt: skip


# Verbs over the service's store (ratings, campaigns, counsellors, conversations): flows/store_cli.py.
app.command()(store_cli.report)
app.command("export-feedback")(store_cli.export_feedback)
app.add_typer(store_cli.campaign_app, name="campaign")
app.add_typer(store_cli.counsellor_app, name="counsellor")
app.add_typer(store_cli.conversations_app, name="conversations")


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
