"""``python -m matrix.bench``: one run prints the floor and a ratio per mode (a real
run of the matrix against the reference server; figures are printed, never judged)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _bench(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "matrix.bench", *args],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip


def test_one_run_prints_the_floor_and_each_modes_ratio():
    done = _bench("--samples", "5", "-n", "1", "-n", "2")
    assert done.returncode == 0, done.stderr[-2000:]
    out = done.stdout
    assert re.search(r"^floor: \d+\.\d\d ms \(median of 10 handshakes", out, re.M)
    assert re.search(r"^ratio \d+\.\d\d \(single process\)$", out, re.M)
    assert re.search(r"^ratio \d+\.\d\d \(-n 2\)$", out, re.M)
    assert re.search(r"for 460 cases \(standard\), -n 2 .*across 2 workers\)$", out, re.M)


def test_bad_numbers_are_one_line_and_exit_2():
    done = _bench("-n", "0")
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1].endswith("whole numbers of at least 1")
