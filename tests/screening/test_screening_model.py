"""Model layer: what the trained screener does with the messages the issue names, and its measured quality."""

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from components.screening import InvalidMessage
from components.screening.normalize import MAX_MESSAGE_CHARS

# Measured 2026-12-07 on the frozen test splits (README, "Urgent-case screening"); where a bar is not met,
# a strict xfail says by how much, and fails once a screener meets it.
REAL_BARS_UNMET = "real test split: recall en 3/5, zh 3/6; precision en 0.09, zh 0.23 (issue 15)"
FLAG_RATE_UNMET = "flag rate 2.0x (CPsyCounD) to 7.8x (CounselChat) the labelled urgent rate (issue 15)"
WRITTEN_BAR_UNMET = "written test split precision en 0.63, zh 0.62 since its labels follow the real criteria"


def test_an_urgent_verdict_says_whether_an_explicit_statement_or_the_classifier_alone_made_it(trained_screener):
    stated = trained_screener.screen("I'm going to kill myself tonight. I have the pills ready.")
    implied = trained_screener.screen(
        "I gave my dog to my sister and wrote letters to my kids. "
        "After Saturday nobody will have to worry about me again."
    )
    calm = trained_screener.screen("How do I sleep better?")
    assert (stated.basis, implied.basis, calm.basis) == ("statement", "classifier", None)


@pytest.mark.parametrize(
    "text",
    [
        "I'm going to kill myself tonight. I have the pills ready.",
        "my friend said she'll kill herself tonight",
        "My boyfriend hits me and he's home now, I'm hiding in the bathroom",
        "我已经写好遗书了，今晚就结束自己的生命",
        "我朋友说她今晚要自杀，我该怎么办",
        "i have the pills ready, gonna kil myself tn",
        "我真的 want to die，药已经准备好了，今晚就走",
    ],
)
def test_clear_crises_are_urgent_with_a_category_and_reasons(trained_screener, text):
    verdict = trained_screener.screen(text)
    assert verdict.urgent and verdict.level == "urgent"
    assert verdict.categories and verdict.reasons


@pytest.mark.parametrize(
    "text",
    [
        "this exam is killing me",
        "笑死我了",
        "累死了",
        "As a school counsellor, how should I assess suicide risk in a student who seems withdrawn?",
        "临床上自杀意念和自杀计划怎么区分？",
        "I have never had suicidal thoughts, I just want help with my sleep.",
    ],
)
def test_figurative_professional_and_negated_messages_are_not_urgent(trained_screener, text):
    assert not trained_screener.screen(text).urgent


@pytest.mark.parametrize(
    "text",
    ["hello", "ok", "thanks!", "how are you?", "Hello, I have a question about sleep.", "你好", "在吗", "谢谢", "👍"],
)
def test_greetings_and_small_talk_are_not_flagged(trained_screener, text):
    assert trained_screener.screen(text).level == "none"


@pytest.mark.parametrize(
    "text",
    [
        "Years ago I had thoughts of suicide. I got help and I'm doing well now.",
        "几年前我有过轻生的念头，现在好多了。",
    ],
)
def test_past_recovered_experience_is_elevated_not_urgent(trained_screener, text):
    assert trained_screener.screen(text).level == "elevated"


@pytest.mark.parametrize(
    "text",
    ["I wish I were dead. Nothing feels worth it anymore.", "有时候真的不想活了，觉得很累。"],
)
def test_a_death_wish_without_intent_or_plan_is_elevated_not_urgent(trained_screener, text):
    """The labelling criteria: a passive wish is elevated (gentle reply and an answer), not a crisis reply."""
    assert trained_screener.screen(text).level == "elevated"


def test_screening_a_batch_equals_screening_one_by_one(trained_screener):
    texts = ["I want to die", "how do I sleep better?", "我不想活了"]
    batch = trained_screener.screen_many(texts)
    assert [v.level for v in batch] == [trained_screener.screen(t).level for t in texts]


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (None, "must be text"),
        (42, "must be text"),
        ("", "empty"),
        ("  \n\t", "empty"),
        ("x" * (MAX_MESSAGE_CHARS + 1), "too long"),
    ],
)
def test_bad_input_gets_a_clear_error(trained_screener, bad, message):
    with pytest.raises(InvalidMessage, match=message):
        trained_screener.screen(bad)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(min_size=1, max_size=400).filter(str.strip))
def test_screening_never_raises_on_odd_unicode(trained_screener, text):
    verdict = trained_screener.screen(text)
    assert verdict.level in ("none", "elevated", "urgent")
    assert verdict.urgent == (verdict.level == "urgent")
    assert bool(verdict.categories) == (verdict.level != "none")
    assert verdict.reasons


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(
        st.sampled_from(
            ["I want to die", "😭", "死", "kill", "\u200b", "\ud800", "🏳️‍🌈", "مرحبا", "ℌ𝔢𝔩𝔩𝔬", "\x00", "笑"]
        ),
        min_size=1,
        max_size=12,
    ).map("".join)
)
def test_screening_never_raises_on_mixed_scripts_emoji_and_surrogates(trained_screener, text):
    if text.strip():
        assert trained_screener.screen(text).level in ("none", "elevated", "urgent")


@pytest.fixture(scope="module")
def measured(smoke_project):
    return json.loads((smoke_project / "data/eval/screener/metrics.json").read_text())


def _unmet(language: str) -> pytest.ParameterSet:
    return pytest.param(language, marks=pytest.mark.xfail(strict=True, reason=WRITTEN_BAR_UNMET))


@pytest.mark.parametrize("language", ["en", "zh"])
def test_urgent_recall_on_the_frozen_test_split(measured, language):
    assert measured["test_split"][language]["urgent_recall"]["value"] >= 0.95


@pytest.mark.parametrize("language", [_unmet("en"), _unmet("zh")])
def test_urgent_precision_on_the_frozen_test_split(measured, language):
    assert measured["test_split"][language]["urgent_precision"]["value"] >= 0.85


@pytest.fixture(scope="module")
def measured_real(measured):
    if "skipped" in measured["real_test_split"]:
        pytest.skip(measured["real_test_split"]["skipped"])
    return measured


@pytest.fixture(scope="module")
def real_text():
    """Every real message's text by id, or a skip with the reason when the shared data is absent."""
    from components.screening.real_sources import SOURCES, read_source, source_path
    from tests.conftest import SHARED_DATA

    absent = [str(source_path(SHARED_DATA, s)) for s in SOURCES if not source_path(SHARED_DATA, s).is_file()]
    if absent:
        pytest.skip(f"shared data set not present: {', '.join(absent)}")
    return {m.id: m.text for source in SOURCES for m in read_source(SHARED_DATA, source)}


@pytest.mark.xfail(strict=True, reason=REAL_BARS_UNMET)
@pytest.mark.parametrize("language", ["en", "zh"])
def test_urgent_recall_on_the_frozen_real_test_split(measured_real, language):
    assert measured_real["real_test_split"][language]["urgent_recall"]["value"] >= 0.95


@pytest.mark.xfail(strict=True, reason=REAL_BARS_UNMET)
@pytest.mark.parametrize("language", ["en", "zh"])
def test_urgent_precision_on_the_frozen_real_test_split(measured_real, language):
    assert measured_real["real_test_split"][language]["urgent_precision"]["value"] >= 0.75


@pytest.mark.parametrize("language", ["en", "zh"])
def test_the_real_split_is_also_reported_by_labelling_round(measured_real, language):
    split = measured_real["real_test_split"][language]
    by_round = split["urgent_by_round"]
    assert sum(part["messages"] for part in by_round.values()) == split["messages"]
    assert sum(part["urgent_recall"]["trials"] for part in by_round.values()) == split["urgent_recall"]["trials"]


@pytest.mark.parametrize(
    "source",
    [
        *(
            pytest.param(s, marks=pytest.mark.xfail(strict=True, reason=FLAG_RATE_UNMET))
            for s in ("counselchat", "psyqa", "cpsycound")
        ),
        "cpsycoune",
    ],
)
def test_no_real_source_is_flagged_far_more_often_than_a_reader_labels_it_urgent(measured_real, source):
    assert measured_real["sources"][source]["flag_ratio"] <= 1.5


@pytest.mark.parametrize("message_id", ["cc-239", "cc-664", "cpsycound-336", "cpsycound-408", "cpsycound-669"])
def test_ordinary_real_questions_are_not_urgent(trained_screener, real_text, message_id):
    """Everyday worries the first screener flagged urgent (issue 15's examples): no crisis reply for them."""
    assert not trained_screener.screen(real_text[message_id]).urgent


def _missed(message_id: str) -> pytest.ParameterSet:
    return pytest.param(
        message_id, marks=pytest.mark.xfail(strict=True, reason=f"{message_id}: missed, see the README")
    )


@pytest.mark.parametrize(
    "message_id",
    [_missed("cc-51"), _missed("cc-54"), "cc-233", "cc-282", "cc-618", "psyqa-4488", "cpsycound-61",
     _missed("cpsycound-1537"), "cpsycound-291", _missed("cpsycound-1487"), _missed("cpsycound-2263")],
)  # fmt: skip
def test_every_urgent_message_of_the_real_test_split_is_flagged(trained_screener, real_text, message_id):
    assert trained_screener.screen(real_text[message_id]).urgent
