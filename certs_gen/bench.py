"""``python -m certs_gen.bench``: how long generating a whole set takes (median of runs)."""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time

from . import PROFILES, generate


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m certs_gen.bench", description=__doc__)
    parser.add_argument("--profile", default="standard", choices=list(PROFILES))
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args(argv)
    timings = []
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.runs):
            started = time.perf_counter()
            generate(tmp, profile=args.profile, force=True)
            timings.append(time.perf_counter() - started)
        started = time.perf_counter()
        generate(tmp, profile=args.profile)
        reuse = time.perf_counter() - started
    print(
        f"{args.profile}: generate {statistics.median(timings) * 1000:.1f} ms "
        f"(median of {args.runs}, max {max(timings) * 1000:.1f} ms); "
        f"reuse of an intact set {reuse * 1000:.1f} ms"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
