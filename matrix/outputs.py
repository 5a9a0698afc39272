"""Where a run's files go, checked before the run starts (so a bad path costs nothing).

Nothing here writes a file: it creates directories and answers whether writing is safe.
"""

from __future__ import annotations

import os
from pathlib import Path


def check_results_path(value: str | os.PathLike[str]) -> Path:
    """The absolute results path, once it is known the file can be written there.

    Raises ValueError (one line) for a directory, a parent that is a file or cannot be
    created, or a place this process cannot write. Creates missing parent directories.
    """
    path = Path(value).expanduser().absolute()
    if path.is_dir() or str(value).endswith(os.sep):
        raise ValueError(f"{value} is a directory; give a file name such as {path}/results.json")
    if path.exists() and not os.access(path, os.W_OK):
        raise ValueError(f"{path} exists and is not writable")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise ValueError(f"{path.parent} is not a directory") from None
    except OSError as exc:
        raise ValueError(f"cannot create {path.parent}: {exc.strerror}") from None
    if not os.access(path.parent, os.W_OK | os.X_OK):
        raise ValueError(f"cannot write in {path.parent} (permission denied)")
    return path
