"""Replacing a folder as a whole, so a reader or a rerun after a kill sees the old folder or the new one.

Models, checkpoints, the screener and exported registry versions are all folders of several
files; written in place, a kill mid-write would leave a folder that looks complete and is not.
"""

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def staged_folder(target: Path) -> Iterator[Path]:
    """An empty sibling folder to write into; when the block ends without an error it replaces `target`.

    An error leaves `target` untouched (the half-written sibling is cleared by the next attempt).
    """
    staging = target.with_name(f"{target.name}.partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    yield staging
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
