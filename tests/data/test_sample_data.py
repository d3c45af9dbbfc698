"""The project's own sample site: big enough, bilingual, linked, with a robots.txt rule."""

import re

import lxml.html
from protego import Protego

from components.text import word_tokens
from tests.conftest import PROJECT_ROOT

SITE = PROJECT_ROOT / "data/sample_site"


def articles(language: str):
    return [path for path in sorted((SITE / language).glob("*.html")) if path.name != "index.html"]


def body_length(path) -> int:
    tree = lxml.html.parse(str(path))
    return len(word_tokens(tree.find(".//article").text_content()))


def test_at_least_forty_articles_in_two_languages():
    english, chinese = articles("en"), articles("zh")
    assert len(english) + len(chinese) >= 40
    assert {path.name for path in english} == {path.name for path in chinese}


def test_articles_are_300_to_800_words_or_the_chinese_equivalent():
    assert all(300 <= body_length(path) <= 800 for path in articles("en"))
    assert all(600 <= body_length(path) <= 1400 for path in articles("zh"))  # characters


def test_every_relative_link_resolves_to_a_file():
    for page in SITE.rglob("*.html"):
        for href in re.findall(r'href="([^"#:]+)"', page.read_text(encoding="utf-8")):
            assert (page.parent / href).resolve().is_file(), f"{page.relative_to(SITE)} links to missing {href}"


def test_robots_txt_disallows_one_linked_folder():
    robots = Protego.parse((SITE / "robots.txt").read_text())
    assert not robots.can_fetch("http://127.0.0.1/drafts/editorial-notes.html", "psyllm-crawler")
    assert robots.can_fetch("http://127.0.0.1/en/grief.html", "psyllm-crawler")
    assert "drafts/editorial-notes.html" in (SITE / "index.html").read_text()


def test_urgent_help_pages_carry_real_crisis_lines():
    english = (SITE / "en/urgent-help.html").read_text()
    chinese = (SITE / "zh/urgent-help.html").read_text()
    assert all(number in english for number in ("988", "116 123", "13 11 14"))
    assert all(number in chinese for number in ("12356", "010-82951332"))
