"""Where a run's files go, checked before the run starts (so a bad path costs nothing).

Nothing here leaves a file behind: it creates directories, and proves a directory
writable by making and removing an empty file in it.
"""

from __future__ import annotations

import os
import tempfile
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
    try:  # the only sure test: make a file there (permissions, read-only mounts, quotas)
        with tempfile.NamedTemporaryFile(dir=path.parent, prefix=".mtls-matrix-probe-"):
            pass
    except OSError as exc:
        raise ValueError(f"cannot write in {path.parent} ({exc.strerror})") from None
    return path


def replace_keeping_mode(tmp: str | os.PathLike[str], path: str | os.PathLike[str]) -> None:
    """Rename ``tmp`` over ``path`` (atomic on one file system), with ``path``'s permission
    bits if it exists, else the usual ones for a new file (0666 less the umask).

    ``tempfile.mkstemp`` makes its files 0600; renamed as they are, a results file a user
    shares (0644) would silently become private to them after a rewrite.
    """
    try:
        mode = os.stat(path).st_mode & 0o7777
    except FileNotFoundError:
        mask = os.umask(0o022)  # reading the umask means setting it: put it straight back
        os.umask(mask)
        mode = 0o666 & ~mask
    os.chmod(tmp, mode)
    os.replace(tmp, path)
