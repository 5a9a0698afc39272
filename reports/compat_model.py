"""Several targets' runs side by side: per-case states, findings and the comparison table.

The renderers (compat_page for HTML, compat for Markdown) only format what is decided here, so
the page and the Markdown summary always agree on what counts as a divergence and how failures
are grouped.

Every case is in one of four states. ``unsupported`` is a skip whose detail (or reason) starts
``unsupported by <target>:``: the target cannot express that configuration, a fact about the
target that is shown but is not a failure. Any other skip (an unreachable bind/connect pair)
says nothing about the target. A failing case has one kind of problem, most severe first: the
server did not start, the server died or stalled (``server_alive`` false, whatever the outcome),
the outcome differs from the spec's, the outcome is right but the application saw the wrong
environ, anything else. Kinds come from the data only (outcomes, ``server_alive`` and the
runner's detail wording), never from a server's name.

Besides the cases, a results file may carry ``run.resilience.idle_client`` (written by
``python -m matrix.stall``): how long a good request took alone and with idle TCP clients
connected. ``IdleClient`` reads it leniently (older files have none; a malformed block is shown
as not measured, never an error), and a stalled target gets a finding line of its own.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from . import fmt
from .grid import primary_server_cert
from .model import Case, Results
from .order import STATUS_SYMBOL, ordered, value_key

STATES = ("pass", "fail", "unsupported", "skip")
SYMBOL = {**STATUS_SYMBOL, "unsupported": "\u2298"}  # a circled slash: "cannot do this"
STATE_WORD = {"pass": "pass", "fail": "fail", "unsupported": "unsupported", "skip": "skipped"}
UNSUPPORTED_PREFIX = "unsupported by "

START, DIED, OUTCOME, ENVIRON, OTHER, UNSUPPORTED = (
    "start",
    "died",
    "outcome",
    "environ",
    "other",
    "unsupported",
)
KINDS = (START, DIED, OUTCOME, ENVIRON, OTHER, UNSUPPORTED)

CLIENT_SECTION, SERVER_SECTION = "client", "server-cert"
SECTION_TITLES = {
    CLIENT_SECTION: "Client certificate checks",
    SERVER_SECTION: "Server certificate checks (the client must refuse a bad server certificate)",
}
SUBJECT_DIM = {CLIENT_SECTION: "client", SERVER_SECTION: "server_cert"}

# Wording of the matrix runner (matrix/runner.py, matrix/servers.py) that tells a server that
# never started apart from one that stopped serving after a case.
_NOT_SERVING = "server not serving afterwards"
_NOT_STARTED = "could not start"
_ENV_PROBLEM = re.compile(r"(?P<key>[A-Za-z][\w.]*) is (?P<rest>.*)", re.DOTALL)
_ENV_EXPECTED = re.compile(r"(?P<got>.*), expected (?P<want>.*)", re.DOTALL)
_SHORT_VALUE = 20


@dataclass(frozen=True)
class TargetRun:
    """One target's results file, under the name its column and findings use."""

    name: str
    results: Results

    @property
    def cases(self) -> tuple[Case, ...]:
        return self.results.cases

    @property
    def adapters(self) -> list[str]:
        """The TLS stacks this target ran cases on: an adapter it cannot express (a server
        with one TLS stack, asked for the matrix's others) is not one of them."""
        used = [c.adapter for c in self.cases if c.status != "skip"]
        return ordered("adapter", used or (c.adapter for c in self.cases))

    @property
    def counts(self) -> dict[str, int]:
        """pass/fail/unsupported/skip totals, always with all four keys."""
        tally = Counter(state(c) for c in self.cases)
        return {s: tally.get(s, 0) for s in STATES}

    @property
    def server_versions(self) -> list[tuple[str, str]]:
        """Versions of the software under test: the runner records them as ``target:NAME``."""
        items = self.results.run.versions.items()
        return [(k.removeprefix("target:"), v) for k, v in items if k.startswith("target:")]

    @property
    def other_versions(self) -> list[tuple[str, str]]:
        """The rest (Python, OpenSSL, the harness's own libraries)."""
        items = self.results.run.versions.items()
        return [(k, v) for k, v in items if not k.startswith("target:")]

    @property
    def idle_client(self) -> IdleClient | None:
        """``run.resilience.idle_client``, or None when the file has no such block."""
        resilience = self.results.run.extra.get("resilience")
        if not isinstance(resilience, dict) or "idle_client" not in resilience:
            return None
        return IdleClient.from_json(resilience["idle_client"])


IDLE_TITLE = "One idle client delays a good one"


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _count_key(count: str) -> tuple[int, str]:
    return (int(count), count) if count.isdigit() else (1 << 30, count)


def _per_count(raw: object) -> tuple[tuple[str, float], ...]:
    """``{"1": 4.2, "4": 5016.0}`` as sorted pairs; entries that are not numbers are left out."""
    if not isinstance(raw, dict):
        return ()
    pairs = [(str(count), _number(ms)) for count, ms in raw.items()]
    return tuple(
        sorted(((c, v) for c, v in pairs if v is not None), key=lambda p: _count_key(p[0]))
    )


@dataclass(frozen=True)
class IdleClient:
    """One target's idle-client measurement: a good request alone, then with N idle clients.

    ``state`` is ``pass`` (no stall), ``fail`` (stalled), ``unsupported`` (the target cannot
    run the configuration measured) or ``skip`` (not measured: the server did not start, the
    good client was not served, or the block is malformed).
    """

    adapter: str = ""
    policy: str = ""
    baseline_ms: float | None = None
    with_idle_ms: tuple[tuple[str, float], ...] = ()
    added_ms: tuple[tuple[str, float], ...] = ()  # what idling added, per count (measured)
    timed_out: frozenset[str] = frozenset()
    after_ms: float | None = None
    stalled: bool | None = None
    threshold_ms: float | None = None
    timeout_s: float | None = None
    detail: str = ""
    problem: str = ""  # why it was not measured (error, unsupported or malformed)

    @classmethod
    def from_json(cls, raw: object) -> IdleClient:
        if not isinstance(raw, dict):
            return cls(problem="malformed run.resilience.idle_client (not an object)")
        figures = _per_count(raw.get("with_idle_ms"))
        timed_out = raw.get("timed_out")
        stalled = raw.get("stalled")
        baseline = _number(raw.get("baseline_ms"))
        problem = ""
        for key in ("unsupported", "error"):
            if isinstance(raw.get(key), str) and raw[key]:
                problem = f"unsupported: {raw[key]}" if key == "unsupported" else raw[key]
                break
        if not problem and (not isinstance(stalled, bool) or baseline is None or not figures):
            problem = "malformed run.resilience.idle_client (no verdict or figures)"
        return cls(
            adapter=str(raw.get("adapter") or ""),
            policy=str(raw.get("policy") or ""),
            baseline_ms=baseline,
            with_idle_ms=figures,
            added_ms=_per_count(raw.get("added_ms")),
            timed_out=frozenset(str(c) for c in timed_out)
            if isinstance(timed_out, list)
            else frozenset(),
            after_ms=_number(raw.get("after_ms")),
            stalled=stalled if isinstance(stalled, bool) and not problem else None,
            threshold_ms=_number(raw.get("threshold_ms")),
            timeout_s=_number(raw.get("timeout_s")),
            detail=raw["detail"] if isinstance(raw.get("detail"), str) else "",
            problem=problem,
        )

    @property
    def state(self) -> str:
        if self.stalled is None:
            return "unsupported" if self.problem.startswith("unsupported: ") else "skip"
        return "fail" if self.stalled else "pass"

    @property
    def added(self) -> tuple[tuple[str, float], ...]:
        """Per count, what the idle clients added: as measured (``added_ms``: paired with a
        request alone), or for files without it, the figure minus the baseline."""
        if self.added_ms:
            return self.added_ms
        if self.baseline_ms is None:
            return ()
        return tuple((count, ms - self.baseline_ms) for count, ms in self.with_idle_ms)

    @property
    def extra_ms(self) -> float | None:
        """The largest delay the idle clients added (never below 0)."""
        added = self.added
        return max(0.0, max(ms for _, ms in added)) if added else None

    def figure(self, count: str) -> str:
        """``4.8 ms``, or ``≥ 5000 ms`` for a request that hit the client's timeout."""
        ms = dict(self.with_idle_ms).get(count)
        if ms is None:
            return ""
        if count in self.timed_out:
            bound = self.timeout_s * 1000 if self.timeout_s else ms
            return f"\u2265 {ms_text(bound)}"
        return ms_text(ms)

    def _first_stall(self) -> tuple[str, float] | None:
        for count, ms in self.added:
            if count in self.timed_out or ms > (self.threshold_ms or 0):
                return count, ms
        return None

    @property
    def delay_text(self) -> str:
        """How much the first count that stalls adds: ``≥ 5000 ms`` or ``320 ms``."""
        first = self._first_stall()
        if first is not None:
            count, ms = first
            return self.figure(count) if count in self.timed_out else ms_text(ms)
        extra = self.extra_ms
        return ms_text(extra) if extra is not None else "?"

    @property
    def stalling_count(self) -> str:
        """The smallest number of idle clients that stalled the good one ("1" if unsure)."""
        first = self._first_stall()
        if first is not None:
            return first[0]
        return self.with_idle_ms[0][0] if self.with_idle_ms else "1"

    @property
    def text(self) -> str:
        """A cell's words: ``✓ no stall (+0 ms)``, ``✗ stalled ≥ 5000 ms``, ``- not measured``."""
        state = self.state
        if state == "pass":
            return f"{SYMBOL['pass']} no stall (+{ms_text(self.extra_ms or 0.0)})"
        if state == "fail":
            return f"{SYMBOL['fail']} stalled {self.delay_text}"
        if state == "unsupported":
            return f"{SYMBOL['unsupported']} unsupported"
        return f"{SYMBOL['skip']} not measured"

    @property
    def configuration(self) -> str:
        return ", ".join(p for p in (self.adapter, self.policy) if p)


def ms_text(value: float) -> str:
    """Milliseconds as people read them: one decimal under 10 ms, whole numbers above."""
    return f"{value:.1f} ms" if value < 10 else f"{value:.0f} ms"


@dataclass(frozen=True)
class StallFinding:
    """A target on which idle clients delay a good client beyond the bound."""

    target: str
    idle: IdleClient
    kind: str = "stall"

    @property
    def symbol(self) -> str:
        return SYMBOL["fail"]

    @property
    def text(self) -> str:
        count = self.idle.stalling_count
        who = "one idle client delays" if count == "1" else f"{count} idle clients delay"
        return f"{who} every other client by {self.idle.delay_text}"

    @property
    def scope(self) -> str:
        return f"on {self.idle.configuration}" if self.idle.configuration else ""

    @property
    def count_text(self) -> str:
        bound = self.idle.threshold_ms
        limit = f"bound {ms_text(bound)}; " if bound is not None else ""
        base = self.idle.baseline_ms
        return f"{limit}alone {ms_text(base)}" if base is not None else limit.rstrip("; ")

    @property
    def sentence(self) -> str:
        scope = f" {self.scope}" if self.scope else ""
        return f"{self.text}{scope} ({self.count_text})"

    @property
    def line(self) -> str:
        return f"{self.target}: {self.text}"


def unsupported_reason(case: Case) -> str:
    """Why the target cannot run ``case`` (text after ``unsupported by X:``), or ``""``."""
    if case.status != "skip":
        return ""
    for text in (case.detail, case.reason):
        if text.startswith(UNSUPPORTED_PREFIX):
            _, sep, why = text.partition(": ")
            return why.strip() if sep and why.strip() else text
    return ""


def state(case: Case) -> str:
    if case.status == "skip":
        return "unsupported" if unsupported_reason(case) else "skip"
    return case.status


def problem_kind(case: Case) -> str:
    """What went wrong in a failing case, most severe first (see the module docstring)."""
    if case.server_alive is False:
        if _NOT_STARTED in case.detail and _NOT_SERVING not in case.detail:
            return START
        return DIED
    if case.observed != case.expected:
        return OUTCOME
    if case.observed == "ok":
        return ENVIRON
    return OTHER


def problem_word(case: Case) -> str:
    """A cell's few words about one failure: ``saw ok``, ``environ``, ``server died``."""
    kind = problem_kind(case)
    if kind == OUTCOME:
        return f"saw {case.outcome}"
    return {START: "no start", DIED: "server died", ENVIRON: "environ"}.get(kind, "other")


def section_of(case: Case, primary: str) -> str:
    return CLIENT_SECTION if case.server_cert == primary else SERVER_SECTION


def subject_of(case: Case, primary: str) -> str:
    """The row's second dimension: the client credential, or the bad server certificate."""
    return case.client if case.server_cert == primary else case.server_cert


def environ_labels(detail: str) -> tuple[bool, tuple[str, ...]]:
    """Summarise the runner's environ problems; True first when no client certificate shows.

    Labels name variable families (``SSL_CLIENT_CERT_CHAIN_n``) and collapse the certificate
    variables into ``SSL_CLIENT_* missing`` when the certificate itself is missing, so clients
    with different certificates (a DNS SAN or an IP SAN) land in the same finding.
    """
    missing: set[str] = set()
    labels: set[tuple[int, str]] = set()
    no_cert = False
    for part in (p.strip() for p in detail.split("; ")):
        if not part:
            continue
        match = _ENV_PROBLEM.fullmatch(part)
        if match is None:
            labels.add((3, fmt.truncate(part, 60)))
            continue
        key, rest = match["key"], match["rest"]
        family = re.sub(r"_\d+$", "_n", key)
        expected = _ENV_EXPECTED.fullmatch(rest)
        if key == "SSL_CLIENT_VERIFY" and expected and _unquote(expected["want"]) == "SUCCESS":
            no_cert = True
        if rest.startswith("present ") or rest.endswith("should not be"):
            labels.add((2, f"{family} present but should not be"))
        elif rest.startswith("None,") or rest == "None":
            missing.add(family)
        elif expected and max(len(expected["got"]), len(expected["want"])) <= _SHORT_VALUE:
            got, want = _unquote(expected["got"]), _unquote(expected["want"])
            labels.add((1, f"{family} is {got}, not {want}"))
        else:
            labels.add((1, f"{family} wrong"))
    if "SSL_CLIENT_CERT" in missing:
        no_cert = True
        missing = {
            m for m in missing if not m.startswith("SSL_CLIENT_") or m == "SSL_CLIENT_VERIFY"
        }
        labels.add((0, "SSL_CLIENT_* missing"))
    labels.update((0, f"{m} missing") for m in missing)
    ordered_labels = sorted(labels, key=lambda x: (x[0], x[1] != "SSL_CLIENT_* missing", x[1]))
    return no_cert, tuple(label for _, label in ordered_labels)


def _unquote(text: str) -> str:
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    return text


@dataclass(frozen=True)
class Finding:
    """One line of the findings list: a target, what it does, where, and how often."""

    target: str
    kind: str
    text: str
    scope: str
    cases: tuple[Case, ...]
    out_of: int
    reasons: tuple[str, ...]

    @property
    def symbol(self) -> str:
        return SYMBOL["unsupported" if self.kind == UNSUPPORTED else "fail"]

    @property
    def count_text(self) -> str:
        n = len(self.cases)
        noun = "case" if n == 1 else "cases"
        if self.kind == UNSUPPORTED or n > self.out_of:
            return f"{n} {noun}"
        if n == self.out_of:
            return f"all {n} {noun}" if n > 1 else "1 case"
        return f"{n} of {self.out_of} cases"

    @property
    def sentence(self) -> str:
        scope = f" {self.scope}" if self.scope else ""
        return f"{self.text}{scope} ({self.count_text})"

    @property
    def line(self) -> str:
        return f"{self.target}: {self.sentence}"


@dataclass(frozen=True)
class TargetFindings:
    """A target's divergences from the spec, then what it cannot express."""

    run: TargetRun
    divergences: tuple[Finding, ...]
    unsupported: tuple[Finding, ...]
    stalls: tuple[StallFinding, ...] = ()


@dataclass(frozen=True)
class Row:
    section: str
    policy: str
    subject: str
    expected: tuple[str, ...]
    first_of_group: bool

    @property
    def key(self) -> str:
        return f"{self.section}/{self.policy}/{self.subject}"


@dataclass(frozen=True)
class Cell:
    """The cases of one target in one row (every adapter, bind and connect)."""

    cases: tuple[Case, ...] = ()

    @property
    def counts(self) -> dict[str, int]:
        tally = Counter(state(c) for c in self.cases)
        return {s: tally.get(s, 0) for s in STATES}

    @property
    def state(self) -> str:
        """The most telling state present: fail, pass, unsupported, skip; ``none`` if empty."""
        counts = self.counts
        return next((s for s in ("fail", "pass", "unsupported", "skip") if counts[s]), "none")

    @property
    def failures(self) -> list[Case]:
        return sorted((c for c in self.cases if c.status == "fail"), key=_case_order)

    @property
    def problems(self) -> list[str]:
        """Distinct problem words of the failures, most severe first."""
        failures = sorted(self.failures, key=lambda c: KINDS.index(problem_kind(c)))
        return list(dict.fromkeys(problem_word(c) for c in failures))

    @property
    def main_text(self) -> str:
        counts = self.counts
        ran = counts["pass"] + counts["fail"]
        if counts["fail"]:
            return f"{SYMBOL['fail']} {counts['fail']}/{ran}"
        if counts["pass"]:
            return f"{SYMBOL['pass']} {counts['pass']}"
        if counts["unsupported"]:
            return f"{SYMBOL['unsupported']} unsupported"
        return f"{SYMBOL['skip']} skipped" if counts["skip"] else ""

    @property
    def extra_text(self) -> str:
        """Second line: what went wrong in the failures.

        Skips beside cases that ran are left to the tooltip, the details and the findings:
        they come from dimensions a row sums over (an adapter or a bind form the target
        cannot express, a bind/connect pair this host cannot reach), so they would repeat in
        every cell of a column and bury the differences between targets.
        """
        return ", ".join(self.problems)

    @property
    def text(self) -> str:
        return " ".join(t for t in (self.main_text, self.extra_text) if t)


@dataclass(frozen=True)
class Table:
    """Rows are (section, policy, subject); columns are targets, in the order given."""

    runs: tuple[TargetRun, ...]
    rows: tuple[Row, ...]
    cells: dict[tuple[int, int], Cell]

    def cell(self, row: int, target: int) -> Cell:
        return self.cells.get((row, target), Cell())

    def sections(self) -> list[tuple[str, list[int]]]:
        """(section, row indexes) in row order, for section header rows."""
        out: dict[str, list[int]] = {}
        for ri, row in enumerate(self.rows):
            out.setdefault(row.section, []).append(ri)
        return list(out.items())


@dataclass(frozen=True)
class Comparison:
    runs: tuple[TargetRun, ...]
    findings: tuple[TargetFindings, ...]
    table: Table

    @property
    def diverging(self) -> list[str]:
        return [f.run.name for f in self.findings if f.divergences]

    @property
    def stalled(self) -> list[str]:
        """Targets on which idle clients delay a good one (run.resilience.idle_client)."""
        return [f.run.name for f in self.findings if f.stalls]

    @property
    def idle_measured(self) -> bool:
        """Whether any run carries an idle-client measurement (else the reports omit it)."""
        return any(r.idle_client is not None for r in self.runs)


def compare(runs: Sequence[TargetRun]) -> Comparison:
    """Findings and table for ``runs``; names must be distinct (load_targets checks that)."""
    runs = tuple(runs)
    primary = primary_server_cert(c for r in runs for c in r.cases)
    found = tuple(
        TargetFindings(r, _divergences(r, primary), _unsupported(r, primary), _stalls(r))
        for r in runs
    )
    return Comparison(runs, found, _table(runs, primary))


def _stalls(run: TargetRun) -> tuple[StallFinding, ...]:
    idle = run.idle_client
    return (StallFinding(run.name, idle),) if idle is not None and idle.stalled else ()


def _case_order(case: Case) -> tuple[object, ...]:
    """Policy first, as the table reads, then the rest of the case's dimensions."""
    dims = ("policy", "server_cert", "client", "adapter", "bind", "connect")
    return tuple(value_key(d, case.dim(d)) for d in dims)


def _table(runs: tuple[TargetRun, ...], primary: str) -> Table:
    grouped: dict[tuple[str, str, str], dict[int, list[Case]]] = {}
    for ti, run in enumerate(runs):
        for case in run.cases:
            key = (section_of(case, primary), case.policy, subject_of(case, primary))
            grouped.setdefault(key, {}).setdefault(ti, []).append(case)

    def row_order(key: tuple[str, str, str]) -> tuple[object, ...]:
        section, policy, subject = key
        sections = (CLIENT_SECTION, SERVER_SECTION)
        return (
            sections.index(section),
            value_key("policy", policy),
            value_key(SUBJECT_DIM[section], subject),
        )

    rows: list[Row] = []
    cells: dict[tuple[int, int], Cell] = {}
    previous: tuple[str, str] | None = None
    for ri, key in enumerate(sorted(grouped, key=row_order)):
        section, policy, subject = key
        all_cases = [c for cases in grouped[key].values() for c in cases]
        expected = ordered("outcome", (c.expected for c in all_cases if c.expected != "skipped"))
        rows.append(
            Row(
                section,
                policy,
                subject,
                tuple(expected or ["skipped"]),
                first_of_group=(section, policy) != previous,
            )
        )
        previous = (section, policy)
        for ti, cases in grouped[key].items():
            cells[(ri, ti)] = Cell(tuple(sorted(cases, key=_case_order)))
    return Table(runs, tuple(rows), cells)


def _problem(case: Case, primary: str) -> tuple[str, tuple[object, ...]]:
    """(kind, what) where ``what`` holds everything but policy, subject and adapter."""
    kind = problem_kind(case)
    if kind == DIED:
        return kind, (case.outcome,)
    if kind == OUTCOME:
        section = section_of(case, primary)
        no_cert = section == CLIENT_SECTION and case.client == "none"
        return kind, (section, case.expected, case.outcome, no_cert)
    if kind == ENVIRON:
        return kind, environ_labels(case.detail)
    if kind == OTHER:
        return kind, (case.expected, case.outcome)
    return kind, ()


class _RunIndex:
    """What one target ran, indexed once so that grouping stays linear in its cases."""

    def __init__(self, run: TargetRun, primary: str) -> None:
        self.run = run
        self.primary = primary
        self.ran = Counter(self.slot(c) for c in run.cases if c.status != "skip")
        self._values: dict[tuple[frozenset[str], str, frozenset[str]], set[str]] = {}

    def slot(self, case: Case) -> tuple[str, str, str, str]:
        return (case.adapter, case.policy, case.server_cert, subject_of(case, self.primary))

    def value(self, case: Case, dim: str) -> str:
        return subject_of(case, self.primary) if dim == "subject" else case.dim(dim)

    def sections(self, cases: Iterable[Case]) -> frozenset[str]:
        return frozenset(section_of(c, self.primary) for c in cases)

    def values(self, sections: frozenset[str], dim: str, states: frozenset[str]) -> set[str]:
        """Values of ``dim`` among the target's cases in ``sections`` and ``states``."""
        key = (sections, dim, states)
        if key not in self._values:
            self._values[key] = {
                self.value(c, dim)
                for c in self.run.cases
                if section_of(c, self.primary) in sections and state(c) in states
            }
        return self._values[key]


def _divergences(run: TargetRun, primary: str) -> tuple[Finding, ...]:
    """Failures grouped by what went wrong, merged across policies and subjects.

    Wrong outcomes are grouped per (subject, policy), where the subject is the client
    credential or the bad server certificate; policies of one subject failing on the same
    adapters are merged, then subjects with the same policies and adapters, so that "accepts
    wrong-ca, expired client certificates under optional, required" holds for every pair it
    names. The other kinds describe the server as a whole and are merged across subjects and
    policies, listing both.
    """
    index = _RunIndex(run, primary)
    failing = sorted((c for c in run.cases if c.status == "fail"), key=_case_order)
    merged: dict[tuple[object, ...], list[Case]] = {}
    outcomes: dict[tuple[object, ...], list[Case]] = {}
    for case in failing:
        kind, what = _problem(case, primary)
        if kind == OUTCOME:
            outcomes.setdefault((what, subject_of(case, primary), case.policy), []).append(case)
        else:
            merged.setdefault((kind, what), []).append(case)
    per_subject: dict[tuple[object, ...], list[Case]] = {}
    for (what, subject, _policy), cases in outcomes.items():
        adapters = frozenset(c.adapter for c in cases)
        per_subject.setdefault((what, subject, adapters), []).extend(cases)
    for (what, _subject, adapters), cases in per_subject.items():
        policies = frozenset(c.policy for c in cases)
        merged.setdefault((OUTCOME, what, policies, adapters), []).extend(cases)
    findings = [_finding(index, str(key[0]), key[1], cases) for key, cases in merged.items()]
    findings.sort(key=lambda f: (KINDS.index(f.kind), _case_order(f.cases[0])))
    return tuple(findings)


def _unsupported(run: TargetRun, primary: str) -> tuple[Finding, ...]:
    index = _RunIndex(run, primary)
    by_reason: dict[str, list[Case]] = {}
    for case in sorted(run.cases, key=_case_order):
        why = unsupported_reason(case)
        if why:
            by_reason.setdefault(why, []).append(case)
    found = []
    for why, cases in by_reason.items():
        scope = _scope(index, cases, ("policy", "adapter", "bind", "connect", "subject"), ())
        text = f"unsupported {scope}: {why}" if scope else f"unsupported: {why}"
        found.append(Finding(run.name, UNSUPPORTED, text, "", tuple(cases), len(cases), ()))
    return tuple(found)


def _finding(index: _RunIndex, kind: str, what: tuple[object, ...], cases: list[Case]) -> Finding:
    cases = sorted(cases, key=_case_order)
    if kind == OUTCOME:
        section, expected, observed, _ = what
        subjects = ordered(SUBJECT_DIM[str(section)], (subject_of(c, index.primary) for c in cases))
        text = _outcome_text(str(section), str(expected), str(observed), subjects)
        scope = _scope(index, cases, ("policy", "adapter"))
    else:
        text = _kind_text(kind, what)
        scope = _scope(index, cases, ("policy", "subject", "adapter"))
    out_of = sum(index.ran[slot] for slot in {index.slot(c) for c in cases})
    reasons = Counter(c.reason for c in cases if c.reason)
    return Finding(
        index.run.name,
        kind,
        text,
        scope,
        tuple(cases),
        out_of,
        tuple(r for r, _ in reasons.most_common()),
    )


def _outcome_text(section: str, expected: str, observed: str, subjects: list[str]) -> str:
    """How a person would say it: "accepts expired client certificates"."""
    names = ", ".join(subjects)
    if section == SERVER_SECTION:
        what = f"server certificate {names}"
        if expected == "server-cert-rejected" and observed == "ok":
            return f"the client accepted the bad {what}"
    elif subjects == ["none"]:
        what = "clients that present no certificate"
        if (expected, observed) == ("rejected", "ok"):
            return f"serves {what}"
    else:
        what = f"{names} client certificates"
        if (expected, observed) == ("rejected", "ok"):
            return f"accepts {what}"
    if (expected, observed) == ("ok", "rejected"):
        return f"rejects {what}"
    if observed == "error":
        return f"gives an error instead of {expected} for {what}"
    return f"{what}: expected {expected}, observed {observed}"


def _kind_text(kind: str, what: tuple[object, ...]) -> str:
    if kind == START:
        return "server could not start (server_alive false)"
    if kind == DIED:
        (observed,) = what
        after = "a rejected client" if observed == "rejected" else f"a client that saw {observed}"
        return f"server did not survive {after} (server_alive false)"
    if kind == ENVIRON:
        no_cert, labels = what
        assert isinstance(labels, tuple)
        listed = f" ({', '.join(labels)})" if labels else ""
        if no_cert:
            return f"exposes no client certificate to the application{listed}"
        return f"application environ differs from the spec{listed}"
    expected, observed = what
    return f"fails although it saw {observed} as expected ({expected})"


_SCOPE_WORDS = {
    "policy": "under {}",
    "adapter": "on {} only",
    "bind": "bind {}",
    "connect": "connect {}",
}
_SUBJECT_NOUNS = {
    frozenset({CLIENT_SECTION}): "clients",
    frozenset({SERVER_SECTION}): "server certificates",
}


_RAN = frozenset({"pass", "fail"})
_ASKED = frozenset({"pass", "fail", "unsupported"})


def _scope(
    index: _RunIndex,
    cases: list[Case],
    dims: tuple[str, ...],
    always: tuple[str, ...] = ("policy",),
) -> str:
    """Where a finding applies: the ``always`` dimensions, others only when narrower than
    what the target ran in the same sections (for unsupported cases: what it was asked to
    run), so "on pyopenssl only" is said when it tells something."""
    sections = index.sections(cases)
    states = _ASKED if any(state(c) == "unsupported" for c in cases) else _RAN
    parts = []
    for dim in dims:
        order = dim
        if dim == "subject":
            order = SUBJECT_DIM[next(iter(sections))] if len(sections) == 1 else "client"
        values = ordered(order, (index.value(c, dim) for c in cases))
        if dim not in always and set(values) == index.values(sections, dim, states):
            continue
        if dim == "subject":
            noun = _SUBJECT_NOUNS.get(sections, "clients or server certificates")
            parts.append(f"{noun} {', '.join(values)}")
        else:
            parts.append(_SCOPE_WORDS[dim].format(", ".join(values)))
    return "; ".join(parts)
