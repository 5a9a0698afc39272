"""The replay corpus as data: loading and checking ``corpus.json``.

Shape (x509-limbo's idea, one record per case, the harness separate)::

    {"version": 1, "entries": [{
        "id": "gunicorn-3306",                    # unique, used on the command line
        "project": "gunicorn", "report": "https://github.com/...",
        "summary": "one line: what the bug does",
        "target": "gunicorn",                     # a compat target (harness/targets)
        "package": "gunicorn",                    # the distribution the releases are of
        "affected": "22.0.0", "fixed": "23.0.0",  # releases on the registry
        "fixed_source": "where the fixed release is stated (changelog URL and entry)",
        "cases": ["builtin-required-..."],        # matrix case ids that show it, or []
        "battery": ["rst-after-accept"],          # resilience kinds that show it, or []
        "shows": {"kind": "survival", "severity": "availability"},  # or {"stall": ...}
        "profile": "standard"                     # the cases' profile (default standard)
    }]}

On the affected release at least one listed case must fail with a problem of
``shows.kind`` (and ``shows.severity`` when given) -- or, for ``"kind": "unsupported"``,
be unsupported because the release cannot express it (a missing option) -- or a listed
battery kind must end with ``shows.stall`` (``bounded``, ``unbounded``, ``dead``, or
``any`` of them) or, for ``"tracebacks": "yes"``, make the server print a traceback; on
the fixed release every listed case must pass and every listed kind must end with no
stall and no traceback.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

CORPUS = "corpus.json"
STALLS = ("bounded", "unbounded", "dead", "any")  # any: any of the first three
_FIELDS = ("id", "project", "report", "summary", "target", "package", "affected", "fixed")
_ID = re.compile(r"^[a-z0-9][a-z0-9._-]*$")


class CorpusError(Exception):
    """The corpus file is malformed; the message is one line naming the entry."""


@dataclass(frozen=True)
class Entry:
    id: str
    project: str
    report: str
    summary: str
    target: str
    package: str
    affected: str
    fixed: str
    fixed_source: str
    cases: tuple[str, ...]
    battery: tuple[str, ...]
    shows: dict[str, str]
    profile: str = "standard"  # the matrix profile the cases belong to


def load_corpus(path: Path | None = None) -> list[Entry]:
    """Every entry of ``path`` (default: the corpus shipped in this package), checked."""
    if path is None:
        text = resources.files(__package__).joinpath(CORPUS).read_text(encoding="utf-8")
        where = CORPUS
    else:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise CorpusError(f"{path}: cannot read ({exc.strerror})") from None
        where = str(path)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CorpusError(f"{where}: not JSON ({exc})") from None
    entries = [_entry(raw, where, index) for index, raw in enumerate(data.get("entries", []))]
    seen: set[str] = set()
    for entry in entries:
        if entry.id in seen:
            raise CorpusError(f"{where}: entry {entry.id!r} twice")
        seen.add(entry.id)
    return entries


def _entry(raw: Any, where: str, index: int) -> Entry:
    name = raw.get("id", f"#{index}") if isinstance(raw, dict) else f"#{index}"
    at = f"{where}: entry {name}"
    if not isinstance(raw, dict):
        raise CorpusError(f"{at}: not an object")
    missing = [f for f in _FIELDS if not isinstance(raw.get(f), str) or not raw[f]]
    if missing:
        raise CorpusError(f"{at}: missing or empty {', '.join(missing)}")
    if not _ID.match(raw["id"]):
        raise CorpusError(f"{at}: id must be lower-case letters, digits, '.', '_' or '-'")
    cases, battery = raw.get("cases", []), raw.get("battery", [])
    if not cases and not battery:
        raise CorpusError(f"{at}: names no case and no battery kind")
    shows = raw.get("shows")
    if not isinstance(shows, dict) or not {"kind", "stall", "tracebacks"} & set(shows):
        raise CorpusError(f"{at}: 'shows' needs a problem 'kind', a 'stall' or 'tracebacks'")
    if "stall" in shows and shows["stall"] not in STALLS:
        raise CorpusError(f"{at}: shows.stall must be one of {', '.join(STALLS)}")
    return Entry(
        **{f: raw[f] for f in _FIELDS},
        fixed_source=str(raw.get("fixed_source", "")),
        cases=tuple(cases),
        battery=tuple(battery),
        shows={str(k): str(v) for k, v in shows.items()},
        profile=str(raw.get("profile", "standard")),
    )
