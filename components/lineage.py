"""Where a model came from: the code commit, the DVC hash of every data output, content digests.

A registered model version carries these as tags, so a user can go from a version back to the
exact data (`dvc.lock` hashes, retrievable with `dvc pull`), params and code (git commit).
"""

import hashlib
import subprocess
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from components.locations import DVC_LOCK_FILE


def file_digest(*paths: Path) -> str:
    """sha256 over the files' bytes, one after another, read in blocks (a model file can be GBs)."""
    digest = hashlib.sha256()
    for path in paths:
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def folder_digest(folder: Path) -> str:
    """sha256 over every file's relative path and bytes: changes exactly when the folder's contents do."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(path.relative_to(folder).as_posix().encode())
        digest.update(bytes.fromhex(file_digest(path)))
    return digest.hexdigest()


def input_digests(paths: list[Path]) -> dict[str, str]:
    """Each file's or folder's digest by its path as written, or "missing".

    For inputs that may lie outside the project (../shared/data) or appear later (data/feedback):
    a DVC dependency cannot follow them, since a missing one fails the whole graph, so the
    always-run `config` stage records their digests in a file a stage depends on instead.
    """
    return {
        str(path): folder_digest(path) if path.is_dir() else file_digest(path) if path.is_file() else "missing"
        for path in paths
    }


def git_commit(root: Path) -> str:
    """HEAD's commit, suffixed `-dirty` when tracked files differ from it; `unknown` outside git."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=root, capture_output=True, text=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{commit}-dirty" if dirty else commit


def read_lock(lock_file: Path = DVC_LOCK_FILE) -> dict[str, Any]:
    """dvc.lock's stages (each with its deps', params' and outs' recorded values); empty before a run."""
    if not lock_file.is_file():
        return {}
    lock = YAML(typ="safe").load(lock_file.read_text(encoding="utf-8")) or {}
    return lock.get("stages") or {}


def data_hashes(lock_file: Path = DVC_LOCK_FILE) -> dict[str, str]:
    """Every stage output's DVC hash from dvc.lock, keyed by path (empty before the first run)."""
    hashes: dict[str, str] = {}
    for stage in read_lock(lock_file).values():
        for out in stage.get("outs") or []:
            value = out.get("md5") or out.get("hash") or ""
            hashes[out["path"]] = str(value)
    return dict(sorted(hashes.items()))
