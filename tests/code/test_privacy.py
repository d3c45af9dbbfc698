"""scrub_pii: typed placeholders for personal data, helplines and ordinary numbers left alone."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from components.privacy import scrub_pii

ENGLISH = [
    ("Email me at jane.doe+therapy@mail.example.co.uk today.", "Email me at [EMAIL] today."),
    ("Call me on (555) 010-4477 tonight.", "Call me on [PHONE] tonight."),
    ("Call me on 555-010-4477 tonight.", "Call me on [PHONE] tonight."),
    ("Call me on +1 555 010 4477 tonight.", "Call me on [PHONE] tonight."),
    ("My London number is +44 20 7946 0958.", "My London number is [PHONE]."),
    ("I live at 221 Baker Street, Apt 4B, London.", "I live at [ADDRESS], London."),
    ("I moved to 42 Elm St. Apt. 7 last year.", "I moved to [ADDRESS] last year."),
    ("My SSN is 123-45-6789.", "My SSN is [ID]."),
    ("Card 4111 1111 1111 1111 was declined.", "Card [CARD] was declined."),
    ("Card 4111-1111-1111-1111 was declined.", "Card [CARD] was declined."),
    ("Card 5500000000000004 was declined.", "Card [CARD] was declined."),
    ("See https://twitter.com/someone for my posts.", "See [URL] for my posts."),
    ("My page: https://example.com/users/123 (private)", "My page: [URL] (private)"),
    ("Find me at https://www.zhihu.com/people/xiaoming now", "Find me at [URL] now"),
    ("Profile https://example.com/view?uid=42 here", "Profile [URL] here"),
]

CHINESE = [
    ("我的手机是13800138000，有事打给我", "我的手机是[PHONE]，有事打给我"),
    ("手机138-0013-8000", "手机[PHONE]"),
    ("电话+86 138 0013 8000", "电话[PHONE]"),
    ("座机0755-12345678", "座机[PHONE]"),
    ("身份证号110101199003074578", "身份证号[ID]"),
    ("身份证号11010119900307457X", "身份证号[ID]"),
    ("邮箱xiaoming@example.com", "邮箱[EMAIL]"),
    ("我的邮箱是xiaoming@example.com，欢迎来信", "我的邮箱是[EMAIL]，欢迎来信"),
    ("微信号：abc_12345", "微信号：[HANDLE]"),
    ("加我微信wxid_abcde吧", "加我微信[HANDLE]吧"),
    ("QQ 123456789", "QQ [HANDLE]"),
    ("我的qq：88886666", "我的qq：[HANDLE]"),
    ("我住在北京市海淀区中关村大街27号3号楼2单元501室。", "我住在[ADDRESS]。"),
    ("我家在幸福小区5栋2单元", "我家在[ADDRESS]"),
    ("住在上海市浦东新区世纪大道100号", "住在[ADDRESS]"),
]

HELPLINES = [
    "Call or text 988 any time.",
    "Samaritans: 116 123, free from any phone.",
    "Lifeline Australia 13 11 14",
    "心理援助热线12356",
    "北京心理危机研究与干预中心热线010-82951332",
    "希望24热线400-161-9995",
]

NOT_PERSONAL = [
    "In 2019 I started therapy.",
    "The year 1999 and 2000 were hard.",
    "On 2023-05-14 at 10:30 I had a panic attack.",
    "From 9:00 to 17:30 on 03/04/2022",
    "Session at 14:30-15:30",
    "About 45% of people, and 12.5% of 10,000 more",
    "I paid $1,250.00 in 2021.",
    "Ticket 1234 5678 9012 3456 stays",  # 16 digits, not Luhn-valid: not a card
    "My score was 1234567 points",
    "ISBN 978-3-16-148410-0",
    "Visit https://988lifeline.org for help",
    "See https://www.nhs.uk/mental-health/ for more",
    "https://en.wikipedia.org/wiki/Depression",
    "我从2019年开始失眠，已经3年了",
    "我今年25岁，每天睡6个小时",
    "2024年3月15日下午3点",
    "一共花了1500元",
    "会议在14:30开始，持续90分钟",
    "体重下降了5公斤，约8%",
    "第3次咨询花了800元",
    "温度是37.5度",
]


@pytest.mark.parametrize(("text", "expected"), ENGLISH)
def test_english_personal_data_is_replaced(text, expected):
    assert scrub_pii(text) == expected


@pytest.mark.parametrize(("text", "expected"), CHINESE)
def test_chinese_personal_data_is_replaced(text, expected):
    assert scrub_pii(text) == expected


@pytest.mark.parametrize("text", HELPLINES)
def test_helpline_numbers_are_kept_verbatim(text):
    assert scrub_pii(text) == text


@pytest.mark.parametrize("text", NOT_PERSONAL)
def test_ordinary_numbers_and_urls_are_not_touched(text):
    assert scrub_pii(text) == text


@pytest.mark.parametrize("text", [pair[0] for pair in ENGLISH + CHINESE] + HELPLINES + NOT_PERSONAL)
def test_documented_examples_are_idempotent(text):
    once = scrub_pii(text)
    assert scrub_pii(once) == once


@pytest.mark.parametrize("text", ["Call 1-800-273-8255 now.", "Call 1 800 273 8255 now."])
def test_us_lifeline_in_domestic_format_is_kept(text):
    assert scrub_pii(text) == text


@pytest.mark.parametrize("text", ["Card 4111 1111 1111 1111 12/25", "card: 4111 1111 1111 1111 123"])
def test_card_followed_by_expiry_or_cvv_is_replaced(text):
    assert "4111 1111 1111 1111" not in scrub_pii(text)


@pytest.mark.parametrize(
    "text", ["Watch https://www.netflix.com/title/80057281 tonight", "Read https://www.linux.com/news/sleep"]
)
def test_domains_merely_ending_in_x_are_not_personal(text):
    assert scrub_pii(text) == text


def test_sentence_period_after_personal_url_is_kept():
    assert scrub_pii("Follow me at https://twitter.com/someone.") == "Follow me at [URL]."


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_never_raises_on_arbitrary_text(text):
    assert isinstance(scrub_pii(text), str)


# Fragments that glue PII-shaped pieces together, where placeholders change a later match's neighbours.
_FRAGMENTS = [
    "a", "Z", "0", "7", " ", "-", "+", ".", "@", "/", "QQ", "微信", "号", "：", "jane", "@example.com",
    "13800138000", "4111111111111111", "110101199003074578", "555-010-4477", "https://", "Street",
]  # fmt: skip


@pytest.mark.xfail(
    reason="not idempotent: the rules' look-arounds see the original neighbours, so PII glued to other "
    "PII (e.g. 'a@example.com4111111111111111', '13800138000+8613900139000') survives the first pass "
    "and is only replaced once a neighbour has become a placeholder",
    strict=True,
)
@settings(
    max_examples=3000, derandomize=True, database=None, deadline=None,
    suppress_health_check=list(HealthCheck),
)  # fmt: skip
@given(st.lists(st.sampled_from(_FRAGMENTS), max_size=12).map("".join))
def test_idempotent_on_pii_shaped_text(text):
    once = scrub_pii(text)
    assert scrub_pii(once) == once


@pytest.mark.xfail(reason="see test_idempotent_on_pii_shaped_text", strict=True)
@pytest.mark.parametrize(
    "text", ["jane@example.com+jim@example.org", "13800138000+8613900139000", "13800138000+13800138000"]
)
def test_idempotent_on_glued_pii(text):
    once = scrub_pii(text)
    assert scrub_pii(once) == once
