"""The battery on one adapter of a target: every kind x attacker count, breadth first."""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import certs_gen
from harness import hostile
from harness.target import ServerSpec, Target

from ..dimensions import ADAPTERS, TRUST_ROOT
from .common import (
    AFTER,
    BIND,
    CAP_S,
    DURING,
    GOOD_ALONE,
    GOOD_CLIENT,
    INTERRUPT_S,
    POLICIES,
    POSITION_S,
    PROBE_S,
    SERVER_CERT,
    UNBOUNDED,
    MeasureError,
    UsageError,
)
from .good import Sample, good_context, good_request, good_requests, summarize
from .scenario import Bench, Scenario, Spares, attack
from .tables import format_row
from .verdicts import attacker_counts, classify, runs_at
from .watch import server_output


def choose_spec(
    target: Target, certs: certs_gen.CertSet, adapter: str | None = None
) -> tuple[ServerSpec | None, str]:
    """The spec to measure: the adapter given or the target's first, ``required`` if it can.

    Returns (None, why) when the target supports none of them.
    """
    server = certs[SERVER_CERT]
    adapters = [adapter] if adapter else target_adapters(target)
    reasons: list[str] = []
    for name in adapters:
        for policy in POLICIES:
            spec = ServerSpec(
                adapter=name,
                client_check=policy,
                check_host=False,
                bind=BIND,
                certificate=server.cert,
                private_key=server.key,
                client_ca=certs[TRUST_ROOT].cert,
            )
            why = target.unsupported(spec)
            if why is None:
                return spec, ""
            reasons.append(why)
    return None, reasons[0] if reasons else "no adapter to try"


def target_adapters(target: Target) -> list[str]:
    """The target's own adapters first (its ``adapters``), then the matrix's."""
    return list(dict.fromkeys((*getattr(target, "adapters", ()), *ADAPTERS)))


def run_battery(
    target: Target,
    certs: certs_gen.CertSet,
    *,
    adapter: str | None = None,
    kinds: Sequence[str] = tuple(hostile.KINDS),
    counts: Sequence[int] | None = None,
    cap_s: float = CAP_S,
    probe_s: float = PROBE_S,
    during: int = DURING,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """The battery on one adapter of ``target``: its ``run.resilience.adapters`` value.

    Raises UsageError when the target cannot express any configuration used here,
    MeasureError when the server does not start or the good client is not served alone.
    """
    spec, why = choose_spec(target, certs, adapter)
    if spec is None:
        raise UsageError(f"{target.name} cannot run the battery: {why}")
    workers = getattr(target, "workers", None)
    workers = workers if isinstance(workers, int) and workers > 0 else None
    counts = tuple(sorted(set(counts))) if counts else attacker_counts(workers)
    probe_s = min(probe_s, cap_s)
    began = time.monotonic()
    shout = progress or (lambda text: None)

    def say(text: str) -> None:
        shout(f"{time.monotonic() - began:5.1f}s {text}")

    results: dict[tuple[str, int], Scenario] = {}
    lock = threading.Lock()
    detached: list[tuple[tuple[str, int], threading.Thread, Bench]] = []
    restarts = 0
    alone_median = 0.0

    def done(scenario: Scenario) -> None:
        with lock:
            results[scenario.kind, scenario.attackers] = scenario
        say(_progress_line(scenario, alone_median, cap_s))

    def unbounded_below(name: str, count: int) -> bool:
        with lock:
            return any(
                k == name and n < count and classify(0, s.during, cap_s)[0] == UNBOUNDED
                for (k, n), s in results.items()
            )

    with server_output() as tap:
        context = good_context(certs)
        bench = Bench(target, spec, context, tap, certs[GOOD_CLIENT].key_and_chain).start()
        bench.watch.default = True  # type: ignore[union-attr]
        spares = Spares(bench)
        try:
            good_request(bench.context, bench.address, cap_s)  # warm-up, not counted
            alone = good_requests(bench.context, bench.address, GOOD_ALONE, cap_s)
            if not all(s.ok for s in alone):
                bad = next(s for s in alone if not s.ok)
                raise MeasureError(f"the good client alone was not served: {bad.detail}")
            alone_median = statistics.median(s.ms for s in alone)
            spares.prepare()
            say(f"{target.name} ({spec.adapter}, {spec.client_check}): alone {alone_median:.1f} ms")
            for count in counts:  # breadth first: every kind at 1 before any at 64
                for name in kinds:
                    if not runs_at(hostile.KINDS[name], count, counts):
                        continue  # a memory bound: one flood shows it (64 would be 16 GiB)
                    if unbounded_below(name, count):
                        done(Scenario(name, count, inferred=True))
                        continue
                    busy = any(t.is_alive() for _, t, _ in detached)
                    scenario = attack(
                        bench,
                        hostile.KINDS[name],
                        count,
                        during=during,
                        probe_s=probe_s,
                        cap_s=cap_s,
                        measure_resources=not (busy and bench.in_process),
                        on_detach=lambda thread, key=(name, count), b=bench: detached.append(
                            (key, thread, b)
                        ),
                        on_done=done,
                    )
                    if scenario is not None:
                        done(scenario)
                    if scenario is None or not scenario.alive:
                        if scenario is not None:
                            bench.stop()
                        bench.watch.default = False  # type: ignore[union-attr]
                        bench = spares.take()  # a stalled one finishes in the background
                        bench.watch.default = True  # type: ignore[union-attr]
                        restarts += 1
        except KeyboardInterrupt:  # Ctrl-C: stop every server now, wait for nobody's cap
            for _, _, stalled in detached:
                stalled.stop()  # its good request and attackers then end at once
            _join([t for _, t, _ in detached], INTERRUPT_S)
            raise
        finally:
            _join([t for _, t, _ in detached], cap_s + POSITION_S + (AFTER + 2) * PROBE_S + 10.0)
            bench.stop()
            spares.close()
    for key, thread, _ in detached:  # one that did not even finish by then: still waiting
        if key not in results:
            late = Sample(cap_s * 1000, False, True, "not finished within the battery")
            results[key] = Scenario(*key, during=[late], alive=not thread.is_alive())
    for count in counts:  # unbounded at a count that was still running in the background
        for name in kinds:
            scenario = results.get((name, count))
            if scenario is not None and not scenario.inferred and unbounded_below(name, count):
                results[name, count] = Scenario(name, count, inferred=True)
    entries = [
        results[name, count].entry(alone_median, cap_s)
        for name in kinds
        for count in counts
        if (name, count) in results
    ]
    return {
        "workers": workers,
        "policy": spec.client_check,
        "good_alone": {k: v for k, v in summarize(alone).items() if k != "failed"},
        "cap_s": cap_s,
        "probe_s": probe_s,
        "server_restarts": restarts,
        "kinds": entries,
    }


def _join(threads: Sequence[threading.Thread], within_s: float) -> None:
    """Join ``threads``, all of them within ``within_s`` seconds."""
    deadline = time.monotonic() + within_s
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))


def _progress_line(scenario: Scenario, alone_median: float, cap_s: float) -> str:
    entry = scenario.entry(alone_median, cap_s)
    return f"  {format_row(entry)}  ({scenario.seconds:.1f} s)"
