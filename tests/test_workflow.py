"""The CI workflow that spreads the compat run over machines (.github/workflows/compat.yml)
cannot run here; it is validated against the published workflow schema (check-jsonschema's
vendored copy of SchemaStore's github-workflow schema) and its job matrix is checked to name
only targets and Pythons this project has."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from ruamel.yaml import YAML

from harness.targets.compat import TARGETS

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW = ROOT / ".github" / "workflows" / "compat.yml"


def test_the_workflow_validates_against_the_github_workflow_schema():
    done = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema",
         "vendor.github-workflows", str(WORKFLOW)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr


def test_its_matrix_names_only_targets_and_pythons_that_exist():
    jobs = YAML(typ="safe").load(WORKFLOW.read_text())["jobs"]
    matrix = jobs["column"]["strategy"]["matrix"]
    assert set(matrix["target"]) <= set(TARGETS)
    tox = (ROOT / "tox.ini").read_text()
    supported = {f"3.{m}" for m in re.findall(r"py3\{([\d,]+)\}", tox)[0].split(",")}
    assert set(matrix["python"]) <= supported, (matrix["python"], supported)
    for target in matrix["target"]:
        assert (ROOT / "harness" / "targets" / f"{target}.py").is_file()
    assert jobs["merge"]["needs"] == "column"
    merge_steps = " ".join(str(step.get("run", "")) for step in jobs["merge"]["steps"])
    assert "mtls-matrix merge" in merge_steps and "GITHUB_STEP_SUMMARY" in merge_steps
