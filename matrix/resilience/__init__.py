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
   ``workers``, 1 and 64; a kind whose ``counts`` is ``FIRST``, the two floods
   that measure memory bounds, at the first count only), breadth first, and
   each kind of :mod:`harness.hostile` (``KINDS``, the kinds as data): opens N
   attackers on their own threads, waits (at most ``POSITION_S``) until they
   are in position, times up to ``DURING`` good requests while they hold,
   releases them, times ``AFTER`` good requests, and reads the server's output
   and resources over the scenario;
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
harness captured; in-process, :class:`harness.capture.OutputCapture`: log
records of any logger, ``sys.stderr`` lines and uncaught thread exceptions,
kept off the terminal while the battery runs) and worker restarts from the target's optional
``restart_pattern`` (gunicorn: "Booting worker with pid"). Resources (open
fds, threads, RSS) are read from ``/proc`` before the attackers arrive and
after they leave: for an in-process target the battery's own process (the
battery's own threads excluded), for a process target the sum over the
server's session; none for a scenario finished in the background on an
in-process target (other servers share the process then). In-process events
are told apart by the thread that produced them. A server that no longer
serves after a scenario is replaced for the next one.

The package by job: :mod:`.cli` (options, exit status, Ctrl-C), :mod:`.battery`
(one adapter, every kind x count), :mod:`.scenario` (one kind x count measured),
:mod:`.good` (the good client), :mod:`.verdicts`, :mod:`.watch` (output and
resources), :mod:`.tables`, :mod:`.results`, :mod:`.common` (numbers, errors).

Results: ``run.resilience`` in the shape docs/resilience.md gives (version 1), merged
into ``--results`` (an existing results file keeps everything else; a new one is
created; its permission bits are kept). Exit status: 0 when the battery ran
(whatever it found), 1 when it could not measure (the server did not start, the
good client was not served alone), 2 on bad usage, 130 on Ctrl-C (one line; the
results file left as it was).
"""

from __future__ import annotations

from .battery import (
    choose_spec,
    run_battery,
    target_adapters,
)
from .cli import (
    main,
    parser,
)
from .common import (
    ADDED_MS,
    AFTER,
    BIND,
    BOUNDED,
    CAP_S,
    DURING,
    GOOD_ALONE,
    GOOD_CLIENT,
    LOG,
    MAX_ATTACKERS,
    NONE,
    PACE_S,
    POSITION_S,
    PROBE_S,
    SLOW_MS,
    UNBOUNDED,
    VERSION,
    MeasureError,
    UsageError,
)
from .good import (
    Sample,
    good_context,
    good_request,
    good_requests,
    summarize,
)
from .results import (
    merge_into,
    read_results,
)
from .scenario import (
    Bench,
    Scenario,
    Spares,
    attack,
)
from .tables import (
    HEADER,
    format_row,
    format_table,
)
from .verdicts import (
    attacker_counts,
    classify,
    runs_at,
)
from .watch import (
    TRACEBACK,
    Watch,
)

__all__ = [
    "ADDED_MS",
    "AFTER",
    "BIND",
    "BOUNDED",
    "CAP_S",
    "DURING",
    "GOOD_ALONE",
    "GOOD_CLIENT",
    "HEADER",
    "LOG",
    "MAX_ATTACKERS",
    "NONE",
    "PACE_S",
    "POSITION_S",
    "PROBE_S",
    "SLOW_MS",
    "TRACEBACK",
    "UNBOUNDED",
    "VERSION",
    "Bench",
    "MeasureError",
    "Sample",
    "Scenario",
    "Spares",
    "UsageError",
    "Watch",
    "attack",
    "attacker_counts",
    "choose_spec",
    "classify",
    "format_row",
    "format_table",
    "good_context",
    "good_request",
    "good_requests",
    "main",
    "merge_into",
    "parser",
    "read_results",
    "run_battery",
    "runs_at",
    "summarize",
    "target_adapters",
]
