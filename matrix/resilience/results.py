"""``run.resilience`` into a results file: read it, merge the block in, write atomically."""

from __future__ import annotations

import contextlib
import json
import os
import stat
import tempfile
from pathlib import Path
from typing import Any

from matrix.outputs import replace_keeping_mode

from .common import UsageError


def read_results(path: Path) -> dict[str, Any] | None:
    """The results file's data, or None when there is none yet."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UsageError(f"{path}: not a readable results file ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("run", {}), dict):
        raise UsageError(f"{path}: not a results file (no 'run' object)")
    return data


def file_mode(path: Path) -> int:
    """The permission bits ``path`` has, or a new file would get (0o666 less the umask)."""
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        umask = os.umask(0)  # read it: os has no other portable way
        os.umask(umask)
        return 0o666 & ~umask


def merge_into(path: Path, data: dict[str, Any] | None, target: str, block: dict) -> None:
    """Set ``run.resilience`` (keeping the rest of the file and its mode), atomically.

    The temporary file (``mkstemp``: mode 0600) gets the results file's mode before it
    replaces it, so a rewrite never narrows who may read the results (issue 18).
    """
    data = data if data is not None else {"run": {"target": target}}
    data.setdefault("run", {})["resilience"] = block
    text = json.dumps(data, indent=1) + "\n"
    mode = file_mode(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        replace_keeping_mode(tmp, path)  # mkstemp's 0600 must not stick (issue 18)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
