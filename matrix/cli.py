"""``mtls-matrix``: one command for every job the project does.

    mtls-matrix run --target MODULE:FACTORY --out DIR   the matrix against a server
    mtls-matrix check-target --target MODULE:FACTORY    what it would get, before running
    mtls-matrix compat [TARGET ...]                     every bundled server target
    mtls-matrix report RESULTS [--out DIR]              HTML and Markdown from results
    mtls-matrix diff OLD NEW                            what changed between two runs
    mtls-matrix certs DIR                               a certificate set on its own
    mtls-matrix serve --adapter ... --bind HOST:PORT    the reference server
    mtls-matrix resilience|limbo|clients ...            the other batteries

``run`` makes the current directory importable (as ``python -m`` does), so a
target module beside the user is found after a plain ``pip install``. It runs
pytest in this process on the installed matrix module, with the plugin (the
``pytest11`` entry point, or ``-p matrix.plugin`` when run from a source tree),
and writes into ``--out``: ``results.json``, ``junit.xml``, ``matrix.html`` and
``summary.md`` (the reports are written after a failing run too: that is when
they matter most), and the certificate set under ``certs/``. Everything that can
be checked before the run is: the target and its contract, the output directory
(created, writable, and holding nothing this project did not write).

The other subcommands hand their arguments to the module that does the job, the
same ``main`` as its ``python -m`` alias; ``resilience``, ``limbo`` and
``clients`` are imported only when asked for. Exit statuses: 0 success, 1 the
job found failures (failed cases, a regression), 2 bad input or usage (one line
on stderr), otherwise pytest's own (3 internal error, 5 no case selected).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import inspect
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path

from harness.usage import OneLineParser

from . import interrupts

PROG = "mtls-matrix"
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
OUTPUTS = ("results.json", "junit.xml", "matrix.html", "summary.md")

# subcommand -> (module candidates holding main(argv) -> int, one-line help)
DELEGATES: dict[str, tuple[tuple[str, ...], str]] = {
    "compat": (("harness.targets.compat",), "run the matrix against every bundled server target"),
    "certs": (("certs_gen.__main__",), "generate (or reuse) a certificate set in DIR"),
    "fuzz": (("matrix.fuzz.cli",), "generated client certificates against targets and Apache"),
    "serve": (("harness.reference.__main__",), "run the reference server"),
    "resilience": (("matrix.resilience",), "the hostile-client battery against a target"),
    "limbo": (
        ("matrix.limbo.cli", "matrix.limbo.__main__"),
        "x509-limbo path-validation cases against targets",
    ),
    "replay": (
        ("matrix.replay.cli",),
        "replay public server bugs on their affected and fixed releases",
    ),
    "clients": (
        ("matrix.clients",),
        "real clients (curl, openssl, wget, httpx) against the reference server",
    ),
}


class UsageError(Exception):
    """Bad input to a subcommand; the message is one line."""


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in DELEGATES:
        try:
            with interrupts.handled():
                if argv[0] == "compat":
                    return delegate("compat", compat_args(argv[1:]))
                return delegate(argv[0], argv[1:])
        except KeyboardInterrupt:  # whatever the job was doing: one line, no traceback
            print(f"{PROG} {argv[0]}: {interrupts.describe()}", file=sys.stderr)
            return interrupts.EXIT_INTERRUPTED
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        with interrupts.handled():  # SIGTERM too: one line, partial results kept
            return args.handler(args)
    except UsageError as exc:
        print(f"{PROG} {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"{PROG}: {interrupts.describe()}", file=sys.stderr)
        return interrupts.EXIT_INTERRUPTED


def _parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog=PROG,
        description="Mutual-TLS compatibility matrix for Python HTTP servers.",
        epilog="'mtls-matrix COMMAND --help' describes each command.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser(
        "run",
        help="run the matrix against a target; results, JUnit and reports in --out",
        description="Run the matrix against a target. The current directory is importable, "
        "so --target mytarget:target finds ./mytarget.py. Arguments after '--' go to pytest.",
    )
    run.add_argument(
        "--target",
        default="harness.targets.reference:target",
        metavar="MODULE:FACTORY",
        help="the server under test (default: the reference server)",
    )
    run.add_argument("--profile", default="standard", help="matrix profile (default standard)")
    run.add_argument("-k", dest="keyword", metavar="EXPR", help="select cases, as pytest -k")
    run.add_argument(
        "--case", action="append", default=[], metavar="ID", help="run only this case id"
    )
    run.add_argument(
        "--start-timeout",
        metavar="SECONDS",
        help="deadline for the target's start() per configuration (default 30); one that "
        "does not return in time is a start-timeout problem of each of its cases",
    )
    run.add_argument("-n", dest="workers", metavar="N", help="pytest-xdist workers (or 'auto')")
    run.add_argument(
        "--shard",
        metavar="K/N",
        help="run only the K-th of N parts (whole server configurations); see 'merge'",
    )
    run.add_argument(
        "--out",
        default="mtls-matrix-out",
        metavar="DIR",
        help="results.json, junit.xml, matrix.html, summary.md (default mtls-matrix-out)",
    )
    run.add_argument(
        "--certs-dir", metavar="DIR", help="certificate set to use or create (default OUT/certs)"
    )
    run.add_argument(
        "--force",
        action="store_true",
        help="write into --out even if it holds files this project did not write",
    )
    run.add_argument("pytest_args", nargs="*", metavar="-- PYTEST-ARGS", help=argparse.SUPPRESS)
    run.set_defaults(handler=cmd_run)

    check = commands.add_parser(
        "check-target",
        help="the cases a target would get: runnable, unreachable, unsupported and why; "
        "starts no server",
        description="Sort the cases of a profile by the verdict each is headed for, without "
        "starting a server: runnable, skipped as unreachable on this host, unsupported "
        "(grouped by reason, an undeclared feature first). Certificates are made in a "
        "temporary directory and deleted.",
    )
    check.add_argument(
        "--target",
        default="harness.targets.reference:target",
        metavar="MODULE:FACTORY",
        help="the server under test (default: the reference server)",
    )
    check.add_argument("--profile", default="standard", help="matrix profile (default standard)")
    check.add_argument(
        "--adapter",
        action="append",
        default=[],
        metavar="A",
        help="only this adapter's cases (repeatable; default: every adapter of the target)",
    )
    check.add_argument(
        "--json", action="store_true", help="print the preview as JSON, with every case id"
    )
    check.set_defaults(handler=cmd_check_target)

    report = commands.add_parser(
        "report", help="write matrix.html and summary.md from a results file"
    )
    report.add_argument("results", help="results.json written by 'mtls-matrix run'")
    report.add_argument("--out", help="directory for the reports (default: the results' own)")
    report.set_defaults(handler=cmd_report)

    diff = commands.add_parser(
        "diff", help="cases that changed between two runs; exit 1 on a regression"
    )
    diff.add_argument("old")
    diff.add_argument("new")
    diff.set_defaults(handler=cmd_diff)

    merge = commands.add_parser(
        "merge", help="merge the results of 'run --shard K/N' parts into one run and its reports"
    )
    merge.add_argument("results", nargs="+", help="the parts' results.json files")
    merge.add_argument("--out", required=True, metavar="DIR", help="results.json and reports")
    merge.set_defaults(handler=cmd_merge)

    for name, (_, text) in DELEGATES.items():
        commands.add_parser(name, help=text, add_help=False)
    return parser


# -- delegated subcommands -------------------------------------------------------------


def delegate(command: str, argv: list[str]) -> int:
    """Run another job's ``main(argv)``, importing it only now."""
    candidates, _ = DELEGATES[command]
    entry = _find_main(candidates)
    if entry is None:
        print(
            f"{PROG} {command}: not available in this installation "
            f"({' / '.join(candidates)} is missing)",
            file=sys.stderr,
        )
        return EXIT_USAGE
    if str(Path.cwd()) not in sys.path:  # target modules beside the user, as python -m
        sys.path.insert(0, str(Path.cwd()))
    try:
        takes_prog = "prog" in inspect.signature(entry).parameters
    except (TypeError, ValueError):
        takes_prog = False
    if takes_prog:
        return int(entry(argv, prog=f"{PROG} {command}") or 0)
    return int(entry(argv) or 0)


def compat_args(argv: list[str]) -> list[str]:
    """The compat driver's arguments, with its certificates kept under ``--out``.

    The driver runs pytest from the package's own directory, which after a plain
    ``pip install`` is site-packages: its default ``--certs-dir`` would land there.
    """
    cut = argv.index("--") if "--" in argv else len(argv)
    own, pytest_args = argv[:cut], argv[cut + 1 :]
    if any(a == "--certs-dir" or a.startswith("--certs-dir=") for a in pytest_args):
        return argv
    out = "build/compat"
    for index, arg in enumerate(own):
        if arg == "--out" and index + 1 < len(own):
            out = own[index + 1]
        elif arg.startswith("--out="):
            out = arg.partition("=")[2]
    certs = Path(out).expanduser().absolute() / "certs"
    return [*own, "--", *pytest_args, "--certs-dir", str(certs)]


def _find_main(candidates: tuple[str, ...]) -> Callable[[list[str]], int] | None:
    for name in candidates:
        try:
            found = importlib.util.find_spec(name) is not None
        except ModuleNotFoundError:  # a parent package is missing
            found = False
        if found:
            module = importlib.import_module(name)
            entry = getattr(module, "main", None)
            if callable(entry):
                return entry
    return None


# -- run -------------------------------------------------------------------------------


def cmd_run(args: argparse.Namespace) -> int:
    import pytest

    import certs_gen
    from harness.target import TargetLoadError, load_target

    from . import dimensions
    from .environ import SPEC_VARIABLES
    from .outputs import check_results_path
    from .plugin import certs_profile
    from .state import PROFILE as STATE_PROFILE

    profiles = [*getattr(dimensions, "PROFILES", ("standard",)), STATE_PROFILE]
    if args.profile not in profiles:
        raise UsageError(f"unknown profile {args.profile!r} (choose from: {', '.join(profiles)})")
    cwd = Path.cwd()
    try:
        target = load_target(args.target, search=[cwd])
        target.check_provides(SPEC_VARIABLES)
    except TargetLoadError as exc:
        raise UsageError(str(exc)) from None
    if args.workers is not None and importlib.util.find_spec("xdist") is None:
        raise UsageError("-n needs pytest-xdist (pip install pytest-xdist)")
    if args.case:  # refused before anything is created: --out, certificates
        from .plugin import _unknown_case, matrix_cases

        known = {c.id for c in matrix_cases(target, args.profile)}
        unknown = [case for case in args.case if case not in known]
        if unknown:
            raise UsageError(_unknown_case(unknown[0], target, args.profile))
    out = prepare_out(Path(args.out), force=args.force)
    try:
        results = check_results_path(out / "results.json")
    except ValueError as exc:
        raise UsageError(f"--out: {exc}") from None
    certs_dir = Path(args.certs_dir) if args.certs_dir else out / "certs"
    try:
        certs = certs_gen.generate(certs_dir, profile=certs_profile(args.profile))
    except certs_gen.CertsGenError as exc:
        raise UsageError(f"--certs-dir: {exc}") from None
    print(f"{PROG}: certificates in {certs.root}: {certs.origin}")
    pytest_args = [
        str(Path(__file__).with_name("test_matrix.py")),
        *plugin_args(),
        "-c", os.devnull,  # no ini file of the user's, or of site-packages, applies
        "--rootdir", str(Path(__file__).resolve().parents[1]),
        "-p", "no:cacheprovider",  # nothing written beside the installed package
        "-p", "no:randomly",  # cases run grouped by server configuration
        "-q", "-rN",
        "-W", "ignore::pytest.PytestAssertRewriteWarning",  # this process imported us first
        "--target", args.target,
        "--results", str(results),
        "--junitxml", str(out / "junit.xml"),
        "--certs-dir", str(certs_dir.absolute()),
    ]  # fmt: skip
    if args.profile != "standard":
        pytest_args += ["--profile", args.profile]
    if args.keyword:
        pytest_args += ["-k", args.keyword]
    for case in args.case:
        pytest_args += ["--case", case]
    if args.start_timeout is not None:
        pytest_args += ["--start-timeout", args.start_timeout]
    if args.workers is not None:
        pytest_args += ["-n", args.workers]
    if args.shard:
        pytest_args += ["--shard", args.shard]
    pytest_args += args.pytest_args
    print(f"{PROG}: running the matrix against {target.name} ({args.target}) into {out}")
    results.unlink(missing_ok=True)  # a stale file must not pass for this run's
    code = int(pytest.main(pytest_args))
    if code == pytest.ExitCode.USAGE_ERROR:  # pytest said why, in one line
        return EXIT_USAGE
    if not results.is_file():
        print(f"{PROG} run: no results written (pytest exit status {code})", file=sys.stderr)
        return code or EXIT_FAILED
    report_code = cmd_report(argparse.Namespace(results=str(results), out=str(out)))
    if code == interrupts.EXIT_INTERRUPTED:
        print(
            f"{PROG} run: {interrupts.describe()}: incomplete results and reports in {out}",
            file=sys.stderr,
        )
        return code
    return code or report_code


def plugin_args() -> list[str]:
    """``-p matrix.plugin`` unless the installed entry point loads it already."""
    from importlib.metadata import entry_points

    if any(ep.name == "matrix.plugin" for ep in entry_points(group="pytest11")):
        return []
    return ["-p", "matrix.plugin"]


def prepare_out(out: Path, force: bool = False) -> Path:
    """Create ``out`` and make sure writing the run's files there loses nothing of the user's.

    Refused (UsageError, one line) unless ``force``: an existing output name
    (``OUTPUTS``) when ``out/results.json`` is not a results file this project wrote.
    """
    out = out.expanduser().absolute()
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} exists and is not a directory")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"--out: cannot create {out}: {exc.strerror}") from None
    if not os.access(out, os.W_OK | os.X_OK):
        raise UsageError(f"--out: cannot write in {out} (permission denied)")
    present = [name for name in OUTPUTS if (out / name).exists()]
    if present and not force and not _is_results_file(out / "results.json"):
        raise UsageError(
            f"--out {out} holds {', '.join(present)} not written by {PROG}; "
            "choose an empty directory, or --force to replace them"
        )
    return out


def _is_results_file(path: Path) -> bool:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and {"schema", "run", "cases"} <= data.keys()


# -- check-target ----------------------------------------------------------------------


def cmd_check_target(args: argparse.Namespace) -> int:
    """Print what ``run`` would give the target; exit 1 when some cases would fail before
    connecting (the target's ``unsupported`` raises or answers something not a reason)."""
    from harness.target import TargetLoadError, load_target

    from . import dimensions
    from .environ import SPEC_VARIABLES
    from .preview import ERRORS, preview, render
    from .state import PROFILE as STATE_PROFILE

    profiles = [*dimensions.PROFILES, STATE_PROFILE]
    if args.profile not in profiles:
        raise UsageError(f"unknown profile {args.profile!r} (choose from: {', '.join(profiles)})")
    try:
        target = load_target(args.target, search=[Path.cwd()])
        target.check_provides(SPEC_VARIABLES)
    except TargetLoadError as exc:
        raise UsageError(str(exc)) from None
    foreign = [a for a in args.adapter if a not in target.adapters]
    if foreign:
        raise UsageError(
            f"--adapter {foreign[0]}: target {target.name!r} does not run it "
            f"(its adapters: {', '.join(target.adapters)})"
        )
    adapters = tuple(dict.fromkeys(args.adapter)) or None
    result = preview(target, args.profile, adapters)
    if args.json:
        print(json.dumps(result.to_json(), indent=2))
    else:
        print(render(result, args.target))
    return EXIT_FAILED if result.count(ERRORS) else EXIT_OK


# -- reports ---------------------------------------------------------------------------


def cmd_report(args: argparse.Namespace) -> int:
    from reports.cli import main as reports_main

    out = args.out or str(Path(args.results).parent)
    return reports_main(["build", args.results, "--out", out])


def cmd_merge(args: argparse.Namespace) -> int:
    """One results.json (and its reports) from shards' results (matrix/shards.py)."""
    from .results import write_results
    from .shards import ShardError, merge

    try:
        merged = merge([Path(p) for p in args.results])
    except ShardError as exc:
        print(f"{PROG} merge: {exc}", file=sys.stderr)
        return EXIT_USAGE
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        print(f"{PROG} merge: --out {str(out)!r} is not a directory", file=sys.stderr)
        return EXIT_USAGE
    results = write_results(out / "results.json", merged["run"], merged["cases"])
    print(f"{PROG} merge: {len(merged['cases'])} cases from {len(args.results)} parts: {results}")
    return cmd_report(argparse.Namespace(results=str(results), out=str(out)))


def cmd_diff(args: argparse.Namespace) -> int:
    from reports.cli import main as reports_main

    return reports_main(["diff", args.old, args.new])


if __name__ == "__main__":
    sys.exit(main())
