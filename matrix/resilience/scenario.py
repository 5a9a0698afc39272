"""Measurement: one server of the target under one kind x count, the good client timed."""

from __future__ import annotations

import contextlib
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import hostile
from harness.hostile.remote import RemoteAttack
from harness.target import ServerSpec, Target

from .common import AFTER, BIND, OWN_THREADS, PACE_S, POSITION_S, PROBE_S, UNBOUNDED, MeasureError
from .good import Sample, good_request, good_requests, summarize
from .verdicts import classify
from .watch import Router, Watch


@dataclass
class Bench:
    """A running server of the target, the good client's context, and the watch on it."""

    target: Target
    spec: ServerSpec
    context: ssl.SSLContext
    tap: Router
    credential: Path
    handle: Any = None
    watch: Watch | None = None

    @property
    def address(self) -> tuple[str, int]:
        return (BIND, self.handle.port)

    @property
    def in_process(self) -> bool:
        return getattr(self.handle, "pid", None) is None

    def start(self) -> Bench:
        before = set(threading.enumerate())
        try:
            self.handle = self.target.start(self.spec)
        except Exception as exc:  # any start failure is reported with the server's words
            raise MeasureError(f"server could not start: {type(exc).__name__}: {exc}") from None
        owned = {
            t.ident
            for t in threading.enumerate()
            if t not in before and not t.name.startswith(OWN_THREADS) and t.ident is not None
        }
        self.watch = Watch(self.target, self.handle, owned)
        with self.tap.guard:
            self.tap.watches.append(self.watch)
        return self

    def fresh(self) -> Bench:
        """Another server of the same spec (the detached one keeps this one)."""
        return Bench(self.target, self.spec, self.context, self.tap, self.credential).start()

    def stop(self) -> None:
        with self.tap.guard:
            if self.watch in self.tap.watches:
                self.tap.watches.remove(self.watch)
        if self.handle is not None:
            with contextlib.suppress(Exception):
                self.handle.stop()
            self.handle = None


class Spares:
    """The next server, started ahead on a thread for a process target, so a stall costs no start.

    An in-process server starts in milliseconds and a spare would share the process whose
    threads and memory are being measured, so for it ``take`` starts one then.
    """

    def __init__(self, bench: Bench) -> None:
        self.bench = bench
        self.ahead = not bench.in_process
        self.thread: threading.Thread | None = None
        self.ready: Bench | None = None
        self.error: MeasureError | None = None

    def _start(self) -> None:
        try:
            self.ready = self.bench.fresh()
        except MeasureError as exc:
            self.error = exc

    def _launch(self) -> None:
        self.ready, self.error = None, None
        self.thread = threading.Thread(target=self._start, name="battery-spare", daemon=True)
        self.thread.start()

    def take(self) -> Bench:
        if not self.ahead:
            return self.bench.fresh()
        if self.thread is None:
            self._launch()
        assert self.thread is not None
        self.thread.join()
        bench, error = self.ready, self.error
        self._launch()
        if bench is None:
            raise error or MeasureError("the next server did not start")
        return bench

    def prepare(self) -> None:
        """Start the first spare (process targets only)."""
        if self.ahead and self.thread is None:
            self._launch()

    def close(self) -> None:
        if self.thread is not None:
            self.thread.join()
            if self.ready is not None:
                self.ready.stop()
            self.thread = None


@dataclass
class Scenario:
    """What one kind x count did; ``entry()`` is its ``run.resilience`` record."""

    kind: str
    attackers: int
    during: list[Sample] = field(default_factory=list)
    after: list[Sample] = field(default_factory=list)
    in_position: int = 0
    alive: bool = True
    tracebacks: int = 0
    restarts: int = 0
    log_lines: int = 0
    resources: dict[str, list] | None = None
    inferred: bool = False
    detached: bool = False  # stalled past the probe: finished on its own server in the background
    seconds: float = 0.0  # how long the scenario took
    still_sending: int = 0  # flooding attackers not done when released (the cap passed)
    attacker_errors: dict[str, int] = field(default_factory=dict)

    def entry(self, alone_median_ms: float, cap_s: float) -> dict[str, Any]:
        stall, bound, added = classify(alone_median_ms, self.during, cap_s)
        if self.inferred:
            stall, bound, added = UNBOUNDED, None, None
        out = {
            "kind": self.kind,
            "attackers": self.attackers,
            "during": summarize(self.during),
            "after": summarize(self.after),
            "added_ms": added,
            "stall": stall,
            "bound_s": bound,
            "alive": self.alive,
            "tracebacks": self.tracebacks,
            "restarts": self.restarts,
            "resources": self.resources,
            "in_position": self.in_position,
            "log_lines": self.log_lines,
            "attacker_errors": self.attacker_errors,
            "still_sending": self.still_sending,
        }
        if self.inferred:
            out["inferred"] = True
        return out


class Pending:
    """A good request running on its own thread, with the whole-request ``timeout``."""

    def __init__(self, context: ssl.SSLContext, address: tuple[str, int], timeout: float):
        self.sample: Sample | None = None
        self.done = threading.Event()
        self.thread = threading.Thread(
            target=self._run, args=(context, address, timeout), name="battery-good", daemon=True
        )
        self.thread.start()

    def _run(self, context: ssl.SSLContext, address: tuple[str, int], timeout: float) -> None:
        try:
            self.sample = good_request(context, address, timeout)
        finally:
            self.done.set()


def attack(
    bench: Bench,
    kind: hostile.Kind,
    count: int,
    *,
    during: int,
    probe_s: float,
    cap_s: float,
    measure_resources: bool = True,
    on_detach: Callable[[threading.Thread], None] | None = None,
    on_done: Callable[[Scenario], None] | None = None,
) -> Scenario | None:
    """Run ``count`` attackers of ``kind`` against the bench's server; time the good client.

    Each good request has the cap as its deadline; the caller waits ``probe_s`` for it.
    A request still running then means the server is stalled: with ``on_detach`` the
    scenario is finished on a background thread (the request runs to its end or the cap,
    then release, after-phase, server stopped; ``on_done`` gets the scenario) and None is
    returned, so that the caller goes on with a fresh server. Without ``on_detach`` it
    is finished here.
    """
    assert bench.watch is not None
    scenario = Scenario(kind.name, count)
    started = time.monotonic()
    before = bench.watch.resources() if measure_resources else None
    counts = bench.watch.counts()
    # An in-process server would share its GIL with attacking threads: attack from a child
    # process then (harness.hostile.remote says why and what it changed).
    attack_class = RemoteAttack if bench.in_process else hostile.Attack
    run = attack_class(
        kind,
        bench.address,
        count,
        credential=bench.credential,
        pace_s=PACE_S,
        hold_s=cap_s + POSITION_S + AFTER * PROBE_S + 10.0,
    )

    def finish(pending: Pending | None) -> Scenario:
        try:
            if pending is not None:
                pending.done.wait(cap_s + 5.0)
                if pending.sample is not None:
                    scenario.during.append(pending.sample)
            if kind.flood:  # its whole flood, or the server's refusal, before the release
                scenario.still_sending = run.wait_done_sending(cap_s)
        finally:
            run.release()
        # the first request after the release may wait for the server to recover (up to the
        # cap); the others are timed like the ones during the attack
        scenario.after = good_requests(bench.context, bench.address, 1, cap_s)
        if scenario.after[0].ok:
            scenario.after += good_requests(bench.context, bench.address, AFTER - 1, PROBE_S)
        scenario.attacker_errors = run.errors()
        now = bench.watch.counts()
        scenario.tracebacks, scenario.restarts, scenario.log_lines = (
            now[0] - counts[0],
            now[1] - counts[1],
            now[2] - counts[2],
        )
        scenario.alive = bench.watch.alive() and any(s.ok for s in scenario.after)
        after = bench.watch.resources() if measure_resources else None
        if scenario.detached and bench.in_process:
            after = None  # other servers share this process meanwhile: its figures are not ours
        if before is not None and after is not None:
            scenario.resources = {
                "fds": [before[0], after[0]],
                "threads": [before[1], after[1]],
                "rss_mb": [before[2], after[2]],
            }
        scenario.seconds = time.monotonic() - started
        return scenario

    pending = None
    try:
        run.start()
        scenario.in_position = run.wait_in_position(POSITION_S)
        for _ in range(during):
            pending = Pending(bench.context, bench.address, cap_s)
            if not pending.done.wait(probe_s):
                break  # stalled past the probe
            assert pending.sample is not None
            scenario.during.append(pending.sample)
            pending = None
            if scenario.during[-1].timed_out:
                break
    except BaseException:
        run.release()
        raise
    if pending is not None and on_detach is not None:
        scenario.detached = True

        def background() -> None:
            try:
                done = finish(pending)
            finally:
                bench.stop()
            if on_done is not None:
                on_done(done)

        thread = threading.Thread(
            target=background, name=f"battery-{kind.name}-{count}", daemon=True
        )
        thread.start()
        on_detach(thread)
        return None
    return finish(pending)
