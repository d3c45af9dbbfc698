"""Code layer: the fixed crisis reply, its regions, languages and resource files."""

import pytest

from components.errors import PsyllmError
from components.screening import Screening, crisis_reply, load_directory
from components.screening.crisis import default_directory

URGENT = Screening(urgent=True, level="urgent", categories=("suicide",), reasons=("states 'kill myself'",))
ELEVATED = Screening(urgent=False, level="elevated", categories=("suicide",), reasons=())
NONE = Screening(urgent=False, level="none", categories=(), reasons=())


@pytest.mark.parametrize(
    ("region", "language", "expected"),
    [
        ("US", "en", ["988", "911", "https://988lifeline.org", "741741"]),
        ("GB", "en", ["116 123", "999", "https://www.samaritans.org"]),
        ("uk", "en", ["116 123", "999"]),
        ("AU", "en", ["13 11 14", "000", "https://www.lifeline.org.au"]),
        ("CN", "zh", ["12356", "010-82951332", "120（急救）或 110（报警）", "全国统一心理援助热线"]),
        ("CN", "en", ["12356", "National psychological assistance hotline"]),
        ("US", "zh-Hans", ["988", "请立即拨打 911"]),
    ],
)
def test_urgent_reply_lists_the_regions_services_in_the_users_language(region, language, expected):
    reply = crisis_reply(URGENT, region, language)
    assert reply is not None
    for text in expected:
        assert text in reply.text
    assert reply.services and all(service.url.startswith("https://") for service in reply.services)


def test_unknown_region_falls_back_to_a_worldwide_directory():
    reply = crisis_reply(URGENT, "XX", "en")
    assert reply.region == "INTL"
    assert "https://findahelpline.com" in reply.text and "local emergency number" in reply.text


def test_the_reply_says_a_counsellor_was_told_only_when_a_case_was_opened():
    for language, notice in (("en", "A counsellor has been told"), ("zh", "我们已经通知了一位心理咨询师")):
        assert notice in crisis_reply(URGENT, "GB", language, case_opened=True).text
        assert notice not in crisis_reply(URGENT, "GB", language).text


def test_elevated_gets_a_gentler_reply_and_none_gets_none():
    elevated = crisis_reply(ELEVATED, "GB", "en")
    assert "116 123" in elevated.text and "999" not in elevated.text
    assert crisis_reply(NONE, "GB", "en") is None


def test_every_default_region_has_a_phone_line_and_both_languages():
    directory = default_directory()
    assert {"US", "GB", "AU", "CN"} <= set(directory.regions)
    for code, region in directory.regions.items():
        assert set(region.emergency) == {"en", "zh"}
        if code != directory.fallback:
            assert any(service.phone for service in region.resources)


def test_a_deployment_can_load_its_own_directory(tmp_path):
    custom = tmp_path / "resources.yaml"
    custom.write_text(
        "fallback: NZ\nregions:\n  NZ:\n    names: {en: New Zealand, zh: 新西兰}\n"
        "    emergency: {en: '111', zh: '111'}\n    resources:\n"
        "      - names: {en: Need to talk?, zh: Need to talk?}\n        phone: '1737'\n        text: '1737'\n"
        "        url: https://1737.org.nz\n",
        encoding="utf-8",
    )
    reply = crisis_reply(URGENT, "NZ", "en", load_directory(custom))
    assert "1737" in reply.text and "111" in reply.text


def test_a_broken_directory_names_the_file_and_field(tmp_path):
    broken = tmp_path / "broken.yaml"
    broken.write_text("fallback: XX\nregions: {}\n", encoding="utf-8")
    with pytest.raises(PsyllmError, match=r"broken.yaml: invalid crisis resources: .*fallback 'XX'"):
        load_directory(broken)
