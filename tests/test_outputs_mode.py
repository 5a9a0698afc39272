"""A results file rewritten in place keeps its permissions (issue 18: ``resilience``
left ``results.json`` mode 0600, tempfile.mkstemp's, after adding its block)."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from matrix.outputs import replace_keeping_mode
from matrix.resilience import merge_into


def umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize("before", [0o644, 0o640, 0o600, 0o664])
def test_the_resilience_block_keeps_the_files_mode(tmp_path, before):
    path = tmp_path / "results.json"
    path.write_text(json.dumps({"schema": 2, "run": {"target": "t"}, "cases": []}))
    path.chmod(before)
    merge_into(path, json.loads(path.read_text()), "t", {"version": 1, "adapters": {}})
    assert mode(path) == before
    data = json.loads(path.read_text())
    assert data["run"]["resilience"] == {"version": 1, "adapters": {}} and data["cases"] == []
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"]  # no temporary left


def test_a_new_results_file_gets_the_usual_mode(tmp_path):
    path = tmp_path / "results.json"
    merge_into(path, None, "t", {"version": 1, "adapters": {}})
    assert mode(path) == 0o666 & ~umask()


def test_replace_keeping_mode_on_a_private_temporary(tmp_path):
    tmp, path = tmp_path / ".x.tmp", tmp_path / "x"
    tmp.write_text("new")
    tmp.chmod(0o600)
    path.write_text("old")
    path.chmod(0o644)
    replace_keeping_mode(tmp, path)
    assert (path.read_text(), mode(path), tmp.exists()) == ("new", 0o644, False)
