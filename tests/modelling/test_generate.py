"""The one decoding loop: same tokens as Hugging Face's `generate`, per-row limits, and streamable text."""

import copy

import torch
from transformers import Gemma3ForCausalLM
from transformers import GenerationConfig as HfGenerationConfig

from components.config import GenerationConfig
from components.modelling.decoding import DecodingBatch, decode
from components.modelling.generate import AnswerText, Question, generate_answers
from components.modelling.prompt import PromptTemplate, encode_prompt

GREEDY = GenerationConfig(max_new_tokens=12, do_sample=False, temperature=1.0, top_p=1.0, repetition_penalty=1.1)
QUESTIONS = [
    Question("How can I sleep better?", "", "en"),
    Question("我总是很焦虑，怎么办？", "工作压力很大，晚上睡不着。", "zh"),
    Question("What is CBT?", "A friend mentioned it.", "en"),
]


def prompts(tokenizer):
    template = PromptTemplate(max_description_tokens=64)
    return [encode_prompt(tokenizer, template, q.question, q.description, q.language) for q in QUESTIONS]


def test_decode_chooses_the_tokens_generate_chooses_with_left_padding(tiny_model, tiny_tokenizer):
    ids = prompts(tiny_tokenizer)
    assert len({len(row) for row in ids}) == 3  # different lengths: rows really are padded
    produced = [[] for _ in ids]
    for emitted in decode(tiny_model, ids, [12, 12, 12], GREEDY, tiny_tokenizer.pad_token_id, -1):
        for row, token in emitted:
            produced[row].append(token)
    for row, prompt in enumerate(ids):  # one row at a time: Hugging Face's own reference, no padding involved
        reference = tiny_model.generate(
            input_ids=torch.tensor([prompt]),
            generation_config=HfGenerationConfig(
                max_new_tokens=12, do_sample=False, repetition_penalty=1.1, pad_token_id=0, eos_token_id=None
            ),
        )
        assert produced[row] == reference[0, len(prompt) :].tolist()


def test_rows_that_join_a_running_batch_choose_the_tokens_they_would_alone(tiny_model, tiny_tokenizer):
    ids = prompts(tiny_tokenizer)
    alone = [
        [token for emitted in decode(tiny_model, [prompt], [12], GREEDY, 0, -1) for _, token in emitted]
        for prompt in ids
    ]
    batch = DecodingBatch(tiny_model, GREEDY, pad_token_id=0, eos_token_id=-1)
    produced: dict[str, list[int]] = {"long": [], "short": [], "late": []}

    def record(step):
        for key, token in step.emitted:
            produced[key].append(token)
        return step.finished

    record(batch.add(["short"], [ids[0]], [5], stopped=lambda key: False))
    for _ in range(2):
        record(batch.step(stopped=lambda key: False))
    record(batch.add(["long", "late"], [ids[1], ids[2]], [12, 12], stopped=lambda key: False))  # wider prompts
    finished = []
    while batch:
        finished += record(batch.step(stopped=lambda key: False))
    assert finished == ["short", "long", "late"]  # the short row left first; the others decoded on without it
    assert produced == {"short": alone[0][:5], "long": alone[1], "late": alone[2]}
    assert batch.sequences.shape == (0, 0)  # an empty batch keeps nothing


def test_each_row_keeps_its_own_limit_and_a_stopped_row_ends(tiny_model, tiny_tokenizer):
    ids = prompts(tiny_tokenizer)
    counts = [0, 0, 0]
    for emitted in decode(
        tiny_model,
        ids,
        [2, 7, 5],
        GREEDY,
        tiny_tokenizer.pad_token_id,
        -1,
        stopped=lambda row: row == 2 and counts[2] >= 3,
    ):
        for row, _ in emitted:
            counts[row] += 1
    assert counts == [2, 7, 3]


class CharTokenizer:
    """Decodes token ids as characters, so a test can write the exact text a model 'generates'."""

    def decode(self, ids, skip_special_tokens=True):
        return "".join(chr(i) for i in ids)


def test_answer_text_is_released_in_order_and_cut_before_a_new_question():
    text = AnswerText(CharTokenizer(), PromptTemplate(max_description_tokens=64))
    released = "".join(text.push(ord(c)) for c in "  Try a wind-down routine.\nQuestion: more?")
    assert text.cut
    released += text.finish()
    assert released == "Try a wind-down routine."


def test_held_back_text_is_released_when_the_row_finishes():
    text = AnswerText(CharTokenizer(), PromptTemplate(max_description_tokens=64))
    streamed = [text.push(ord(c)) for c in "Breathe slowly.\nQ"]
    assert "".join(streamed) == "Breathe slowly.\nQ"[: len("".join(streamed))]  # a prefix: nothing taken back
    assert "".join(streamed) + text.finish() == "Breathe slowly.\nQ"


def test_generate_answers_is_the_streamed_text(tiny_model, tiny_tokenizer):
    template = PromptTemplate(max_description_tokens=64)
    answers = generate_answers(tiny_model, tiny_tokenizer, template, QUESTIONS, GREEDY, batch_size=3)
    streamed = []
    for prompt in prompts(tiny_tokenizer):
        text = AnswerText(tiny_tokenizer, template)
        pieces = [
            text.push(token)
            for emitted in decode(
                tiny_model, [prompt], [12], GREEDY, tiny_tokenizer.pad_token_id, tiny_tokenizer.eos_token_id
            )
            for _, token in emitted
        ]
        streamed.append("".join(pieces) + text.finish())
    assert answers == streamed


def test_sliding_window_layers_attend_as_in_generate_when_prompts_outrun_the_window(tiny_model, tiny_tokenizer):
    """The batch keeps every layer in full and lets the mask apply the window; `generate` keeps a sliding cache."""
    config = copy.deepcopy(tiny_model.config)
    config.sliding_window = 8  # shorter than every prompt, so the window really cuts
    torch.manual_seed(0)
    windowed = Gemma3ForCausalLM(config).eval()
    assert "sliding_attention" in config.layer_types
    ids = prompts(tiny_tokenizer)
    assert min(map(len, ids)) > 2 * config.sliding_window
    batch = DecodingBatch(windowed, GREEDY, pad_token_id=0, eos_token_id=-1)
    produced: dict[int, list[int]] = {row: [] for row in range(len(ids))}
    steps = [batch.add([0], [ids[0]], [12], lambda key: False), batch.step(lambda key: False)]
    steps.append(batch.add([1, 2], ids[1:], [12, 12], lambda key: False))  # joins with other widths
    while batch:
        steps.append(batch.step(lambda key: False))
    for step in steps:
        for row, token in step.emitted:
            produced[row].append(token)
    for row, prompt in enumerate(ids):
        reference = windowed.generate(
            input_ids=torch.tensor([prompt]),
            generation_config=HfGenerationConfig(
                max_new_tokens=12, do_sample=False, repetition_penalty=1.1, pad_token_id=0, eos_token_id=None
            ),
        )
        assert produced[row] == reference[0, len(prompt) :].tolist()
