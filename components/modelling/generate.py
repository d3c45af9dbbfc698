"""Batched, KV-cached answer generation: the one decoding path for evaluation and serving.

Prompts come from the one template and are left-padded into batches, so every row's next
token sits in the last column and the KV cache serves the whole batch. A base model that
was never fine-tuned tends to run on into a new "Question:"; the answer ends there.
"""

from dataclasses import dataclass

import torch
from transformers import GenerationConfig as HfGenerationConfig
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from components.config import GenerationConfig
from components.modelling.prompt import PromptTemplate, encode_prompt


@dataclass(frozen=True)
class Question:
    """What a person asks: the question, optional details, and its language (en, zh, ...)."""

    question: str
    description: str
    language: str


def _cut_at_next_question(answer: str, template: PromptTemplate) -> str:
    for language in template.labels:
        marker = f"\n{template.labels[language]['question']}{template.separators[language]}"
        answer = answer.split(marker, 1)[0]
    return answer.strip()


@torch.no_grad()
def generate_answers(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    template: PromptTemplate,
    questions: list[Question],
    settings: GenerationConfig,
    max_description_tokens: int,
    seed: int = 0,
) -> list[str]:
    """One answer per question, in order, decoded in batches of `settings.batch_size`."""
    model.eval()
    device = next(model.parameters()).device
    limit = int(model.config.max_position_embeddings) - settings.max_new_tokens
    decoding = HfGenerationConfig(
        max_new_tokens=settings.max_new_tokens,
        do_sample=settings.do_sample,
        temperature=settings.temperature if settings.do_sample else None,
        top_p=settings.top_p if settings.do_sample else None,
        top_k=None,
        repetition_penalty=settings.repetition_penalty,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        use_cache=True,
    )
    torch.manual_seed(seed)
    answers: list[str] = []
    for start in range(0, len(questions), settings.batch_size):
        batch = questions[start : start + settings.batch_size]
        prompts = [
            encode_prompt(tokenizer, template, item.question, item.description, item.language, max_description_tokens)[
                -limit:
            ]
            for item in batch
        ]
        width = max(len(ids) for ids in prompts)
        input_ids = torch.full((len(prompts), width), tokenizer.pad_token_id, dtype=torch.long)
        attention_mask = torch.zeros((len(prompts), width), dtype=torch.long)
        for row, ids in enumerate(prompts):
            input_ids[row, width - len(ids) :] = torch.tensor(ids)
            attention_mask[row, width - len(ids) :] = 1
        output = model.generate(
            input_ids=input_ids.to(device), attention_mask=attention_mask.to(device), generation_config=decoding
        )
        for row in output[:, width:]:
            answers.append(_cut_at_next_question(tokenizer.decode(row, skip_special_tokens=True), template))
    return answers
