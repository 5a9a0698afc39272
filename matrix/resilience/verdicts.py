"""Verdicts (SPEC section 7's limits) and which attacker counts a kind runs at."""

from __future__ import annotations

import statistics
from collections.abc import Sequence

from harness import hostile

from .common import ADDED_MS, BOUNDED, MAX_ATTACKERS, NONE, SLOW_MS, UNBOUNDED, round_to
from .good import Sample


def classify(
    alone_median_ms: float,
    during: Sequence[Sample],
    cap_s: float,
    *,
    added_limit_ms: float = ADDED_MS,
    slow_ms: float = SLOW_MS,
) -> tuple[str, float | None, float | None]:
    """(stall, bound_s, added_ms) from the baseline and the good requests during an attack.

    ``unbounded``: a request timed out at (or beyond) the cap. ``bounded``: the median
    rose by more than ``added_limit_ms``, a request took over ``slow_ms``, or one failed
    or timed out before the cap; ``bound_s`` is the longest request. ``none`` otherwise.
    ``added_ms`` is None without samples.
    """
    if not during:
        return NONE, None, None
    added = round_to(statistics.median(s.ms for s in during) - alone_median_ms)
    if any(s.timed_out and s.ms >= cap_s * 1000 for s in during):
        return UNBOUNDED, None, added
    longest = max(s.ms for s in during)
    if added > added_limit_ms or longest > slow_ms or any(not s.ok for s in during):
        return BOUNDED, round_to(longest / 1000, 3), added
    return NONE, None, added


def attacker_counts(workers: int | None, most: int = MAX_ATTACKERS) -> tuple[int, ...]:
    """1, the target's workers + 1, and ``most``: each once, in order."""
    counts = {1, most} | ({workers + 1} if workers else set())
    return tuple(sorted(c for c in counts if 1 <= c <= most))


def runs_at(kind: hostile.Kind, count: int, counts: Sequence[int]) -> bool:
    """Whether the battery runs ``kind`` with ``count`` attackers (``kind.counts``)."""
    return kind.counts == hostile.EVERY or count == counts[0]
