"""The README's "Testing your own server" recipe, run exactly as a new user would.

The clone is copied (its files, not build/ or .git) and pip-installed, not editable,
into a fresh virtualenv made once per test session; then, in an empty directory
outside the repository, the recipe's Python block is written verbatim to the file
its first line names and the recipe's ``mtls-matrix run`` line is run with the
virtualenv's command, with no PYTHONPATH: only what the installation provides is
there. The run must pass every case the recipe's server claims (every case that is
not skipped as unsupported) and write results, JUnit and reports under ``out/``.
The same directory then serves ``pytest --pyargs matrix`` (the plugin as an entry
point) the way the README says a server author's test suite would.

Marked ``install`` (deselect with ``-m "not install"``): it builds the project and
may fetch dependencies through pip.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.install

REPO = Path(__file__).resolve().parents[1]
SECTION = "### Testing your own server"
SKIP_COPY = shutil.ignore_patterns(
    ".git", ".tox", "build", "*.egg-info", "__pycache__", ".venv", "venv", ".ci-venv", ".*_cache"
)
INSTALL_TIMEOUT = 300
RUN_TIMEOUT = 240


def recipe_blocks() -> list[tuple[str, str]]:
    """(language, text) of every fenced code block in the README's recipe section."""
    text = (REPO / "README.md").read_text()
    start = text.index(SECTION)
    end = text.find("\n### ", start + len(SECTION))
    section = text[start : end if end != -1 else len(text)]
    return re.findall(r"^```(\w*)\n(.*?)^```$", section, flags=re.MULTILINE | re.DOTALL)


def clean_env(venv: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PYTEST_", "PYTHON", "VIRTUAL_ENV"))
    }
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["VIRTUAL_ENV"] = str(venv)
    return env


@pytest.fixture(scope="session")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtualenv with the clone pip-installed (not editable), once per session."""
    base = tmp_path_factory.mktemp("install")
    source, venv = base / "mtls-matrix", base / "venv"
    shutil.copytree(REPO, source, ignore=SKIP_COPY)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    install = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", str(source)],
        capture_output=True,
        text=True,
        timeout=INSTALL_TIMEOUT,
        env=clean_env(venv),
        stdin=subprocess.DEVNULL,
    )
    if install.returncode != 0:
        pytest.fail(f"pip install of the clone failed:\n{install.stderr[-3000:]}")
    return venv


@pytest.fixture(scope="session")
def user_dir(venv: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty directory outside the repository holding what the recipe says to write."""
    here = tmp_path_factory.mktemp("my-project")
    assert REPO not in here.parents
    python = [b for lang, b in recipe_blocks() if lang == "python"]
    assert len(python) == 1, "the recipe has one Python block: the target module"
    first = python[0].splitlines()[0]
    name = re.match(r"# (\S+\.py)\b", first)
    assert name, f"the Python block's first line names its file: {first!r}"
    (here / name.group(1)).write_text(python[0])
    return here


def commands() -> list[str]:
    lines = [b for lang, b in recipe_blocks() if lang == "sh"]
    assert len(lines) == 1, "the recipe has one shell block"
    return [line.strip() for line in lines[0].splitlines() if line.strip()]


def test_the_recipe_shows_the_resilience_battery():
    battery = [c for c in commands() if c.startswith("mtls-matrix resilience ")]
    assert battery and "--target mytarget:target" in battery[0]


def test_the_recipe_runs_green_from_a_fresh_install(venv, user_dir):
    run_line = next(c for c in commands() if c.startswith("mtls-matrix run "))
    argv = shlex.split(run_line)
    result = subprocess.run(
        [str(venv / "bin" / argv[0]), *argv[1:]],
        cwd=user_dir,
        env=clean_env(venv),
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    out = user_dir / argv[argv.index("--out") + 1]
    for name in ("results.json", "junit.xml", "matrix.html", "summary.md"):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    data = json.loads((out / "results.json").read_text())
    cases = data["cases"]
    claimed = [c for c in cases if not c["detail"].startswith("unsupported by ")]
    assert claimed and all(c["status"] in ("pass", "skip") for c in claimed), [
        (c["id"], c["detail"]) for c in claimed if c["status"] == "fail"
    ]
    assert sum(c["status"] == "pass" for c in cases) >= 100
    assert {c["adapter"] for c in cases} == set(data["run"]["adapters"]) == {"builtin"}
    # what ran was the installed package, not the clone
    where = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import matrix; print(matrix.__file__)"],
        cwd=user_dir,
        env=clean_env(venv),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert Path(where.stdout.strip()).is_relative_to(venv), where.stdout + where.stderr


def test_the_installed_package_carries_the_mit_license_text(venv):
    """pyproject's license-files: the LICENSE text travels in the wheel (the MIT terms ask
    for it), and the metadata names the licence by its SPDX expression."""
    code = (
        "from importlib.metadata import distribution as d; m = d('mtls-matrix');"
        "f = [p for p in m.files if p.name == 'LICENSE'];"
        "print(m.metadata['License-Expression']); print(f[0].read_text() if f else '')"
    )
    shown = subprocess.run(
        [str(venv / "bin" / "python"), "-c", code],
        env=clean_env(venv), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    expression, _, text = shown.stdout.partition("\n")
    assert expression == "MIT", shown.stdout + shown.stderr
    assert text.strip() == (REPO / "LICENSE").read_text().strip()
    assert "Copyright (c) 2026 the mtls-matrix authors" in text
    assert "Permission is hereby granted, free of charge" in text


def test_the_plugin_runs_from_the_users_own_pytest(venv, user_dir):
    result = subprocess.run(
        [str(venv / "bin" / "pytest"), "--pyargs", "matrix", "--target", "mytarget:target",
         "-q", "-p", "no:randomly", "-k", "required and client:localhost",
         "--results", "adhoc/results.json"],
        cwd=user_dir,
        env=clean_env(venv),
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "INTERNALERROR" not in result.stdout
    assert json.loads((user_dir / "adhoc" / "results.json").read_text())["cases"]


def test_an_editable_install_and_the_conftest_register_the_plugin_once(tmp_path):
    """tox's way: the package installed editable, pytest run in the clone, whose conftest
    also names the plugin. One registration, no 'Plugin already registered' error.

    The virtualenv is made without the base interpreter's site-packages and the editable
    install brings the project's dependencies itself: on a machine holding nothing but
    Python and tox, the base interpreter has none of them (issue 18)."""
    source, venv = tmp_path / "clone", tmp_path / "venv"
    shutil.copytree(REPO, source, ignore=SKIP_COPY)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    install = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "-e", str(source)],
        capture_output=True, text=True, timeout=INSTALL_TIMEOUT, env=clean_env(venv),
    )  # fmt: skip
    assert install.returncode == 0, install.stderr[-3000:]
    result = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pytest", "matrix", "-q", "-p", "no:randomly",
         "-p", "no:cacheprovider", "-k", "builtin and required and client:none",
         "--results", str(tmp_path / "results.json")],
        cwd=source, env=clean_env(venv), capture_output=True, text=True, timeout=RUN_TIMEOUT,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "12 passed" in result.stdout
    plugins = subprocess.run(
        [str(venv / "bin" / "python"), "-c",
         "from importlib.metadata import entry_points;"
         "print([e.name for e in entry_points(group='pytest11') if e.value == 'matrix.plugin'])"],
        env=clean_env(venv), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert plugins.stdout.strip() == "['matrix.plugin']"
