"""The MLflow Model Registry: the `psyllm` model, its `challenger` and `champion` aliases, their history.

Serving loads `models:/psyllm@champion`, so the champion alias is the one production switch.
Each alias move is a single registry call (atomic on the tracking server) and is recorded:
on the version (when, by whom, why) and, for the champion, in the registered model's history
tag, from which `rollback` restores the previous champion. Versions carry their evaluation
metrics and lineage as tags, so the gate and a reader need nothing but the registry.
"""

import json
import math
import re
import shutil
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import mlflow
from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException

from components.errors import PsyllmError
from components.staging import staged_folder
from components.tracking import MODEL_DIGEST_TAG, SCREENER_DIGEST_TAG, connect
from components.version_folder import MODEL_ARTIFACT, SCREENER_ARTIFACT, VERSION_FILE, is_version_folder

MODEL_NAME = "psyllm"
CHALLENGER = "challenger"
CHAMPION = "champion"
HISTORY_TAG = "psyllm.champion_history"
METRIC_PREFIX = "metric."
BASE_METRIC_PREFIX = "base_metric."
GATE_TAG = "psyllm.gate"
# The MLflow run that registered a version: its artefacts (model card, lineage, human ratings).
REGISTER_RUN_TAG = "psyllm.register_run"


@dataclass(frozen=True)
class Version:
    """One registered model version, as the release steps see it."""

    number: str
    model_uri: str
    digest: str
    metrics: dict[str, float]
    base_metrics: dict[str, float]
    tags: dict[str, str]

    @classmethod
    def of(cls, version: ModelVersion) -> "Version":
        tags = dict(version.tags)
        return cls(
            number=str(version.version),
            model_uri=f"models:/{MODEL_NAME}/{version.version}",
            digest=tags.get(MODEL_DIGEST_TAG, ""),
            metrics=_numbers(tags, METRIC_PREFIX),
            base_metrics=_numbers(tags, BASE_METRIC_PREFIX),
            tags=tags,
        )

    @property
    def label(self) -> str:
        """How the service, its ratings and campaigns name this version: `psyllm/N`."""
        return f"{MODEL_NAME}/{self.number}"


def _numbers(tags: dict[str, str], prefix: str) -> dict[str, float]:
    values = {key.removeprefix(prefix): float(value) for key, value in tags.items() if key.startswith(prefix)}
    return {key: value for key, value in values.items() if math.isfinite(value)}


def _client() -> MlflowClient:
    connect()
    return MlflowClient()


def find_by_digest(digest: str, screener_digest: str) -> Version | None:
    """The version registered from a model folder and a screener with these content digests, if any."""
    found = _client().search_model_versions(
        f"name='{MODEL_NAME}' and tags.`{MODEL_DIGEST_TAG}` = '{digest}' "
        f"and tags.`{SCREENER_DIGEST_TAG}` = '{screener_digest}'"
    )
    return Version.of(min(found, key=lambda v: int(v.version))) if found else None


def get(number: str) -> Version:
    """A version by number; a clear error if the registry has no such version."""
    try:
        return Version.of(_client().get_model_version(MODEL_NAME, number))
    except MlflowException as missing:
        raise PsyllmError(f"the registry has no version {number} of {MODEL_NAME!r}") from missing


def attach_report(label: str, folder: Path, artifact_path: str) -> bool:
    """Log `folder` under `artifact_path` to the register run of version `label` (`psyllm/N`), so the version's
    page carries the evidence about it; False when `label` is not a version in this registry."""
    found = re.fullmatch(rf"{MODEL_NAME}/(\d+)", label)
    if found is None:
        return False
    try:
        version = get(found[1])
    except PsyllmError:
        return False
    run_id = version.tags.get(REGISTER_RUN_TAG)
    if run_id is None:
        return False
    _client().log_artifacts(run_id, str(folder), artifact_path)
    return True


def by_alias(alias: str) -> Version | None:
    """The version holding `alias`, or None when no version holds it (or nothing is registered)."""
    try:
        return Version.of(_client().get_model_version_by_alias(MODEL_NAME, alias))
    except MlflowException:
        return None


def create_version(
    model_uri: str,
    digest: str,
    screener_digest: str,
    metrics: dict[str, float],
    base_metrics: dict[str, float],
    tags: dict[str, str],
    card: str,
) -> Version:
    """A new version from a logged answer model, with its metrics, lineage tags and model card."""
    version_tags = {
        MODEL_DIGEST_TAG: digest,
        SCREENER_DIGEST_TAG: screener_digest,
        **{f"{METRIC_PREFIX}{key}": repr(value) for key, value in metrics.items()},
        **{f"{BASE_METRIC_PREFIX}{key}": repr(value) for key, value in base_metrics.items()},
        **tags,
    }
    client = _client()
    created = mlflow.register_model(model_uri, MODEL_NAME, tags=version_tags)
    client.update_model_version(MODEL_NAME, created.version, description=card)
    return get(str(created.version))


def _history(client: MlflowClient) -> list[str]:
    tags = client.get_registered_model(MODEL_NAME).tags
    return json.loads(tags.get(HISTORY_TAG, "[]"))


def move_alias(alias: str, number: str, reason: str, actor: str) -> None:
    """Point `alias` at version `number` in one registry call, and record who moved it and why."""
    client = _client()
    get(number)
    history = _history(client) if alias == CHAMPION else []
    client.set_registered_model_alias(MODEL_NAME, alias, number)
    _record(client, alias, number, reason, actor)
    if alias == CHAMPION and (not history or history[-1] != number):
        client.set_registered_model_tag(MODEL_NAME, HISTORY_TAG, json.dumps([*history, number]))


def rollback(reason: str, actor: str) -> Version:
    """Make the previous champion the champion again; returns it."""
    client = _client()
    try:
        history = _history(client)
    except MlflowException as missing:
        raise PsyllmError(
            f"nothing is registered as {MODEL_NAME!r} yet; there is no champion to roll back"
        ) from missing
    if len(history) < 2:
        raise PsyllmError("there is no earlier champion to roll back to")
    previous = history[-2]
    client.set_registered_model_alias(MODEL_NAME, CHAMPION, previous)
    _record(client, CHAMPION, previous, f"rollback: {reason}", actor)
    client.set_registered_model_tag(MODEL_NAME, HISTORY_TAG, json.dumps(history[:-1]))
    return get(previous)


def _record(client: MlflowClient, alias: str, number: str, reason: str, actor: str) -> None:
    now = datetime.now(UTC).isoformat(timespec="seconds")
    for key, value in {"since": now, "by": actor, "reason": reason}.items():
        client.set_model_version_tag(MODEL_NAME, number, f"psyllm.{alias}.{key}", value)


def record_decision(number: str, promote: bool, reasons: list[str]) -> None:
    """The gate's verdict on a version, with every check, as tags a reviewer reads in the registry."""
    client = _client()
    client.set_model_version_tag(MODEL_NAME, number, f"{GATE_TAG}.promote", str(promote).lower())
    client.set_model_version_tag(MODEL_NAME, number, f"{GATE_TAG}.reasons", "\n".join(reasons))


_MODEL_URI = re.compile(rf"^models:/{MODEL_NAME}(?:@(?P<alias>[\w-]+)|/(?P<number>\d+))$")


def resolve(model_uri: str) -> Version:
    """The version a `models:/psyllm@alias` or `models:/psyllm/N` URI names, with a clear error if none."""
    found = _MODEL_URI.match(model_uri)
    if found is None:
        raise PsyllmError(f"{model_uri!r}: expected models:/{MODEL_NAME}@ALIAS or models:/{MODEL_NAME}/NUMBER")
    if found["number"]:
        return get(found["number"])
    version = by_alias(found["alias"])
    if version is None:
        hint = " (the gate has not promoted any version; see `psyllm promote`)" if found["alias"] == CHAMPION else ""
        raise PsyllmError(f"no version of {MODEL_NAME!r} holds the alias {found['alias']!r}{hint}")
    return version


def export_model(version: Version, destination: Path) -> Path:
    """A registered version's two folders, `model/` and `screener/`, in a folder under `destination`.

    `model/` is the plain fine-tuned folder (weights, tokenizer, prompt template, decoding), which
    `load_model` opens and a user can fine-tune further; `screener/` is the screener registered with
    it. They are the artefacts `mlflow.pyfunc.load_model` answers with, so serving a registry URI
    serves exactly the registered thing. An exported version is reused.
    """
    folder = destination / f"{MODEL_NAME}-v{version.number}-{version.digest[:12]}"
    if is_version_folder(folder):
        return folder
    _client()
    with staged_folder(folder) as staging, tempfile.TemporaryDirectory(dir=destination) as download:
        downloaded = Path(mlflow.artifacts.download_artifacts(artifact_uri=version.model_uri, dst_path=download))
        artifacts = mlflow.models.Model.load(downloaded).flavors.get("python_function", {}).get("artifacts", {})
        missing = [name for name in (MODEL_ARTIFACT, SCREENER_ARTIFACT) if name not in artifacts]
        if missing:
            raise PsyllmError(
                f"{version.model_uri} carries no {' or '.join(missing)} artefact; it was not registered by this "
                "psyllm (register it again with `psyllm register`)"
            )
        for name in (MODEL_ARTIFACT, SCREENER_ARTIFACT):
            shutil.copytree(downloaded / artifacts[name]["path"], staging / name)
        (staging / MODEL_ARTIFACT / VERSION_FILE).write_text(version.label, encoding="utf-8")
    return folder
