"""The one prompt template: how a question becomes model input, at finetune, evaluate and serve.

A drift between the text a model was fine-tuned on and the text it is asked with at serving
time is a silent quality bug, so every caller renders prompts here, and the fine-tuned
artefact stores the template it was trained with (`prompt_template.json`) beside the weights.
The template is plain text, not a chat template, so it works for base models (Gemma 3 270M
is a pretrained, not an instruction-tuned, checkpoint) and for the tiny test model alike.
"""

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from transformers import PreTrainedTokenizerBase

from components.errors import PsyllmError

TEMPLATE_FILE = "prompt_template.json"
# Rendered as the input example of every logged model, so a registry user sees a real prompt.
EXAMPLE_QUESTION = "How can I stop worrying so much at night?"

_SYSTEM_LINES = {
    "en": (
        "You are a warm, careful counselling assistant. Answer the person's question with empathy "
        "and practical, evidence-based suggestions, and encourage professional help where it fits."
    ),
    "zh": (
        "你是一位温暖、谨慎的心理咨询助手。请用共情的语气回答提问者的问题，"
        "给出实用、有依据的建议，并在合适时鼓励其寻求专业帮助。"
    ),
}
_LABELS = {
    "en": {"question": "Question", "description": "Details", "answer": "Answer"},
    "zh": {"question": "问题", "description": "描述", "answer": "回答"},
}
_SEPARATOR = {"en": ": ", "zh": "："}


@dataclass(frozen=True)
class PromptTemplate:
    """System line and field labels per language; `render` is the only way to build a prompt.

    `max_description_tokens` is the fine-tune's description limit: it travels with the template,
    so evaluation and serving cut a long description exactly where training did.
    """

    max_description_tokens: int
    version: str = "psyllm-qa-v1"
    system_lines: dict[str, str] = field(default_factory=lambda: dict(_SYSTEM_LINES))
    labels: dict[str, dict[str, str]] = field(default_factory=lambda: {k: dict(v) for k, v in _LABELS.items()})
    separators: dict[str, str] = field(default_factory=lambda: dict(_SEPARATOR))

    def language_for(self, language: str) -> str:
        """The template language used for `language`: itself if known, else English."""
        return language if language in self.system_lines else "en"

    def render(self, question: str, description: str, language: str) -> str:
        """The prompt text; the answer follows it directly. An empty description is left out."""
        lang = self.language_for(language)
        labels, sep = self.labels[lang], self.separators[lang]
        lines = [self.system_lines[lang], "", f"{labels['question']}{sep}{question.strip()}"]
        if description.strip():
            lines.append(f"{labels['description']}{sep}{description.strip()}")
        lines += ["", f"{labels['answer']}{sep}"]
        return "\n".join(lines)

    def save(self, folder: Path) -> None:
        (folder / TEMPLATE_FILE).write_text(json.dumps(asdict(self), ensure_ascii=False, indent=2), encoding="utf-8")

    @classmethod
    def load(cls, folder: Path) -> "PromptTemplate":
        """The template a fine-tuned artefact was trained with."""
        path = folder / TEMPLATE_FILE
        try:
            return cls(**json.loads(path.read_text(encoding="utf-8")))
        except FileNotFoundError as missing:
            raise PsyllmError(f"{path}: missing; {folder} is not a fine-tuned psyllm model") from missing
        except (json.JSONDecodeError, TypeError) as bad:
            raise PsyllmError(f"{path}: not a valid prompt template ({bad})") from bad


def encode_prompt(
    tokenizer: PreTrainedTokenizerBase,
    template: PromptTemplate,
    question: str,
    description: str,
    language: str,
) -> list[int]:
    """Prompt token ids; the description is cut to the template's `max_description_tokens`.

    The question is never cut; a long description loses its end. The prompt and the answer are
    tokenised separately, exactly as generation sees them: the model reads these prompt ids and
    continues, so training must see the same boundary.
    """
    limit = template.max_description_tokens
    pieces = tokenizer(description, add_special_tokens=False, return_offsets_mapping=True)
    if len(pieces["input_ids"]) > limit:
        description = description[: pieces["offset_mapping"][limit - 1][1]]
    return list(tokenizer(template.render(question, description, language))["input_ids"])
