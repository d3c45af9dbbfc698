"""The screener as an MLflow pyfunc model: what a registry user loads with `mlflow.pyfunc.load_model`.

It holds no state of its own: the trained heads load from the logged artefact folder, and the
logged code path carries `components/`, so the model loads wherever psyllm's requirements are.
"""

from pathlib import Path

import pandas as pd
from mlflow.pyfunc import PythonModel, PythonModelContext


class ScreenerModel(PythonModel):
    """Pyfunc wrapper: a DataFrame with a `text` column in, level/urgent/categories out."""

    def load_context(self, context: PythonModelContext) -> None:
        from components.screening import Screener

        self.screener = Screener.load(Path(context.artifacts["screener"]))

    def predict(
        self, context: PythonModelContext, model_input: pd.DataFrame, params: dict | None = None
    ) -> pd.DataFrame:
        verdicts = self.screener.screen_many(list(model_input["text"]))
        return pd.DataFrame(
            {
                "level": [verdict.level for verdict in verdicts],
                "urgent": [verdict.urgent for verdict in verdicts],
                "categories": [",".join(verdict.categories) for verdict in verdicts],
            }
        )
