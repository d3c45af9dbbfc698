"""Reading and atomically writing JSON Lines, the exchange format between steps.

Writes go to a temporary file in the target folder and are renamed into place, so a
crash or a bad record never leaves a half-written output behind for the next step.
"""

import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from components.errors import PsyllmError


def read_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield (line number, object) for each non-blank line; errors name the file and line."""
    try:
        handle = path.open(encoding="utf-8")
    except FileNotFoundError as missing:
        raise PsyllmError(f"{path}: file not found") from missing
    with handle:
        line_number = 0
        try:
            for line_number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as bad:
                    raise PsyllmError(f"{path}:{line_number}: not valid JSON ({bad.msg})") from bad
                if not isinstance(record, dict):
                    raise PsyllmError(f"{path}:{line_number}: expected a JSON object per line")
                yield line_number, record
        except UnicodeDecodeError as bad:
            raise PsyllmError(
                f"{path}:{line_number + 1}: not valid UTF-8 (byte {bad.start} of that line's chunk)"
            ) from bad


def read_json(path: Path) -> Any:  # noqa: ANN401 - any JSON document
    """A whole JSON document; errors name the file and, for bad syntax, the line."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as missing:
        raise PsyllmError(f"{path}: file not found") from missing
    except UnicodeDecodeError as bad:
        raise PsyllmError(f"{path}: not valid UTF-8 near byte {bad.start}") from bad
    except json.JSONDecodeError as bad:
        raise PsyllmError(f"{path}:{bad.lineno}: not valid JSON ({bad.msg})") from bad


def write_atomic(path: Path, content: str | bytes) -> None:
    """Write `content` (text as UTF-8) to `path` so that readers see either the old file or the whole new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(content.encode("utf-8") if isinstance(content, str) else content)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def write_jsonl(path: Path, records: Iterable[dict[str, Any]]) -> int:
    """Atomically write one JSON object per line; returns the number of records."""
    lines = [json.dumps(record, ensure_ascii=False) for record in records]
    write_atomic(path, "".join(line + "\n" for line in lines))
    return len(lines)


def write_json(path: Path, value: Any) -> None:  # noqa: ANN401 - any JSON value
    """Atomically write a pretty-printed JSON document (reports, stats)."""
    write_atomic(path, json.dumps(value, ensure_ascii=False, indent=2, sort_keys=True) + "\n")
