"""Curated crisis patterns in English and Chinese, read in context.

Rules do two jobs the learned models cannot be trusted with alone: they name *why* a
message was flagged (a matched phrase and its category), and they make the plainest
statements of intent ("I'm going to kill myself", 我今晚就要自杀) urgent whatever a model says.
They follow the labelling criteria (data/screening/README.md), which triage as the C-SSRS
screener does: an `intent` pattern (intent, a method, preparation, a goodbye, abuse now) makes a
present message urgent; a `thought` pattern (a death wish, suicidal thoughts, ongoing
self-harm) makes it at least elevated. An intent phrase said as a wish or a passing thought
("sometimes I want to kill myself", 有时候想自杀) counts as a thought unless the sentence
names a time or means ("tonight", "the pills are ready").
Each match is read in its sentence: a negation just before it ("I would never..."), a
distant-past marker without a sign of recurrence ("years ago", 以前), fiction or media
("in the movie", 电视剧里) or a professional frame ("for my thesis", 来访者) take the
match out of the present tense. Figurative idioms (笑死, 累死, "this exam is killing me")
never match, because the patterns require a self-directed or explicit form.
"""

import re
from dataclasses import dataclass
from typing import Literal

from components.screening.labelled import Category
from components.screening.normalize import SENTENCE

Context = Literal["present", "negated", "past", "fiction", "professional", "joking"]
Strength = Literal["intent", "thought", "signal"]


@dataclass(frozen=True)
class Pattern:
    """A phrase family: `intent` makes a present message urgent, `thought` elevated; `signal` only explains."""

    category: Category
    strength: Strength
    regex: re.Pattern[str]


@dataclass(frozen=True)
class Match:
    """One pattern found in one sentence, with the context that sentence gives it."""

    category: Category
    strength: Strength
    phrase: str
    context: Context
    cue: str


def _patterns(strength: Strength, category: Category, *regexes: str) -> list[Pattern]:
    return [Pattern(category, strength, re.compile(regex)) for regex in regexes]


_PERSON = (
    r"(?:he|she|they|friend|brother|sister|son|daughter|mom|mum|dad|mother|father|partner|husband|wife|"
    r"boyfriend|girlfriend|bf|gf|roommate|classmate|cousin|kid|child|student|client|coworker|colleague)"
)
_SELF_OTHER = r"(?:himself|herself|themselves|themself)"
_METHODS_ZH = r"跳楼|跳河|跳江|烧炭|上吊|卧轨|割(?:手)?腕|服毒"  # a named method: intent, and a means cue
_WHEN_ZH = r"今晚|今天|明天|马上|现在|这周|周末"
_FAMILY_ZH = r"我妈|妈妈|母亲|我们|弟弟|妹妹|孩子|儿子|女儿"
_PARTNER_ZH = r"丈夫|老公|男朋友|男友|对象|妻子|老婆"
PATTERNS: tuple[Pattern, ...] = (
    *_patterns(
        "intent",
        "suicide",
        r"\b(?:kill|killing|hang|hanging|shoot|shooting|drown|drowning|poison|poisoning) myself\b",
        r"\b(?:end|ending|take|taking) my (?:own )?life\b",
        r"\bend(?:ing)? it (?:all|tonight|today|now)\b",
        r"(?<!\bwas )(?<!\bwere )\b(?:going|plan|planning|ready|about) to die\b(?! (?:of|laughing)\b)",
        r"\bsuicidal (?:tonight|right now)\b",
        r"\bcommit(?:ting)? suicide\b|\bsuicide (?:note|letter|plan)\b",
        r"(?<!bungee )\bjump(?:ing)? (?:off|from|in front of) (?:a |the |my |this )?"
        r"(?:bridge|roof|rooftop|building|balcony|cliff|train|tower|window|ledge)\b",
        r"\btake all (?:of )?(?:my|the|these|those) (?:pills|meds|tablets)\b|\boverdose (?:on|tonight)\b",
        r"\b(?:hoard|hoarding|hoarded|stockpiling|stockpiled|saving up|saved up|been saving) (?:all )?(?:my |the )?"
        r"(?:\w+ )?(?:pills|meds|medication|tablets)\b",
        r"\bslit(?:ting)? my wrists?\b",
        r"\bthis is (?:my )?goodbye\b|\bgoodbye (?:everyone|world|forever)\b|\bwon't be (?:here|around) tomorrow\b",
        rf"\b{_PERSON}\b[^.!?]{{0,50}}\b(?:kill|kills|killing|hang|hangs|end|ends|ending) {_SELF_OTHER}\b",
        r"\b(?:end|take|ending|taking) (?:his|her|their) (?:own )?life\b",
        rf"(?<!想)(?:要|准备|打算|计划|决定|会|该)好?(?:{_WHEN_ZH})?就?(?:去)?(?:自杀|轻生|寻死|自尽)|自杀(?:算了|吧)",
        rf"了结(?:自己|生命)|结束(?:自己的?|我的)?生命|{_METHODS_ZH}|遗书|遗言|交代后事",
        r"告别这个世界|永别了|下辈子见",
    ),
    *_patterns(
        "thought",
        "suicide",
        r"\b(?:want|wanting) to die\b(?! (?:of|laughing)\b)",
        r"\bwish i (?:was|were|could be) dead\b|\bwish i had never been born\b",
        r"\bi'?m suicidal\b|\b(?:feel|feeling|felt) suicidal\b|\bsuicidal (?:again|thoughts)\b",
        r"\b(?:don't|do not|no longer) want to (?:live|be alive|exist|wake up|be here anymore)\b",
        r"\bbetter off (?:dead|without me)\b",
        r"\bno (?:reason|point) (?:to live|in living|to go on|in going on)\b",
        r"想(?:要|去)?(?:自杀|轻生|寻死|自尽)|轻生|寻死|自尽",
        r"不想活(?!成|得像)|活不下去|不想再活|活够了|(?<![到得])想死(?![你您他她我磕])",
        r"离开这个世界|不想(?:再)?醒来|没有我(?:会|就)?(?:更好|好过)",
    ),
    *_patterns(
        "thought",
        "self_harm",
        r"\bcut(?:ting)? (?:myself|my (?:arms?|wrists?|legs?|thighs?|skin))\b",
        r"\bburn(?:ing)? myself\b|\bi (?:self[- ]?harm|hurt myself)\b",
        r"自残|自伤|(?:割|划|烫)(?:自己|手臂|胳膊|大腿)|用刀(?:割|划)",
    ),
    *_patterns(
        "intent",
        "abuse_danger",
        r"(?<!\bit )\b(?:hits|beats|punches|chokes|strangles|slaps|kicks|rapes) me\b(?! out\b)",
        r"\b(?:afraid|scared|terrified) (?:he|she|they)(?:'ll| will| is going to| are going to) kill me\b",
        r"\bscared for my life\b|\blocked me in\b|\bi'm locked in\b",
        r"\b(?:is|has been|keeps being) (?:physically|sexually)(?: and (?:verbally|emotionally|mentally))? "
        r"abusive (?:to|towards?|with) me\b",
        r"\b(?:we|we often|we usually|we still) (?:hit|hitting|punch|slap) each other\b",
        r"\b(?:sometimes )?i (?:hit|punch|slap|choke|kick) (?:her|him)\b",
        r"\b(?:chokes?|choking|beats|beating|hits|hitting) my (?:\d+ year old )?(?:son|daughter|child|kids?|baby)\b",
        r"\bheld (?:me|her|him) (?:a )?prisoner\b|\bwon't let me leave\b",
        r"\b(?:afraid|scared) for my (?:\w+ )?(?:daughter|son|child|kid)s?'?s? safety\b",
        r"(?:家暴|打我(?!电话|手机|微信|视频)|掐我|踢我|扇我|把我锁在|被锁在|被关在|性侵|猥亵|(?:要|会)杀了我)(?!过)",
        r"(?:打骂|殴打|虐待|暴打|毒打|揍)我(?![过家的])",
        rf"(?:爸爸|爸|父亲|继父|{_PARTNER_ZH}|他)(?:还|又|经常|总是|常常|会|一直|天天)*(?:打|揍|殴打|暴打)(?:{_FAMILY_ZH})(?!的?(?:电话|手机|微信|视频|主意)|招呼)",
        rf"(?:{_PARTNER_ZH})[^，。！？,!?]{{0,10}}暴力(?:倾向|行为)",
        r"(?:怕|担心|害怕)(?:我|自己)?会(?:伤害|掐|摔|弄伤|弄死)到?(?:我的)?(?:孩子|宝宝|婴儿)",
    ),
    *_patterns(
        "signal",
        "harm_to_others",
        r"\b(?:going to|want to|will|i'll|plan to|about to) (?:kill|stab|shoot|strangle) "
        r"(?:him|her|them|my \w+|everyone|someone|people)\b",
        r"(?:杀了|杀死|弄死|捅死|砍死|捅)(?:他|她|他们|她们|全家|所有人)|同归于尽",
    ),
    *_patterns("signal", "suicide", r"\bsuicid(?:e|al)\b|\bsleeping pills\b|安眠药|攒(?:了)?(?:很多|好多|一些)?药"),
    *_patterns("signal", "self_harm", r"\bself[- ]?harm\b|\bcutting\b"),
)

_NEGATION = re.compile(r"\b(?:not|never|no|don't|do not|didn't|won't|wouldn't|isn't|no longer|nor|without)\b")
_NEGATION_ZH = re.compile(
    r"(?:不|没|没有|从没|从来没|从来没有|从未|并不|绝不|不会|不是|别|不至于|一点都不|一点也不)(?:想|想过|会|打算|要|去|过|有过)?$"
)
_PAST = re.compile(
    r"\b(?:years? ago|months ago|used to|when i was (?:younger|little|a kid|a teen|a teenager|a child|\d+)|"
    r"in (?:high school|middle school|college|my teens)|"
    r"in the past(?! (?:few |couple of )?(?:days?|weeks?|nights?|hours?))|back then|as a (?:kid|teen|teenager|child)|"
    r"(?:years|months) (?:clean|free)|in recovery|last (?:year|spring|summer|autumn|fall|winter)|in (?:19|20)\d\d)\b"
    r"|以前|曾经|当年|小时候|[一二两三四五六七八九十几半\d]+(?:个)?(?:年|月|周|星期)前|前几年|多年前|上学期|往年"
    r"|最(?:严重|重|难受)的时候|被救(?:了)?回来|\d+岁(?:时|的时候|那年)|那时候|那时|当时|过去|去年|前年|年轻时|那年|那几年|那段"
    r"|已经(?:快)?(?:[一二两三四五六七八九十几半\d]+)(?:个)?(?:年|月|周)没|戒掉|[一二两三四五六七八九十几\d]+年了"
    r"|上学的时候|(?:高中|初中|大学|[高初大研][一二三四])(?:时|的时候|那年)"
)
_RECENT = re.compile(
    r"\b(?:again|still|right now|lately|these days|recently|tonight|today|this week|yesterday|last night|just now)\b"
    r"|现在又|现在还(?!没)|最近|又(?:开始|想|要|在|一次)|今晚|今天|这几天|还是想|还在想"
)
# "Now" in the match's own clause sets it against an earlier clause's past ("I used to be happy, now I...").
_NOW = re.compile(r"\bnow\b|现在")
# Recalling the past now ("lately I keep remembering what he did", 最近总想起小时候) keeps it past.
_RECALL = re.compile(
    r"\b(?:remember\w*|memories|memory|flashbacks?|think(?:ing)? back)\b|想起|回想|回忆|记起|梦到|梦见|忘不了|阴影"
)
# Words that name fiction only in that sense: not "I'll show them", a depressive episode, a series of
# attacks, this game of life, my character flaw, or giving away one's game accounts.
_FICTION = re.compile(
    r"\b(?:movie|film|(?:tv|the|a|this|that|netflix) show|series(?! of)|"
    r"(?<!depressive )(?<!manic )(?<!psychotic )episode|(?:the|a|main|this|that) character|novel|book|"
    r"video game|computer game|online game|in (?:the|a|this|that) game|(?:the|a|new|this|that) song|lyrics|"
    r"anime|documentary)\b"
    r"|电视剧|电影|小说|游戏(?!账号|装备|里那种)|剧里|剧中|追剧|部剧|场戏|纪录片|动漫|综艺|角色|女主|男主|漫画|歌词"
)
# Addressing one's counsellor (心理咨询师，您好) or being a patient is not a professional frame; speaking as one is.
_ROLE_ZH = r"心理咨询师|咨询师|心理老师|护士|医生|社工"
_ROLE = r"(?:nurse|doctor|gp|teacher|counsell?or|therapist|psychologist|social worker|police officer|manager|volunteer)"
_PROFESSIONAL = re.compile(
    r"\b(?:research|thesis|dissertation|essay|statistics|lecture|(?<!\bof )course|coursework|prevalence|"
    r"risk assessment|training (?:resources|materials|course|module)|"
    r"(?:staff|crisis|suicide|safeguarding|first aid) training|protocol|chatbot|wording|de-escalat\w*|"
    r"clinical (?:practice|setting|placement|rotation|supervisor|supervision|guidelines?|staff)|"
    r"my (?:patient|client|student)s?|"
    rf"as an? {_ROLE}|{_ROLE} here|i'm an? {_ROLE}|"
    r"how (?:do|should|can) (?:i|we|you|therapists|counsell?ors|clinicians) (?:assess|screen|ask|respond))\b"
    r"|论文|研究|统计|问卷|PHQ|第.{1,3}题|社工|社区工作|量表|疗法|反家暴法|保护令|告诫书|警情|警校|普法|为什么(?:有人|有的人)|课程|讲座|流行病学|风险评估|(?:如何|怎么|怎样)评估|评估(?:方法|工具|标准)|危机干预|临床|(?<![被确])诊断(?![为出我成])|概念|科普|来访者"
    rf"|(?:作为|身为|我是)(?:一名|一个|一位)?[^，。,]{{0,8}}?(?:{_ROLE_ZH})|(?:{_ROLE_ZH})(?:想问|请教|提问|求助|问一下)|我的(?:患者|病人)"
)
_JOKING = re.compile(
    r"\b(?:lol|lmao|lmfao|jk|haha\w*)\b|(?<!not )(?<!n't )(?<!no )\b(?:joking|kidding)\b|😂|🤣|💀|🙃|🙄|哈哈|狗头"
)
_ATTEMPTED = re.compile(r"\b(?:attempted|tried) to$|(?:试过|尝试过?)$")
# A wish or a passing thought turns an intent phrase into a thought, unless a time or means is named.
_WISH = re.compile(r"\b(?:want|wanted|wanting|wanna|wish|wished|wishing|urge|urges|tempted) to(?: just)?$")
_THOUGHT = re.compile(
    r"\b(?:think|thinks|thinking|thought|thoughts|fantasi[sz]\w*|daydream\w*) (?:about|of)\b|\bsometimes\b|"
    r"\bat times\b|\boccasionally\b|\bpart of me\b|有时候|有时|偶尔|时不时|念头|想法"
)
_TIME_OR_MEANS = re.compile(
    r"\b(?:tonight|today|tomorrow|right now|this weekend|ready|decided|planned|pills|rope|gun|knife|bridge|roof)\b"
    rf"|今晚|今天|明天|马上|现在就|就要|准备好|已经(?:买|准备|写)|{_METHODS_ZH}|安眠药|遗书"
)
_CLAUSE_BREAK = re.compile(r"[,，;；:：、]|\bbut\b|但是|可是|不过")
_CJK = re.compile(r"[\u4e00-\u9fff]")
_FIRST_PERSON = frozenset({"i", "i'm", "im", "i'd", "i'll", "i've"})
_NEGATED_BELIEF = re.compile(r"\b(?:don't|do not|never|wouldn't|would not) (?:think|believe|say|said)(?: that)?$")


def _clause(before: str) -> str:
    """The part of the clause that leads up to a match: what a negation or a wish must sit in."""
    return _CLAUSE_BREAK.split(before)[-1]


def _negated(clause: str) -> str | None:
    """The negation in the few words (or characters, for Chinese) of the clause leading up to a match.

    An English negation counts only after the writer's last "I": in "my therapist does not know
    I am going to...", the "not" belongs to another clause; in "I don't think I will..." it does not.
    """
    if _CJK.search(clause[-3:]):
        found = _NEGATION_ZH.search(clause[-8:])
    else:
        words = clause.split()
        subjects = [index for index, word in enumerate(words) if word in _FIRST_PERSON]
        start = subjects[-1] if subjects else 0
        if _NEGATED_BELIEF.search(" ".join(words[max(start - 3, 0) : start])):
            start = max(start - 3, 0)  # "I don't think I will...": the negation reaches the intent
        found = _NEGATION.search(" ".join(words[start:][-7:]))
    return found.group(0) if found else None


def _context(sentence: str, before: str) -> tuple[Context, str]:
    clause = _clause(before)
    negation = _negated(clause)
    if negation:
        return "negated", negation
    for context, cue in (("fiction", _FICTION), ("professional", _PROFESSIONAL), ("joking", _JOKING)):
        found = cue.search(sentence)
        if found:
            return context, found.group(0)
    past = _PAST.search(sentence) or _ATTEMPTED.search(before.rstrip())
    recent = _RECENT.search(sentence) or _NOW.search(clause)
    if past and (_RECALL.search(sentence) or not recent):
        return "past", past.group(0)
    return "present", ""


def _strength(pattern: Pattern, sentence: str, before: str) -> Strength:
    """An intent phrase said as a wish or a passing thought is a thought, unless a time or means is named."""
    if pattern.strength != "intent" or pattern.category == "abuse_danger" or _TIME_OR_MEANS.search(sentence):
        return pattern.strength
    if _WISH.search(_clause(before).rstrip()) or _THOUGHT.search(sentence):
        return "thought"
    return "intent"


def find_matches(folded: str) -> list[Match]:
    """Every pattern match in a folded message, each with its sentence's context."""
    matches = []
    for sentence_match in SENTENCE.finditer(folded):
        sentence = sentence_match.group(0)
        for pattern in PATTERNS:
            for found in pattern.regex.finditer(sentence):
                before = sentence[: found.start()]
                context, cue = _context(sentence, before)
                strength = _strength(pattern, sentence, before)
                matches.append(Match(pattern.category, strength, found.group(0), context, cue))
    return matches
