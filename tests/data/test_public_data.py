"""`psyllm fetch-data` against a loopback mirror of the sources, built from the shared copy.

The mirror serves each source's download as GitHub would (raw files, CPsyExam's zip, CPsyCoun's
repository archive with one file per dialogue), rebuilt from ../shared/data. CPsyCounE's original
JSON files cannot be rebuilt byte for byte (their formatting is not kept), so that file is the
one whose content differs from its pin: it must be refused, and everything else kept.
"""

import functools
import hashlib
import json
import threading
import zipfile
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from components.errors import PsyllmError
from components.public_data import CPSYCOUN, CPSYCOUN_COMMIT, DOWNLOADS, fetch
from tests.conftest import SHARED_DATA, free_port
from tests.pipeline.project import BIN, run

pytestmark = pytest.mark.skipif(not SHARED_DATA.is_dir(), reason=f"shared data set not present: {SHARED_DATA}")
EVALUATION_CASES = "cpsycoun/CPsyCounE.jsonl"


def _mirror_path(mirror: Path, url: str) -> Path:
    path = mirror / url.removeprefix("https://")
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def _build_mirror(mirror: Path) -> None:
    for download in DOWNLOADS:
        names = list(download.sha256)
        target = _mirror_path(mirror, download.url)
        if download.url == CPSYCOUN:
            root = f"CPsyCoun-{CPSYCOUN_COMMIT}"
            with zipfile.ZipFile(target, "w") as archive:
                for line in (SHARED_DATA / "cpsycoun/CPsyCounD.jsonl").read_text(encoding="utf-8").splitlines():
                    record = json.loads(line)
                    archive.writestr(f"{root}/{record['source_path']}", record["text"].encode("utf-8"))
                for line in (SHARED_DATA / EVALUATION_CASES).read_text(encoding="utf-8").splitlines():
                    record = json.loads(line)
                    archive.writestr(f"{root}/{record['source_path']}", json.dumps(record["utterances"]))
        elif len(names) > 1:  # CPsyExam's answers, zipped as in its repository
            with zipfile.ZipFile(target, "w") as archive:
                for name in names:
                    archive.write(SHARED_DATA / name, name.replace("cpsyexam/qa/", "cpsyexam_qa/"))
        else:
            target.write_bytes((SHARED_DATA / names[0]).read_bytes())


class _CountingHandler(SimpleHTTPRequestHandler):
    requested: list[str]

    def do_GET(self) -> None:
        self.requested.append(self.path)
        super().do_GET()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def mirror(tmp_path_factory):
    """The mirror on loopback: its base URL and the paths requested so far."""
    folder = tmp_path_factory.mktemp("mirror")
    _build_mirror(folder)
    requested: list[str] = []
    handler = type("Handler", (_CountingHandler,), {"requested": requested})
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), functools.partial(handler, directory=str(folder)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", requested
    server.shutdown()


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_fetch_data_rebuilds_the_shared_files_byte_for_byte_and_refuses_a_differing_one(tmp_path, mirror):
    base_url, requested = mirror
    destination = tmp_path / "data"
    fetched = run(Path.cwd(), str(BIN / "psyllm"), "fetch-data", "--dest", str(destination), "--mirror", base_url)
    output = fetched.stdout + fetched.stderr
    assert fetched.returncode == 2 and "Traceback" not in output, output
    assert EVALUATION_CASES in output and "differs from its pin" in output
    pinned = {name: sha for download in DOWNLOADS for name, sha in download.sha256.items()}
    for name, sha256 in pinned.items():
        if name == EVALUATION_CASES:
            assert not (destination / name).exists()
        else:
            assert _sha256(destination / name) == sha256 == _sha256(SHARED_DATA / name), name

    requested.clear()
    again = fetch(destination, base_url)
    assert sorted(again.present) == sorted(set(pinned) - {EVALUATION_CASES}) and not again.fetched
    assert list(again.refused) == [EVALUATION_CASES]
    assert requested == ["/" + CPSYCOUN.removeprefix("https://")]  # only what was still missing


def test_an_unreachable_source_is_one_clear_error_and_writes_nothing(tmp_path):
    with pytest.raises(PsyllmError, match=r"could not fetch http://127\.0\.0\.1:.*nothing was written"):
        fetch(tmp_path / "data", f"http://127.0.0.1:{free_port()}")
    assert not any(path.is_file() for path in (tmp_path / "data").rglob("*"))
