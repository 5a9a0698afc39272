"""Run the matrix once per server target: one results file each, and who could not run.

    python -m harness.targets.compat [--out build/compat] [--report DIR]
        [--profile standard|extended|state] [TARGET ...] [-- PYTEST-ARGS]

For each target (default: all of ``TARGETS``) this runs, as a subprocess,

    python -m pytest matrix -p no:cacheprovider -q --target harness.targets.T:target
        --results OUT/T.json [PYTEST-ARGS]

and reads the results back. A target *ran* when pytest finished (exit 0, or 1
because cases failed: a divergence from the spec is a finding, not a harness
error) and every server configuration it needed started. A target is *not
runnable* when its package is not installed, or a server configuration could
not start or never became ready; the reason and the server's own output are
printed, and the other targets still run. Anything else (pytest interrupted,
a usage or internal error, no results written) is a harness failure.

After each target that ran, ``python -m matrix.resilience`` runs the
resilience battery on it (every hostile-client kind of SPEC section 7, with a
good client timed during and after; see docs/resilience.md) and merges the
figures into its results file as ``run.resilience`` (a stall is a finding, like
a failed case). ``--battery-timeout`` is the battery's cap (default 10 s: a
good request still waiting then is unbounded); ``--battery-kinds K,...`` runs
only those kinds; ``--no-battery`` skips the battery, and so does a partial
matrix run (``--case`` or ``-k`` among the pytest arguments), which is for
reproducing cases, not for a whole picture.

Version axis (docs/versions.md): ``--server PACKAGE==RELEASE`` (repeatable) or
``--versions FILE`` (one such line each) runs the targets serving that package once per
release, and ``--python 3.X`` (repeatable) once per interpreter (found on PATH or under
pyenv; a missing one is reported and its columns skipped, not fatal). Each such column runs
in a cached virtual environment (harness/targets/environments.py, ``--venv-cache DIR``)
holding the project's requirements and the pinned release, and gets its own results file,
``OUT/<target>@<release>-py<X.Y>.json``, which the compat report shows as its own column.

``--profile extended`` (or ``state``, the connection-state grids of docs/state.md and
docs/state-request.md) runs that profile instead (its results under
``build/compat-extended`` or ``build/compat-state`` unless ``--out`` says otherwise);
the resilience battery belongs to the standard run and is skipped.

Exit status: 0 when every target ran to completion (whatever its failures),
1 when some target was not runnable, 2 on a harness failure or bad usage.
``--report DIR`` then writes the side-by-side report with
``python -m reports compat OUT/*.json --out DIR``.
"""

from __future__ import annotations

import collections
import importlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from harness.target import TargetLoadError
from harness.usage import OneLineParser
from matrix.progress import CommandProgress

from .columns import Column, columns, target_package, targets_of
from .environments import EnvironmentError_, Pin, ensure, find_python, read_pins
from .process import PROJECT_ROOT

TARGETS = (
    "apache",
    "cheroot_native",
    "cherrypy",
    "gunicorn",
    "gunicorn-gthread",
    "uvicorn",
    "hypercorn",
    "granian",
    "werkzeug",
    "tornado",
    "aiohttp",
    "sanic",
    "sanic-multi",
    "twisted",
    "twisted-sni",
    "daphne",
)
# targets a command line may name besides TARGETS (the reference runs in-process elsewhere)
EXTRA_TARGETS = ("reference",)
# a target whose factory is not harness.targets.NAME:target
REFERENCES = {
    "gunicorn-gthread": "harness.targets.gunicorn:gthread_target",
    "sanic-multi": "harness.targets.sanic:multi_target",
    "twisted-sni": "harness.targets.twisted:sni_target",
}
TARGET_TIMEOUT = 900.0  # seconds for one target's whole matrix run
BATTERY_TIMEOUT = 10.0  # seconds: the resilience battery's cap
BATTERY_BOUND = 360.0  # seconds for the whole battery step of one target (25 kinds: 60-200 s)
RAN, NOT_RUNNABLE, HARNESS_FAILED = "ran", "not runnable", "harness failed"
EXIT_OK, EXIT_NOT_RUNNABLE, EXIT_HARNESS = 0, 1, 2
_START_FAILED = "could not start"


@dataclass
class Outcome:
    target: str
    status: str
    reason: str = ""
    results: Path | None = None
    counts: dict[str, int] = field(default_factory=dict)
    duration_s: float = 0.0
    idle: str = ""  # the resilience battery, in a few words ("" when it did not run)
    server: str = ""  # the target's name when ``target`` above is a column's label

    @property
    def target_name(self) -> str:
        return self.server or self.target


def main(argv: list[str] | None = None, prog: str = "python -m harness.targets.compat") -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    pytest_args: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, pytest_args = argv[:cut], argv[cut + 1 :]
    parser = OneLineParser(
        prog=prog,
        description="Run the mTLS matrix against each server target; one results file each.",
    )
    parser.add_argument(
        "targets", nargs="*", metavar="TARGET", help=f"default: {' '.join(TARGETS)}"
    )
    parser.add_argument(
        "--out", help="results directory (default build/compat, or build/compat-PROFILE)"
    )
    parser.add_argument(
        "--profile",
        default="standard",
        choices=("standard", "extended", "state"),
        help="which matrix each target runs (default standard)",
    )
    parser.add_argument("--report", metavar="DIR", help="then write the compat report here")
    parser.add_argument("--timeout", type=float, default=TARGET_TIMEOUT, help="seconds per target")
    parser.add_argument(
        "--start-timeout",
        type=float,
        metavar="SECONDS",
        help="deadline for each server start (the matrix's --start-timeout; default 30)",
    )
    parser.add_argument(
        "--battery-timeout",
        "--idle-timeout",
        dest="battery_timeout",
        type=float,
        default=BATTERY_TIMEOUT,
        metavar="SECONDS",
        help=f"the resilience battery's cap (default {BATTERY_TIMEOUT:g})",
    )
    parser.add_argument(
        "--battery-kinds",
        metavar="KIND,...",
        help="run only these kinds of the resilience battery (default: all)",
    )
    parser.add_argument(
        "--no-battery",
        "--no-idle",
        dest="no_battery",
        action="store_true",
        help="skip the resilience battery (python -m matrix.resilience)",
    )
    parser.add_argument(
        "--server",
        action="append",
        default=[],
        metavar="PACKAGE==RELEASE",
        help="run the targets serving PACKAGE at this release (repeatable; a column each)",
    )
    parser.add_argument(
        "--versions", metavar="FILE", help="PACKAGE==RELEASE lines, as many --server options"
    )
    parser.add_argument(
        "--python",
        action="append",
        default=[],
        metavar="3.X",
        help="run each target under this Python too (repeatable; a column each)",
    )
    parser.add_argument(
        "--venv-cache", metavar="DIR", help="where the version axis keeps its environments"
    )
    parser.add_argument(
        "-q", "--quiet", action="store_true", help="no progress display on a terminal"
    )
    options = parser.parse_args(argv)
    known = (*TARGETS, *EXTRA_TARGETS)
    unknown = [t for t in options.targets if t not in known]
    if unknown:
        parser.error(f"unknown target {unknown[0]!r} (known: {', '.join(known)})")
    try:
        pins = [Pin.parse(text) for text in options.server]
        if options.versions:
            pins += read_pins(Path(options.versions))
    except (ValueError, EnvironmentError_) as exc:
        parser.error(str(exc))
    selected = list(options.targets) or (targets_of(pins, TARGETS) if pins else list(TARGETS))
    if pins and not selected:
        parser.error(f"no target serves {', '.join(sorted({p.package for p in pins}))}")
    pythons = {}
    for version in options.python:
        try:
            pythons[version] = find_python(version)
        except EnvironmentError_ as exc:
            print(f"compat: {exc}; its columns are skipped", file=sys.stderr)
    if options.python and not pythons:
        parser.error("none of the --python interpreters was found")
    extended = options.profile != "standard"
    out = Path(options.out or ("build/compat" + (f"-{options.profile}" if extended else "")))
    out.mkdir(parents=True, exist_ok=True)
    if extended:
        pytest_args = ["--profile", options.profile, *pytest_args]
    if options.start_timeout is not None:
        pytest_args = ["--start-timeout", str(options.start_timeout), *pytest_args]
    outcomes = []
    try:
        battery = not options.no_battery and not partial_run(pytest_args) and not extended
        planned = columns(selected, pins, list(pythons))
        progress = CommandProgress(len(planned), "compat columns", quiet=options.quiet)
        for column in progress_over(progress, planned, outcomes):
            python = sys.executable
            if column.needs_environment:
                base = pythons[column.python] if column.python else Path(sys.executable)
                print(f"== {column.label}: environment", flush=True)
                try:
                    cache, server = _cache(options.venv_cache), target_package(column.target)
                    python = str(ensure(base, list(column.pins), cache, server))
                except EnvironmentError_ as exc:
                    outcomes.append(_report(Outcome(column.label, NOT_RUNNABLE, str(exc)), []))
                    continue
            outcome = run_target(column, out, pytest_args, options.timeout, python)
            if battery and outcome.status == RAN and outcome.results is not None:
                battery_step(
                    outcome,
                    certs_dir(pytest_args),
                    options.battery_timeout,
                    options.battery_kinds,
                    python,
                    column_env(column),
                )
            outcomes.append(outcome)
    except KeyboardInterrupt:
        print("compat: interrupted", file=sys.stderr)
        return 130
    print_summary(outcomes)
    status = exit_status(outcomes)
    if options.report:
        files = [str(o.results) for o in outcomes if o.results is not None]
        if files:
            report = subprocess.run(
                [sys.executable, "-m", "reports", "compat", *files, "--out", options.report]
            )
            if report.returncode != 0:
                print(f"compat: the report failed (exit {report.returncode})", file=sys.stderr)
                status = EXIT_HARNESS
    return status


def progress_over(progress: CommandProgress, planned: list[Column], outcomes: list[Outcome]):
    """Yield the columns while the progress display counts them (and their failures)."""
    with progress:
        for column in planned:
            done = len(outcomes)
            yield column
            new = outcomes[done:]
            failed = any(o.status != RAN or o.counts.get("fail") for o in new)
            progress.advance(failed=failed)


def exit_status(outcomes: list[Outcome]) -> int:
    statuses = {o.status for o in outcomes}
    if HARNESS_FAILED in statuses:
        return EXIT_HARNESS
    if NOT_RUNNABLE in statuses:
        return EXIT_NOT_RUNNABLE
    return EXIT_OK


def _cache(option: str | None) -> Path | None:
    return Path(option) if option else None


def run_target(
    column: Column | str,
    out: Path,
    pytest_args: list[str],
    timeout: float,
    python: str | None = None,
) -> Outcome:
    """Run one column's matrix as ``python -m pytest matrix`` (``python``: its environment's
    interpreter, default this one) and read its results back."""
    if isinstance(column, str):
        column = Column(column)
    name, label = column.target, column.label
    print(f"== {label}", flush=True)
    if not column.needs_environment:  # its environment is this one: is the server here?
        module_name, _, factory = reference(name).partition(":")
        try:
            getattr(importlib.import_module(module_name), factory)()
        except TargetLoadError as exc:  # the factory refuses a server that is not installed
            return _report(Outcome(label, NOT_RUNNABLE, str(exc)), [])
    results = (out / f"{label}.json").resolve()
    results.unlink(missing_ok=True)
    command = [
        python or sys.executable, "-m", "pytest", "matrix", "-p", "no:cacheprovider", "-q",
        "--tb=no", "-rN", "--target", reference(name), "--results", str(results), *pytest_args,
    ]  # fmt: skip
    started = time.monotonic()
    code, tail = _run_streaming(command, timeout, column_env(column))
    duration = time.monotonic() - started
    if code not in (0, 1) or not results.is_file():
        why = f"pytest exited with status {code}" + ("" if results.is_file() else ", no results")
        if code == 4:  # usage error: the target could not be loaded (e.g. not installed)
            return _report(Outcome(label, NOT_RUNNABLE, why, None, {}, duration), tail)
        return _report(Outcome(label, HARNESS_FAILED, why, None, {}, duration), tail)
    cases = json.loads(results.read_text())["cases"]
    counts = dict(collections.Counter(c["status"] for c in cases))
    counts["unsupported"] = sum(
        1 for c in cases if c["status"] == "skip" and c["detail"].startswith("unsupported by ")
    )
    failed_starts = {}
    for case in cases:
        if case["status"] == "fail" and _START_FAILED in case["detail"]:
            failed_starts.setdefault(case["detail"], case["id"])
    if failed_starts:
        first = next(iter(failed_starts))
        why = f"{len(failed_starts)} server configuration(s) could not start; first: {first}"
        return _report(Outcome(label, NOT_RUNNABLE, why, results, counts, duration), [])
    return Outcome(label, RAN, "", results, counts, duration, server=name)


def column_env(column: Column) -> dict[str, str]:
    """The environment of a column's processes: the project from its source tree (the
    cached environments do not install it) and the column's label for ``run.column``."""
    env = dict(os.environ, PYTHONUNBUFFERED="1", MTLS_MATRIX_COLUMN=column.label)
    if column.needs_environment:
        path = [str(PROJECT_ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
        env["PYTHONPATH"] = os.pathsep.join(path)
    return env


def partial_run(pytest_args: list[str]) -> bool:
    """Whether the pytest arguments select only some cases (``--case``, ``-k``)."""
    return any(a in ("--case", "-k") or a.startswith(("--case=", "-k")) for a in pytest_args)


def certs_dir(pytest_args: list[str]) -> Path:
    """The certificate set the matrix used: its ``--certs-dir``, else the plugin's default."""
    found = "build/matrix-certs"
    for index, arg in enumerate(pytest_args):
        if arg == "--certs-dir" and index + 1 < len(pytest_args):
            found = pytest_args[index + 1]
        elif arg.startswith("--certs-dir="):
            found = arg.partition("=")[2]
    return PROJECT_ROOT / found  # pytest runs in PROJECT_ROOT; an absolute path stays as is


def reference(name: str) -> str:
    """The ``--target`` value of a compat target."""
    return REFERENCES.get(name, f"harness.targets.{name}:target")


def battery_step(
    outcome: Outcome,
    certs: Path,
    timeout: float,
    kinds: str | None = None,
    python: str | None = None,
    env: dict[str, str] | None = None,
) -> None:
    """Run ``python -m matrix.resilience`` on the target; it merges its figures into the results.

    A battery that could not measure (exit 1: the server did not start or serve) leaves
    the target's status alone; a harness failure of the step (anything else) is one.
    """
    assert outcome.results is not None
    command = [
        python or sys.executable, "-m", "matrix.resilience",
        "--target", reference(outcome.target_name),
        "--results", str(outcome.results), "--certs-dir", str(certs),
        "--timeout", f"{timeout:g}", "--quiet",
    ]  # fmt: skip
    if kinds:
        command += ["--kinds", kinds]
    bound = BATTERY_BOUND + 4 * timeout
    try:
        step = subprocess.run(
            command,
            cwd=PROJECT_ROOT,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=bound,
            env=env or dict(os.environ, PYTHONUNBUFFERED="1"),
        )
    except subprocess.TimeoutExpired:
        outcome.idle = "not measured"
        outcome.status = HARNESS_FAILED
        outcome.reason = f"the resilience battery did not finish within {bound:g} s"
        _report(outcome, [])
        return
    for line in (step.stdout + step.stderr).splitlines():
        print(line, flush=True)
    if step.returncode == 0:
        outcome.idle = battery_summary(_battery(outcome.results))
    elif step.returncode == 1:
        outcome.idle = "not measured"
    else:
        outcome.idle = "step failed"
        outcome.status = HARNESS_FAILED
        outcome.reason = f"the resilience battery exited with status {step.returncode}"
        _report(outcome, step.stderr.splitlines())


def battery_summary(block: dict) -> str:
    """``no stall`` or e.g. ``3 unbounded, 2 bounded, 1 dead`` over every kind x count."""
    entries = [e for a in (block.get("adapters") or {}).values() for e in a.get("kinds", [])]
    if not entries:
        return "not measured"
    words = []
    for stall in ("unbounded", "bounded"):
        found = sum(e.get("stall") == stall for e in entries)
        if found:
            words.append(f"{found} {stall}")
    dead = sum(not e.get("alive", True) for e in entries)
    if dead:
        words.append(f"{dead} dead")
    return ", ".join(words) or "no stall"


def _battery(results: Path) -> dict:
    try:
        block = json.loads(results.read_text()).get("run", {}).get("resilience", {})
        return block if isinstance(block, dict) else {}
    except (OSError, ValueError, AttributeError):
        return {}


def _report(outcome: Outcome, tail: list[str]) -> Outcome:
    print(f"compat: {outcome.target}: {outcome.status}: {outcome.reason}", flush=True)
    for line in tail[-20:]:
        print(f"    {line}", flush=True)
    return outcome


def _run_streaming(
    command: list[str], timeout: float, env: dict[str, str] | None = None
) -> tuple[int, list[str]]:
    """Run ``command``, echoing its output; (exit status, last lines). Killed at ``timeout``."""
    env = env or dict(os.environ, PYTHONUNBUFFERED="1")
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env=env,
        cwd=PROJECT_ROOT,  # "matrix" and the default --certs-dir are relative to it
    )
    timer = threading.Timer(timeout, _terminate, (process,))
    timer.daemon = True
    timer.start()
    tail: collections.deque[str] = collections.deque(maxlen=40)
    try:
        assert process.stdout is not None
        for raw in process.stdout:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            tail.append(line)
            print(line, flush=True)
        return process.wait(), list(tail)
    except KeyboardInterrupt:  # pytest got the same Ctrl-C: let it tear its servers down
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
        raise
    finally:
        timer.cancel()


def _terminate(process: subprocess.Popen) -> None:
    """SIGINT first (pytest tears its servers down), then SIGKILL (their watch pipes do it)."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGINT)
    try:
        process.wait(15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def print_summary(outcomes: list[Outcome]) -> None:
    print("\n== compat summary")
    print(
        f"{'target':16} {'status':14} {'pass':>5} {'fail':>5} {'skip':>5} {'unsup':>6} {'time':>7}"
        f"  {'resilience':24}"
    )
    for o in outcomes:
        c = o.counts
        print(
            f"{o.target:16} {o.status:14} {c.get('pass', 0):5} {c.get('fail', 0):5} "
            f"{c.get('skip', 0):5} {c.get('unsupported', 0):6} {o.duration_s:6.1f}s"
            f"  {o.idle or '-':24}" + (f"  {o.results}" if o.results else "")
        )
    for o in outcomes:
        if o.status != RAN:
            print(f"{o.target}: {o.status}: {o.reason}")


if __name__ == "__main__":
    sys.exit(main())
