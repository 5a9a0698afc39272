"""Progress of a long command, for a person at a terminal: done of total, failures so far,
time elapsed and an estimate of the time left.

Drawn with rich's progress display on standard error, and only when standard error is a
terminal and the command was not asked to be quiet: CI logs and redirected output stay
exactly as they were, and nothing of it ever reaches a results file or standard output.
Lines a command prints meanwhile go above the display (rich redirects them).
"""

from __future__ import annotations

import sys
from types import TracebackType
from typing import IO

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


class CommandProgress:
    """``with CommandProgress(total, "compat") as p: ... p.advance(failed=True)``.

    ``total``: the number of steps (cases, columns, entries); ``quiet``: never draw;
    ``file``: where to draw (default standard error), drawn only if it is a terminal
    unless ``force`` (tests).
    """

    def __init__(
        self,
        total: int,
        description: str,
        *,
        quiet: bool = False,
        file: IO[str] | None = None,
        force: bool = False,
    ) -> None:
        stream = file if file is not None else sys.stderr
        self.enabled = not quiet and (force or _is_terminal(stream))
        self.failures = 0
        self._progress: Progress | None = None
        if self.enabled:
            console = Console(file=stream, force_terminal=force or None)
            self._progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[failures]} failing"),
                TimeElapsedColumn(),
                TextColumn("left"),
                TimeRemainingColumn(),
                console=console,
                transient=True,
            )
            self._task = self._progress.add_task(description, total=total, failures=0)

    def __enter__(self) -> CommandProgress:
        if self._progress is not None:
            self._progress.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._progress is not None:
            self._progress.stop()

    def advance(self, steps: int = 1, *, failed: bool = False) -> None:
        """``steps`` more done; ``failed``: one of them failed (counted once)."""
        self.failures += bool(failed)
        if self._progress is not None:
            self._progress.update(self._task, advance=steps, failures=self.failures)


def _is_terminal(stream: IO[str]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
