"""The vendored x509-limbo corpus: load it, check its schema, hand out cases.

The corpus is pinned data (``matrix/data/x509-limbo/limbo-clientauth.json``;
source, license and the one change made are in the NOTICE beside it). Its
schema is x509-limbo's ``limbo-schema.json``, version 1: ``{"version": 1,
"testcases": [...]}``. Anything else — a missing file, bad JSON, another
schema version, a case without a required field — is a ``CorpusError`` whose
message is one line naming the file and what is wrong.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 1
DEFAULT_CORPUS = (
    Path(__file__).resolve().parent.parent / "data" / "x509-limbo" / ("limbo-clientauth.json")
)
_REQUIRED = (
    "id",
    "features",
    "validation_kind",
    "trusted_certs",
    "untrusted_intermediates",
    "peer_certificate",
    "expected_result",
)
_RESULTS = ("SUCCESS", "FAILURE")
_KINDS = ("SERVER", "CLIENT")


class CorpusError(Exception):
    """The corpus file cannot be used; the message is one line."""


@dataclass(frozen=True)
class LimboCase:
    """One x509-limbo test case, with the fields this suite uses.

    PEM strings stay as given (``peer_certificate_key`` is None for the cases
    x509-limbo ships without a key). ``validation_time`` is aware UTC or None
    (None: "now"). ``expected_peer_name`` is ``(kind, value)`` with kind one of
    x509-limbo's ``DNS`` / ``IP`` / ``RFC822``, or None.
    """

    id: str
    features: tuple[str, ...]
    validation_kind: str
    trusted_certs: tuple[str, ...]
    untrusted_intermediates: tuple[str, ...]
    peer_certificate: str
    peer_certificate_key: str | None
    validation_time: dt.datetime | None
    expected_result: str
    expected_peer_name: tuple[str, str] | None
    extended_key_usage: tuple[str, ...]
    max_chain_depth: int | None
    crls: tuple[str, ...]

    @property
    def expects_success(self) -> bool:
        return self.expected_result == "SUCCESS"


def load_corpus(path: str | Path | None = None) -> list[LimboCase]:
    """Every case of the corpus at ``path`` (default: the vendored one), in file order.

    Raises ``CorpusError`` (one line) for an unreadable file, bad JSON, a schema
    version other than ``SCHEMA_VERSION`` or a malformed case.
    """
    path = Path(path) if path is not None else DEFAULT_CORPUS
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CorpusError(f"x509-limbo corpus not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise CorpusError(f"x509-limbo corpus unreadable: {path} ({exc})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CorpusError(
            f"x509-limbo corpus {path} is not JSON (line {exc.lineno}: {exc.msg})"
        ) from None
    if not isinstance(data, dict) or "testcases" not in data:
        raise CorpusError(f"x509-limbo corpus {path} has no 'testcases' (not a limbo file)")
    version = data.get("version")
    if version != SCHEMA_VERSION:
        raise CorpusError(
            f"x509-limbo corpus {path} has schema version {version!r}; "
            f"this suite reads version {SCHEMA_VERSION}"
        )
    raw = data["testcases"]
    if not isinstance(raw, list) or not raw:
        raise CorpusError(f"x509-limbo corpus {path}: 'testcases' is empty or not a list")
    cases = [_case(item, index, path) for index, item in enumerate(raw)]
    seen: set[str] = set()
    for case in cases:
        if case.id in seen:
            raise CorpusError(f"x509-limbo corpus {path}: case id {case.id!r} appears twice")
        seen.add(case.id)
    return cases


def _case(item: Any, index: int, path: Path) -> LimboCase:
    where = f"x509-limbo corpus {path}: test case #{index}"
    if not isinstance(item, dict):
        raise CorpusError(f"{where} is not an object")
    missing = [name for name in _REQUIRED if name not in item]
    if missing:
        raise CorpusError(f"{where} lacks {', '.join(missing)}")
    where = f"x509-limbo corpus {path}: case {item['id']!r}"
    if item["expected_result"] not in _RESULTS:
        raise CorpusError(
            f"{where}: expected_result {item['expected_result']!r} is not one of "
            f"{', '.join(_RESULTS)}"
        )
    if item["validation_kind"] not in _KINDS:
        raise CorpusError(
            f"{where}: validation_kind {item['validation_kind']!r} is not one of "
            f"{', '.join(_KINDS)}"
        )
    when = item.get("validation_time")
    try:
        validation_time = dt.datetime.fromisoformat(when) if when else None
    except (TypeError, ValueError):
        raise CorpusError(f"{where}: validation_time {when!r} is not an ISO 8601 time") from None
    if validation_time is not None and validation_time.tzinfo is None:
        validation_time = validation_time.replace(tzinfo=dt.timezone.utc)
    name = item.get("expected_peer_name")
    return LimboCase(
        id=item["id"],
        features=tuple(item["features"] or ()),
        validation_kind=item["validation_kind"],
        trusted_certs=tuple(item["trusted_certs"]),
        untrusted_intermediates=tuple(item["untrusted_intermediates"]),
        peer_certificate=item["peer_certificate"],
        peer_certificate_key=item.get("peer_certificate_key") or None,
        validation_time=validation_time,
        expected_result=item["expected_result"],
        expected_peer_name=(name["kind"], name["value"]) if name else None,
        extended_key_usage=tuple(item.get("extended_key_usage") or ()),
        max_chain_depth=item.get("max_chain_depth"),
        crls=tuple(item.get("crls") or ()),
    )
