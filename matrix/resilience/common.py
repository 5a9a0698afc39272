"""The battery's settings and errors: numbers with their source, shared by its modules."""

from __future__ import annotations

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
INTERRUPT_S = 5.0  # after Ctrl-C: how long the battery waits for its stopped scenarios
BIND = "127.0.0.1"
SERVER_CERT = "server"
GOOD_CLIENT = "localhost"
SERVER_NAME = "localhost"
# ignore last: a server with no client-certificate option at all (Daphne)
POLICIES = ("required", "optional", "ignore")
PROFILE = "standard"
NONE, BOUNDED, UNBOUNDED = "none", "bounded", "unbounded"  # verdicts

OWN_THREADS = ("attacker-", "battery-")  # threads of the battery, never the server
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as a shell reports it
LOG = "mtls_matrix.reference"  # the reference server's logger


class UsageError(Exception):
    """One line for stderr; exit status 2."""


class MeasureError(Exception):
    """The battery could not measure (no server, the good client not served alone)."""


def round_to(value: float, digits: int = 1) -> float:
    return round(value, digits)
