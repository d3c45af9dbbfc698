"""Rating campaigns in the store: blind, balanced sides, resumable, one judgement per rater and item,
and every bad judgement refused with a message."""

import pytest

from components.errors import PsyllmError
from components.serving.campaign_store import (
    CampaignItem,
    CampaignStore,
    InvalidJudgement,
    UnknownRater,
    rater_order,
)
from components.serving.store import AlreadyRated, Store, UnknownRequest

SCALES = ("helpfulness", "fluency", "relevance", "logic")
MODELS = ("psyllm/1", "psyllm/2")


@pytest.fixture
def campaigns(tmp_path):
    return CampaignStore(Store(f"sqlite:///{tmp_path / 'store.sqlite'}", store_text=False).engine)


def items(count: int) -> list[CampaignItem]:
    return [
        CampaignItem(f"q{n}", f"question {n}", "none", f"first answer {n}", f"second answer {n}") for n in range(count)
    ]


def scores(value: int) -> dict[str, int]:
    return dict.fromkeys(SCALES, value)


def test_each_rater_sees_both_orders_and_never_the_model_names(campaigns):
    tokens = campaigns.create("pilot", MODELS, items(6), ["ana", "ben"])
    for token in tokens.values():
        shown_first_as_a = 0
        while (step := campaigns.next_item(token))["item"] is not None:
            item = step["item"]
            assert set(item) == {"item_id", "question", "A", "B"}
            shown_first_as_a += item["A"].startswith("first")
            campaigns.judge(token, item["item_id"], {"A": scores(4), "B": scores(2)}, "A")
        assert step["progress"] == {"done": 6, "total": 6}
        assert shown_first_as_a == 3  # the sides alternate along each rater's list
    assert campaigns.progress("pilot") == {"ana": {"done": 6, "total": 6}, "ben": {"done": 6, "total": 6}}


def test_a_judgement_is_stored_against_the_models_not_the_sides(campaigns):
    token = campaigns.create("pilot", MODELS, items(4), ["ana"])["ana"]
    sides = {}
    while (item := campaigns.next_item(token)["item"]) is not None:
        first, second = ("A", "B") if item["A"].startswith("first") else ("B", "A")
        sides[item["item_id"]] = first
        campaigns.judge(token, item["item_id"], {first: scores(5), second: scores(1)}, first)
    judged = campaigns.campaign("pilot")
    assert judged["models"] == MODELS
    assert {row["item_id"]: row["first_shown_as"] for row in judged["judgements"]} == sides
    for row in judged["judgements"]:  # the first model got the 5s and the preference, whichever side it was on
        assert row["preferred"] == "first" and row["first_logic"] == 5 and row["second_logic"] == 1


def test_a_rater_who_stops_resumes_where_they_were(campaigns):
    token = campaigns.create("pilot", MODELS, items(5), ["ana"])["ana"]
    order = [item for item, _ in rater_order("pilot", "ana", [f"q{n}" for n in range(5)])]
    for expected in order[:2]:
        assert campaigns.next_item(token)["item"]["item_id"] == expected
        campaigns.judge(token, expected, {"A": scores(3), "B": scores(3)}, "tie")
    reopened = CampaignStore(campaigns.engine)  # a new page load, or a restarted service
    assert reopened.next_item(token) == {**reopened.next_item(token), "progress": {"done": 2, "total": 5}}
    assert reopened.next_item(token)["item"]["item_id"] == order[2]


def test_bad_judgements_are_refused_with_a_message_and_store_nothing(campaigns):
    token = campaigns.create("pilot", MODELS, items(2), ["ana"])["ana"]
    item = campaigns.next_item(token)["item"]["item_id"]
    good = {"A": scores(3), "B": scores(3)}
    refusals = [
        (
            InvalidJudgement,
            "A.fluency: must be a whole number from 1 to 5",
            ({"A": {**scores(3), "fluency": 6}, "B": scores(3)}, "A"),
        ),
        (InvalidJudgement, "B.helpfulness: must be a whole number", ({"A": scores(3), "B": {}}, "A")),
        (InvalidJudgement, "B: expected the four scores", ({"A": scores(3), "B": 4}, "A")),
        (InvalidJudgement, "preference: must be A, B or tie", (good, "C")),
    ]
    for error, message, (given, preference) in refusals:
        with pytest.raises(error) as refused:
            campaigns.judge(token, item, given, preference)
        assert message in str(refused.value)
    with pytest.raises(UnknownRequest, match="item 'q9' is not in campaign 'pilot'"):
        campaigns.judge(token, "q9", good, "tie")
    with pytest.raises(UnknownRater, match="this rating link is not valid"):
        campaigns.judge("forged", item, good, "tie")
    assert campaigns.campaign("pilot")["judgements"] == []
    campaigns.judge(token, item, good, "tie")
    with pytest.raises(AlreadyRated, match=f"rater 'ana' has already rated item '{item}'"):
        campaigns.judge(token, item, good, "A")
    assert len(campaigns.campaign("pilot")["judgements"]) == 1


def test_a_campaign_name_is_taken_once_and_tokens_are_kept_only_as_hashes(campaigns, tmp_path):
    tokens = campaigns.create("pilot", MODELS, items(1), ["ana", "ben"])
    with pytest.raises(PsyllmError, match="campaign 'pilot' exists already"):
        campaigns.create("pilot", MODELS, items(1), ["ana"])
    stored = (tmp_path / "store.sqlite").read_bytes() + (tmp_path / "store.sqlite-wal").read_bytes()
    assert all(token.encode() not in stored for token in tokens.values())
