"""The ratings and cases store, on SQLite (the default) and on a real PostgreSQL: one contract for both."""

import signal
import subprocess
import sys
import time

import pytest

from components.errors import PsyllmError
from components.serving.store import AlreadyRated, IssuedAnswer, Store, UnknownRequest, resolve_store_url
from tests.conftest import PROJECT_ROOT
from tests.serving.conftest import emptied

SCORES = {"helpfulness": 4, "fluency": 5, "relevance": 3, "logic": 4}


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.sqlite'}"
    return emptied(request.getfixturevalue("postgres_url"))  # each test starts empty


def issued(request_id: str, level: str = "none", question: str = "How do I sleep better?") -> IssuedAnswer:
    return IssuedAnswer(request_id, "psyllm/1", level, ("suicide",) if level == "urgent" else (), question)


def test_a_store_made_before_alembic_kept_its_tables_upgrades_in_place_and_lists_statements_first(store_url):
    from datetime import UTC, datetime

    from sqlalchemy import create_engine, insert, text

    from components.serving.store import answers, cases, metadata

    engine = create_engine(store_url)
    metadata.create_all(engine)  # as the service made its tables before they were migrated
    with engine.begin() as connection:
        connection.execute(text("ALTER TABLE cases DROP COLUMN basis"))
        now = datetime.now(UTC)
        connection.execute(insert(answers).values(
            request_id="e" * 32, created_at=now, model_version="psyllm/1", level="urgent", categories="", withheld=False
        ))  # fmt: skip
        connection.execute(insert(cases).values(request_id="e" * 32, created_at=now, categories="", status="open"))
    engine.dispose()
    store = Store(store_url, store_text=False)
    for request_id, basis in (("f" * 32, "classifier"), ("g" * 32, "statement")):
        store.record_answer(IssuedAnswer(request_id, "psyllm/1", "urgent", (), None, basis), urgent=True)
    assert [(case["request_id"][0], case["basis"]) for case in store.cases()] == [
        ("g", "statement"), ("f", "classifier"), ("e", None)
    ]  # fmt: skip


def test_ratings_are_accepted_once_per_rater_and_only_for_issued_answers(store_url):
    store = Store(store_url, store_text=False)
    store.record_answer(issued("a" * 32), urgent=False)
    store.add_rating("a" * 32, SCORES, "rater-1", "clear and kind")
    store.add_rating("a" * 32, SCORES, "rater-2", None)
    with pytest.raises(AlreadyRated, match="rater-1"):
        store.add_rating("a" * 32, SCORES, "rater-1", None)
    with pytest.raises(UnknownRequest, match="not issued"):
        store.add_rating("b" * 32, SCORES, "rater-1", None)
    rows = store.ratings()
    assert [(row["rater_id"], row["helpfulness"], row["model_version"]) for row in rows] == [
        ("rater-1", 4, "psyllm/1"),
        ("rater-2", 4, "psyllm/1"),
    ]
    assert rows[0]["comment"] is None  # text storage is off: the comment is not kept


def test_urgent_answers_open_a_case_that_a_counsellor_resolves(store_url):
    store = Store(store_url, store_text=True)
    store.record_answer(issued("c" * 32, "urgent", "I want to end it tonight"), urgent=True)
    store.record_answer(issued("d" * 32), urgent=False)
    [case] = store.cases("open")
    assert case["categories"] == "suicide" and case["question"] == "I want to end it tonight"
    assert case["created_at"].endswith("+00:00")
    resolved = store.resolve_case(case["id"], "dr-lee")
    assert resolved["status"] == "resolved" and resolved["resolved_by"] == "dr-lee"
    assert store.cases("open") == [] and len(store.cases()) == 1
    with pytest.raises(UnknownRequest):
        store.resolve_case(999, "dr-lee")


def test_without_text_storage_no_question_is_kept(store_url):
    store = Store(store_url, store_text=False)
    store.record_answer(issued("e" * 32, "urgent", "private words"), urgent=True)
    assert store.cases()[0]["question"] is None


def test_bad_store_urls_fail_clearly(tmp_path):
    with pytest.raises(PsyllmError, match="not a database URL"):
        resolve_store_url("not a url", tmp_path)
    with pytest.raises(PsyllmError, match="cannot open the store"):
        Store("postgresql+psycopg://nobody@127.0.0.1:1/none", store_text=False)
    assert resolve_store_url("sqlite:///.state/s.sqlite", tmp_path) == f"sqlite:///{tmp_path / '.state/s.sqlite'}"


WRITER = """
import sys
from components.serving.store import IssuedAnswer, Store
store = Store(sys.argv[1], store_text=False)
store.record_answer(IssuedAnswer("f" * 32, "psyllm/1", "none", (), None), urgent=False)
for rater in range(100000):
    store.add_rating("f" * 32, {"helpfulness": 1, "fluency": 2, "relevance": 3, "logic": 4}, f"r{rater}", None)
    print(rater, flush=True)  # acknowledged
"""


def test_every_acknowledged_rating_survives_kill_9(tmp_path):
    url = f"sqlite:///{tmp_path / 'store.sqlite'}"
    writer = subprocess.Popen([sys.executable, "-c", WRITER, url], cwd=PROJECT_ROOT, stdout=subprocess.PIPE, text=True)
    acknowledged = []
    deadline = time.monotonic() + 60
    while len(acknowledged) < 200 and time.monotonic() < deadline:
        acknowledged.append(int(writer.stdout.readline()))
    writer.send_signal(signal.SIGKILL)
    writer.wait()
    assert len(acknowledged) >= 200, "the writer should have been killed mid-stream"
    stored = {row["rater_id"] for row in Store(url, store_text=False).ratings()}
    assert {f"r{rater}" for rater in acknowledged} <= stored
