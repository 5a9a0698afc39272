"""Shards and merge: a deterministic partition that keeps server configurations whole,
and a merge equal, case by case, to the unsharded run (real runs of the matrix)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from harness.target import CheckedTarget
from harness.targets.reference import ReferenceTarget
from matrix.plugin import matrix_cases
from matrix.shards import ShardError, group_of, merge, parse_shard, shard

ROOT = __import__("pathlib").Path(__file__).resolve().parents[1]
SUBSET = "pyopenssl and bind:127.0.0.1"  # 80 cases on 10 servers: the same in both runs
# Issue 23: four shards merged equal the unsharded run for the standard profile, the
# extended one and a compat column (a server in its own process); each a subset.
RUNS = {
    "standard": (SUBSET,),
    "extended": ("pyopenssl and bind:::1", "--profile", "extended"),  # 90 cases
    "compat-werkzeug": (
        "bind:127.0.0.1 and not wildcard",  # 60 cases
        "--target",
        "harness.targets.werkzeug:target",
    ),
}


def test_shard_syntax():
    assert parse_shard("2/4") == (2, 4)
    for bad in ("0/4", "5/4", "4", "a/b", "1/0", "-1/2"):
        with pytest.raises(ShardError):
            parse_shard(bad)


@pytest.mark.parametrize("profile", ["standard", "extended"])
def test_shards_partition_the_cases_and_keep_each_server_whole(profile):
    cases = matrix_cases(CheckedTarget(ReferenceTarget()), profile)
    parts = [shard(cases, k, 4) for k in range(1, 5)]
    ids = [c.id for part in parts for c in part]
    assert sorted(ids) == sorted(c.id for c in cases)  # every case once
    owners = {}
    for k, part in enumerate(parts):
        for case in part:
            assert owners.setdefault(group_of(case), k) == k  # a configuration in one shard
    biggest = max(sum(1 for c in cases if group_of(c) == g) for g in owners)
    sizes = [len(p) for p in parts]
    assert max(sizes) - min(sizes) <= biggest  # greedy balance
    assert [c.id for c in shard(cases, 3, 4)] == [c.id for c in parts[2]]  # deterministic


def _run(tmp_path, name, *extra, subset=SUBSET):
    results = tmp_path / f"{name}.json"
    command = [
        sys.executable, "-m", "pytest", "matrix", "-q", "-p", "no:randomly",
        "-p", "no:cacheprovider", "-k", subset, "--results", str(results), *extra,
    ]  # fmt: skip
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    findings = (1,) if "--target" in extra else ()  # another server's divergences: exit 1
    assert done.returncode in (0, 5, *findings), done.stdout[-1500:]
    return results


def _verdicts(doc):
    """Each case's verdict and what decided it. A racing case's ``distribution`` (how
    often each form was seen in its ten attempts) is a sample that differs from run to
    run, sharded or not (docs/spec.md 10.1): its forms are kept, not their counts."""
    keep = ("status", "problems", "detail", "expected", "observed", "server_alive", "unsupported")
    verdicts = {c["id"]: {k: c.get(k) for k in keep} for c in doc["cases"]}
    for verdict in verdicts.values():
        observed = verdict["observed"]
        if observed and observed.get("distribution"):
            verdict["observed"] = {**observed, "distribution": None}
    return verdicts


@pytest.mark.parametrize("run", RUNS)
def test_four_shards_merged_equal_the_unsharded_run(tmp_path, run):
    subset, *extra = RUNS[run]
    if run.startswith("compat-"):
        pytest.importorskip(run.removeprefix("compat-"))
    whole = json.loads(_run(tmp_path, "whole", *extra, subset=subset).read_text())
    parts = [
        _run(tmp_path, f"part{k}", *extra, "--shard", f"{k}/4", subset=subset) for k in range(1, 5)
    ]
    parts = [p for p in parts if p.is_file()]  # a part the subset leaves empty writes none
    assert len(parts) > 1  # the subset spans servers enough to be split
    merged = merge(parts)
    assert len(merged["cases"]) == len(whole["cases"]) > 0
    assert _verdicts(merged) == _verdicts(whole)
    assert [s["shard"] for s in merged["run"]["shards"]] == [
        json.loads(p.read_text())["run"]["shard"] for p in parts
    ]
    with pytest.raises(ShardError, match="is also in"):
        merge([parts[0], parts[0]])


def test_merge_command_writes_results_and_reports(tmp_path):
    parts = [_run(tmp_path, f"p{k}", "--shard", f"{k}/2") for k in (1, 2)]
    out = tmp_path / "merged"
    done = subprocess.run(
        [sys.executable, "-m", "matrix.cli", "merge", *map(str, parts), "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert (out / "matrix.html").is_file() and (out / "summary.md").is_file()
    bad = subprocess.run(
        [sys.executable, "-m", "matrix.cli", "merge", str(tmp_path / "none.json"), "--out",
         str(out)], cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "Traceback" not in bad.stderr
