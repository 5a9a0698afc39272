"""Writing the report files: the one place that touches the output directory."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from .compat import TargetRun, compare
from .markdown import render_compat_markdown, render_markdown
from .model import ReportError, Results
from .render import render_compat_html, render_html


def build(results: Results, out_dir: str | os.PathLike[str]) -> list[Path]:
    """Write matrix.html and summary.md into ``out_dir`` (created if needed); return the paths."""
    pages = {"matrix.html": render_html(results), "summary.md": render_markdown(results)}
    return write_pages(out_dir, pages)


def build_compat(runs: Sequence[TargetRun], out_dir: str | os.PathLike[str]) -> list[Path]:
    """Write compat.html and compat.md into ``out_dir`` (created if needed); return the paths."""
    comparison = compare(runs)
    pages = {
        "compat.html": render_compat_html(comparison),
        "compat.md": render_compat_markdown(comparison),
    }
    return write_pages(out_dir, pages)


def write_pages(out_dir: str | os.PathLike[str], pages: dict[str, str]) -> list[Path]:
    """Write each named text into ``out_dir`` (created if needed); errors are ReportErrors."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ReportError(f"{out}: exists and is not a directory")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ReportError(f"{out}: cannot create output directory ({exc.strerror})") from None
    written = []
    for name, text in pages.items():
        path = out / name
        try:
            path.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise ReportError(f"{path}: cannot write ({exc.strerror})") from None
        written.append(path)
    return written
