"""The resilience battery: every hostile-client kind against one target, a good client timed.

    python -m matrix.resilience --target MODULE:FACTORY [--adapter A ...] [--kinds K ...]
        [--attackers N ...] [--timeout S] [--results PATH] [--certs-dir DIR]

SPEC section 7: a client that has proved nothing must not hold anything the next
client needs. For one server of the target (bound to 127.0.0.1, the good
``server`` certificate, policy ``required`` where the target can express it, else
``optional``, else ``ignore`` for a server that cannot ask for client certificates
at all, such as Daphne: its ``refused-then-hold`` attackers are then served) the battery:

1. times ``GOOD_ALONE`` requests of the good client (the matrix's ``localhost``
   credential, trusting ``ca``) alone: the baseline median and max;
2. for each attacker count N (1, the target's ``workers`` + 1, 64; without
   ``workers``, 1 and 64; the two flooding kinds, which measure memory bounds,
   at the first count only), breadth first, and each kind of
   :mod:`harness.hostile`: opens N attackers on their own threads, waits (at
   most ``POSITION_S``) until they are in position, times up to ``DURING`` good
   requests while they hold, releases them, times ``AFTER`` good requests, and
   reads the server's output and resources over the scenario;
3. each good request has the *cap* (``--timeout``, 10 s by default, twice the
   reference server's 5 s handshake timeout) as its deadline, but the battery
   waits only ``PROBE_S`` for it. A request still running then is stalled: the
   scenario is finished in the background on that server (the request runs to
   its response or the cap, then release, after-phase, stop), and the battery
   goes on at once with a fresh server (for a process target, one started
   ahead). A stall thus costs about a probe, not a cap, and the battery stays
   within about 60 s per adapter even on a server that stalls under most kinds;
4. a kind found unbounded at some count is not run at larger counts: those
   entries are ``unbounded`` with ``"inferred": true`` and no figures (more
   attackers of one kind do not help a server).

Verdicts (:func:`classify`, SPEC section 7's limits): ``unbounded`` when a good
request was still waiting at the cap; ``bounded`` when the good client's median
rose by more than ``ADDED_MS`` (100 ms) over its baseline, or one of its
requests took over ``SLOW_MS`` (1 s), or one failed while the attackers held;
``bound_s`` is then the longest good request; ``none`` otherwise. ``added_ms``
is the median during the attack minus the baseline median.

Survival, tracebacks and restarts: ``alive`` is whether the server process (or,
in-process, a thread it started) is still running after the scenario, and it
served the good client again. Tracebacks are counted from the server's own
output (process targets: every ``Traceback (most recent call last)`` line the
harness captured; in-process: log records with exception information and
uncaught thread exceptions) and worker restarts from the target's optional
``restart_pattern`` (gunicorn: "Booting worker with pid"). Resources (open
fds, threads, RSS) are read from ``/proc`` before the attackers arrive and
after they leave: for an in-process target the battery's own process (the
battery's own threads excluded), for a process target the sum over the
server's session; none for a scenario finished in the background on an
in-process target (other servers share the process then). In-process log
records are told apart by the thread that logged them. A server that no longer
serves after a scenario is replaced for the next one.

The good client's request is written here on ``ssl`` and ``socket`` rather
than requests, because the verdict needs one deadline for the whole request
(connect, handshake, response); requests' timeout applies to each socket
operation separately.

Results: ``run.resilience`` in the shape docs/resilience.md gives (version 1), merged
into ``--results`` (an existing results file keeps everything else; a new one is
created). Exit status: 0 when the battery ran (whatever it found), 1 when it
could not measure (the server did not start, the good client was not served
alone), 2 on bad usage.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import math
import os
import re
import shlex
import socket
import ssl
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import certs_gen
from harness import hostile
from harness.target import ServerSpec, Target, TargetLoadError, load_target
from harness.targets.process import session_members

from .dimensions import ADAPTERS, TRUST_ROOT

VERSION = 1
MAX_ATTACKERS = 64
GOOD_ALONE = 12  # good requests alone (after one warm-up)
DURING = 10  # good requests while the attackers hold
AFTER = 5  # good requests once they have gone
PROBE_S = 1.2  # how long the battery waits for a good request before finishing it in the background
CAP_S = 10.0  # a good request still waiting then is unbounded (--timeout)
ADDED_MS = 100.0  # SPEC section 7: at most 100 ms added to the good client's median
SLOW_MS = 1000.0  # SPEC section 7: no good request over 1 s
POSITION_S = 1.0  # how long attackers may take to be in position before measuring anyway
PACE_S = 0.5  # a trickling attacker's pace
BIND = "127.0.0.1"
SERVER_CERT = "server"
GOOD_CLIENT = "localhost"
SERVER_NAME = "localhost"
POLICIES = ("required", "optional", "ignore")
PROFILE = "standard"
NONE, BOUNDED, UNBOUNDED = "none", "bounded", "unbounded"
TRACEBACK = re.compile(r"^\s*Traceback \(most recent call last\)")
OWN_THREADS = ("attacker-", "battery-")
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
LOG = "mtls_matrix.reference"


class UsageError(Exception):
    """One line for stderr; exit status 2."""


class MeasureError(Exception):
    """The battery could not measure (no server, the good client not served alone)."""


# -- the good client --------------------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    """One good request: how long it took (ms), and whether it was served (HTTP 200)."""

    ms: float
    ok: bool
    timed_out: bool = False
    detail: str = ""


def good_context(certs: certs_gen.CertSet) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(certs[TRUST_ROOT].cert))
    context.load_cert_chain(str(certs[GOOD_CLIENT].key_and_chain))
    return context


def good_request(context: ssl.SSLContext, address: tuple[str, int], timeout: float) -> Sample:
    """GET / over a new TLS connection, the whole request within ``timeout`` seconds."""
    started = time.perf_counter()
    deadline = started + timeout

    def remaining() -> float:
        left = deadline - time.perf_counter()
        if left <= 0:
            raise TimeoutError("deadline")
        return left

    def elapsed() -> float:
        return (time.perf_counter() - started) * 1000

    try:
        with socket.create_connection(address, timeout=remaining()) as raw:
            raw.settimeout(remaining())
            with context.wrap_socket(
                raw, server_hostname=SERVER_NAME, do_handshake_on_connect=False
            ) as tls:
                tls.do_handshake()
                tls.settimeout(remaining())
                tls.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
                response = _read_response(tls, remaining)
    except TimeoutError:
        return Sample(elapsed(), False, True, "timed out")
    except (OSError, ValueError) as exc:
        return Sample(elapsed(), False, False, f"{type(exc).__name__}: {exc}"[:200])
    status = response.split(b" ", 2)[1:2]
    if status != [b"200"]:
        return Sample(elapsed(), False, False, f"response {response[:40]!r}")
    return Sample(elapsed(), True)


def _read_response(tls: ssl.SSLSocket, remaining: Callable[[], float]) -> bytes:
    """The response's bytes: to its Content-Length, or to the end of the stream."""
    data = b""
    while True:
        tls.settimeout(remaining())
        chunk = tls.recv(65536)
        if not chunk:
            return data
        data += chunk
        head, sep, body = data.partition(b"\r\n\r\n")
        if sep:
            found = re.search(rb"(?im)^content-length:\s*(\d+)\s*$", head)
            if found and len(body) >= int(found.group(1)):
                return data
        if len(data) > 1 << 20:
            raise ValueError("response over 1 MiB")


def good_requests(
    context: ssl.SSLContext, address: tuple[str, int], count: int, timeout: float
) -> list[Sample]:
    """Up to ``count`` sequential good requests; stops after the first that timed out."""
    samples = []
    for _ in range(count):
        sample = good_request(context, address, timeout)
        samples.append(sample)
        if sample.timed_out:
            break
    return samples


def summarize(samples: Sequence[Sample]) -> dict[str, Any]:
    """``{"n", "median_ms", "max_ms", "failed"}``; a timed-out request counts at its timeout."""
    times = [s.ms for s in samples]
    return {
        "n": len(samples),
        "median_ms": _round(statistics.median(times)) if times else None,
        "max_ms": _round(max(times)) if times else None,
        "failed": sum(not s.ok for s in samples),
    }


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
    added = _round(statistics.median(s.ms for s in during) - alone_median_ms)
    if any(s.timed_out and s.ms >= cap_s * 1000 for s in during):
        return UNBOUNDED, None, added
    longest = max(s.ms for s in during)
    if added > added_limit_ms or longest > slow_ms or any(not s.ok for s in during):
        return BOUNDED, _round(longest / 1000, 3), added
    return NONE, None, added


def attacker_counts(workers: int | None, most: int = MAX_ATTACKERS) -> tuple[int, ...]:
    """1, the target's workers + 1, and ``most``: each once, in order."""
    counts = {1, most} | ({workers + 1} if workers else set())
    return tuple(sorted(c for c in counts if 1 <= c <= most))


# -- watching a server: its output and resources ----------------------------------------


class Watch:
    """Counts a server's tracebacks, worker restarts and log lines; reads its resources.

    A process target's lines come from its captured output. An in-process target's log
    records are its own when logged on a thread it started (``owned``); records from
    threads no watch owns go to the watch marked ``default``.
    """

    def __init__(self, target: Target, handle: Any, owned: set[int] | None = None) -> None:
        self.handle = handle
        self.pid: int | None = getattr(handle, "pid", None)
        pattern = getattr(target, "restart_pattern", None)
        self.restart = re.compile(pattern) if pattern else None
        self.owned = owned or set()
        self.default = False
        self.tracebacks = 0
        self.restarts = 0
        self.lines = 0
        self._lock = threading.Lock()
        listeners = getattr(handle, "listeners", None)
        if isinstance(listeners, list):
            listeners.append(self.line)

    def line(self, text: str) -> None:
        with self._lock:
            self.lines += 1
            if TRACEBACK.search(text):
                self.tracebacks += 1
            if self.restart is not None and self.restart.search(text):
                self.restarts += 1

    def record(self, record: logging.LogRecord) -> None:
        with self._lock:
            self.lines += 1
            if record.exc_info or "Traceback (most recent call last)" in record.getMessage():
                self.tracebacks += 1

    def counts(self) -> tuple[int, int, int]:
        with self._lock:
            return self.tracebacks, self.restarts, self.lines

    def alive(self) -> bool:
        if self.pid is not None:
            alive = getattr(self.handle, "alive", None)
            return bool(alive()) if callable(alive) else True
        threads = [t for t in threading.enumerate() if t.ident in self.owned]
        return bool(threads) if self.owned else True

    def resources(self) -> tuple[int, int, float] | None:
        """(open fds, threads, RSS MB) of the server, or None where /proc cannot say."""
        pids = session_members(self.pid) if self.pid is not None else [os.getpid()]
        if not pids:
            return None
        fds = threads = 0
        rss_kb = 0
        try:
            for pid in pids:
                fds += len(os.listdir(f"/proc/{pid}/fd"))
                status = Path(f"/proc/{pid}/status").read_text()
                threads += int(re.search(r"^Threads:\s*(\d+)", status, re.M).group(1))
                rss_kb += int(re.search(r"^VmRSS:\s*(\d+)", status, re.M).group(1))
        except (OSError, AttributeError, ValueError):
            return None
        if self.pid is None:  # in-process: the battery's own threads are not the server's
            threads -= sum(t.name.startswith(OWN_THREADS) for t in threading.enumerate())
        return fds, threads, round(rss_kb / 1024, 1)


class _LogTap(logging.Handler):
    """Hands the in-process server's log records (and uncaught thread errors) to the watches."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.watches: list[Watch] = []
        self.guard = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        with self.guard:
            watches = list(self.watches)
        owner = next((w for w in watches if record.thread in w.owned), None)
        owner = owner or next((w for w in watches if w.default), None)
        if owner is not None:
            owner.record(record)


@contextlib.contextmanager
def _log_tap() -> Any:
    """Route the reference server's logger here (not to stderr) for the battery's duration."""
    tap = _LogTap()
    logger = logging.getLogger(LOG)
    saved = (logger.level, logger.propagate)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    logger.addHandler(tap)
    previous_hook = threading.excepthook

    def hook(args: threading.ExceptHookArgs) -> None:
        record = logging.LogRecord(LOG, logging.ERROR, "", 0, "uncaught", None, None)
        record.exc_info = (args.exc_type, args.exc_value, args.exc_traceback)
        record.thread = args.thread.ident if args.thread is not None else None
        tap.emit(record)

    threading.excepthook = hook
    try:
        yield tap
    finally:
        threading.excepthook = previous_hook
        logger.removeHandler(tap)
        logger.setLevel(saved[0])
        logger.propagate = saved[1]


# -- one server under attack ------------------------------------------------------------


@dataclass
class Bench:
    """A running server of the target, the good client's context, and the watch on it."""

    target: Target
    spec: ServerSpec
    context: ssl.SSLContext
    tap: _LogTap
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
    run = hostile.Attack(
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


# -- the battery --------------------------------------------------------------------------


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
    detached: list[tuple[tuple[str, int], threading.Thread]] = []
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

    with _log_tap() as tap:
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
                    if hostile.KINDS[name].flood and count != counts[0]:
                        continue  # a memory bound: one flood shows it (64 would be 16 GiB)
                    if unbounded_below(name, count):
                        done(Scenario(name, count, inferred=True))
                        continue
                    busy = any(t.is_alive() for _, t in detached)
                    scenario = attack(
                        bench,
                        hostile.KINDS[name],
                        count,
                        during=during,
                        probe_s=probe_s,
                        cap_s=cap_s,
                        measure_resources=not (busy and bench.in_process),
                        on_detach=lambda thread, key=(name, count): detached.append((key, thread)),
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
        finally:
            deadline = time.monotonic() + cap_s + POSITION_S + (AFTER + 2) * PROBE_S + 10.0
            for _, thread in detached:
                thread.join(max(0.0, deadline - time.monotonic()))
            bench.stop()
            spares.close()
    for key, thread in detached:  # one that did not even finish by then: still waiting
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


def _progress_line(scenario: Scenario, alone_median: float, cap_s: float) -> str:
    entry = scenario.entry(alone_median, cap_s)
    return f"  {format_row(entry)}  ({scenario.seconds:.1f} s)"


# -- output -------------------------------------------------------------------------------

HEADER = (
    f"{'kind':22} {'N':>3} {'added ms':>9} {'max ms':>8} {'stall':>10} {'bound s':>8} "
    f"{'fail':>4} {'tb':>3} {'rst':>3} {'alive':>5}"
)


def format_row(entry: dict[str, Any]) -> str:
    during = entry["during"]
    added = "-" if entry["added_ms"] is None else f"{entry['added_ms']:+.0f}"
    longest = "-" if during["max_ms"] is None else f"{during['max_ms']:.0f}"
    bound = "-" if entry["bound_s"] is None else f"{entry['bound_s']:.2f}"
    stall = entry["stall"] + ("*" if entry.get("inferred") else "")
    return (
        f"{entry['kind']:22} {entry['attackers']:3} {added:>9} {longest:>8} {stall:>10} "
        f"{bound:>8} {during['failed']:4} {entry['tracebacks']:3} {entry['restarts']:3} "
        f"{'yes' if entry['alive'] else 'NO':>5}"
    )


def format_table(name: str, adapter: str, measured: dict[str, Any]) -> str:
    alone = measured["good_alone"]
    lines = [
        f"{name} ({adapter}, {measured['policy']}, workers {measured['workers'] or '?'}): good "
        f"client alone median {alone['median_ms']:.1f} ms, max {alone['max_ms']:.1f} ms; "
        f"probe {measured['probe_s']:g} s, cap {measured['cap_s']:g} s",
        HEADER,
        *(format_row(e) for e in measured["kinds"]),
    ]
    if any(e.get("inferred") for e in measured["kinds"]):
        lines.append("* unbounded with fewer attackers of the same kind; not run again")
    return "\n".join(lines)


# -- results file -------------------------------------------------------------------------


def read_results(path: Path) -> dict[str, Any] | None:
    """The results file's data, or None when there is none yet."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UsageError(f"{path}: not a readable results file ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("run", {}), dict):
        raise UsageError(f"{path}: not a results file (no 'run' object)")
    return data


def merge_into(path: Path, data: dict[str, Any] | None, target: str, block: dict) -> None:
    """Set ``run.resilience`` (keeping the rest of the file), atomically."""
    data = data if data is not None else {"run": {"target": target}}
    data.setdefault("run", {})["resilience"] = block
    text = json.dumps(data, indent=1) + "\n"
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


# -- the CLI ------------------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2
        raise UsageError(message)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive finite number of seconds: {text!r}")
    return value


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if not 1 <= value <= 1024:
        raise argparse.ArgumentTypeError(f"attackers must be 1 to 1024, not {value}")
    return value


def _names(values: Iterable[str]) -> list[str]:
    return [n for v in values for n in v.split(",") if n]


def parser(prog: str = "python -m matrix.resilience") -> argparse.ArgumentParser:
    p = _Parser(
        prog=prog,
        description="Run every hostile-client kind against a target while timing a good "
        "client; print the table and (with --results) write run.resilience.",
    )
    p.add_argument("--target", required=True, metavar="MODULE:FACTORY")
    p.add_argument(
        "--adapter",
        action="append",
        metavar="NAME",
        help="adapter to attack (repeatable; default: the target's first supported)",
    )
    p.add_argument(
        "--kinds", nargs="+", metavar="KIND", help=f"default: all ({', '.join(hostile.KINDS)})"
    )
    p.add_argument(
        "--attackers",
        nargs="+",
        type=_count,
        metavar="N",
        help="attacker counts (default: 1, the target's workers + 1, 64)",
    )
    p.add_argument(
        "--timeout",
        type=_seconds,
        default=CAP_S,
        metavar="SECONDS",
        help=f"the cap: a good request still waiting then is unbounded (default {CAP_S:g})",
    )
    p.add_argument("--results", metavar="PATH", help="results.json to write run.resilience into")
    p.add_argument(
        "--certs-dir",
        default="build/matrix-certs",
        metavar="DIR",
        help="certificate set, generated or reused (default build/matrix-certs)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    return p


def main(argv: list[str] | None = None, prog: str = "python -m matrix.resilience") -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    name = prog.split()[-1]
    started = time.monotonic()
    try:
        options = parser(prog).parse_args(argv)
        kinds = _names(options.kinds or hostile.KINDS)
        unknown = [k for k in kinds if k not in hostile.KINDS]
        if unknown:
            raise UsageError(f"unknown kind {unknown[0]!r} (known: {', '.join(hostile.KINDS)})")
        target = load_target(options.target)
        known = target_adapters(target)
        adapters = _names(options.adapter or [])
        bad = [a for a in adapters if a not in known]
        if bad:
            raise UsageError(f"unknown adapter {bad[0]!r} (known: {', '.join(known)})")
        path = Path(options.results) if options.results else None
        data = read_results(path) if path else None
        recorded = (data or {}).get("run", {}).get("target")
        if recorded and recorded != target.name:
            raise UsageError(f"{path}: results of target {recorded!r}, not {target.name!r}")
        if path is not None and not path.parent.is_dir():
            raise UsageError(f"{path}: no such directory {str(path.parent)!r}")
        try:
            certs = certs_gen.generate(options.certs_dir, profile=PROFILE)
        except certs_gen.CertsGenError as exc:
            raise UsageError(f"--certs-dir: {exc}") from None
        say = (lambda text: None) if options.quiet else (lambda t: print(t, flush=True))
        measured: dict[str, Any] = {}
        for adapter in adapters or [None]:
            result = run_battery(
                target,
                certs,
                adapter=adapter,
                kinds=kinds,
                counts=options.attackers,
                cap_s=options.timeout,
                progress=say,
            )
            chosen = adapter or choose_spec(target, certs)[0].adapter  # type: ignore[union-attr]
            measured[chosen] = result
        block = {
            "version": VERSION,
            "command": shlex.join(["python", "-m", "matrix.resilience", *argv]),
            "adapters": measured,
        }
        if path is not None:
            merge_into(path, data, target.name, block)
    except (UsageError, TargetLoadError) as exc:
        print(f"{name}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except MeasureError as exc:
        print(f"{name}: not measured: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except OSError as exc:
        print(f"{name}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    for adapter, result in measured.items():
        print(format_table(target.name, adapter, result))
    print(f"battery took {time.monotonic() - started:.1f} s", flush=True)
    return EXIT_OK


def _round(value: float, digits: int = 1) -> float:
    return round(value, digits)


if __name__ == "__main__":
    sys.exit(main())
