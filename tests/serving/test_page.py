"""The web page in a real headless Chromium (Debian's, driven by Playwright): ask, rate, crisis banner, inert HTML."""

import pytest

from components.serving.store import Store


@pytest.fixture
def page(browser, served):
    context = browser.new_context(viewport={"width": 375, "height": 740})  # a phone's width
    page = context.new_page()
    page.goto(served.url)
    yield page
    context.close()


def ask(page, question):
    page.get_by_label("Your question").fill(question)
    page.get_by_role("button", name="Ask").press("Enter")  # keyboard, not a mouse click
    page.get_by_text("Answer complete.").wait_for(timeout=60_000)


def test_a_person_asks_sees_the_answer_and_rates_it(page, served):
    assert page.get_by_text("AI-generated answers, not a clinician").is_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 375  # no sideways scrolling on a phone
    ask(page, "How can I stop worrying so much at night?")
    assert page.locator("#crisis").is_hidden()
    assert page.locator("#answer").inner_text().strip()

    before = len(Store(served.store_url, store_text=False).ratings())
    for scale, score in {"Helpfulness": "4", "Fluency": "5", "Relevance": "3", "Logic": "2"}.items():
        page.get_by_label(scale).select_option(score)
    page.get_by_role("button", name="Send rating").click()
    page.get_by_text("Thank you: your rating was saved.").wait_for()
    ratings = Store(served.store_url, store_text=False).ratings()
    assert len(ratings) == before + 1
    assert [ratings[-1][scale] for scale in ("helpfulness", "fluency", "relevance", "logic")] == [4, 5, 3, 2]


def test_an_urgent_message_shows_the_crisis_banner_first(page):
    ask(page, "I have the pills ready and I want to kill myself tonight")
    banner = page.get_by_role("alert")
    assert banner.is_visible() and "Please reach a person now" in banner.inner_text()


def test_injected_html_is_shown_as_text_and_never_runs(page):
    injected = '<script>window.pwned = 1</script><img src="x" onerror="window.pwned = 2">'
    ask(page, injected)
    assert page.evaluate("window.pwned") is None
    assert page.locator("#asked").inner_text() == f"You asked: {injected}"
    assert page.locator("#asked img, #asked script, #answer img, #answer script").count() == 0
