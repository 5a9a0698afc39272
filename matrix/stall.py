"""Does one idle client delay a good one? Measured on any target, merged into its results.

    python -m matrix.stall --target MODULE:FACTORY --results PATH
        [--certs-dir DIR] [--timeout SECONDS] [--adapter NAME]

A client that opens a TCP connection and sends nothing must not hold up anyone
else (issue 3: at most 100 ms extra for the reference server). A server that
runs the TLS handshake on its accept thread, or has one worker that blocks on
the first read, serves nobody until that client goes away or its own timeout
fires. ``measure_idle_stall`` starts ONE server through the target's normal
``start(spec)`` (bind 127.0.0.1, the good ``server`` certificate, policy
``required`` where the target can express it, else ``optional``; the target's
first adapter that it supports) and, with the client credential ``localhost``
trusting ``ca`` (the matrix's good client):

1. times a warm-up request and then ``samples`` good requests alone; their
   median is the baseline;
2. for each count in ``idle_counts`` (1 and 4), times a good request alone,
   opens that many TCP connections that send nothing, times one good request,
   closes them, and repeats (``idle_samples`` times, stopping at the first
   request that fails or times out); the median with idle clients is
   ``with_idle_ms[count]``, and ``added_ms[count]`` is the smallest difference
   of a pair (with idle clients minus alone, each pair measured back to back,
   so a machine slow for a moment slows both alike and is not taken for a
   stall; a real stall delays every request, so the smallest shows it);
3. times one more good request once every idle connection is closed
   (``after_ms``: the server recovers, or not).

Every request has a client timeout (``timeout``, 5 s by default); one that
times out is recorded at its elapsed time with its count in ``timed_out``,
which reports show as "≥ N ms". The server is stalled when any count adds more
than ``threshold_ms`` (100; ``extra_ms`` is the largest ``added_ms``), or a good
request times out or fails while the idle clients are connected. Nothing
sleeps; the idle connections are closed and the server stopped whatever happens.

The CLI merges the measurement into an existing results file as
``run.resilience.idle_client`` (written atomically), so the plain
``pytest matrix`` run is not slowed down; the compat driver calls it for each
target after its matrix run. Exit status: 0 when measured (stalled or not) or
when the target cannot express any configuration used here, 1 when the
measurement failed (server did not start, the good client was not served
alone; the reason is recorded), 2 on bad usage or an unreadable results file.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import certs_gen
from harness.client import OK, TLSClient
from harness.target import ServerSpec, Target, TargetLoadError, load_target

from .dimensions import ADAPTERS, TRUST_ROOT

IDLE_COUNTS = (1, 4)
SAMPLES = 5
IDLE_SAMPLES = 3
TIMEOUT_S = 5.0
STALL_MS = 100.0  # issue 3's bound for the reference server
BIND = "127.0.0.1"
SERVER_CERT = "server"
GOOD_CLIENT = "localhost"
POLICIES = ("required", "optional")
PROFILE = "standard"
ERROR_CHARS = 2000
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def choose_spec(
    target: Target, certs: certs_gen.CertSet, adapter: str | None = None
) -> tuple[ServerSpec | None, str]:
    """The spec to measure: the target's first supported adapter, ``required`` if it can.

    Adapters are tried in the target's own order (its optional ``adapters``), then the
    matrix's. Returns (None, why) when the target supports none of them.
    """
    server = certs[SERVER_CERT]
    adapters = [adapter] if adapter else list(dict.fromkeys((*_own(target), *ADAPTERS)))
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


def measure_idle_stall(
    target: Target,
    certs: certs_gen.CertSet,
    *,
    adapter: str | None = None,
    idle_counts: Sequence[int] = IDLE_COUNTS,
    samples: int = SAMPLES,
    idle_samples: int = IDLE_SAMPLES,
    timeout: float = TIMEOUT_S,
    threshold_ms: float = STALL_MS,
) -> dict[str, Any]:
    """Measure how much ``idle_counts`` silent TCP clients delay a good request (see above)."""
    spec, why = choose_spec(target, certs, adapter)
    out: dict[str, Any] = {
        "adapter": spec.adapter if spec else adapter,
        "policy": spec.client_check if spec else None,
        "bind": BIND,
        "client": GOOD_CLIENT,
        "baseline_ms": None,
        "with_idle_ms": {},
        "added_ms": {},
        "timed_out": [],
        "after_ms": None,
        "extra_ms": None,
        "stalled": None,
        "threshold_ms": threshold_ms,
        "timeout_s": timeout,
        "detail": "",
    }
    if spec is None:
        out["unsupported"] = why
        out["detail"] = f"not measured: unsupported by {target.name}: {why}"
        return out
    client = TLSClient(certs[TRUST_ROOT].cert, certs[GOOD_CLIENT].key_and_chain, timeout=timeout)
    try:
        try:
            server = target.start(spec)
        except Exception as exc:  # any start failure is a result, with the server's words
            return _failed(out, f"server could not start: {type(exc).__name__}: {exc}")
        try:
            _measure(out, server, client, idle_counts, samples, idle_samples, timeout)
        finally:
            server.stop()
    finally:
        client.close()
    return out


def _measure(
    out: dict[str, Any],
    server: Any,
    client: TLSClient,
    idle_counts: Sequence[int],
    samples: int,
    idle_samples: int,
    timeout: float,
) -> None:
    address = (BIND, server.port)
    url = f"https://{BIND}:{server.port}/"
    alone = []
    for index in range(samples + 1):  # the first is a warm-up, not counted
        ms, attempt = _timed(client, url)
        if attempt.outcome != OK:
            _failed(out, f"the good client alone got {attempt.outcome}: {attempt.detail}")
            return
        if index:
            alone.append(ms)
    baseline = statistics.median(alone)
    out["baseline_ms"] = _round(baseline)
    problems: list[str] = []
    refused = False  # a good request failed (not a timeout) while idle clients were open
    for count in idle_counts:
        key = str(count)
        timings: list[float] = []
        added: list[float] = []
        for _ in range(idle_samples):
            # a request alone right before each one with idle clients: a machine that is
            # slow for a moment slows both alike, and their difference is what idling adds
            before, attempt = _timed(client, url)
            if attempt.outcome != OK:
                before = baseline
            with _idle_connections(address, count, timeout) as opened:
                ms, attempt = _timed(client, url)
            timings.append(ms)
            added.append(ms - before)
            if attempt.outcome != OK:
                if ms >= timeout * 1000:
                    out["timed_out"].append(key)  # shown with the figures below
                else:
                    refused = True
                    problems.append(
                        f"with {count} idle: good client got {attempt.outcome} after "
                        f"{ms:.0f} ms: {attempt.detail}"
                    )
                break
            if opened < count:
                problems.append(f"with {count} idle: only {opened} idle connections opened")
        failed = len(timings) < idle_samples
        out["with_idle_ms"][key] = _round(timings[-1] if failed else statistics.median(timings))
        out["added_ms"][key] = _round(added[-1] if failed else min(added))
    ms, attempt = _timed(client, url)
    out["after_ms"] = _round(ms)
    if attempt.outcome != OK:
        problems.append(f"after closing the idle connections: {attempt.outcome}")
    threshold = out["threshold_ms"]
    extra = max(out["added_ms"].values(), default=0.0)
    out["extra_ms"] = _round(max(extra, 0.0))
    out["stalled"] = bool(out["timed_out"]) or refused or extra > threshold
    if out["stalled"]:
        first = next(
            (n for n, v in out["added_ms"].items() if v > threshold or n in out["timed_out"]),
            next(iter(out["added_ms"]), "1"),
        )
        who = "one idle client delays" if first == "1" else f"{first} idle clients delay"
        verdict = f"{who} a good one by {extra:.0f} ms (more than {threshold:.0f} ms)"
    else:
        verdict = f"idle clients add at most {max(extra, 0):.0f} ms (bound {threshold:.0f})"
    shown = ", ".join(
        f"{n} idle {v:.0f} ms" + (" (timed out)" if n in out["timed_out"] else "")
        for n, v in out["with_idle_ms"].items()
    )
    out["detail"] = "; ".join([f"{verdict}: baseline {baseline:.1f} ms, {shown}", *problems[:4]])


def _failed(out: dict[str, Any], why: str) -> dict[str, Any]:
    out["error"] = why[:ERROR_CHARS]
    out["detail"] = f"not measured: {why}"[:ERROR_CHARS]
    return out


def _timed(client: TLSClient, url: str) -> tuple[float, Any]:
    started = time.perf_counter()
    attempt = client.get(url)
    return (time.perf_counter() - started) * 1000, attempt


@contextlib.contextmanager
def _idle_connections(address: tuple[str, int], count: int, timeout: float) -> Iterator[int]:
    """``count`` TCP connections that send nothing, open for the block; yields how many."""
    opened: list[socket.socket] = []
    try:
        for _ in range(count):
            with contextlib.suppress(OSError):
                opened.append(socket.create_connection(address, timeout=timeout))
        yield len(opened)
    finally:
        for sock in opened:
            sock.close()


def _round(value: float) -> float:
    return round(value, 1)


# -- the CLI ---------------------------------------------------------------------------------


class UsageError(Exception):
    """One line for stderr; exit status 2."""


def merge_into(path: Path, measurement: dict[str, Any]) -> None:
    """Set ``run.resilience.idle_client`` in the results file, atomically; keep the rest."""
    data = read_results(path)
    run = data.setdefault("run", {})
    resilience = run.get("resilience")
    if not isinstance(resilience, dict):
        resilience = run["resilience"] = {}
    resilience["idle_client"] = measurement
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


def read_results(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"{path}: no such results file (run the matrix first)") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UsageError(f"{path}: not a readable results file ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("run", {}), dict):
        raise UsageError(f"{path}: not a results file (no 'run' object)")
    return data


def summary(name: str, m: dict[str, Any]) -> str:
    if m.get("stalled") is None:
        return f"idle client: {name}: {m['detail']}"
    word = "STALLED" if m["stalled"] else "no stall"
    return f"idle client: {name} ({m['adapter']}, {m['policy']}): {word}: {m['detail']}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m matrix.stall",
        description="Measure whether one idle client delays a good one; merge the figures "
        "into a results file as run.resilience.idle_client.",
    )
    parser.add_argument("--target", required=True, metavar="MODULE:FACTORY")
    parser.add_argument("--results", required=True, metavar="PATH", help="results.json to update")
    parser.add_argument(
        "--certs-dir",
        default="build/matrix-certs",
        metavar="DIR",
        help="certificate set, generated or reused (default build/matrix-certs)",
    )
    parser.add_argument(
        "--timeout", type=float, default=TIMEOUT_S, help="client timeout per request, seconds"
    )
    parser.add_argument("--adapter", help="measure this adapter (default: the target's first)")
    options = parser.parse_args(argv)
    if options.timeout <= 0:
        parser.error("--timeout must be positive")
    path = Path(options.results)
    # The reference server logs one line per refused connection; the idle ones are expected.
    logging.getLogger("mtls_matrix.reference").addHandler(logging.NullHandler())
    try:
        data = read_results(path)
        target = load_target(options.target)
        recorded = data.get("run", {}).get("target")
        if recorded and recorded != target.name:
            raise UsageError(f"{path}: results of target {recorded!r}, not {target.name!r}")
        try:
            certs = certs_gen.generate(options.certs_dir, profile=PROFILE)
        except certs_gen.CertsGenError as exc:
            raise UsageError(f"--certs-dir: {exc}") from None
        measurement = measure_idle_stall(
            target, certs, adapter=options.adapter, timeout=options.timeout
        )
        merge_into(path, measurement)
    except (UsageError, TargetLoadError) as exc:
        print(f"matrix.stall: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:
        print(f"matrix.stall: error: {path}: cannot write ({exc})", file=sys.stderr)
        return EXIT_USAGE
    print(summary(target.name, measurement), flush=True)
    return EXIT_FAILED if measurement.get("error") else EXIT_OK


def _own(target: Target) -> tuple[str, ...]:
    return tuple(getattr(target, "adapters", ()))


if __name__ == "__main__":
    sys.exit(main())
