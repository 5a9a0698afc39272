"""``python -m matrix.resilience``: options, the run, the table, exit status."""

from __future__ import annotations

import argparse
import contextlib
import math
import shlex
import signal
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import certs_gen
from harness import hostile
from harness.target import TargetLoadError, load_target

from .battery import choose_spec, run_battery, target_adapters
from .common import (
    CAP_S,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    PROFILE,
    VERSION,
    MeasureError,
    UsageError,
)
from .results import merge_into, read_results
from .tables import format_table


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
    """Run the battery; exit 0, 1 (not measured), 2 (usage) or 130 (interrupted).

    Ctrl-C: the first SIGINT stops the battery (servers stopped, attackers released, at
    most ``INTERRUPT_S`` for what ran in the background), later ones are ignored until
    then; one line on stderr, and the results file is left exactly as it was (the block
    is written only once every adapter has been measured, so an interrupted battery
    never publishes half a table).
    """
    with _first_interrupt_only():
        return _main(argv, prog)


@contextlib.contextmanager
def _first_interrupt_only() -> Iterator[None]:
    """SIGINT raises KeyboardInterrupt once; repeats are ignored while the battery stops."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    seen = []

    def interrupt(signum: int, frame: Any) -> None:
        if not seen:
            seen.append(signum)
            raise KeyboardInterrupt

    previous = signal.signal(signal.SIGINT, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _main(argv: list[str] | None, prog: str) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    name = prog.split()[-1]
    started = time.monotonic()
    path: Path | None = None
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
    except KeyboardInterrupt:
        kept = f"; {path} left as it was" if path is not None else ""
        print(f"{name}: interrupted{kept}", file=sys.stderr, flush=True)
        return EXIT_INTERRUPTED
    for adapter, result in measured.items():
        print(format_table(target.name, adapter, result))
    print(f"battery took {time.monotonic() - started:.1f} s", flush=True)
    return EXIT_OK
