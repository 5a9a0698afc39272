"""The compat run's version axis: pins, columns, cached environments, one real column.

The real column builds a virtual environment from the package registry (about 25 s the
first time; the cache is this test session's own directory, so nothing a user owns is
touched) and runs one case of gunicorn 23.0.0 under Python 3.10 in it.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from harness.targets import compat
from harness.targets.columns import Column, columns, target_package, targets_of
from harness.targets.environments import (
    EnvironmentError_,
    Pin,
    find_python,
    read_pins,
    requirements_for,
)
from harness.targets.process import PROJECT_ROOT

CASE = "builtin-required-bind:127.0.0.1-connect:127.0.0.1-client:none"


def test_a_pin_is_package_equals_release():
    assert Pin.parse("gunicorn==23.0.0") == Pin("gunicorn", "23.0.0")
    assert Pin.parse(" Cheroot==11.1.2 ").key == "cheroot"
    for bad in ("gunicorn", "gunicorn>=23", "gunicorn==", "==1.0", "gunicorn==1.0; rm -rf /"):
        with pytest.raises(ValueError, match="PACKAGE==RELEASE"):
            Pin.parse(bad)


def test_a_versions_file_names_the_bad_line(tmp_path):
    good = tmp_path / "versions.txt"
    good.write_text("# comment\ngunicorn==22.0.0  # oldest\n\nuvicorn==0.30.6\n")
    assert [str(p) for p in read_pins(good)] == ["gunicorn==22.0.0", "uvicorn==0.30.6"]
    bad = tmp_path / "bad.txt"
    bad.write_text("gunicorn==22.0.0\ngunicorn 23\n")
    with pytest.raises(EnvironmentError_, match=r"bad.txt:2: 'gunicorn 23' is not"):
        read_pins(bad)
    with pytest.raises(EnvironmentError_, match="cannot read"):
        read_pins(tmp_path / "missing.txt")


def test_pins_replace_the_projects_own_requirement_on_that_package():
    requirements = requirements_for([Pin.parse("cheroot==10.0.1")])
    assert "cheroot==10.0.1" in requirements
    assert not [r for r in requirements if r.startswith("cheroot") and r != "cheroot==10.0.1"]
    assert any(r.startswith("trustme") for r in requirements)  # the rest stays
    # a column holds its own server, not every compat server (some need a newer Python)
    gunicorn = requirements_for([], "gunicorn")
    assert any(r.startswith("gunicorn==") for r in gunicorn)
    assert not any(r.startswith(("tornado", "uvicorn", "granian")) for r in gunicorn)


def test_columns_are_target_by_python_by_release():
    assert target_package("gunicorn-gthread") == "gunicorn"
    assert target_package("cheroot_native") == "cheroot"
    assert target_package("reference") == "cheroot"
    pins = [Pin.parse("gunicorn==22.0.0"), Pin.parse("gunicorn==23.0.0")]
    assert targets_of(pins, compat.TARGETS) == ["gunicorn", "gunicorn-gthread"]
    labels = [c.label for c in columns(["gunicorn", "uvicorn"], pins, ["3.10", "3.13"])]
    assert labels == [
        "gunicorn@22.0.0-py3.10",
        "gunicorn@23.0.0-py3.10",
        "gunicorn@22.0.0-py3.13",
        "gunicorn@23.0.0-py3.13",
        "uvicorn-py3.10",  # no pin applies: one column per Python
        "uvicorn-py3.13",
    ]
    assert [c.label for c in columns(["werkzeug"], [], [])] == ["werkzeug"]
    assert not Column("werkzeug").needs_environment


def test_bad_axis_arguments_are_one_line_and_exit_2(capsys, tmp_path):
    for argv, message in (
        (["--server", "gunicorn"], "is not PACKAGE==RELEASE"),
        (["--server", "nginx==1.27.0"], "no target serves nginx"),
        (["--python", "3.x"], "none of the --python interpreters was found"),
        (["--versions", str(tmp_path / "none.txt")], "cannot read"),
    ):
        with pytest.raises(SystemExit) as exit_info:
            compat.main(["--out", str(tmp_path), *argv])
        assert exit_info.value.code == 2
        err = capsys.readouterr().err
        assert message in err
        assert "Traceback" not in err
        assert err.strip().count("\n") <= 1, err


def test_a_missing_python_is_reported_not_found(capsys):
    with pytest.raises(EnvironmentError_, match=r"python 3\.1: not found"):
        find_python("3.1")


@pytest.fixture(scope="module")
def python310():
    try:
        return find_python("3.10")
    except EnvironmentError_ as exc:
        pytest.skip(str(exc))


def test_one_release_under_another_python_is_its_own_column(python310, tmp_path_factory):
    """gunicorn 23.0.0 under Python 3.10, in a cached environment: the results record both
    and name the column; the compat report shows it under that name."""
    out = tmp_path_factory.mktemp("compat")
    cache = tmp_path_factory.mktemp("venvs")
    command = [
        sys.executable, "-m", "harness.targets.compat", "--out", str(out),
        "--venv-cache", str(cache), "--server", "gunicorn==23.0.0", "--python", "3.10",
        "--no-battery", "--report", str(out / "report"), "gunicorn", "--", "--case", CASE,
    ]  # fmt: skip
    done = subprocess.run(command, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    results = json.loads((out / "gunicorn@23.0.0-py3.10.json").read_text())
    assert results["run"]["column"] == "gunicorn@23.0.0-py3.10"
    assert results["run"]["versions"]["target:gunicorn"] == "23.0.0"
    assert results["run"]["versions"]["python"].startswith("3.10.")
    # gunicorn refuses it (its refusal's form is the finding, not this test's business)
    assert [c["observed"]["outcome"] for c in results["cases"]] == ["rejected"]
    assert "gunicorn@23.0.0-py3.10" in (out / "report" / "compat.md").read_text()
    assert list(cache.glob("py3.10.*/mtls-matrix-environment.json"))  # kept for the next run
