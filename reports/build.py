"""Writing the report files: the one place that touches the output directory."""

from __future__ import annotations

import os
from pathlib import Path

from .html_page import render_html
from .markdown import render_markdown
from .model import ReportError, Results

HTML_NAME = "matrix.html"
MARKDOWN_NAME = "summary.md"


def build(results: Results, out_dir: str | os.PathLike[str]) -> list[Path]:
    """Write matrix.html and summary.md into ``out_dir`` (created if needed); return the paths."""
    return write_pages(
        out_dir, {HTML_NAME: render_html(results), MARKDOWN_NAME: render_markdown(results)}
    )


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
