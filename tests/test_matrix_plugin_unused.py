"""A run of the matrix alone drops the pytest plugins it has no use for (matrix/plugin.py
``UNUSED_PLUGINS``); any other run keeps them. Real pytest runs in a subprocess, asked
(``-p``) to load a probe plugin that writes which plugins are registered at session start.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from matrix.plugin import UNUSED_PLUGINS, matrix_only

ROOT = Path(__file__).resolve().parents[1]
PROBE = """
import json, os
def pytest_sessionstart(session):
    names = [n for n, _ in session.config.pluginmanager.list_name_plugin()]
    with open(os.environ["PLUGIN_PROBE_OUT"], "w") as out:
        json.dump(names, out)
"""


@pytest.mark.parametrize(
    ("args", "only"),
    [
        (["matrix"], True),
        (["matrix/test_matrix.py::test_case"], True),
        ([str(ROOT / "matrix")], True),
        (["matrix", "tests/test_fuzz.py"], False),
        (["tests"], False),
        ([], False),
    ],
)
def test_a_run_is_the_matrix_alone_only_when_every_argument_names_it(args, only, monkeypatch):
    monkeypatch.chdir(ROOT)
    assert matrix_only(SimpleNamespace(args=args)) is only


@pytest.mark.parametrize(
    ("paths", "dropped"), [(["matrix"], True), (["tests/test_processes.py"], False)]
)
def test_unused_plugins_are_dropped_from_a_matrix_run_only(tmp_path, paths, dropped):
    (tmp_path / "plugin_probe.py").write_text(PROBE)
    out = tmp_path / "plugins.json"
    env = {
        "PYTHONPATH": f"{tmp_path}:{ROOT}",
        "PLUGIN_PROBE_OUT": str(out),
        "PATH": "/usr/bin:/bin",
    }
    command = [sys.executable, "-m", "pytest", *paths, "--collect-only", "-q"]
    command += ["-p", "plugin_probe", "-p", "no:cacheprovider"]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    names = set(json.loads(out.read_text()))
    for name in UNUSED_PLUGINS:
        assert (name not in names) is dropped, sorted(names)
