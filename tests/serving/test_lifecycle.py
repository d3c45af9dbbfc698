"""How `psyllm serve` fails safely: a hard kill leaves no worker behind, SIGTERM drains answers in
flight, and a lost database gets 503 until it is back while crisis help never waits on it.

Each test runs the real `psyllm serve` (BentoML's process manager and its worker) on loopback with
the smoke run's model and screener, in a session of its own, as a crash or an orchestrator sees it.
"""

import contextlib
import itertools
import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import psutil
import pytest

from components.serving.store import Store
from tests.conftest import PROJECT_ROOT, free_port
from tests.pipeline.project import BIN, kill_group
from tests.serving.servers import API_KEY, postgres_server, running, service_environment
from tests.serving.test_service import URGENT, WORRY

STREAMS = 24
SCORES = {"helpfulness": 4, "fluency": 4, "relevance": 4, "logic": 4}


class Server:
    def __init__(self, process: subprocess.Popen[str], url: str, log: Path) -> None:
        self.process, self.url, self.log = process, url, log

    def workers(self) -> list[psutil.Process]:
        return psutil.Process(self.process.pid).children(recursive=True)


@contextmanager
def psyllm_serve(smoke_project: Path, folder: Path, store_url: str | None = None) -> Iterator[Server]:
    port, log = free_port(), folder / "serve.log"
    env = service_environment(smoke_project, store_url or f"sqlite:///{folder / 'store.sqlite'}")
    command = [str(BIN / "psyllm"), "serve", "--model", env.pop("PSYLLM_MODEL"), "--port", str(port)]
    with running(PROJECT_ROOT, command, {**env, "BENTOML_HOME": str(folder / "bentoml")}, port, log) as started:
        yield Server(started.process, started.url, log)


def _gone(processes: list[psutil.Process]) -> bool:
    return not [p for p in processes if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]


def test_a_hard_killed_server_leaves_no_worker_answering(smoke_project, tmp_path):
    with psyllm_serve(smoke_project, tmp_path) as server:
        workers = server.workers()
        assert workers and all(os.getsid(worker.pid) != os.getsid(server.process.pid) for worker in workers)
        os.killpg(server.process.pid, signal.SIGKILL)  # the server's group, as a crash or an OOM kill does
        deadline = time.monotonic() + 20
        while not _gone(workers) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _gone(workers), f"workers outlived their server:\n{server.log.read_text()[-3000:]}"
        with pytest.raises(httpx.TransportError):
            httpx.get(f"{server.url}/readyz", timeout=3)
    assert "has gone; shutting down" in server.log.read_text()


def test_sigterm_lets_answers_in_flight_finish_then_exits(smoke_project, tmp_path):
    finished: dict[int, list[dict]] = {}
    started = threading.Semaphore(0)

    def ask(number: int) -> None:
        events = []
        payload = {"question": f"How can I sleep better before exam {number}?", "max_new_tokens": 256}
        with httpx.stream("POST", f"{server.url}/answer_stream", json=payload, timeout=120) as response:
            for line in response.iter_lines():
                events.append(json.loads(line))
                if len(events) == 1:
                    started.release()  # screened and queued: in flight
        finished[number] = events

    with psyllm_serve(smoke_project, tmp_path) as server:
        askers = [threading.Thread(target=ask, args=(number,)) for number in range(STREAMS)]
        for asker in askers:
            asker.start()
        for _ in askers:
            assert started.acquire(timeout=120)
        in_flight = STREAMS - len(finished)
        server.process.send_signal(signal.SIGTERM)
        try:  # a new request is refused: 503 once the drain began, or the connection is refused or reset
            readiness = httpx.get(f"{server.url}/readyz", timeout=10).status_code
        except httpx.TransportError:
            readiness = None
        for asker in askers:
            asker.join(timeout=120)
        assert server.process.wait(timeout=60) == 0
    assert in_flight >= 1, "every answer was done before SIGTERM; the test proved nothing"
    assert readiness in (503, None)  # not ready while draining
    assert sorted(finished) == list(range(STREAMS))
    assert all(events[0]["type"] == "screening" and events[-1]["type"] == "done" for events in finished.values())
    assert "Completed cleanup hook: close" in server.log.read_text()  # the store was closed


def test_a_lost_database_gets_503_until_it_is_back_and_crisis_help_never_waits_on_it(smoke_project, tmp_path):
    with postgres_server() as database:
        if database is None:
            pytest.skip("PostgreSQL is not installed (.ci/run installs Debian's postgresql)")
        with (
            psyllm_serve(smoke_project, tmp_path, database.url) as server,
            httpx.Client(base_url=server.url, timeout=60) as api,
        ):
            before = api.post("/answer", json={"question": WORRY, "max_new_tokens": 8}).json()["request_id"]
            database.stop()

            urgent = api.post("/answer", json={"question": URGENT})
            assert urgent.status_code == 200 and urgent.json()["screening"]["urgent"]
            assert urgent.json()["answer"].startswith("It sounds like you")
            assert "A counsellor has been told" not in urgent.json()["answer"]  # no case could be queued
            assert api.post("/screen", json={"text": URGENT}).json()["level"] == "urgent"
            assert api.post("/answer", json={"question": WORRY, "max_new_tokens": 8}).status_code == 200
            for refused in (
                api.post("/feedback", json={"request_id": before, **SCORES}),
                api.get("/cases", headers={"X-API-Key": API_KEY}),
            ):
                assert refused.status_code == 503 and refused.headers["retry-after"] == "5"
                assert refused.json() == {"error": "the store is unavailable; retry in 5 s"}
            assert api.get("/readyz").status_code == 503

            database.start()
            deadline = time.monotonic() + 30
            while api.get("/readyz").status_code != 200:
                assert time.monotonic() < deadline, "the service did not recover once the database was back"
                time.sleep(0.5)
            assert api.post("/feedback", json={"request_id": before, **SCORES}).status_code == 200
            cases = api.get("/cases", headers={"X-API-Key": API_KEY}).json()["cases"]
            assert cases == []  # the urgent message while the database was down opened none, and says so
    log = server.log.read_text()
    assert "URGENT case NOT queued: the store is unavailable" in log
    assert "Traceback" not in log and " 500 " not in log and "status=500" not in log


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_every_acknowledged_rating_survives_a_kill_of_the_whole_tree_mid_stream(smoke_project, tmp_path, backend):
    writers, wanted = 8, 120
    with contextlib.ExitStack() as stack:
        if backend == "sqlite":
            store_url = f"sqlite:///{tmp_path / 'store.sqlite'}"
        else:
            database = stack.enter_context(postgres_server())
            if database is None:
                pytest.skip("PostgreSQL is not installed (.ci/run installs Debian's postgresql)")
            store_url = database.url
        server = stack.enter_context(psyllm_serve(smoke_project, tmp_path, store_url))
        answered = [
            httpx.post(f"{server.url}/answer", json={"question": WORRY, "max_new_tokens": 1}, timeout=60).json()
            for _ in range(4)
        ]
        acknowledged: list[tuple[str, str]] = []
        enough = threading.Event()

        def rate(writer: int) -> None:
            with httpx.Client(base_url=server.url, timeout=30) as api:
                for number in itertools.count():
                    request_id, rater = answered[number % len(answered)]["request_id"], f"w{writer}-{number}"
                    try:
                        reply = api.post("/feedback", json={"request_id": request_id, "rater_id": rater, **SCORES})
                    except httpx.TransportError:
                        return  # the server was killed
                    if reply.status_code == 200:
                        acknowledged.append((request_id, rater))
                    if len(acknowledged) >= wanted:
                        enough.set()

        threads = [threading.Thread(target=rate, args=(writer,), daemon=True) for writer in range(writers)]
        for thread in threads:
            thread.start()
        assert enough.wait(timeout=120), f"only {len(acknowledged)} ratings acknowledged"
        kill_group(server.process)  # SIGKILL: the server, its group and its workers, mid-stream
        for thread in threads:
            thread.join(timeout=30)
        stored = {(row["request_id"], row["rater_id"]) for row in Store(store_url, store_text=False).ratings()}
    assert len(acknowledged) >= wanted and set(acknowledged) <= stored
