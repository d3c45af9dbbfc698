"""`psyllm fetch-data`: the public data sets the project reads, fetched once from their sources.

Runs never touch the network; `paths.shared_data` (`../shared/data`) is read as it is. A user
with a network runs this command once to get there the files the project reads (CounselChat,
the PsyQA example, CPsyExam's open questions, CPsyCoun), from each source repository at the
commit CI's copy was taken from, byte for byte: every file is checked against its pinned sha256
before it is put in place, so the benchmark's digests and the screener's labelled ids hold. A
file that is already there and matches is not fetched again; one that does not match is
reported and never written, and the files that did match are kept.

CPsyExam's answers ship as a zip in its repository, and CPsyCoun as one file per dialogue; they
are unpacked (CPsyExam) and packed into JSON Lines (CPsyCoun, one line per source file with its
path and git blob id) exactly as the shared copy was.
"""

import hashlib
import io
import json
import re
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from components.errors import PsyllmError
from components.jsonl import write_atomic
from components.lineage import file_digest

COUNSEL_CHAT = "https://raw.githubusercontent.com/nbertagnolli/counsel-chat/e202e19c5002482f4f6631af754c276dd9adf7f2"
PSYQA = "https://raw.githubusercontent.com/thu-coai/PsyQA/e224c7e518c98a0c3df11e2fc5e6698044d8e156"
CPSYEXAM = "https://raw.githubusercontent.com/CAS-SIAT-XinHai/CPsyExam/2cb3af80851659303020bb7480e662dddf806456"
CPSYCOUN_COMMIT = "1954f2e2d01d3b0f568e1673a525a6d3d9a34c03"
CPSYCOUN = f"https://github.com/CAS-SIAT-XinHai/CPsyCoun/archive/{CPSYCOUN_COMMIT}.zip"
TIMEOUT_S = 120
# Where each file the project reads lies under `paths.shared_data`; readers name them from here.
COUNSELCHAT_FILE = "counsel-chat/20200325_counsel_chat.csv"
PSYQA_FILE = "psyqa/PsyQA_example.json"
CPSYCOUND_FILE = "cpsycoun/CPsyCounD.jsonl"
CPSYCOUNE_FILE = "cpsycoun/CPsyCounE.jsonl"


def _as_is(name: str) -> Callable[[bytes], dict[str, bytes]]:
    return lambda downloaded: {name: downloaded}


def _cpsyexam_answers(downloaded: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(downloaded)) as archive:
        return {
            f"cpsyexam/qa/{split}/cpsyexam_qa.json": archive.read(f"cpsyexam_qa/{split}/cpsyexam_qa.json")
            for split in ("train", "dev", "test")
        }


def _git_blob_sha1(content: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


def _json_lines(records: list[dict]) -> bytes:
    return "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records).encode("utf-8")


def _cpsycoun(downloaded: bytes) -> dict[str, bytes]:
    """The repository archive's dialogues and evaluation cases, packed one source file per line."""
    root = f"CPsyCoun-{CPSYCOUN_COMMIT}/"
    dialogues, cases = [], []
    with zipfile.ZipFile(io.BytesIO(downloaded)) as archive:
        for name in archive.namelist():
            path = name.removeprefix(root)
            if match := re.fullmatch(r"CPsyCounD/Data/case_(\d+)\.txt", path):
                content = archive.read(name)
                dialogues.append((int(match[1]), path, content))
            elif match := re.fullmatch(r"CPsyCounE/([^/]+)/(\d+)\.json", path):
                cases.append((match[1], int(match[2]), path, archive.read(name)))
    return {
        CPSYCOUND_FILE: _json_lines(
            [
                {
                    "case_id": case,
                    "source_path": path,
                    "git_blob_sha1": _git_blob_sha1(content),
                    "text": content.decode(),
                }
                for case, path, content in sorted(dialogues)
            ]
        ),
        CPSYCOUNE_FILE: _json_lines(
            [
                {
                    "topic": topic,
                    "case_no": number,
                    "source_path": path,
                    "git_blob_sha1": _git_blob_sha1(content),
                    "utterances": json.loads(content),
                }
                for topic, number, path, content in sorted(cases)
            ]
        ),
    }


@dataclass(frozen=True)
class Download:
    """One thing to download, the files it becomes, and each file's pinned sha256."""

    url: str
    unpack: Callable[[bytes], dict[str, bytes]]
    sha256: dict[str, str]


DOWNLOADS: tuple[Download, ...] = (
    Download(
        f"{COUNSEL_CHAT}/data/20200325_counsel_chat.csv",
        _as_is(COUNSELCHAT_FILE),
        {COUNSELCHAT_FILE: "c36fbce1c12271a17f3f355f6aaeb0b04987b217b53b600c5677985f15c9f1a8"},
    ),
    Download(
        f"{PSYQA}/PsyQA_example.json",
        _as_is(PSYQA_FILE),
        {PSYQA_FILE: "af0e8322727f4ea1a6dd5aac9c116ea56c488a704e3065e1382138e89d8a6946"},
    ),
    Download(
        f"{CPSYEXAM}/evaluations/llmeval/cpsyexam/cpsyexam_qa.zip",
        _cpsyexam_answers,
        {
            "cpsyexam/qa/train/cpsyexam_qa.json": "859f74df4136d013ec1c8744d9f1a1503afba26dbff6157191c7586ecfc7dd26",
            "cpsyexam/qa/dev/cpsyexam_qa.json": "1a7a520dbd55770ed3c97a2fcae39a1d95d71af54b6ae0f4077aeb7919f4b3a4",
            "cpsyexam/qa/test/cpsyexam_qa.json": "39895433598f4ded4b01324db14d111c89692efb4d859e2b45ecc9425c4fbc89",
        },
    ),
    Download(
        CPSYCOUN,
        _cpsycoun,
        {
            CPSYCOUND_FILE: "0e3debb464b5d336ef89d6f30b79111e1035e2d4f9282e39b226fad147749466",
            CPSYCOUNE_FILE: "f6d2233b643b4a2f010e67fd6443b25e5bc27a87a20b88c001c024d2423189ba",
        },
    ),
)


@dataclass(frozen=True)
class Fetched:
    """What one `fetch` did, by file: already there, fetched now, or refused (with why)."""

    present: list[str]
    fetched: list[str]
    refused: dict[str, str]


def _sha256(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def _matches(path: Path, sha256: str) -> bool:
    return path.is_file() and file_digest(path) == sha256


def mirrored(url: str, mirror: str | None) -> str:
    """`url` as served by `mirror` (a base URL holding `<host>/<path>`), or itself without one."""
    return url if mirror is None else mirror.rstrip("/") + "/" + url.removeprefix("https://")


def _download(url: str) -> bytes:
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_S) as response:
            return response.read()
    except (urllib.error.URLError, TimeoutError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise PsyllmError(f"could not fetch {url}: {reason} (nothing was written for it)") from error


def fetch(destination: Path, mirror: str | None = None) -> Fetched:
    """Fetch every public file missing from `destination` (or not matching its pin), checked by sha256."""
    present, fetched, refused = [], [], {}
    destination.mkdir(parents=True, exist_ok=True)
    for download in DOWNLOADS:
        wanted = {name: sha for name, sha in download.sha256.items() if not _matches(destination / name, sha)}
        present += [name for name in download.sha256 if name not in wanted]
        if not wanted:
            continue
        url = mirrored(download.url, mirror)
        try:
            files = download.unpack(_download(url))
        except (zipfile.BadZipFile, KeyError, ValueError) as error:
            raise PsyllmError(f"{url}: not the expected archive ({error}); nothing was written for it") from error
        for name, sha256 in wanted.items():
            content = files.get(name, b"")
            if (got := _sha256(content)) != sha256:
                refused[name] = f"sha256 {got[:12]}… from {url}, pinned {sha256[:12]}…"
                continue
            write_atomic(destination / name, content)
            fetched.append(name)
    return Fetched(present, fetched, refused)
