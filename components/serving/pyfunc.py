"""The registered answer model: what `mlflow.pyfunc.load_model("models:/psyllm@champion")` answers with.

Teams serve straight from the registry (`mlflow models serve`, a platform's model serving, a
batch job), so the registered model answers the way the service does, through the same
`Answerer`: the one prompt template, the model's decoding settings, screening first, the crisis
reply and no generated text for an urgent message, the output check, and only the new text.
It has no store, so nothing is recorded and no case opens (the crisis reply says so by not
promising a counsellor); the service is what opens cases.

Input: a DataFrame with `question` and an optional `description` column, or a Series of
questions named `question`. Output: one row per input with `answer`, `level`,
`categories` and `withheld`. A row that cannot be answered (not text, empty, too long) stops
the whole call with an error naming the row, before anything is generated.
"""

from pathlib import Path
from typing import Any

import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.models import ModelSignature
from mlflow.pyfunc import PythonModel, PythonModelContext
from mlflow.types import ColSpec, ParamSchema, ParamSpec, Schema

from components.config import ServeConfig
from components.serving.answering import Answerer
from components.serving.contract import AnswerRequest, InvalidRequest, check_request

# What a deployment sets, not the model: a registry client has no service store.
_DEPLOYMENT_FIELDS = {"model", "store_url", "store_text"}


# Questions (with optional descriptions) in; answer, screening level, categories, withheld out.
SIGNATURE = ModelSignature(
    inputs=Schema([ColSpec("string", "question"), ColSpec("string", "description", required=False)]),
    outputs=Schema(
        [
            ColSpec("string", "answer"),
            ColSpec("string", "level"),
            ColSpec("string", "categories"),
            ColSpec("boolean", "withheld"),
        ]
    ),
    params=ParamSchema([ParamSpec("max_new_tokens", "long", None)]),
)


def _rows(model_input: pd.DataFrame) -> list[tuple[object, object]]:
    """(question, description) per input row; MLflow has already checked the `question` column is there."""
    questions = model_input["question"].tolist()
    if "description" not in model_input.columns:
        return [(question, "") for question in questions]
    descriptions = [_blank_if_missing(description) for description in model_input["description"].tolist()]
    return list(zip(questions, descriptions, strict=True))


def _blank_if_missing(description: object) -> object:
    """An optional column's missing cells (None, NaN) as no description."""
    return "" if description is None or (isinstance(description, float) and pd.isna(description)) else description


def _bad_input(message: str) -> MlflowException:
    """A client's mistake: MLflow's scoring server answers it with 400 and the message, no trace."""
    return MlflowException.invalid_parameter_value(message)


class AnswerModel(PythonModel):
    """Pyfunc wrapper around the service's `Answerer`, built from the version's own artefacts."""

    @staticmethod
    def config_of(serve: ServeConfig) -> dict[str, Any]:
        """The model config logged with the version: the service's settings a registry client answers under."""
        return serve.model_dump(exclude=_DEPLOYMENT_FIELDS)

    def load_context(self, context: PythonModelContext) -> None:
        from components.serving.runtime import load_answerer

        config = ServeConfig.model_validate(
            {**context.model_config, "model": "registered", "store_url": "", "store_text": False}
        )
        self.answerer: Answerer = load_answerer(
            Path(context.artifacts["model"]), Path(context.artifacts["screener"]), config, store=None
        )

    def predict(
        self, context: PythonModelContext, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        requests = self._requests(_rows(model_input), (params or {}).get("max_new_tokens"))
        answers = self.answerer.answer_all(requests)
        return pd.DataFrame(
            {
                "answer": [answer["answer"] for answer in answers],
                "level": [answer["screening"]["level"] for answer in answers],
                "categories": [",".join(answer["screening"]["categories"]) for answer in answers],
                "withheld": [answer["withheld"] for answer in answers],
            }
        )

    def _requests(self, rows: list[tuple[object, object]], max_new_tokens: object) -> list[AnswerRequest]:
        """Every row checked as the service checks a request, before any is answered."""
        answerer, requests = self.answerer, []
        for row, (question, description) in enumerate(rows):
            try:
                requests.append(
                    check_request(
                        question, description, max_new_tokens, answerer.config, answerer.generation.max_new_tokens
                    )
                )
            except InvalidRequest as bad:
                raise _bad_input(f"row {row}: {bad}") from None
        return requests
