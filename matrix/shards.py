"""Shards of a run and their merge: one matrix split over machines, read back as one run.

``--shard K/N`` (pytest plugin, ``mtls-matrix run``) keeps the K-th of N parts of the
profile's cases. The partition is deterministic (a function of the case list alone) and
keeps every server configuration whole, so no server is started in two shards; it is
balanced greedily by case count (largest configuration first, onto the lightest shard,
ties to the lowest shard). ``merge`` reads the shards' results files back into one: the
same cases, verdicts, problems and details as an unsharded run, with ``run.shards``
listing what was merged.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

_SHARD = re.compile(r"^(\d+)/(\d+)$")


class ShardError(ValueError):
    """A bad ``K/N`` or results that cannot be merged; the message is one line."""


def parse_shard(text: str) -> tuple[int, int]:
    """``(K, N)`` from ``"K/N"`` with 1 <= K <= N; ShardError otherwise."""
    match = _SHARD.match(text.strip())
    if not match:
        raise ShardError(f"--shard {text!r}: expected K/N, for example 1/4")
    k, n = int(match.group(1)), int(match.group(2))
    if not 1 <= k <= n:
        raise ShardError(f"--shard {text!r}: K must be between 1 and N")
    return k, n


def group_of(case: Any) -> str:
    """The server configuration a case runs on (its id when it has none)."""
    config = getattr(case, "config", None)
    return getattr(config, "key", None) or case.id


def shard(cases: Sequence[Any], k: int, n: int) -> list[Any]:
    """The cases of shard ``k`` of ``n``, in their original order."""
    groups: dict[str, list[Any]] = {}
    for case in cases:
        groups.setdefault(group_of(case), []).append(case)
    loads = [0] * n
    owner: dict[str, int] = {}
    for key in sorted(groups, key=lambda g: (-len(groups[g]), g)):
        lightest = min(range(n), key=lambda i: (loads[i], i))
        owner[key] = lightest
        loads[lightest] += len(groups[key])
    return [c for c in cases if owner[group_of(c)] == k - 1]


def merge(paths: Sequence[Path]) -> dict[str, Any]:
    """One results document from shards' results files (ShardError on a mismatch)."""
    if not paths:
        raise ShardError("no results files to merge")
    docs = []
    for path in paths:
        try:
            docs.append(json.loads(Path(path).read_text(encoding="utf-8")))
        except (OSError, ValueError) as exc:
            raise ShardError(f"{path}: not a readable results file ({exc})") from None
    first = docs[0]
    for path, doc in zip(paths, docs, strict=True):
        if not isinstance(doc, dict) or not isinstance(doc.get("run"), dict):
            raise ShardError(f"{path}: not a results file (no 'run' object)")
        for key in ("schema", "target", "profile"):
            if doc["run"].get(key, doc.get(key)) != first["run"].get(key, first.get(key)):
                raise ShardError(f"{path}: another {key} than {paths[0]}")
    seen: dict[str, str] = {}
    cases: list[dict[str, Any]] = []
    for path, doc in zip(paths, docs, strict=True):
        for case in doc.get("cases", []):
            if case["id"] in seen:
                raise ShardError(f"{path}: case {case['id']} is also in {seen[case['id']]}")
            seen[case["id"]] = str(path)
            cases.append(case)
    run = dict(first["run"])
    run.pop("shard", None)
    run["shards"] = [
        {"file": str(p), "shard": d["run"].get("shard"), "cases": len(d.get("cases", []))}
        for p, d in zip(paths, docs, strict=True)
    ]
    run["duration_s"] = round(sum(d["run"].get("duration_s") or 0 for d in docs), 3)
    if any(d["run"].get("complete") is False for d in docs):
        run["complete"] = False
    merged = dict(first)
    merged["run"], merged["cases"] = run, cases
    return merged
