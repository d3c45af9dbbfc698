"""The decoding settings stored in every fine-tuned model: the ones it is evaluated and served with.

Fine-tuning writes the profile's `generation` settings beside the weights and the prompt template;
evaluation checks they are the settings it measures with, and the service decodes with them, so
what is served is what was measured. Kept apart from `generate` so that reading them (the registry,
the service's start-up) does not import the decoding stack.
"""

from pathlib import Path

from pydantic import ValidationError

from components.config import GenerationConfig
from components.errors import PsyllmError

# Beside the weights and the prompt template in every fine-tuned model: how it decodes.
GENERATION_FILE = "generation.json"


def save_generation(settings: GenerationConfig, folder: Path) -> None:
    (folder / GENERATION_FILE).write_text(settings.model_dump_json(indent=2), encoding="utf-8")


def load_generation(folder: Path) -> GenerationConfig:
    """The decoding settings a fine-tuned model was stored (and evaluated) with."""
    path = folder / GENERATION_FILE
    try:
        return GenerationConfig.model_validate_json(path.read_text(encoding="utf-8"))
    except FileNotFoundError as missing:
        raise PsyllmError(f"{path}: missing; {folder} is not a fine-tuned psyllm model") from missing
    except ValidationError as bad:
        raise PsyllmError(f"{path}: not valid generation settings ({bad.error_count()} problems)") from bad
