"""How cases are laid out in two grids, shared by the HTML and the Markdown report.

The client-auth grid holds cases run with the primary server certificate; every other case is
about the client's check of a bad server certificate and goes to the server-certificate grid.
Rows cover every dimension the columns (adapter x policy) do not, so no two cases compete for
a cell; if a results file still holds two cases with the same dimensions, the second gets a
row of its own instead of silently hiding the first.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from .model import Case, Results
from .order import value_key

PRIMARY_SERVER_CERT = "server"


@dataclass(frozen=True)
class Column:
    adapter: str
    policy: str


@dataclass(frozen=True)
class Row:
    values: dict[str, str]
    labels: tuple[str, ...]
    first_of_group: bool


@dataclass(frozen=True)
class Grid:
    key: str
    title: str
    row_headers: tuple[str, ...]
    rows: tuple[Row, ...]
    columns: tuple[Column, ...]
    cells: dict[tuple[int, int], Case]

    def cell(self, row: int, column: int) -> Case | None:
        return self.cells.get((row, column))

    @property
    def edges(self) -> set[int]:
        """Column indexes that start an adapter group, for the thick separating border."""
        cols = self.columns
        return {i for i, c in enumerate(cols) if i == 0 or cols[i - 1].adapter != c.adapter}

    @property
    def adapters(self) -> list[str]:
        """Adapters in column order, for the grouped header and per-adapter tables."""
        seen: dict[str, None] = {}
        for col in self.columns:
            seen.setdefault(col.adapter, None)
        return list(seen)


def primary_server_cert(cases: Iterable[Case]) -> str:
    """The good server certificate: ``server`` when present, else the most used one."""
    tally = Counter(c.server_cert for c in cases)
    if PRIMARY_SERVER_CERT in tally or not tally:
        return PRIMARY_SERVER_CERT
    return max(tally, key=lambda v: (tally[v], v))


# The connection-state profile (docs/state.md): each case names its grid, and the grid's
# own dimensions (sni, host, carry, session...) make the rows.
STATE_PROFILE = "state"
_NOT_ROWS = {"grid", "profile", "trust"}


def build_grids(results: Results) -> list[Grid]:
    """The client-auth grid, then the server-certificate grid; empty grids are left out.
    Cases of the connection-state profile get a grid per state grid, after those."""
    state = [c for c in results.cases if c.dim("profile") == STATE_PROFILE]
    others = [c for c in results.cases if c.dim("profile") != STATE_PROFILE]
    return [*_standard_grids(others), *state_grids(state)]


def state_grids(cases: list[Case]) -> list[Grid]:
    """One grid per state grid: columns adapter x policy (the first server's default
    host), rows every other dimension that varies in it, then the client credential."""
    by_grid: dict[str, list[Case]] = {}
    for case in cases:
        by_grid.setdefault(case.dim("grid"), []).append(case)
    grids = []
    for name, group in by_grid.items():
        dims = dict.fromkeys(d for c in group for d in c.extra_dims if d not in _NOT_ROWS)
        rows = (*(d for d in dims if len({c.dim(d) for c in group}) > 1), "client")
        grids.append(
            _layout(
                f"state-{name}",
                f"Connection state: {name} (docs/state.md)",
                group,
                row_dims=rows,
                row_headers=rows,
                labels=lambda v, rows=rows: tuple(v[d] for d in rows),
            )
        )
    return grids


def _standard_grids(cases: list[Case]) -> list[Grid]:
    primary = primary_server_cert(cases)
    client_cases = [c for c in cases if c.server_cert == primary]
    server_cases = [c for c in cases if c.server_cert != primary]
    grids = []
    if client_cases:
        grids.append(
            _layout(
                "client",
                "Client certificate checks",
                client_cases,
                row_dims=("client", "bind", "connect"),
                row_headers=("client credential", "bind → connect"),
                labels=lambda v: (v["client"], f"{v['bind']} → {v['connect']}"),
            )
        )
    if server_cases:
        title = "Server certificate checks (the client must refuse a bad server certificate)"
        clients = {c.client for c in server_cases}
        if len(clients) == 1:  # the usual case: say it once instead of in a column
            title += f"; client credential {clients.pop()}"
            headers: tuple[str, ...] = ("server certificate", "bind → connect")
        else:
            headers = ("server certificate", "bind → connect", "client credential")
        grids.append(
            _layout(
                "server-cert",
                title,
                server_cases,
                row_dims=("server_cert", "connect", "bind", "client"),
                row_headers=headers,
                labels=lambda v: (
                    v["server_cert"],
                    f"{v['bind']} → {v['connect']}",
                    v["client"],
                )[: len(headers)],
            )
        )
    return grids


def _layout(
    key: str,
    title: str,
    cases: list[Case],
    row_dims: tuple[str, ...],
    row_headers: tuple[str, ...],
    labels: Callable[[dict[str, str]], tuple[str, ...]],
) -> Grid:
    columns = sorted(
        {Column(c.adapter, c.policy) for c in cases},
        key=lambda col: (value_key("adapter", col.adapter), value_key("policy", col.policy)),
    )
    col_index = {col: i for i, col in enumerate(columns)}
    slots: dict[tuple[tuple[str, ...], int], dict[int, Case]] = {}
    for case in cases:
        base = tuple(case.dim(d) for d in row_dims)
        ci = col_index[Column(case.adapter, case.policy)]
        dup = 0
        while ci in slots.get((base, dup), {}):
            dup += 1
        slots.setdefault((base, dup), {})[ci] = case

    def sort_key(slot: tuple[tuple[str, ...], int]) -> tuple[object, ...]:
        base, dup = slot
        return (*(value_key(d, v) for d, v in zip(row_dims, base, strict=True)), dup)

    rows: list[Row] = []
    cells: dict[tuple[int, int], Case] = {}
    previous_group: str | None = None
    for ri, slot in enumerate(sorted(slots, key=sort_key)):
        base, dup = slot
        values = dict(zip(row_dims, base, strict=True))
        row_labels = labels(values)
        if dup:
            row_labels = (*row_labels[:-1], f"{row_labels[-1]} (duplicate {dup + 1})")
        rows.append(Row(values, row_labels, first_of_group=base[0] != previous_group))
        previous_group = base[0]
        for ci, case in slots[slot].items():
            cells[(ri, ci)] = case
    return Grid(key, title, row_headers, tuple(rows), tuple(columns), cells)
