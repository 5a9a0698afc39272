"""The matrix's vocabulary: dimension names, display order of their values, status symbols.

Known values keep a fixed, meaningful order (weakest policy first, the good credential before
the bad ones) so every report reads the same way; values a new target adds are not rejected
but appended alphabetically after the known ones.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

DIMENSIONS = ("adapter", "policy", "bind", "connect", "client", "server_cert")
STATUSES = ("pass", "fail", "skip")

KNOWN_ORDER: dict[str, tuple[str, ...]] = {
    "adapter": ("builtin", "pyopenssl"),
    "policy": ("ignore", "optional", "optional+host", "required", "required+host"),
    "bind": ("localhost", "127.0.0.1", "0.0.0.0"),
    "connect": ("localhost", "127.0.0.1"),
    "client": ("none", "localhost", "ip", "wildcard", "wrong-host", "wrong-ca", "expired"),
    "server_cert": ("server", "server-wrong-host", "server-wrong-ca"),
    "outcome": ("ok", "rejected", "server-cert-rejected", "error", "skipped"),
    "status": STATUSES,
}

# Symbols as well as colour, so the grid reads the same to colour-blind users and on paper.
DASH = "\u2013"  # an en dash: shown for "skipped" and for "no value"
STATUS_SYMBOL = {"pass": "\u2713", "fail": "\u2717", "skip": DASH}
SYMBOL = {**STATUS_SYMBOL, "unsupported": "\u2298"}  # a circled slash: "cannot do this"
STATE_WORD = {"pass": "pass", "fail": "fail", "unsupported": "unsupported", "skip": "skipped"}


class _HasDims(Protocol):
    def dim(self, name: str) -> str: ...


def value_key(dim: str, value: str) -> tuple[int, str]:
    known = KNOWN_ORDER.get(dim, ())
    if value in known:
        return (known.index(value), "")
    return (len(known), value)


def ordered(dim: str, values: Iterable[str]) -> list[str]:
    """Distinct values of one dimension in display order."""
    return sorted(set(values), key=lambda v: value_key(dim, v))


def case_sort_key(case: _HasDims) -> tuple[Any, ...]:
    """Grid reading order: adapter, policy, then the row dimensions."""
    dims = ("adapter", "policy", "server_cert", "client", "bind", "connect")
    return tuple(value_key(d, case.dim(d)) for d in dims)


def attr_name(dim: str) -> str:
    """HTML data-* and URL spelling of a dimension (``server_cert`` -> ``server-cert``)."""
    return dim.replace("_", "-")
