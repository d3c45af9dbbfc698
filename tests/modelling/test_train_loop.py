"""The training loop: schedule, resume after a kill, a NaN stop, and the multi-process path."""

import itertools
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from components.config import AdapterConfig
from components.errors import PsyllmError
from components.modelling.adapters import apply_adapter, merged, trainable_parameters
from components.modelling.base_model import build_tiny, load_model, save_model
from components.modelling.loss import IGNORE_INDEX
from components.modelling.train_loop import LATEST, collate, example_indices, learning_rate_at, train
from tests.conftest import PROJECT_ROOT
from tests.modelling.conftest import ARCHITECTURE, corpus_examples, training_config


class Killed(Exception):
    """Stands in for SIGKILL inside one process: the run stops between two forward passes."""


def fail_at_forward(model, call: int, fault):
    """Inject `fault` on the decoder's `call`-th forward pass (1-based)."""
    calls = {"count": 0}

    def hook(module, args, output):
        calls["count"] += 1
        if calls["count"] == call:
            return fault(output)
        return output

    return model.get_decoder().register_forward_hook(hook)


def weights(model) -> dict[str, torch.Tensor]:
    return {name: value.detach().clone() for name, value in trainable_parameters(model).items()}


def test_schedule_warms_up_then_decays_to_the_floor():
    config = training_config(max_steps=10, warmup_steps=2, learning_rate=1.0, min_learning_rate=0.1)
    rates = [learning_rate_at(step, config) for step in range(10)]
    assert rates[:2] == [0.5, 1.0]
    assert all(a >= b for a, b in itertools.pairwise(rates[1:]))
    assert rates[-1] == pytest.approx(0.1 + 0.9 * 0.5 * (1 + torch.cos(torch.tensor(torch.pi * 7 / 8)).item()))


def test_batches_cover_each_epoch_once_and_split_across_ranks():
    config = training_config(micro_batch_size=2, gradient_accumulation=2)
    one_epoch = [i for step in range(3) for micro in range(2) for i in example_indices(step, micro, 0, 1, config, 12)]
    assert sorted(one_epoch) == list(range(12))
    two_ranks = [example_indices(0, 0, rank, 2, config, 12) for rank in (0, 1)]
    single = [
        example_indices(0, micro, 0, 1, training_config(micro_batch_size=2, gradient_accumulation=4), 12)
        for micro in (0, 1)
    ]
    assert two_ranks == single


def test_a_killed_run_resumes_to_the_same_state(tiny_tokenizer, tmp_path):
    config = training_config(max_steps=6, checkpoint_every=2)
    examples = corpus_examples(tiny_tokenizer)
    pad = tiny_tokenizer.pad_token_id

    straight = build_tiny(ARCHITECTURE, tiny_tokenizer, seed=0)
    train(straight, examples, config, pad, tmp_path / "straight", "same")

    interrupted = build_tiny(ARCHITECTURE, tiny_tokenizer, seed=0)
    hook = fail_at_forward(interrupted, call=2 * 5 + 1, fault=lambda output: (_ for _ in ()).throw(Killed()))
    with pytest.raises(Killed):  # dies during step 6, after the step-4 checkpoint
        train(interrupted, examples, config, pad, tmp_path / "resumed", "same")
    hook.remove()
    assert json.loads((tmp_path / "resumed" / LATEST / "state.json").read_text())["step"] == 4

    fresh = build_tiny(ARCHITECTURE, tiny_tokenizer, seed=0)
    result = train(fresh, examples, config, pad, tmp_path / "resumed", "same")
    assert result.resumed_from == 4 and result.steps == 6
    for name, value in weights(straight).items():
        assert torch.allclose(value, weights(fresh)[name], atol=1e-6), name


def test_a_run_that_stopped_early_resumes_to_its_result_without_training_on(tiny_tokenizer, tmp_path):
    """A stage rerun (say, after a code change) must not train past the early stop."""
    config = training_config(max_steps=8, checkpoint_every=4)
    examples = corpus_examples(tiny_tokenizer)
    pad = tiny_tokenizer.pad_token_id
    rising = itertools.count(1.0)  # every validation is worse than the first: stop at the second

    def validate(model) -> float:
        return next(rising)

    first = build_tiny(ARCHITECTURE, tiny_tokenizer, seed=0)
    stopped = train(first, examples, config, pad, tmp_path, "same", validate=validate, eval_every=1, patience=1)
    assert (stopped.steps, stopped.stopped_early, stopped.best_validation_loss) == (2, True, 1.0)

    again = build_tiny(ARCHITECTURE, tiny_tokenizer, seed=0)
    resumed = train(again, examples, config, pad, tmp_path, "same", validate=validate, eval_every=1, patience=1)
    assert (resumed.resumed_from, resumed.steps, resumed.stopped_early) == (2, 2, True)
    assert resumed.history == stopped.history
    for name, value in weights(first).items():  # the best weights (step 1), as the first run ended
        assert torch.equal(value, weights(again)[name]), name


def test_checkpoints_of_other_settings_are_not_resumed(tiny_tokenizer, tmp_path):
    examples = corpus_examples(tiny_tokenizer)
    model = build_tiny(ARCHITECTURE, tiny_tokenizer, seed=0)
    train(model, examples, training_config(max_steps=2), tiny_tokenizer.pad_token_id, tmp_path, "first")
    again = build_tiny(ARCHITECTURE, tiny_tokenizer, seed=0)
    result = train(again, examples, training_config(max_steps=2), tiny_tokenizer.pad_token_id, tmp_path, "second")
    assert result.resumed_from == 0


def test_a_nan_loss_stops_and_keeps_the_last_good_checkpoint(tiny_tokenizer, tmp_path):
    config = training_config(max_steps=6, checkpoint_every=2)
    model = build_tiny(ARCHITECTURE, tiny_tokenizer, seed=0)
    nan_step = 5
    fail_at_forward(
        model,
        call=2 * (nan_step - 1) + 1,
        fault=lambda output: type(output)(last_hidden_state=output.last_hidden_state * float("nan")),
    )
    with pytest.raises(PsyllmError, match=rf"loss became nan at step {nan_step}.*checkpoint \(step 4\)"):
        train(model, corpus_examples(tiny_tokenizer), config, tiny_tokenizer.pad_token_id, tmp_path, "nan")
    saved = load_file(tmp_path / LATEST / "trainable.safetensors")
    state = json.loads((tmp_path / LATEST / "state.json").read_text())
    assert state["step"] == 4 and all(torch.isfinite(value).all() for value in saved.values())
    for name, value in weights(model).items():  # the NaN step changed nothing after the checkpoint
        assert torch.allclose(value, saved[name]) and torch.isfinite(value).all(), name


def test_batches_pad_to_a_multiple_of_64_within_the_block():
    """Few distinct widths keep CPU kernels reused; padding is never trained on nor attended to."""
    examples = [{"input_ids": [5] * 70, "labels": [6] * 70}, {"input_ids": [7] * 3, "labels": [-100, 8, 8]}]
    batch = collate(examples, pad_id=0, block_size=384, device=torch.device("cpu"))
    assert batch["input_ids"].shape == (2, 128)
    assert batch["attention_mask"].sum(dim=1).tolist() == [70, 3]
    assert (batch["labels"] != IGNORE_INDEX).sum().item() == 72 and (batch["input_ids"][:, 70:] == 0).all()
    assert collate(examples, pad_id=0, block_size=100, device=torch.device("cpu"))["input_ids"].shape == (2, 100)
    assert collate(examples[1:], pad_id=0, block_size=2, device=torch.device("cpu"))["input_ids"].shape == (1, 3)


def test_lora_trains_only_adapters_and_rejects_unknown_targets(tiny_model, tiny_tokenizer):
    lora = AdapterConfig(
        method="lora", rank=4, alpha=8, dropout=0.0, targets=["q_proj", "v_proj"], freeze_embeddings=True
    )
    adapted = apply_adapter(tiny_model, lora, "finetune.training.adapter")
    assert trainable_parameters(adapted) and all("lora_" in name for name in trainable_parameters(adapted))
    bad = lora.model_copy(update={"targets": ["q_proj", "attention"]})
    with pytest.raises(PsyllmError, match=r"finetune\.training\.adapter\.targets: \['attention'\].*allowed: .*q_proj"):
        apply_adapter(build_tiny(ARCHITECTURE, tiny_tokenizer, seed=0), bad, "finetune.training.adapter")


def test_lora_over_bf16_frozen_weights_merges_into_the_fp32_source(tiny_tokenizer, tmp_path):
    source = tmp_path / "source"
    save_model(build_tiny(ARCHITECTURE, tiny_tokenizer, seed=0), tiny_tokenizer, source)
    lora = AdapterConfig(
        method="lora", rank=4, alpha=8, dropout=0.0, targets=["q_proj", "down_proj"], freeze_embeddings=True
    )
    adapted = apply_adapter(load_model(source, torch.bfloat16)[0], lora, "finetune.training.adapter")
    assert adapted.get_base_model().get_output_embeddings().weight.dtype == torch.bfloat16
    assert {parameter.dtype for parameter in trainable_parameters(adapted).values()} == {torch.float32}
    config = training_config(adapter=lora, max_steps=4)
    result = train(adapted, corpus_examples(tiny_tokenizer), config, tiny_tokenizer.pad_token_id, tmp_path / "c", "x")
    assert all(torch.isfinite(torch.tensor(record["loss"])) for record in result.history)

    exported = merged(adapted, source).state_dict()
    adapters = {name: parameter.detach() for name, parameter in trainable_parameters(adapted).items()}
    adapted_weights = 0
    for name, original in load_model(source)[0].state_dict().items():
        assert exported[name].dtype == torch.float32, name
        lora_a = adapters.get(f"base_model.model.{name.removesuffix('.weight')}.lora_A.default.weight")
        if lora_a is None:  # untrained: the source's fp32 values, not a bf16 round trip of them
            assert torch.equal(exported[name], original), name
            continue
        lora_b = adapters[f"base_model.model.{name.removesuffix('.weight')}.lora_B.default.weight"]
        update = lora_b @ lora_a * (lora.alpha / lora.rank)
        assert update.abs().max() > 0 and torch.allclose(exported[name], original + update, atol=1e-6), name
        adapted_weights += 1
    assert adapted_weights == 2 * ARCHITECTURE.layers


def test_full_training_can_freeze_the_embeddings(tiny_model):
    frozen = AdapterConfig(method="full", rank=4, alpha=8, dropout=0.0, targets=[], freeze_embeddings=True)
    names = trainable_parameters(apply_adapter(tiny_model, frozen, "pretrain.training.adapter"))
    assert names and not any("embed_tokens" in name or "lm_head" in name for name in names)


LAUNCHERS = {
    "torchrun": [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"],
    "accelerate": [
        str(Path(sys.executable).parent / "accelerate"),
        "launch",
        "--num_processes",
        "2",
        "--num_machines",
        "1",
        "--multi_gpu",
        "--mixed_precision",
        "no",
        "--dynamo_backend",
        "no",
    ],
}


@pytest.mark.slow
@pytest.mark.parametrize("launcher", sorted(LAUNCHERS))
def test_two_launched_processes_match_one_process(launcher, tmp_path):
    """Two gloo processes under torchrun or accelerate launch match one process reading the same batches."""
    script = PROJECT_ROOT / "tests/modelling/distributed_run.py"
    two = subprocess.run(
        [*LAUNCHERS[launcher], str(script), str(tmp_path / "two"), "1"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=PROJECT_ROOT,
    )
    assert two.returncode == 0, two.stdout + two.stderr
    one = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "one"), "2"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=PROJECT_ROOT,
    )
    assert one.returncode == 0, one.stdout + one.stderr
    two_weights = load_file(tmp_path / "two" / LATEST / "trainable.safetensors")
    one_weights = load_file(tmp_path / "one" / LATEST / "trainable.safetensors")
    assert two_weights.keys() == one_weights.keys()
    for name in one_weights:
        assert torch.allclose(two_weights[name], one_weights[name], atol=1e-5), name
    assert not (tmp_path / "two" / f"{LATEST}.partial").exists()
