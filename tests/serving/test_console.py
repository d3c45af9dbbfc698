"""The counsellor console in a real headless Chromium against the built Bento: the asker's link, the queue,
claims, drafts, replies, sign-in, CSRF, inert HTML, the audit trail and the metrics."""

import re
import subprocess

import httpx
import pytest
from sqlalchemy import create_engine, select, text

from components.console.keys import sha256
from components.console.schema import conversations
from components.serving.migrate import head
from tests.pipeline.project import BIN, environment
from tests.serving.servers import CONSOLE_KEY
from tests.serving.test_page import ask

URGENT = "I have the pills ready and I want to kill myself tonight"
INJECTED = '<img src="x" onerror="window.pwned = 1"><b>I feel lost at work</b>'


def add_counsellor(served, name: str, *flags: str) -> str:
    added = subprocess.run(
        [str(BIN / "psyllm"), "counsellor", "add", name, *flags, "--store", served.store_url],
        capture_output=True, text=True, env=environment(PSYLLM_CONSOLE_KEY=CONSOLE_KEY),
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    return added.stdout.split()[-1]


@pytest.fixture(scope="module")
def tokens(served):
    return {"ana": add_counsellor(served, "ana"), "bo": add_counsellor(served, "bo", "--admin")}


def conversation_link(page) -> str:
    link = page.locator("#conversation-link")
    link.wait_for()
    return link.inner_text()


def conversation_id(served, link: str) -> int:
    with create_engine(served.store_url).connect() as connection:
        token_hash = sha256(link.split("#", 1)[1])
        return connection.execute(select(conversations.c.id).where(conversations.c.token_sha256 == token_hash)).scalar()


def sign_in(browser, served, token):
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{served.url}/console")
    page.get_by_label("Your sign-in token").fill(token)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_text("Signed in as").wait_for()
    return page


def test_the_service_brings_its_store_to_the_newest_schema_when_it_starts(served):
    """Before anyone has run a psyllm command on the store (this module's first test)."""
    assert httpx.post(f"{served.url}/console/sign-in", json={"token": "not-a-token"}).status_code == 401
    with create_engine(served.store_url).connect() as connection:
        assert connection.execute(text("SELECT version_num FROM alembic_version")).scalar() == head()


def test_a_counsellor_answers_the_urgent_conversation_first_and_the_asker_sees_it(browser, served, tokens):
    asker = browser.new_context().new_page()
    asker.goto(served.url)
    ask(asker, "How can I stop worrying about money at night?")
    calm_link = conversation_link(asker)
    ask(asker, URGENT)
    urgent_link = conversation_link(asker)
    urgent_id = conversation_id(served, urgent_link)

    ana = sign_in(browser, served, tokens["ana"])
    unclaimed = ana.locator("#unclaimed button")
    unclaimed.first.wait_for()
    levels = [re.search(r"· (urgent|elevated|none)\b", label)[1] for label in unclaimed.all_inner_texts()]
    assert levels == sorted(levels, key=["urgent", "elevated", "none"].index)  # urgent first
    assert f"#{urgent_id} · urgent: explicit statement" in " ".join(unclaimed.all_inner_texts())

    ana.locator(f'#unclaimed button[data-id="{urgent_id}"]').click()
    ana.locator("#messages", has_text=URGENT).wait_for()
    ana.get_by_role("button", name="Claim").click()
    ana.get_by_text(f"Claimed #{urgent_id}.").wait_for()
    ana.get_by_role("button", name="Draft a reply").click()
    ana.get_by_text("Urgent: the draft is the crisis reply, not model text.").wait_for()
    draft = ana.get_by_label("Your reply").input_value()
    assert "Please reach a person now" in draft
    ana.get_by_label("Your reply").fill("I am a counsellor and I am here with you now. " + draft[:80])
    ana.get_by_role("button", name="Send to the person").click()
    ana.get_by_text(f"Sent to the person in #{urgent_id}.").wait_for()
    ana.locator(f'#answered button[data-id="{urgent_id}"]').wait_for()

    asker.goto(urgent_link)
    asker.get_by_text("A counsellor has replied.").wait_for()
    assert "I am a counsellor and I am here with you now." in asker.locator("#messages").inner_text()
    asker.goto(calm_link)
    asker.get_by_text("No counsellor has replied yet.").wait_for()
    asker.get_by_label("Add a message").fill(URGENT)  # a follow-up is screened like any message
    asker.get_by_role("button", name="Send").click()
    alert = asker.get_by_role("alert")
    alert.wait_for()
    assert "Please reach a person now" in alert.inner_text()

    bo = sign_in(browser, served, tokens["bo"])
    bo.locator(f'#answered button[data-id="{urgent_id}"]').click()
    bo.get_by_role("button", name="Claim").click()
    bo.get_by_text(f"Could not claim: conversation {urgent_id} is claimed by ana").wait_for()

    bo.get_by_role("button", name="Audit trail").click()
    bo.locator("#audit-rows tr").first.wait_for()
    rows = [row.split("\t") for row in bo.locator("#audit-rows tr").all_inner_texts()]
    assert ["ana", "send", str(urgent_id)] in [row[1:4] for row in rows]
    assert ana.locator("#show-audit").is_hidden()

    metrics = httpx.get(f"{served.url}/metrics").text
    assert re.search(r'psyllm_first_human_reply_seconds_count\{level="urgent"\} [1-9]', metrics)
    assert re.search(r'psyllm_conversations_waiting\{level="urgent"\} [1-9]', metrics)  # the calm one turned urgent


def test_a_model_draft_comes_with_articles_and_injected_html_stays_text(browser, served, tokens):
    asker = browser.new_context().new_page()
    asker.goto(served.url)
    ask(asker, INJECTED)
    injected_id = conversation_id(served, conversation_link(asker))

    ana = sign_in(browser, served, tokens["ana"])
    ana.locator(f'#unclaimed button[data-id="{injected_id}"]').click()
    ana.locator("#messages", has_text=INJECTED).wait_for()
    assert ana.locator("#messages img, #messages b").count() == 0 and ana.evaluate("window.pwned") is None
    ana.get_by_role("button", name="Claim").click()
    ana.get_by_role("button", name="Draft a reply").click()
    ana.get_by_text("Draft ready.").wait_for(timeout=60_000)
    assert ana.get_by_label("Your reply").input_value().strip()  # the model's text, to edit
    assert ana.locator("#articles a").count() >= 1
    assert ana.locator("#articles a").first.get_attribute("href").startswith("http")


def test_the_console_refuses_without_a_session_or_with_a_forged_csrf_token(served, tokens):
    url = served.url
    assert httpx.get(f"{url}/console/api/queue").status_code == 401
    assert httpx.post(f"{url}/console/sign-in", json={"token": "not-a-token"}).status_code == 401
    with httpx.Client(base_url=url) as counsellor:
        signed_in = counsellor.post("/console/sign-in", json={"token": tokens["ana"]})
        cookie = signed_in.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie and "path=/console" in cookie
        csrf = signed_in.json()["csrf"]
        assert counsellor.get("/console/api/queue").status_code == 200
        forged = counsellor.post("/console/api/conversations/1/claim", json={}, headers={"X-CSRF-Token": "forged"})
        assert forged.status_code == 403 and "CSRF" in forged.json()["error"]
        missing = counsellor.post("/console/api/conversations/1/claim", json={})
        assert missing.status_code == 403
        as_form = counsellor.post("/console/api/conversations/1/claim", data={"a": "b"}, headers={"X-CSRF-Token": csrf})
        assert as_form.status_code == 400 and "JSON" in as_form.json()["error"]
        assert counsellor.get("/console/api/audit").status_code == 403  # ana is not an admin
        not_a_number = counsellor.get("/console/api/conversations/abc")
        assert not_a_number.status_code == 400 and "conversation_id" in not_a_number.json()["error"]
        assert counsellor.get(f"/console/api/conversations/{2**70}").status_code == 404
        assert counsellor.post("/console/api/sign-out", json={}, headers={"X-CSRF-Token": csrf}).status_code == 200
        counsellor.cookies.set("psyllm_console", signed_in.cookies["psyllm_console"], path="/console")
        assert counsellor.get("/console/api/queue").status_code == 401  # the session ended on the server
    assert httpx.post(f"{url}/conversation", json={"token": "nope"}).status_code == 404
    behind_tls = httpx.post(
        f"{url}/console/sign-in", json={"token": tokens["bo"]}, headers={"X-Forwarded-Proto": "https"}
    )
    assert "secure" in behind_tls.headers["set-cookie"].lower()
