"""``run.resilience`` into a results file: read it, merge the block in, write atomically."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

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


def merge_into(path: Path, data: dict[str, Any] | None, target: str, block: dict) -> None:
    """Set ``run.resilience`` (keeping the rest of the file), atomically."""
    data = data if data is not None else {"run": {"target": target}}
    data.setdefault("run", {})["resilience"] = block
    text = json.dumps(data, indent=1) + "\n"
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
