"""``python -m matrix.repeat --runs 20``: does the matrix give the same answer every time?

Runs the whole matrix N times in a row (each a fresh pytest process, extra
pytest arguments passed through, e.g. ``-- -n 2``) and compares every case's
verdict (status and problems' kind, severity and subject, as ``mtls-matrix
diff`` does) and server survival with the first run's. Observations are not
compared: a racing refusal's distribution may differ, its verdict may not
(docs/spec.md section 10.1). Exits 1 if any case ever changed.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path


def signature(results: Path) -> dict[str, tuple]:
    data = json.loads(results.read_text())
    return {
        c["id"]: (
            c["status"],
            sorted({(p["kind"], p["severity"], p["what"]) for p in c["problems"]}),
            c["server_alive"],
        )
        for c in data["cases"]
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m matrix.repeat", description=__doc__)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("pytest_args", nargs="*", help="extra pytest arguments (after --)")
    args = parser.parse_args(argv)
    first: dict[str, tuple] | None = None
    changed: dict[str, set] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for run in range(1, args.runs + 1):
            results = Path(tmp) / f"run{run}.json"
            command = [sys.executable, "-m", "pytest", "matrix", "-q", "-p", "no:cacheprovider"]
            command += ["--results", str(results), *args.pytest_args]
            proc = subprocess.run(command, capture_output=True, text=True, timeout=900)
            last = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""
            print(f"run {run:2d}: exit {proc.returncode}: {last}", flush=True)
            if not results.exists():
                print("no results written", file=sys.stderr)
                return 2
            current = signature(results)
            if first is None:
                first = current
                continue
            for case_id in first.keys() | current.keys():
                if first.get(case_id) != current.get(case_id):
                    changed.setdefault(case_id, set()).add(run)
    cases = len(first or {})
    if changed:
        for case_id, runs in sorted(changed.items()):
            print(f"CHANGED {case_id} in runs {sorted(runs)}")
        print(f"{len(changed)} of {cases} cases changed across {args.runs} runs")
        return 1
    print(f"{args.runs} runs x {cases} cases: no verdict or survival changed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
