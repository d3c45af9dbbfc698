"""load_params / load_profile / set_profile against the real params.yaml and variants of it."""

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from components.config import PROFILE_NAMES, load_params, load_profile, set_profile
from components.errors import PsyllmError

PARAMS = Path(__file__).resolve().parents[2] / "params.yaml"


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


def test_real_params_load_all_three_profiles():
    params = load_params(PARAMS)
    assert PROFILE_NAMES == ("smoke", "default", "paper")
    for name in PROFILE_NAMES:
        profile = getattr(params, name)
        split = profile.prepare.split
        assert split.train + split.validation + split.test == pytest.approx(1.0)
        assert profile.crawl.max_pages > 0
    assert params.smoke.crawl.max_pages < params.default.crawl.max_pages < params.paper.crawl.max_pages
    assert params.paper.crawl.sample_site is None
    assert params.paper.crawl.seeds


def test_active_follows_the_profile_key():
    params = load_params(PARAMS)
    assert params.active() == getattr(params, params.profile)
    assert load_profile(PARAMS) == params.active()


@pytest.mark.parametrize("name", PROFILE_NAMES)
def test_active_for_each_profile(tmp_path, name):
    path = write_variant(tmp_path, lambda doc: doc.__setitem__("profile", name))
    params = load_params(path)
    assert params.profile == name
    assert params.active() == getattr(params, name)
    assert load_profile(path) == getattr(params, name)


@pytest.mark.parametrize(
    ("keys", "dotted"),
    [
        ((), "typo_key"),
        (("smoke", "crawl"), "smoke.crawl.typo_key"),
        (("paper", "prepare", "split"), "paper.prepare.split.typo_key"),
        (("default", "prepare"), "default.prepare.typo_key"),
        (("paths",), "paths.typo_key"),
    ],
)
def test_unknown_key_is_rejected_with_its_dotted_path(tmp_path, keys, dotted):
    def add_unknown(document: dict) -> None:
        for key in keys:
            document = document[key]
        document["typo_key"] = 1

    message = error_of(write_variant(tmp_path, add_unknown))
    assert f"{dotted}: unknown key" in message


@pytest.mark.parametrize(
    ("keys", "dotted"),
    [
        (("paths",), "paths"),
        (("smoke", "crawl", "max_pages"), "smoke.crawl.max_pages"),
        (("paper", "prepare", "split", "test"), "paper.prepare.split.test"),
        (("default", "prepare", "split_salt"), "default.prepare.split_salt"),
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
    message = error_of(write_variant(tmp_path, lambda doc: doc["smoke"]["prepare"].__setitem__("split", split)))
    assert "smoke.prepare.split" in message
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
    for name in PROFILE_NAMES:
        assert f"'{name}'" in message


def test_every_problem_is_reported(tmp_path):
    def break_twice(document: dict) -> None:
        document["smoke"]["crawl"]["max_pagez"] = 1
        document["paper"]["crawl"]["max_pages"] = 0

    message = error_of(write_variant(tmp_path, break_twice))
    assert "smoke.crawl.max_pagez: unknown key" in message
    assert "paper.crawl.max_pages" in message


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
    target = next(name for name in PROFILE_NAMES if name != load_params(params_copy).profile)
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
    assert all(name in message for name in PROFILE_NAMES)
    assert params_copy.read_bytes() == before
