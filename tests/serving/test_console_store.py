"""The console's store, on SQLite and a real PostgreSQL: sealed text, the queue, claims, the audit, retention."""

import json
import signal
import subprocess
import sys
import time
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text, update

from components.console.accounts import Accounts, Counsellor
from components.console.conversations import Conversations, NotYours, UnknownConversation, UnsafeDraft, purge_text
from components.console.keys import ConsoleKeys, new_key
from components.console.schema import console_sessions, messages, utc_now
from components.errors import PsyllmError
from components.feedback_export import DRAFTS_FILE, PAIRS_FILE, write_feedback
from components.screening import Screening
from components.serving.campaign_store import CampaignStore
from components.serving.migrate import MIGRATIONS, head, migrate
from components.serving.store import Store
from tests.conftest import PROJECT_ROOT
from tests.pipeline.project import BIN, environment
from tests.serving.conftest import emptied
from tests.serving.servers import CONSOLE_KEY

KEYS = ConsoleKeys(CONSOLE_KEY)
ANA, BO = Counsellor("ana", "counsellor"), Counsellor("bo", "admin")
SECRET = "my name is Mei Lin, mei.lin@example.com, and I keep thinking about the bridge"


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.sqlite'}"
    return emptied(request.getfixturevalue("postgres_url"))  # each test starts empty, migrations and all


@pytest.fixture
def console(store_url):
    engine = Store(store_url, store_text=False).engine  # opening the store migrates it
    accounts = Accounts(engine, KEYS)
    conversations = Conversations(engine, KEYS)
    for counsellor in (ANA, BO):
        accounts.add(counsellor.name, counsellor.role)
    return conversations, accounts


ALL_SEEN = 2**31 - 1  # a message id above any there is
CALM = Screening(False, "none", (), ())
URGENT = Screening(True, "urgent", ("suicide",), ())


def reply(conversations: Conversations, opened: int, counsellor: Counsellor, text: str,
          drafted: tuple[str, str] | None = None) -> tuple[str, float | None]:  # fmt: skip
    """Send as the console does: from a draft it kept (text and source), having seen every message so far."""
    draft_id = conversations.save_draft(opened, counsellor, *drafted) if drafted else None
    return conversations.send(opened, counsellor, text, draft_id, ALL_SEEN)


def test_migrations_bring_an_empty_store_to_the_newest_revision_once(store_url):
    engine = Store(store_url, store_text=False).engine
    assert migrate(engine) == head() == migrate(engine)  # a second start changes nothing
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM conversations")).scalar() == 0


def test_a_store_at_the_first_revision_upgrades_in_place_keeping_its_conversations(store_url):
    from alembic import command
    from alembic.config import Config

    engine = create_engine(store_url)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0001")
        connection.execute(text(
            "INSERT INTO conversations (token_sha256, created_at, level, categories, language, awaiting_since) "
            "VALUES ('t', '2026-12-01 10:00:00', 'urgent', 'suicide', 'en', '2026-12-01 10:00:00')"
        ))  # fmt: skip
    engine = Store(store_url, store_text=False).engine  # opening the store applies the newer revisions
    assert migrate(engine) == head()
    queued = Conversations(engine, KEYS).queue()["unclaimed"]
    assert [(item["level"], item["basis"]) for item in queued] == [("urgent", None)]


def test_the_queue_puts_urgent_first_then_the_longest_waiting(console):
    conversations, _ = console
    calm, calm_token = conversations.open("How do I sleep better?", "none", (), "en", "r1")
    worried, _ = conversations.open("I feel hopeless lately", "elevated", ("hopelessness",), "en", "r2")
    urgent, _ = conversations.open("I have the pills ready tonight", "urgent", ("suicide",), "en", "r3")
    later = utc_now() + timedelta(minutes=30)
    queue = conversations.queue(now=later)
    assert [item["id"] for item in queue["unclaimed"]] == [urgent, worried, calm]
    assert all(1790 <= item["waiting_s"] <= 1810 for item in queue["unclaimed"])
    assert conversations.waiting_by_level() == {"none": 1, "elevated": 1, "urgent": 1}

    conversations.claim(urgent, ANA)
    reply(conversations, urgent, ANA, "I am here with you.")
    conversations.claim(calm, BO)
    queue = conversations.queue()
    assert [item["id"] for item in queue["unclaimed"]] == [worried]
    assert [(item["id"], item["claimed_by"]) for item in queue["claimed"]] == [(calm, "bo")]
    assert [item["id"] for item in queue["answered"]] == [urgent]

    conversations.follow_up(calm_token, "Also, I wake at 4 every day", CALM, None)
    assert conversations.queue()["claimed"][0]["id"] == calm  # still bo's, waiting again


def test_an_explicit_statement_comes_before_the_classifiers_urgent_flags(console):
    conversations, _ = console
    flagged, flagged_token = conversations.open("My kids fight all day", "urgent", (), "en", "r1", "classifier")
    stated, _ = conversations.open("I will take the pills tonight", "urgent", (), "en", "r2", "statement")
    queue = conversations.queue(now=utc_now() + timedelta(minutes=5))
    expected = [(stated, "statement"), (flagged, "classifier")]  # the flag waited longer, the statement goes first
    assert [(item["id"], item["basis"]) for item in queue["unclaimed"]] == expected

    conversations.follow_up(flagged_token, "She said she'd stab me tonight", replace(URGENT, basis="statement"), None)
    conversations.follow_up(flagged_token, "Any advice?", replace(URGENT, basis="classifier"), None)  # never weaker
    assert conversations.conversation(flagged, ANA)["basis"] == "statement"
    assert [item["basis"] for item in conversations.queue()["unclaimed"]] == ["statement", "statement"]


def test_only_the_claimer_replies_and_a_second_counsellor_cannot_claim(console):
    conversations, _ = console
    opened, token = conversations.open("I cannot stop crying at work", "none", (), "en", "r1")
    with pytest.raises(NotYours, match="not claimed: claim it before replying"):
        reply(conversations, opened, ANA, "Hello")
    conversations.claim(opened, ANA)
    conversations.claim(opened, ANA)  # claiming your own again is fine
    with pytest.raises(NotYours, match="claimed by ana"):
        conversations.claim(opened, BO)
    with pytest.raises(NotYours, match="claimed by ana"):
        reply(conversations, opened, BO, "Hello")
    with pytest.raises(UnknownConversation):
        conversations.claim(opened + 100, ANA)
    level, waited_s = reply(conversations, opened, ANA, "That sounds exhausting.", ("model draft", "model"))
    assert level == "none" and waited_s is not None and waited_s >= 0
    assert reply(conversations, opened, ANA, "One more thought.")[1] is None  # only the first is timed
    seen = conversations.for_asker(token)
    assert seen["human_replied"] is True
    assert [message["author"] for message in seen["messages"]] == ["asker", "counsellor", "counsellor"]
    assert "counsellor" not in seen["messages"][1]  # the asker is not told which counsellor


def test_every_action_is_audited_with_what_was_sent_and_its_draft(console):
    conversations, _ = console
    opened, _ = conversations.open("Exams make me panic", "none", (), "en", "r1")
    conversations.claim(opened, ANA)
    conversations.conversation(opened, ANA)
    reply(conversations, opened, ANA, "Let us try a breathing exercise.", ("Model: breathe slowly.", "model"))
    conversations.release(opened, ANA)
    trail = conversations.audit_trail()
    assert [(row["counsellor"], row["action"], row["conversation_id"]) for row in reversed(trail)] == [
        ("ana", "claim", opened), ("ana", "read", opened), ("ana", "draft", opened), ("ana", "send", opened),
        ("ana", "release", opened),
    ]  # fmt: skip
    assert trail[1]["message_id"] == trail[2]["message_id"] + 1  # the send row points at the reply after its draft
    sent = next(m for m in conversations.conversation(opened, BO)["messages"] if m["id"] == trail[1]["message_id"])
    assert (sent["text"], sent["draft"], sent["draft_source"]) == (
        "Let us try a breathing exercise.", "Model: breathe slowly.", "model",
    )  # fmt: skip


def test_message_text_is_sealed_at_rest(console, store_url):
    conversations, _ = console
    opened, token = conversations.open(SECRET, "elevated", ("hopelessness",), "en", "r1")
    conversations.add_service_reply(opened, "Reply shown: talk to someone you trust")
    conversations.claim(opened, ANA)
    reply(conversations, opened, ANA, "Mei, I hear you about the bridge", ("Draft about the bridge", "model"))
    with create_engine(store_url).connect() as connection:
        stored = json.dumps([list(row) for row in connection.execute(text("SELECT * FROM messages"))], default=str)
    # Phrases with spaces: a three-letter name can turn up by chance in the base64 ciphertext; a space cannot.
    for fragment in ("Mei Lin", "Mei, I hear", "about the bridge", "example.com", "someone you trust"):
        assert fragment not in stored
    if store_url.startswith("sqlite"):
        files = [store_url.removeprefix("sqlite:///") + suffix for suffix in ("", "-wal")]
        raw = b"".join(Path(file).read_bytes() for file in files if Path(file).exists())
        assert b"about the bridge" not in raw and b"Mei, I hear" not in raw
    assert conversations.for_asker(token)["messages"][0]["text"] == SECRET  # the key opens it again
    with pytest.raises(PsyllmError, match="not the key it was sealed with"):
        Conversations(create_engine(store_url), ConsoleKeys(new_key())).for_asker(token)


def test_the_retention_purge_deletes_old_text_and_keeps_the_metadata(console, store_url):
    conversations, _ = console
    old, old_token = conversations.open("an old worry", "none", (), "en", "r1")
    conversations.claim(old, ANA)
    reply(conversations, old, ANA, "an old reply", ("an old draft", "model"))
    _, recent_token = conversations.open("a new worry", "none", (), "en", "r2")
    engine = create_engine(store_url)
    with engine.begin() as connection:
        connection.execute(
            update(messages).where(messages.c.conversation_id == old).values(created_at=utc_now() - timedelta(days=40))
        )
    assert purge_text(engine, 30) == 3  # the question, the draft and the reply
    assert purge_text(engine, 30) == 0
    kept = conversations.for_asker(old_token)
    assert [m["text"] for m in kept["messages"]] == [None, None] and kept["human_replied"] is True
    assert conversations.for_asker(recent_token)["messages"][0]["text"] == "a new worry"
    assert [row["action"] for row in conversations.audit_trail()] == ["send", "draft", "claim"]  # the audit stays


def test_sessions_are_signed_hashed_and_end_at_sign_out(console, store_url):
    _, accounts = console
    token = accounts.add("cai")
    with pytest.raises(PsyllmError, match="counsellor 'cai' exists already"):
        accounts.add("cai")
    with create_engine(store_url).connect() as connection:
        stored = json.dumps([list(row) for row in connection.execute(text("SELECT * FROM counsellors"))], default=str)
    assert token not in stored
    cookie, who = accounts.sign_in(token)
    assert who == Counsellor("cai", "counsellor") and accounts.signed_in(cookie) == who
    session, _, signature = cookie.partition(".")
    assert accounts.signed_in(f"{session}.{signature[:-2]}xx") is None  # a forged signature
    assert accounts.signed_in(f"{session[:-2]}xx.{signature}") is None
    assert accounts.signed_in(None) is None
    csrf = accounts.csrf_token(cookie)
    assert accounts.csrf_valid(cookie, csrf)
    assert not accounts.csrf_valid(cookie, csrf[:-2] + "xx") and not accounts.csrf_valid(cookie, None)
    other_cookie, _ = accounts.sign_in(token)
    assert not accounts.csrf_valid(other_cookie, csrf)  # one session's token does not pass for another's
    with create_engine(store_url).begin() as connection:
        connection.execute(update(console_sessions).values(expires_at=utc_now() - timedelta(minutes=1)))
    assert accounts.signed_in(cookie) is None  # expired
    fresh, _ = accounts.sign_in(token)
    accounts.sign_out(fresh)
    assert accounts.signed_in(fresh) is None
    with pytest.raises(PsyllmError, match="belongs to no counsellor"):
        accounts.sign_in("not-a-token")


def test_counsellor_answers_are_exported_scrubbed_and_never_from_urgent_conversations(console, tmp_path):
    conversations, _ = console
    calm, _ = conversations.open("My boss emails me at night, call me on 555-123-4567", "none", (), "en", "r1")
    urgent, _ = conversations.open("I will end it tonight", "urgent", ("suicide",), "en", "r2")
    conversations.claim(calm, ANA)
    reply(conversations, calm, ANA, "Set a boundary: reply in the morning.", ("a model draft", "model"))
    conversations.claim(urgent, ANA)
    reply(conversations, urgent, ANA, "Please call 988 now.", ("the crisis reply", "crisis_reply"))
    store = Store(f"sqlite:///{tmp_path / 'campaigns.sqlite'}", store_text=False)
    manifest = write_feedback(CampaignStore(store.engine), tmp_path / "feedback", conversations.sent_answers())
    pairs = [json.loads(line) for line in (tmp_path / "feedback" / PAIRS_FILE).read_text().splitlines()]
    drafts = [json.loads(line) for line in (tmp_path / "feedback" / DRAFTS_FILE).read_text().splitlines()]
    assert manifest["counsellor_answers"] == 1 and manifest["not_exported"]["urgent_conversation"] == 1
    assert [pair["answer"] for pair in pairs] == ["Set a boundary: reply in the morning."]
    assert "555-123-4567" not in pairs[0]["question"] and pairs[0]["source"] == "counsellor"
    assert drafts == [{"question_id": pairs[0]["question_id"], "question": pairs[0]["question"],
                       "draft": "a model draft", "draft_source": "model", "answer": pairs[0]["answer"]}]  # fmt: skip


def test_the_cli_adds_counsellors_and_purges_with_clear_errors(tmp_path):
    url = f"sqlite:///{tmp_path / 'store.sqlite'}"

    def psyllm(*args: str, key: str = CONSOLE_KEY) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(BIN / "psyllm"), *args], capture_output=True, text=True,
                              env=environment(PSYLLM_CONSOLE_KEY=key), cwd=PROJECT_ROOT)  # fmt: skip

    added = psyllm("counsellor", "add", "dana", "--admin", "--store", url)
    assert added.returncode == 0, added.stderr
    token = added.stdout.split()[-1]
    assert Accounts(create_engine(url), KEYS).sign_in(token)[1] == Counsellor("dana", "admin")
    off = psyllm("counsellor", "add", "eve", "--store", url, key="")
    assert off.returncode == 2 and "set PSYLLM_CONSOLE_KEY" in off.stderr and "Traceback" not in off.stderr
    purged = psyllm("conversations", "purge", "--older-than", "30", "--store", url, key="")  # needs no key
    assert purged.returncode == 0 and "emptied the text of 0 messages older than 30 days" in purged.stdout


WRITER = """
import sys
from components.console.accounts import Accounts, Counsellor
from components.console.conversations import Conversations
from components.console.keys import ConsoleKeys
from components.serving.store import Store
engine = Store(sys.argv[1], store_text=False).engine
keys = ConsoleKeys(sys.argv[2])
conversations, ana = Conversations(engine, keys), Counsellor("ana", "counsellor")
for n in range(100000):
    opened, _ = conversations.open(f"message {n}", "none", (), "en", f"r{n}")
    conversations.claim(opened, ana)
    conversations.send(opened, ana, f"reply {n}", None, 2**31 - 1)
    print(opened, flush=True)  # acknowledged: the message and its reply
"""


def test_every_acknowledged_message_and_reply_survives_kill_9(console, store_url):
    writer = subprocess.Popen([sys.executable, "-c", WRITER, store_url, CONSOLE_KEY], cwd=PROJECT_ROOT,
                              stdout=subprocess.PIPE, text=True)  # fmt: skip
    acknowledged = [int(writer.stdout.readline())]  # the writer's start-up (imports) is not timed
    deadline = time.monotonic() + 60  # under a loaded CI machine PostgreSQL acknowledged 33 in 60 s
    while len(acknowledged) < 100 and time.monotonic() < deadline:
        acknowledged.append(int(writer.stdout.readline()))
    writer.send_signal(signal.SIGKILL)  # mid-stream: it would write 100,000
    writer.wait()
    assert len(acknowledged) >= 10, "too few acknowledged writes to test durability"
    conversations, _ = console
    for opened in acknowledged:
        texts = [message["text"] for message in conversations.conversation(opened, BO)["messages"]]
        assert texts[0].startswith("message ") and texts[1].startswith("reply ")


def test_a_follow_up_escalates_the_conversation_and_model_drafts_are_refused_once_urgent(console):
    conversations, _ = console
    opened, token = conversations.open("Work has been hard", "none", (), "en", "r1")
    conversations.claim(opened, ANA)
    model_draft = conversations.save_draft(opened, ANA, "Try a short walk at lunch.", "model")
    conversations.follow_up(token, "I have the pills ready tonight", URGENT, "Please reach a person now.")
    shown = conversations.conversation(opened, ANA)
    assert (shown["level"], shown["categories"]) == ("urgent", ["suicide"])
    assert [m["author"] for m in shown["messages"]] == ["asker", "asker", "service"]  # drafts are not shown
    assert conversations.follow_up(token, "thanks", CALM, None) == opened
    assert conversations.conversation(opened, ANA)["level"] == "urgent"  # a calm follow-up never lowers it
    seen = max(message["id"] for message in conversations.conversation(opened, ANA)["messages"])
    with pytest.raises(UnsafeDraft, match="urgent now, and this reply started from model text"):
        conversations.send(opened, ANA, "Try a short walk at lunch.", model_draft, seen)
    other, _ = conversations.open("Another person", "none", (), "en", "r2")
    foreign = conversations.save_draft(other, ANA, "Not for this conversation", "model")
    with pytest.raises(UnsafeDraft, match="was not made for conversation"):
        conversations.send(opened, ANA, "Hello", foreign, seen)
    crisis = conversations.save_draft(opened, ANA, "Please call 988 now.", "crisis_reply")
    conversations.send(opened, ANA, "I am here. Please call 988 now.", crisis, seen)
    assert conversations.waiting_by_level()["urgent"] == 0


def test_a_follow_up_the_counsellor_had_not_seen_keeps_the_conversation_waiting(console):
    conversations, _ = console
    opened, token = conversations.open("I argue with my sister", "none", (), "en", "r1")
    conversations.claim(opened, ANA)
    seen = max(message["id"] for message in conversations.conversation(opened, ANA)["messages"])
    conversations.follow_up(token, "She moved out today", CALM, None)  # while ana was typing
    conversations.send(opened, ANA, "That sounds painful.", None, seen)
    assert [item["id"] for item in conversations.queue()["claimed"]] == [opened]  # still waiting, still ana's
    assert conversations.for_asker(token)["human_replied"] is True


def test_claims_are_released_by_their_holder_or_an_admin_only(console):
    conversations, accounts = console
    accounts.add("cai")
    cai = Counsellor("cai", "counsellor")
    opened, _ = conversations.open("I feel stuck", "none", (), "en", "r1")
    conversations.claim(opened, ANA)
    with pytest.raises(NotYours, match="an admin can release it"):
        conversations.release(opened, cai)
    conversations.release(opened, BO)  # bo is an admin: ana is away
    conversations.claim(opened, cai)
    conversations.release(opened, cai)
    assert conversations.queue()["unclaimed"][0]["claimed_by"] is None
    with pytest.raises(UnknownConversation):
        conversations.claim(2**70, ANA)  # never reaches the database


def test_a_new_or_revoked_token_ends_the_counsellors_sessions(console):
    _, accounts = console
    first = accounts.add("dee")
    cookie, _ = accounts.sign_in(first)
    second = accounts.replace_token("dee", issue=True)
    assert accounts.signed_in(cookie) is None
    with pytest.raises(PsyllmError, match="belongs to no counsellor"):
        accounts.sign_in(first)
    cookie, _ = accounts.sign_in(second)
    assert accounts.replace_token("dee", issue=False) is None
    assert accounts.signed_in(cookie) is None
    with pytest.raises(PsyllmError, match="belongs to no counsellor"):
        accounts.sign_in(second)
    with pytest.raises(PsyllmError, match="no counsellor 'nobody'"):
        accounts.replace_token("nobody", issue=True)
