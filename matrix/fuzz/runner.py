"""Drive hypothesis over generated certificates until the budget is spent or a
difference is found, then let it shrink that difference to the smallest certificate
that still shows it.

Hypothesis has no time budget of its own: the first example drawn after the deadline
ends the run (a BaseException hypothesis does not shrink), and ``max_examples`` bounds
the count.
Each plan's verdict is computed once and remembered, so shrinking and hypothesis's
final replay see the same answer for the same certificate (a server's answer can
change across midnight; hypothesis would call that flaky). The example database lives
under the run's output directory (DirectoryBasedExampleDatabase), so a difference
found once is tried first next time.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field
from pathlib import Path

from hypothesis import HealthCheck, Phase, Verbosity, given, seed, settings
from hypothesis import strategies as st
from hypothesis.database import DirectoryBasedExampleDatabase

from harness.target import ServerSpec

from .compare import Difference, differences
from .endpoints import Answer, Endpoint
from .issue import Issued, Issuer
from .plan import CertPlan, plans
from .predict import Prediction, predict

MAX_EXAMPLES = 1_000_000  # the time budget ends a run long before this


@dataclass
class Finding:
    """The smallest certificate that shows a difference, and what differed."""

    plan: CertPlan
    tls: str
    issued: Issued
    prediction: Prediction
    answers: dict[str, Answer]
    differences: list[Difference]


@dataclass
class Outcome:
    examples: int = 0  # certificates presented to the targets
    seconds: float = 0.0
    finding: Finding | None = None
    verdicts: dict[str, int] = field(default_factory=dict)  # oracle outcome -> count


class _Found(AssertionError):
    pass


class _BudgetSpent(BaseException):
    """Ends the run: hypothesis lets a BaseException that is no Exception (as
    KeyboardInterrupt) through at once, without shrinking anything."""


def run(
    endpoints: list[Endpoint],
    server: tuple[Path, Path],
    ca: tuple[Path, Path],
    out: Path,
    *,
    budget: float | None = None,
    examples: int | None = None,
    seed_value: int = 0,
    shrink_budget: float | None = None,
) -> Outcome:
    """Start every endpoint once, present generated certificates until ``budget``
    seconds or ``examples`` certificates, stop them all. ``server``/``ca``: (cert, key)."""
    issuer = Issuer(*ca)
    work = out / "work"
    now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    outcome = Outcome()
    started = time.monotonic()
    deadline = started + (budget if budget is not None else float("inf"))
    shrink_until = [float("inf")]
    seen: dict[tuple[CertPlan, str], Finding | None] = {}

    def present(plan: CertPlan, tls: str) -> Finding | None:
        # A new file name each time: matrix.environ caches what it read by path.
        issued = issuer.issue(plan, work, name=f"client-{outcome.examples}")
        before = dt.datetime.now(dt.timezone.utc)
        answers = {e.name: e.ask(ca[0], issued.key_and_chain, tls) for e in endpoints}
        after = dt.datetime.now(dt.timezone.utc)
        prediction = predict(issued.cert, before)
        outcome.examples += 1
        outcome.verdicts[prediction.outcome] = outcome.verdicts.get(prediction.outcome, 0) + 1
        sent = list(issued.chain) or [ca[0].read_text()]  # OpenSSL clients add their root
        found = differences(prediction, answers, endpoints, issued.cert, sent, (before, after))
        if not found:
            issued.cert.unlink(), issued.key_and_chain.unlink()
            return None
        return Finding(plan, tls, issued, prediction, answers, found)

    @settings(
        database=DirectoryBasedExampleDatabase(str(out / "hypothesis")),
        max_examples=examples or MAX_EXAMPLES,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        verbosity=Verbosity.quiet,
        report_multiple_bugs=False,
        print_blob=False,
        phases=(Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink),
    )
    @seed(seed_value)
    @given(plans(now), st.sampled_from(("1.3", "1.2")))
    def check(plan: CertPlan, tls: str) -> None:
        key = (plan, tls)
        if key not in seen:
            clock = time.monotonic()
            if outcome.finding is None and clock > deadline:
                raise _BudgetSpent
            if outcome.finding is not None and clock > shrink_until[0]:
                return  # shrinking has had its time
            seen[key] = present(plan, tls)
        finding = seen[key]
        if finding is None:
            return
        if outcome.finding is None:
            shrink_until[0] = time.monotonic() + (shrink_budget or max(60.0, budget or 60.0))
        outcome.finding = finding  # the last failing call is hypothesis's shrunk replay
        raise _Found(f"{len(finding.differences)} difference(s)")

    started_endpoints: list[Endpoint] = []
    try:
        for endpoint in endpoints:
            endpoint.start(
                ServerSpec(endpoint.adapter, "optional", False, "127.0.0.1", *server, ca[0])
            )
            started_endpoints.append(endpoint)
        check()
    except (_Found, _BudgetSpent):
        pass
    finally:
        for endpoint in started_endpoints:
            endpoint.stop()
        outcome.seconds = time.monotonic() - started
    return outcome
