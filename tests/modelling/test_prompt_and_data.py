"""The one prompt template and the answer-only loss mask, as finetune, evaluate and generate use them."""

import pytest
import torch

from components.config import GenerationConfig, load_params
from components.jsonl import write_jsonl
from components.locations import PARAMS_FILE
from components.modelling.base_model import build_tiny
from components.modelling.data import balanced_by_language, qa_example, qa_examples
from components.modelling.finetune import encoded_split, training_examples
from components.modelling.generate import Question, generate_answers
from components.modelling.loss import IGNORE_INDEX, CausalLMLoss
from components.modelling.prompt import PromptTemplate, encode_prompt
from components.qa_data import QAPair
from tests.conftest import PROJECT_ROOT
from tests.modelling.conftest import ARCHITECTURE

PAIR = QAPair(
    "q1", "How do I stop worrying at night?", "I lie awake for hours.", "Try a wind-down routine.", "en", "test"
)
PAIR_ZH = QAPair("q2", "最近总是失眠怎么办？", "工作压力很大。", "可以试试规律作息。", "zh", "test")


def test_template_is_language_aware_and_round_trips(tmp_path):
    template = PromptTemplate(max_description_tokens=64)
    english, chinese = template.render("Q?", "D.", "en"), template.render("问？", "", "zh")
    assert english.endswith("Answer: ") and "Question: Q?" in english and "Details: D." in english
    assert chinese.endswith("回答：") and "问题：问？" in chinese and "描述" not in chinese
    assert template.render("Q?", "", "fr") == template.render("Q?", "", "en")
    template.save(tmp_path)
    assert PromptTemplate.load(tmp_path) == template  # the description limit travels with it


def test_loss_is_on_answer_tokens_only(tiny_tokenizer):
    template = PromptTemplate(max_description_tokens=64)
    encoded = qa_examples([PAIR, PAIR_ZH], tiny_tokenizer, template, 256, 1)
    assert encoded.dropped == 0
    for pair, example in zip([PAIR, PAIR_ZH], encoded.examples, strict=True):
        prompt = encode_prompt(tiny_tokenizer, template, pair.question, pair.description, pair.language)
        answer = tiny_tokenizer(pair.answer, add_special_tokens=False)["input_ids"] + [tiny_tokenizer.eos_token_id]
        assert example["input_ids"] == prompt + answer
        assert example["labels"] == [IGNORE_INDEX] * len(prompt) + answer


def test_truncation_cuts_description_then_answer_then_drops(tiny_tokenizer):
    template = PromptTemplate(max_description_tokens=16)
    long_description = "I lie awake and worry about work. " * 40
    long = QAPair("q3", "Why?", long_description, "Sleep is hard when you worry. " * 40, "en", "test")
    prompt, answer = qa_example(long, tiny_tokenizer, template, block_size=200)
    text = tiny_tokenizer.decode(prompt)
    kept_description = text.split("Details: ", 1)[1].split("\n", 1)[0]
    assert long_description.startswith(kept_description) and len(kept_description) < len(long_description) / 10
    assert len(tiny_tokenizer(kept_description, add_special_tokens=False)["input_ids"]) <= 16
    assert "Question: Why?" in text  # the question is never cut
    assert len(prompt) + len(answer) == 200  # the answer lost its end to fit the block
    assert answer[-1] != tiny_tokenizer.eos_token_id
    dropped = qa_examples([long], tiny_tokenizer, template, 200, min_answer_tokens=500)
    assert dropped.examples == [] and dropped.dropped == 1


def test_balancing_repeats_the_smaller_languages_pairs_up_to_the_largest_ones_count(tiny_tokenizer):
    template = PromptTemplate(max_description_tokens=64)
    english = [QAPair(f"e{n}", f"Question {n}?", "", f"Answer number {n}.", "en", "test") for n in range(7)]
    chinese = [QAPair(f"z{n}", f"问题{n}？", "", f"回答{n}。", "zh", "test") for n in range(2)]
    encoded = qa_examples(english + chinese, tiny_tokenizer, template, 256, 1)
    assert encoded.languages == ["en"] * 7 + ["zh"] * 2
    balanced = balanced_by_language(encoded)
    assert len(balanced) == 14
    assert balanced[:7] == encoded.examples[:7]  # every English pair once
    assert balanced[7:] == [encoded.examples[7], encoded.examples[8]] * 3 + [encoded.examples[7]]
    assert balanced_by_language(qa_examples(english, tiny_tokenizer, template, 256, 1)) == encoded.examples[:7]


def test_the_train_split_counts_distinct_pairs_and_balances_only_what_the_loop_reads(tmp_path, tiny_tokenizer):
    english = [QAPair(f"e{n}", f"Question {n}?", "", f"Answer number {n}. " * 10, "en", "test") for n in range(7)]
    chinese = [QAPair(f"z{n}", f"问题{n}？", "", f"回答{n}。" * 10, "zh", "test") for n in range(2)]
    write_jsonl(tmp_path / "train.jsonl", [pair.as_record() for pair in english + chinese])
    defaults = load_params(PROJECT_ROOT / PARAMS_FILE).profiles["default"].finetune
    balanced = defaults.model_copy(update={"balance_languages": True})
    train_split = encoded_split(tmp_path, "train", tiny_tokenizer, balanced)
    assert len(train_split.examples) == 9  # what the step reports
    assert len(training_examples(train_split, balanced)) == 14  # what the loop reads
    unbalanced = defaults.model_copy(update={"balance_languages": False})
    assert training_examples(train_split, unbalanced) == train_split.examples


def test_generation_reads_exactly_the_finetuning_prompt(tiny_model, tiny_tokenizer):
    template = PromptTemplate(max_description_tokens=64)
    seen: list[torch.Tensor] = []
    hook = tiny_model.register_forward_pre_hook(
        lambda module, args, kwargs: seen.append(kwargs["input_ids"].clone()), with_kwargs=True
    )
    settings = GenerationConfig(max_new_tokens=2, do_sample=False, temperature=1.0, top_p=1.0, repetition_penalty=1.0)
    answers = generate_answers(
        tiny_model,
        tiny_tokenizer,
        template,
        [Question(PAIR.question, PAIR.description, "en"), Question(PAIR_ZH.question, PAIR_ZH.description, "zh")],
        settings,
        batch_size=2,
    )
    hook.remove()
    assert len(answers) == 2
    first_call = seen[0]
    for row, pair in enumerate([PAIR, PAIR_ZH]):
        trained_prompt = qa_examples([pair], tiny_tokenizer, template, 256, 1).examples[0]
        prompt_length = trained_prompt["labels"].count(IGNORE_INDEX)
        fed = [t for t in first_call[row].tolist()]
        assert fed[len(fed) - prompt_length :] == trained_prompt["input_ids"][:prompt_length]
        assert all(t == tiny_tokenizer.pad_token_id for t in fed[: len(fed) - prompt_length])


@pytest.mark.parametrize("softcap", [None, 30.0])
def test_chunked_loss_and_its_gradients_equal_the_full_logits_ones(tiny_tokenizer, softcap):
    """The chunked head's hand-derived gradients match autograd's through Hugging Face's full-logits loss."""
    examples = qa_examples([PAIR, PAIR_ZH], tiny_tokenizer, PromptTemplate(max_description_tokens=64), 256, 1).examples
    width = max(len(example["input_ids"]) for example in examples)
    ids = torch.tensor([e["input_ids"] + [0] * (width - len(e["input_ids"])) for e in examples])
    labels = torch.tensor([e["labels"] + [IGNORE_INDEX] * (width - len(e["labels"])) for e in examples])
    mask = (torch.arange(width)[None, :] < torch.tensor([len(e["input_ids"]) for e in examples])[:, None]).long()
    reference_model, chunked_model = (build_tiny(ARCHITECTURE, tiny_tokenizer, seed=0) for _ in range(2))
    for model in (reference_model, chunked_model):
        model.config.final_logit_softcapping = softcap
    reference = reference_model(input_ids=ids, attention_mask=mask, labels=labels).loss
    nll, tokens = CausalLMLoss(chunked_model, chunk_size=5)(ids, labels, mask)
    assert int(tokens) == int((labels[:, 1:] != IGNORE_INDEX).sum())
    assert torch.allclose(nll / tokens, reference, atol=1e-5)
    (reference * tokens).backward()
    nll.backward()
    chunked = dict(chunked_model.named_parameters())
    for name, parameter in reference_model.named_parameters():  # the tied output layer and the body alike
        assert torch.allclose(chunked[name].grad, parameter.grad, atol=1e-5, rtol=1e-4), name
    with torch.no_grad():  # evaluation scores the same loss without gradients
        assert torch.allclose(CausalLMLoss(chunked_model, chunk_size=7)(ids, labels, mask)[0], nll, atol=1e-4)


def test_each_rows_nll_in_a_padded_batch_is_its_nll_alone(tiny_model, tiny_tokenizer):
    """Evaluation scores answers in right-padded batches; padding must change no row's NLL or count."""
    examples = qa_examples([PAIR, PAIR_ZH], tiny_tokenizer, PromptTemplate(max_description_tokens=64), 256, 1).examples
    width = max(len(example["input_ids"]) for example in examples)
    assert len({len(example["input_ids"]) for example in examples}) == 2  # one row really is padded
    ids = torch.tensor([e["input_ids"] + [0] * (width - len(e["input_ids"])) for e in examples])
    labels = torch.tensor([e["labels"] + [IGNORE_INDEX] * (width - len(e["labels"])) for e in examples])
    mask = (torch.arange(width)[None, :] < torch.tensor([len(e["input_ids"]) for e in examples])[:, None]).long()
    loss = CausalLMLoss(tiny_model, chunk_size=5)
    nll, tokens = loss.per_row(ids, labels, mask)
    for row, example in enumerate(examples):
        alone = [torch.tensor([example["input_ids"]]), torch.tensor([example["labels"]])]
        alone_nll, alone_tokens = loss.per_row(*alone, torch.ones_like(alone[0]))
        assert int(tokens[row]) == int(alone_tokens[0]) > 0
        assert torch.allclose(nll[row], alone_nll[0], rtol=1e-5)
    with torch.no_grad():
        assert torch.allclose(nll.sum(), loss(ids, labels, mask)[0], rtol=1e-5)  # the training loss's sum
