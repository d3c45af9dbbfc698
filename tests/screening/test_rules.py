"""Code layer: folding, curated patterns and the context each match is read in."""

import pytest

from components.screening.decide import decide_level, rule_verdict
from components.screening.normalize import fold
from components.screening.rules import find_matches


def contexts(text: str) -> list[tuple[str, str, str]]:
    return [(m.category, m.strength, m.context) for m in find_matches(fold(text))]


@pytest.mark.parametrize(
    ("raw", "folded_part"),
    [
        ("kms fr", "kill myself"),
        ("i want to unalive myself", "kill myself"),
        ("thinking about the sewer slide", "suicide"),
        ("I'm suicidel", "suicidal"),
        ("su1c1de", "suicide"),
        ("ｋｉｌｌ ｍｙｓｅｌｆ", "kill myself"),
        ("noooooo", "noo"),
        ("想紫砂", "想自杀"),
        ("想噶了", "想死"),
        ("gonna end it tn", "going to end it tonight"),
    ],
)
def test_fold_sees_through_slang_leetspeak_and_width(raw, folded_part):
    assert folded_part in fold(raw)


@pytest.mark.parametrize(
    "text",
    [
        "I'm going to kill myself tonight",
        "My friend said she'll kill herself tonight",
        "My boyfriend hits me every night",
        "I want to kill myself with the pills I saved",
        "sometimes I want to end it all and tonight I have the rope ready",
        "I tried to kill myself yesterday",
        "我今晚就要自杀",
        "我朋友说她今晚要自杀",
        "他喝醉了又在打我",
        "又开始割腕了",
        # Preparation and violence happening now, as real questions put them (at length, in passing).
        "I've been stockpiling my sleeping tablets and nobody knows",
        "I have saved up my pills and tonight I am going to take them all.",  # issue 15's own example
        "I stockpiled all my meds over the summer",
        "My husband has been physically abusive to me since the baby came",
        "When we argue we hit each other until someone leaves",
        "Sometimes I slap him when the anger takes over",
        "Her uncle beats my son when I'm at work",
        "He took my keys and won't let me leave the flat",
        "I'm scared for my kids' safety when he drinks",
        "我妈这几年一直打骂我，昨天又动手了",
        "继父喝了酒就打我妈，我躲在房间里不敢出来",
        "我老公最近一喝酒就有暴力行为，我很怕他",
        "生完宝宝以后我总担心自己会伤害到孩子",
        "我决定今晚自杀",
        "药我已经攒够了，我准备好自杀了",
    ],
)
def test_plain_statements_of_intent_are_present_intent(text):
    assert ("intent", "present") in [(strength, context) for _, strength, context in contexts(text)]
    assert rule_verdict(find_matches(fold(text))).urgent


@pytest.mark.parametrize(
    "text",
    [
        "i want to die",
        "I wish I were dead",
        "sometimes I think about killing myself",
        "I want to kill myself",
        "I've been cutting my arms again",
        "我想自杀",
        "有时候想自杀",
        "活不下去了",
        "我感到绝望，想死",
        "偶尔会自残",
    ],
)
def test_wishes_thoughts_and_ongoing_self_harm_are_thoughts_not_intent(text):
    """The labelling criteria (C-SSRS-style): without a time, means or plan these are elevated, not urgent."""
    verdict = rule_verdict(find_matches(fold(text)))
    assert verdict.thought and not verdict.urgent
    assert decide_level(verdict, urgent_hits=False, risk_hits=False) == "elevated"


@pytest.mark.parametrize(
    "text",
    [
        "this exam is killing me",
        "my feet are killing me after that hike",
        "I'm dying to see that movie",
        "笑死我了",
        "累死了",
        "热死了，空调坏了",
        "想死你了！下周见",
        "这个ddl要我狗命",
        "他打我电话没接",
        "爸爸打妈妈电话一直没人接",
        "I'm going to die of boredom in this meeting",
        "We went bungee jumping off a bridge in Queenstown",
        "这个课题我想死磕到底",
        "Depression comes back in cycles and it hits me harder every time",
        "Every time I want to talk, he kicks me out of the house",
        "During the panic attack I thought I was going to die",
    ],
)
def test_figurative_idioms_match_no_pattern(text):
    assert not [c for c in contexts(text) if c[1] == "intent"]


@pytest.mark.parametrize(
    ("text", "context"),
    [
        ("I would never kill myself, I just can't sleep", "negated"),
        ("我从来不想自杀，只是失眠", "negated"),
        ("我一点都不想死", "negated"),
        ("Years ago I tried to kill myself. I'm fine now.", "past"),
        ("以前有过割腕，已经三年没有了", "past"),
        ("In the movie she kills herself at the end", "fiction"),
        ("电视剧里女主跳楼那段太虐了", "fiction"),
        (
            "For my thesis: how do clinicians assess whether someone wants to kill myself-type statements?",
            "professional",
        ),
        ("ugh kms this traffic lol", "joking"),
        ("Moving house makes me want to jump off a roof, kidding", "joking"),
        ("我从来没有过轻生的念头", "negated"),
        ("I tried to kill myself last summer and I'm doing well now", "past"),
        ("她半年前割腕被送医，现在恢复得很好", "past"),
        ("I tried to kill myself, and the hospital kept me for a week", "past"),
        ("以前最难熬的时候会自残，现在还没有再犯", "past"),
        ("那部纪录片里有人跳楼", "fiction"),
        ("作为社工，遇到家暴求助该怎么转介？", "professional"),
        ("Years ago, in high school, I hit him once; we are good friends now", "past"),
        ("He never hits my son, he is a gentle dad", "negated"),
    ],
)
def test_context_takes_a_match_out_of_the_present(text, context):
    found = contexts(text)
    assert found and all(c[2] == context for c in found if c[1] == "intent"), found


@pytest.mark.parametrize(
    "text",
    [
        "Years ago I tried to kill myself and tonight I want to again",
        "not joking, i want to kill myself tonight",
        "以前也自残过，现在还是想割自己",
    ],
)
def test_recurrence_or_a_denied_joke_keeps_the_risk_in_the_present(text):
    verdict = rule_verdict(find_matches(fold(text)))
    assert not verdict.past_only and (verdict.urgent or verdict.thought)


@pytest.mark.parametrize(
    "text",
    [
        # Addressing one's counsellor, mentioning one's own doctor or being a patient is not a professional frame.
        "心理咨询师，您好，我今晚就要自杀。",
        "你好，咨询师，我丈夫经常家暴我",
        "我跟我的咨询师说过，明天我就要去跳楼",
        "作为一个抑郁症患者，我决定自杀了",
        "我被诊断为双相，我打算今晚自杀",
        # A common word is not a professional frame: "of course", "clinical depression", "training".
        "I have clinical depression and I am going to kill myself tonight",
        "Of course I plan to end my life tonight",
        "After the training session I am going to kill myself",
        # Nor are words that name fiction only in another sense.
        "I'll show them all, I am going to kill myself tonight",
        "After this depressive episode I plan to end my life tonight",
        "这几天我把游戏账号都送人了，我准备好自杀了",
        # A past in another clause, or a recent span, does not make a present intent past.
        "I used to be happy, now I am going to kill myself",
        "以前我很开心，现在我准备自杀",
        "In the past week I have decided to kill myself",
        # A negation in another clause does not negate the intent.
        "My therapist does not know I am going to kill myself tonight",
        "No, I am going to end my life this weekend",
    ],
)
def test_mentions_of_care_common_words_and_distant_negations_leave_intent_present(text):
    assert rule_verdict(find_matches(fold(text))).urgent, contexts(text)


@pytest.mark.parametrize(
    ("text", "context"),
    [
        ("作为新手咨询师，来访者说不想活了，我第一句该怎么回应？", "professional"),
        ("急诊护士请教：割腕的病人离院前要注意什么？", "professional"),
        ("我是社区医生，病人说想自杀的时候我该怎么评估？", "professional"),
        ("最近总是想起小时候父亲打我的事情", "past"),
        ("Lately I keep remembering when I was 15 and would cut my arms", "past"),
        ("I'm not going to kill myself, I just need to vent", "negated"),
        ("I don't think I will kill myself", "negated"),
    ],
)
def test_professional_speakers_recalled_abuse_and_own_negations_keep_their_context(text, context):
    found = [c for c in contexts(text) if c[1] in ("intent", "thought")]
    assert found and all(c[2] == context for c in found), found


def test_abuse_patterns_leave_pets_and_possessions_alone():
    assert not rule_verdict(find_matches(fold("心情不好的时候我会虐待我家里的猫"))).urgent


def test_levels_combine_rules_and_heads():
    past = rule_verdict(find_matches(fold("Years ago I wanted to kill myself. I'm fine now.")))
    assert past.past_only and not past.urgent
    assert decide_level(past, urgent_hits=True, risk_hits=True) == "elevated"
    nothing = rule_verdict([])
    assert decide_level(nothing, urgent_hits=True, risk_hits=True) == "urgent"
    assert decide_level(nothing, urgent_hits=False, risk_hits=True) == "elevated"
    assert decide_level(nothing, urgent_hits=False, risk_hits=False) == "none"
