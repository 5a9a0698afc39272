"""``python -m reports build|diff|compat``: argument parsing and exit statuses.

Exit statuses: 0 success (diff: no regression), 1 diff found a regression, 2 bad input or
usage. Bad input is reported as one line on stderr, never a traceback, because this runs in
CI right after the matrix and its output is read by people scanning a log.
"""

from __future__ import annotations

import argparse
import sys

from .build import build, build_compat
from .compare import diff, format_diff
from .compat import load_targets
from .load import load_results
from .model import ReportError

EXIT_OK = 0
EXIT_REGRESSED = 1
EXIT_BAD_INPUT = 2


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m reports",
        description="Render and compare mTLS matrix results files (schema 2).",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    build_cmd = commands.add_parser(
        "build", help="write matrix.html and summary.md from a results file"
    )
    build_cmd.add_argument("results", help="results JSON written by the matrix runner")
    build_cmd.add_argument("--out", required=True, help="directory to write the reports into")
    diff_cmd = commands.add_parser(
        "diff",
        help="list cases that changed between two runs; exit 1 if a passing case now fails",
    )
    diff_cmd.add_argument("old", help="results JSON of the earlier run")
    diff_cmd.add_argument("new", help="results JSON of the later run")
    compat_cmd = commands.add_parser(
        "compat", help="write compat.html and compat.md: several targets' results side by side"
    )
    compat_cmd.add_argument("results", nargs="+", help="results JSON files, one per target")
    compat_cmd.add_argument("--out", required=True, help="directory to write the reports into")
    args = parser.parse_args(argv)
    try:
        if args.command == "compat":
            for path in build_compat(load_targets(args.results), args.out):
                print(path)
            return EXIT_OK
        if args.command == "build":
            for path in build(load_results(args.results), args.out):
                print(path)
            return EXIT_OK
        result = diff(load_results(args.old), load_results(args.new))
        print(format_diff(result, args.old, args.new))
        return EXIT_REGRESSED if result.regressed else EXIT_OK
    except ReportError as exc:
        print(f"reports: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
