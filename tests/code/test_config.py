"""Profiles resolved from the defaults; load_params, set_profile and `psyllm config` on params.yaml and variants."""

import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from components.config import Profile, load_params, load_profile, resolve, set_profile, write_sections
from components.errors import PsyllmError
from components.modelling import pretrain

PARAMS = Path(__file__).resolve().parents[2] / "params.yaml"
BIN = Path(sys.executable).parent


def _safe_load(path: Path) -> dict:
    return YAML(typ="safe").load(path.read_text(encoding="utf-8"))


def write_variant(tmp_path: Path, change: Callable[[dict], None]) -> Path:
    document = _safe_load(PARAMS)
    change(document)
    target = tmp_path / "params.yaml"
    with target.open("w", encoding="utf-8") as handle:
        YAML(typ="safe").dump(document, handle)
    return target


def error_of(path: Path) -> str:
    with pytest.raises(PsyllmError) as caught:
        load_params(path)
    return str(caught.value)


def test_real_params_resolve_every_profile():
    params = load_params(PARAMS)
    assert list(params.profiles) == ["default", "smoke", "real", "paper"]
    for profile in params.profiles.values():
        split = profile.prepare.split
        assert split.train + split.validation + split.test == pytest.approx(1.0)
    smoke, default, paper = (params.profiles[name] for name in ("smoke", "default", "paper"))
    assert smoke.crawl.max_pages < default.crawl.max_pages < paper.crawl.max_pages
    assert paper.crawl.sample_site is None and paper.crawl.seeds
    assert smoke.crawl.user_agent == default.crawl.user_agent == paper.crawl.user_agent  # written once
    real = params.profiles["real"]  # offline: the sample site and the shared public data only
    assert real.crawl == default.crawl and real.model == default.model
    local = [*real.prepare.qa_sources, *(spec.path for spec in real.prepare.corpus_files)]
    assert all(path.parts[:3] == ("..", "shared", "data") for path in local)


def test_a_profile_that_changes_nothing_is_the_defaults(tmp_path):
    raw = _safe_load(PARAMS)
    assert raw["profiles"]["default"] == {}
    params = load_params(PARAMS)
    assert params.profiles["default"].model_dump(mode="json") == resolve(raw["defaults"], {})
    assert resolve(raw["defaults"], {})["pretrain"]["training"]["adapter"] == raw["defaults"]["training"]["adapter"]


def test_overrides_merge_mappings_and_replace_values_and_lists():
    defaults = {
        "crawl": {"max_pages": 200, "seeds": ["a", "b"], "split": {"train": 0.8, "test": 0.2}},
        "training": {"block_size": 256, "max_steps": 12, "seed": 0},
        "pretrain": {"training": {"block_size": 128}},
        "finetune": {"patience": 2},
    }
    overrides = {
        "crawl": {"seeds": ["c"], "split": {"test": 0.3}},
        "training": {"block_size": 64, "max_steps": 24},
        "finetune": {"training": {"max_steps": 40}},
    }
    effective = resolve(defaults, overrides)
    assert effective["crawl"] == {"max_pages": 200, "seeds": ["c"], "split": {"train": 0.8, "test": 0.3}}
    # a layer's step `training` refines its shared `training`; the profile's layer beats the defaults'
    assert effective["pretrain"]["training"] == {"block_size": 64, "max_steps": 24, "seed": 0}
    assert effective["finetune"] == {"patience": 2, "training": {"block_size": 64, "max_steps": 40, "seed": 0}}
    assert "training" not in effective
    assert defaults["crawl"]["seeds"] == ["a", "b"]  # the defaults themselves are left as they were


def test_active_follows_the_profile_key():
    params = load_params(PARAMS)
    assert params.active() == params.profiles[params.profile]
    assert load_profile(PARAMS) == params.active()


@pytest.mark.parametrize("name", ["default", "smoke", "paper"])
def test_active_for_each_profile(tmp_path, name):
    path = write_variant(tmp_path, lambda doc: doc.__setitem__("profile", name))
    params = load_params(path)
    assert params.profile == name
    assert params.active() == params.profiles[name]
    assert load_profile(path) == params.profiles[name]


@pytest.mark.parametrize(
    ("keys", "dotted"),
    [
        ((), "typo_key"),
        (("profiles", "smoke", "crawl"), "profiles.smoke.crawl.typo_key"),
        (("profiles", "paper", "prepare", "split"), "profiles.paper.prepare.split.typo_key"),
        (("profiles", "smoke", "training"), "profiles.smoke.training.typo_key"),
        (("defaults", "prepare"), "defaults.prepare.typo_key"),
        (("defaults", "training"), "defaults.training.typo_key"),
        (("paths",), "paths.typo_key"),
    ],
)
def test_unknown_key_is_rejected_where_it_was_written(tmp_path, keys, dotted):
    def add_unknown(document: dict) -> None:
        for key in keys:
            document = document[key]
        document["typo_key"] = 1

    message = error_of(write_variant(tmp_path, add_unknown))
    assert f"  {dotted}: unknown key" in message
    assert message.count("typo_key") == 1  # a wrong default is reported once, not once per profile


def test_an_unknown_section_in_a_profile_is_rejected(tmp_path):
    message = error_of(write_variant(tmp_path, lambda doc: doc["profiles"]["smoke"].__setitem__("crawler", {})))
    assert "profiles.smoke.crawler: unknown key" in message


@pytest.mark.parametrize(
    ("keys", "dotted"),
    [
        (("paths",), "paths"),
        (("defaults", "crawl", "max_pages"), "defaults.crawl.max_pages"),
        (("defaults", "prepare", "split_salt"), "defaults.prepare.split_salt"),
        (("defaults", "training", "seed"), "defaults.pretrain.training.seed"),
    ],
)
def test_missing_key_is_rejected_naming_it(tmp_path, keys, dotted):
    def remove(document: dict) -> None:
        for key in keys[:-1]:
            document = document[key]
        del document[keys[-1]]

    message = error_of(write_variant(tmp_path, remove))
    assert f"{dotted}: Field required" in message


@pytest.mark.parametrize(
    "split", [{"train": 0.8, "validation": 0.1, "test": 0.2}, {"train": 0.5, "validation": 0.1, "test": 0.1}]
)
def test_split_fractions_must_sum_to_one(tmp_path, split):
    message = error_of(
        write_variant(tmp_path, lambda doc: doc["profiles"]["smoke"].__setitem__("prepare", {"split": split}))
    )
    assert "profiles.smoke.prepare.split" in message
    assert "add up to 1" in message


def test_a_screening_ngram_block_must_run_low_to_high(tmp_path):
    def reverse(document: dict) -> None:
        document["screening"]["features"]["zh"]["ngrams"] = [{"analyzer": "char_wb", "min_n": 4, "max_n": 2}]

    message = error_of(write_variant(tmp_path, reverse))
    assert "screening.features.zh.ngrams" in message
    assert "min_n 4 is above max_n 2" in message


def test_invalid_profile_name_is_rejected_with_allowed_names(tmp_path):
    message = error_of(write_variant(tmp_path, lambda doc: doc.__setitem__("profile", "huge")))
    assert "profile" in message and "'huge'" in message
    assert "profile: 'huge' is not under profiles" in message
    assert all(name in message for name in ("default", "smoke", "paper"))


def test_every_problem_is_reported(tmp_path):
    def break_twice(document: dict) -> None:
        document["profiles"]["smoke"]["crawl"]["max_pagez"] = 1
        document["profiles"]["paper"]["crawl"]["max_pages"] = 0

    message = error_of(write_variant(tmp_path, break_twice))
    assert "profiles.smoke.crawl.max_pagez: unknown key" in message
    assert "profiles.paper.crawl.max_pages" in message


def test_psyllm_config_prints_each_profile_and_writes_the_active_ones_sections(tmp_path):
    """What a user reads with `psyllm config --profile NAME` is exactly what the steps run with."""
    params = load_params(PARAMS)
    shutil.copy(PARAMS, tmp_path / "params.yaml")
    for name, profile in params.profiles.items():
        shown = subprocess.run(
            [str(BIN / "psyllm"), "config", "--profile", name], cwd=tmp_path, capture_output=True, text=True
        )
        assert shown.returncode == 0, shown.stderr
        print(shown.stdout)  # the effective config, for whoever reads the test log
        assert shown.stdout.startswith(f"# profile {name}: ")
        assert YAML(typ="safe").load(shown.stdout) == profile.model_dump(mode="json")
    unknown = subprocess.run(
        [str(BIN / "psyllm"), "config", "--profile", "huge"], cwd=tmp_path, capture_output=True, text=True
    )
    assert unknown.returncode == 2 and "unknown profile 'huge'" in unknown.stderr and "Traceback" not in unknown.stderr

    written = subprocess.run([str(BIN / "psyllm"), "config", "--write"], cwd=tmp_path, capture_output=True, text=True)
    assert written.returncode == 0, written.stderr
    folder = tmp_path / params.paths.config
    assert sorted(path.stem for path in folder.glob("*.json")) == sorted([*Profile.model_fields, "prepare_inputs"])
    inputs = json.loads((folder / "prepare_inputs.json").read_text())  # no Q&A files beside this params.yaml
    assert inputs == {str(path): "missing" for path in params.active().prepare.qa_sources}
    assert f"{params.active().prepare.qa_sources[0]} is missing" in written.stdout
    pretrain = {**params.active().pretrain.model_dump(mode="json"), "needed": True}  # finetune.starts: pretrained
    assert json.loads((folder / "pretrain.json").read_text()) == pretrain


def test_pretrain_is_skipped_when_no_fine_tune_start_reads_its_model(tmp_path):
    """The `real` profile fine-tunes from the base model only: pretrain writes why it did not train, no model."""
    params = load_params(PARAMS)
    real = params.profiles["real"]
    assert real.finetune.starts == ["base"]
    write_sections(real, tmp_path / "config")
    assert json.loads((tmp_path / "config/pretrain.json").read_text())["needed"] is False
    paths = params.paths.model_copy(update={"pretrained": tmp_path / "pretrained"})
    assert pretrain.run(real, paths) is None
    assert [path.name for path in paths.pretrained.iterdir()] == [pretrain.NOT_TRAINED_FILE]
    reason = json.loads((paths.pretrained / pretrain.NOT_TRAINED_FILE).read_text())["reason"]
    assert reason == "no fine-tune start reads a pretrained model (finetune.starts: ['base'])"


def test_missing_file_and_bad_yaml_are_psyllm_errors(tmp_path):
    assert "not found" in error_of(tmp_path / "absent.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("profile: [unclosed\n", encoding="utf-8")
    assert "not valid YAML" in error_of(bad)


@pytest.fixture
def params_copy(tmp_path) -> Path:
    target = tmp_path / "params.yaml"
    shutil.copy(PARAMS, target)
    return target


def test_set_profile_switches_and_keeps_comments(params_copy):
    before = params_copy.read_text(encoding="utf-8")
    target = next(name for name in load_params(params_copy).profiles if name != load_params(params_copy).profile)
    set_profile(target, params_copy)
    after = params_copy.read_text(encoding="utf-8")
    assert load_params(params_copy).profile == target
    comments = [line.strip() for line in before.splitlines() if line.strip().startswith("#")]
    assert comments
    assert comments == [line.strip() for line in after.splitlines() if line.strip().startswith("#")]
    assert after.count(f"profile: {target}\n") == 1


def test_set_profile_keeps_every_other_value(params_copy):
    before = _safe_load(params_copy)
    set_profile("paper", params_copy)
    after = _safe_load(params_copy)
    assert after.pop("profile") == "paper"
    before.pop("profile")
    assert after == before


def test_set_profile_rewrites_only_the_profile_line(params_copy):
    before = params_copy.read_text(encoding="utf-8").splitlines()
    set_profile("paper", params_copy)
    after = params_copy.read_text(encoding="utf-8").splitlines()
    changed = [(old, new) for old, new in zip(before, after, strict=False) if old != new]
    assert len(before) == len(after)
    assert [new for _, new in changed] == ["profile: paper"]


def test_set_profile_rejects_unknown_name_and_leaves_file(params_copy):
    before = params_copy.read_bytes()
    with pytest.raises(PsyllmError) as caught:
        set_profile("huge", params_copy)
    message = str(caught.value)
    assert "'huge'" in message
    assert all(name in message for name in ("default", "smoke", "paper"))
    assert params_copy.read_bytes() == before
