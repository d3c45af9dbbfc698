"""One model on one set of questions: a record per question, then the paper's metrics over them.

Per question the records keep the reference answers' summed NLL and token count, the generated
answer and its ROUGE-L, so any aggregate (per language, overall) and any paired comparison of
two models on the same questions can be recomputed from them, not only the numbers printed:
- perplexity (token-weighted, reference answer tokens given the prompt) and bits per character,
  which compares across tokenizers;
- ROUGE-L of the generated answer against the question's best-matching reference answer;
- Distinct-1/2 over all generated answers, and mean generated answer length (words, or
  characters for CJK).
"""

from dataclasses import asdict, dataclass
from typing import Any

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from components.bootstrap import mean_difference, perplexity_change
from components.config import FinetuneConfig, GenerationConfig
from components.errors import PsyllmError
from components.metrics import NllTotals, distinct_n, rouge_l
from components.modelling.data import qa_example
from components.modelling.generate import Question, generate_answers
from components.modelling.loss import IGNORE_INDEX, CausalLMLoss
from components.modelling.prompt import PromptTemplate
from components.progress import Progress
from components.qa_data import QAPair
from components.text import word_tokens

Questions = dict[str, list[QAPair]]  # question id → its reference answers, in scoring order


@dataclass(frozen=True)
class QuestionScore:
    """One model on one question: its reference answers' likelihood and its own generated answer."""

    question_id: str
    language: str
    nll: float  # nats, summed over every reference answer's scored tokens
    tokens: int
    characters: int  # characters of the scored reference text, for bits per character
    rouge_l: float  # the generated answer against the best-matching reference
    answer: str  # the generated answer

    def as_record(self) -> dict[str, Any]:
        return asdict(self)


@torch.no_grad()
def _reference_nll(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    template: PromptTemplate,
    questions: Questions,
    finetune: FinetuneConfig,
    batch_size: int,
) -> dict[str, NllTotals]:
    """Each question's reference-answer NLL, prompted exactly as in fine-tuning.

    Answers are scored `batch_size` at a time, in order of length and right-padded, so a batch
    wastes little on padding; padding comes after every real token and changes no row's NLL.
    """
    loss = CausalLMLoss(model, finetune.training.loss_chunk_size)
    device = next(model.parameters()).device
    totals: dict[str, NllTotals] = {question_id: NllTotals() for question_id in questions}
    examples = []
    for question_id, pairs in questions.items():
        for pair in pairs:
            prompt, answer = qa_example(pair, tokenizer, template, finetune.training.block_size)
            if answer:
                examples.append((question_id, prompt, answer))
    examples.sort(key=lambda example: len(example[1]) + len(example[2]))
    progress = Progress("scoring reference answers", len(examples), unit="answer")
    for start in range(0, len(examples), batch_size):
        batch = examples[start : start + batch_size]
        width = max(len(prompt) + len(answer) for _, prompt, answer in batch)
        ids = torch.full((len(batch), width), tokenizer.pad_token_id, dtype=torch.long)
        labels = torch.full((len(batch), width), IGNORE_INDEX, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for row, (_, prompt, answer) in enumerate(batch):
            length = len(prompt) + len(answer)
            ids[row, :length] = torch.tensor(prompt + answer)
            labels[row, len(prompt) : length] = torch.tensor(answer)
            mask[row, :length] = 1
        nll, tokens = loss.per_row(ids.to(device), labels.to(device), mask.to(device))
        for (question_id, _, answer), row_nll, row_tokens in zip(batch, nll.tolist(), tokens.tolist(), strict=True):
            totals[question_id].add(row_nll, row_tokens, len(tokenizer.decode(answer, skip_special_tokens=True)))
        progress.advance(len(batch), tokens=int(mask.sum()))
    return totals


def score_questions(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    template: PromptTemplate,
    questions: Questions,
    finetune: FinetuneConfig,
    generation: GenerationConfig,
    batch_size: int,
) -> list[QuestionScore]:
    """One record per question, in the order given."""
    nll = _reference_nll(model, tokenizer, template, questions, finetune, batch_size)
    asked = [Question(pairs[0].question, pairs[0].description, pairs[0].language) for pairs in questions.values()]
    generated = generate_answers(model, tokenizer, template, asked, generation, batch_size)
    return [
        QuestionScore(
            question_id=question_id,
            language=pairs[0].language,
            nll=nll[question_id].nll,
            tokens=nll[question_id].tokens,
            characters=nll[question_id].characters,
            rouge_l=rouge_l(answer, [pair.answer for pair in pairs]),
            answer=answer,
        )
        for (question_id, pairs), answer in zip(questions.items(), generated, strict=True)
    ]


def _scopes(scores: list[QuestionScore]) -> dict[str, list[QuestionScore]]:
    """Each language's records, then `overall`."""
    languages = sorted({score.language for score in scores})
    return {**{lang: [s for s in scores if s.language == lang] for lang in languages}, "overall": scores}


def summarize(scores: list[QuestionScore]) -> dict[str, dict[str, float]]:
    """The paper's metrics per language and overall."""
    summary = {}
    for scope, members in _scopes(scores).items():
        totals = NllTotals()
        for score in members:
            totals.add(score.nll, score.tokens, score.characters)
        answers = [score.answer for score in members]
        summary[scope] = {
            "perplexity": totals.perplexity,
            "bits_per_character": totals.bits_per_character,
            "rouge_l": sum(score.rouge_l for score in members) / len(members),
            "distinct_1": distinct_n(answers, 1),
            "distinct_2": distinct_n(answers, 2),
            "mean_answer_length": sum(len(word_tokens(text)) for text in answers) / len(answers),
            "questions": len(members),
            "answer_tokens_scored": totals.tokens,
        }
    return summary


def compare(challenger: list[QuestionScore], reference: list[QuestionScore], seed: int = 0) -> dict[str, Any]:
    """Paired bootstrap changes, challenger against reference, per language and overall.

    `perplexity` is the relative change (−0.05: 5 % lower) and `rouge_l` the mean difference, each
    with its 95 % interval. Both models must have scored the same questions and tokens.
    """
    if [(s.question_id, s.tokens) for s in challenger] != [(s.question_id, s.tokens) for s in reference]:
        raise PsyllmError("models compared on different questions or answer tokens; score them on the same set")
    changes: dict[str, Any] = {}
    references = _scopes(reference)
    for scope, members in _scopes(challenger).items():
        base = references[scope]
        if len(members) < 2:
            changes[scope] = {"skipped": f"{len(members)} question(s): too few for an interval"}
            continue
        ppl = perplexity_change([s.nll for s in members], [s.nll for s in base], [s.tokens for s in members], seed=seed)
        rouge = mean_difference([s.rouge_l for s in members], [s.rouge_l for s in base], seed=seed)
        changes[scope] = {"perplexity": asdict(ppl), "rouge_l": asdict(rouge)}
    return changes
