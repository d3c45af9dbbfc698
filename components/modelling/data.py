"""Training examples: packed corpus blocks for pretraining, answer-only-loss Q&A for fine-tuning.

Pretraining tokenises the corpus with `datasets.map` (cached on disk by content fingerprint,
so a rerun skips it), joins documents with EOS and cuts fixed-length blocks. Fine-tuning
examples are the prompt (from the one template) followed by the answer and EOS; only answer
tokens carry labels. Truncation policy, in order: the description is cut to
`max_description_tokens`; then the answer loses its end to fit `block_size`; an example left
with fewer than `min_answer_tokens` answer tokens is dropped and counted.
"""

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from datasets import load_dataset
from transformers import PreTrainedTokenizerBase

from components.modelling.loss import IGNORE_INDEX
from components.modelling.prompt import PromptTemplate, encode_prompt
from components.modelling.train_loop import Example
from components.qa_data import QAPair


def corpus_blocks(
    corpus: Path,
    tokenizer: PreTrainedTokenizerBase,
    block_size: int,
    max_documents: int | None,
    seed: int,
    cache_dir: Path,
) -> list[Example]:
    """Fixed-length blocks of the (optionally subsampled) corpus; labels are the inputs."""
    documents = load_dataset("json", data_files=str(corpus), split="train", cache_dir=str(cache_dir))
    if max_documents is not None and max_documents < len(documents):
        documents = documents.shuffle(seed=seed).select(range(max_documents))
    eos = tokenizer.eos_token_id

    def tokenise(batch: dict[str, list]) -> dict[str, list]:
        encoded = tokenizer(batch["text"], add_special_tokens=False)["input_ids"]
        return {"input_ids": [[*ids, eos] for ids in encoded]}

    tokenised = documents.map(tokenise, batched=True, remove_columns=documents.column_names, desc="tokenise")
    stream = [token for ids in tokenised["input_ids"] for token in ids]
    blocks = [stream[start : start + block_size] for start in range(0, len(stream) - block_size + 1, block_size)]
    if not blocks and stream:  # a corpus shorter than one block still trains on what there is
        blocks = [stream]
    return [{"input_ids": block, "labels": block} for block in blocks]


@dataclass(frozen=True)
class QAExamples:
    """Encoded fine-tuning examples and how many pairs the truncation policy dropped."""

    examples: list[Example]
    languages: list[str]  # each example's language, in the order of `examples`
    dropped: int


def qa_example(
    pair: QAPair,
    tokenizer: PreTrainedTokenizerBase,
    template: PromptTemplate,
    block_size: int,
) -> tuple[list[int], list[int]]:
    """Prompt ids and answer ids (EOS-terminated, cut to fit `block_size`) for one pair."""
    prompt = encode_prompt(tokenizer, template, pair.question, pair.description, pair.language)
    answer = [*tokenizer(pair.answer, add_special_tokens=False)["input_ids"], tokenizer.eos_token_id]
    return prompt, answer[: max(0, block_size - len(prompt))]


def qa_examples(
    pairs: list[QAPair],
    tokenizer: PreTrainedTokenizerBase,
    template: PromptTemplate,
    block_size: int,
    min_answer_tokens: int,
) -> QAExamples:
    """Fine-tuning examples with the loss on answer tokens only."""
    examples, languages, dropped = [], [], 0
    for pair in pairs:
        prompt, answer = qa_example(pair, tokenizer, template, block_size)
        if len(answer) < min_answer_tokens:
            dropped += 1
            continue
        examples.append({"input_ids": prompt + answer, "labels": [IGNORE_INDEX] * len(prompt) + answer})
        languages.append(pair.language)
    return QAExamples(examples=examples, languages=languages, dropped=dropped)


def balanced_by_language(encoded: QAExamples) -> list[Example]:
    """Every language's examples, the smaller languages' repeated in turn up to the largest one's count.

    Real Q&A sources differ in size by an order of magnitude (in the `real` profile's train
    split, CPsyCoun's dialogues give 22,966 Chinese pairs, CounselChat 1,708 English ones), and a
    fine-tune of a few hundred steps reads a small sample of them: drawn as they come, nearly
    every step would be Chinese. Repeating the smaller languages keeps every pair and evens the
    mix each step expects; the loop's per-epoch shuffle spreads the repeats.
    """
    by_language: dict[str, list[Example]] = defaultdict(list)
    for example, language in zip(encoded.examples, encoded.languages, strict=True):
        by_language[language].append(example)
    largest = max((len(group) for group in by_language.values()), default=0)
    return [group[index % len(group)] for _, group in sorted(by_language.items()) for index in range(largest)]
