"""The ``mtls-matrix`` command and the pytest plugin, driven as a user drives them.

Every run is a subprocess started in a directory of the test's own (outside the
repository), with the target modules written there, the way a server author works:
``python -m matrix`` (the ``mtls-matrix`` command's alias) and ``python -m pytest
matrix``. Each bad input must give one line naming the problem, a non-zero exit, no
traceback and no INTERNALERROR, and leave every file the user had as it was.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
ONE_CASE = "builtin-required-bind:127.0.0.1-connect:127.0.0.1-client:localhost"
TIMEOUT = 120

TARGETS = textwrap.dedent(
    '''
    """Targets that each break the contract one way (and one that keeps it)."""
    from harness.targets.reference import ReferenceTarget


    class Good(ReferenceTarget):
        name = "good"


    def good():
        return Good()


    def raises():
        raise RuntimeError("cannot find my config file")


    def needs_arguments(port, debug=False):
        return Good()


    class NoAdapters:
        name = "no-adapters"

        def unsupported(self, spec):
            return None

        def start(self, spec):
            return None

        def provides(self, adapter, variable):
            return False

        def versions(self):
            return {}


    def no_adapters():
        return NoAdapters()


    class AdapterString(Good):
        adapters = "builtin"


    def adapter_string():
        return AdapterString()


    def returns_none():
        return None


    an_instance = Good()


    class StartsNothing(Good):
        def start(self, spec):
            return None


    def starts_nothing():
        return StartsNothing()


    class StartFails(Good):
        def start(self, spec):
            raise OSError("address already in use")


    def start_fails():
        return StartFails()


    class ProvidesBreaks(Good):
        def provides(self, adapter, variable):
            return {"yes": 1}[variable]


    def provides_breaks():
        return ProvidesBreaks()


    class StopBreaks(Good):
        def start(self, spec):
            handle = super().start(spec)
            real_stop = handle.stop

            def stop():
                real_stop()
                raise RuntimeError("already stopped")

            handle.stop = stop
            return handle


    def stop_breaks():
        return StopBreaks()


    class UnsupportedAnswersInt(Good):
        def unsupported(self, spec):
            return 42


    def unsupported_answers_int():
        return UnsupportedAnswersInt()


    class StdlibOnly(Good):
        adapters = ("builtin",)


    def stdlib_only():
        return StdlibOnly()
    '''
)


def env() -> dict[str, str]:
    """This process's environment, minus what xdist tells its own workers."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    return dict(base, PYTHONPATH=str(REPO), PYTHONDONTWRITEBYTECODE="1")


def run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args],
        cwd=cwd,
        env=env(),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        stdin=subprocess.DEVNULL,
    )


def mtls_matrix(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run(["-m", "matrix", *args], cwd)


def pytest_matrix(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run(["-m", "pytest", str(REPO / "matrix"), "-p", "no:randomly", "-q", *args], cwd)


@pytest.fixture
def user(tmp_path: Path) -> Path:
    """The user's directory: their target module, and a file of theirs."""
    (tmp_path / "targets.py").write_text(TARGETS)
    (tmp_path / "notes.txt").write_text("the user's own file\n")
    return tmp_path


def files(directory: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(directory)): p.read_bytes()
        for p in sorted(directory.rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts
    }


def assert_one_line(result: subprocess.CompletedProcess[str], code: int, *words: str) -> str:
    """Exit ``code``, one error line holding ``words``, no traceback, no INTERNALERROR."""
    both = result.stdout + result.stderr
    assert result.returncode == code, both
    assert "Traceback" not in both and "INTERNALERROR" not in both, both
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


CONTRACT_BREAKS = [
    ("targets:raises", ("raised RuntimeError: cannot find my config file",)),
    ("targets:needs_arguments", ("needs arguments (port)", "called with no arguments")),
    ("targets:no_adapters", ("lacks adapters", "target contract")),
    ("targets:adapter_string", ("adapters must be a non-empty tuple",)),
    ("targets:returns_none", ("returned None", "lacks name, adapters")),
    ("targets:an_instance", ("not a factory",)),
    ("targets:provides_breaks", ("provides('builtin', 'HTTPS') raised KeyError",)),
    ("targets:nothing_here", ("has no 'nothing_here'",)),
    ("no_such_module:target", ("cannot import no_such_module",)),
    ("targets", ("must look like 'package.module:factory'",)),
]


PLUGIN_BREAKS = CONTRACT_BREAKS[:7]


@pytest.mark.parametrize("reference, words", CONTRACT_BREAKS, ids=[c[0] for c in CONTRACT_BREAKS])
def test_command_refuses_a_target_that_breaks_the_contract(user, reference, words):
    before = files(user)
    result = mtls_matrix(user, "run", "--target", reference, "--out", "out")
    line = assert_one_line(result, 2, *words)
    assert line.startswith("mtls-matrix run: error: ")
    assert files(user) == before  # not even the output directory


@pytest.mark.parametrize(
    "reference, words", CONTRACT_BREAKS[:7], ids=[c[0] for c in CONTRACT_BREAKS[:7]]
)
def test_plugin_refuses_a_target_that_breaks_the_contract(user, reference, words):
    before = files(user)
    result = pytest_matrix(user, "--target", reference, "--results", "out/results.json")
    line = assert_one_line(result, 4, *words)
    assert line.startswith("ERROR: ")
    assert files(user) == before


def test_a_module_that_fails_to_import_is_one_line(user):
    (user / "broken.py").write_text("import json\nraise SystemError('half-written module')\n")
    result = mtls_matrix(user, "run", "--target", "broken:target", "--out", "out")
    assert_one_line(result, 2, "importing broken raised SystemError: half-written module")


def test_start_returning_no_handle_fails_its_cases_with_the_contract(user):
    result = mtls_matrix(
        user, "run", "--target", "targets:starts_nothing", "--out", "out", "--case", ONE_CASE
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "INTERNALERROR" not in result.stdout and "AttributeError" not in result.stdout
    summary = [
        line for line in result.stdout.splitlines() if line.startswith("mtls-matrix: target")
    ]
    assert summary[0].startswith("mtls-matrix: target contract: good.start() returned NoneType")
    assert "host (str), port (int, 1-65535), stop()" in summary[0]
    case = json.loads((user / "out" / "results.json").read_text())["cases"][0]
    assert case["status"] == "fail" and "TargetContractError" in case["detail"]
    assert (user / "out" / "matrix.html").is_file()  # the reports still describe the run


def test_start_raising_is_a_finding_recorded_per_case(user):
    result = mtls_matrix(
        user, "run", "--target", "targets:start_fails", "--out", "out", "--case", ONE_CASE
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "INTERNALERROR" not in result.stdout
    case = json.loads((user / "out" / "results.json").read_text())["cases"][0]
    assert case["status"] == "fail" and "could not start" in case["detail"]
    assert "OSError: address already in use" in result.stdout  # the failure says why


def test_one_mistake_in_a_target_prints_one_block_not_one_per_case(user):
    """start() raising fails every case (a finding each, in the results), but the terminal
    shows the mistake once and one line for the rest (it printed 7 lines a case)."""
    result = mtls_matrix(user, "run", "--target", "targets:start_fails", "--out", "out")
    assert result.returncode == 1, result.stdout[-3000:] + result.stderr
    assert result.stdout.count("OSError: address already in use") == 1, result.stdout[-3000:]
    assert result.stdout.count("\ncase     ") == 1
    more = [line for line in result.stdout.splitlines() if " more cases failed as " in line]
    assert more == [
        "mtls-matrix: 459 more cases failed as builtin-ignore-bind:localhost-connect:localhost"
        "-client:none did (server could not start: OSError); each is in the results"
    ]
    assert len(result.stdout.splitlines()) < 40
    assert "460 failed" in result.stdout  # pytest's counts are the real ones
    cases = json.loads((user / "out" / "results.json").read_text())["cases"]
    assert len(cases) == 460 and all(c["status"] == "fail" for c in cases)


def test_a_target_gets_only_its_own_adapters_cases(user):
    result = mtls_matrix(user, "run", "--target", "targets:stdlib_only", "--out", "out", "-n", "2")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr
    data = json.loads((user / "out" / "results.json").read_text())
    assert {c["adapter"] for c in data["cases"]} == {"builtin"}
    assert len(data["cases"]) == 230
    assert data["run"]["adapters"] == ["builtin"]
    contract = data["run"]["environ_contract"]
    assert contract["required"] == [
        "HTTPS", "wsgi.url_scheme", "SSL_PROTOCOL", "SSL_CIPHER", "SSL_CLIENT_VERIFY"
    ]  # fmt: skip
    assert "SSL_CLIENT_CERT" in contract["checked"]["builtin"]
    for name in ("results.json", "junit.xml", "matrix.html", "summary.md"):
        mode = (user / "out" / name).stat().st_mode & 0o777
        assert mode == 0o666 & ~current_umask(), (name, oct(mode))
    other = mtls_matrix(
        user, "run", "--target", "targets:stdlib_only", "--out", "out2",
        "--case", ONE_CASE.replace("builtin", "pyopenssl"),
    )  # fmt: skip
    assert_one_line(other, 2, "on adapter 'pyopenssl', which target 'good' does not run")


def current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@pytest.mark.parametrize(
    "results, words",
    [
        ("{tmp}", ("is a directory",)),
        ("notes.txt/results.json", ("is not a directory",)),
        ("{tmp}/", ("is a directory",)),
        ("/proc/mtls-matrix-nowhere/results.json", ("cannot create /proc/mtls-matrix-nowhere",)),
    ],
)
def test_a_results_path_that_cannot_be_written_stops_the_run_before_any_case(user, results, words):
    before = files(user)
    path = results.format(tmp=user)
    result = pytest_matrix(user, "--target", "targets:good", "--results", path)
    assert_one_line(result, 4, "--results: ", *words)
    assert "passed" not in result.stdout and "failed" not in result.stdout
    assert files(user) == before
    assert not Path(str(user) + ".tmp").exists()  # the old writer left DIR.tmp beside DIR


def test_ad_hoc_runs_write_no_results(user):
    result = pytest_matrix(user, "--target", "targets:good", "--case", ONE_CASE)
    assert result.returncode == 0, result.stdout
    assert "no results written (--results PATH keeps them)" in result.stdout
    assert not (user / "build" / "results.json").exists()
    assert not list(user.rglob("results.json"))


def test_results_are_written_where_asked_with_the_usual_permissions(user):
    result = pytest_matrix(
        user, "--target", "targets:good", "--case", ONE_CASE, "--results", "r/results.json"
    )
    assert result.returncode == 0, result.stdout
    path = user / "r" / "results.json"
    assert json.loads(path.read_text())["cases"][0]["id"] == ONE_CASE
    assert path.stat().st_mode & 0o777 == 0o666 & ~current_umask()
    assert sorted(p.name for p in path.parent.iterdir()) == ["results.json"]


PLUGIN_ENTRY_POINT = (
    "import importlib.metadata as m; "
    "print('yes' if any(e.value == 'matrix.plugin' for e in m.entry_points(group='pytest11')) "
    "else 'no')"
)


def test_the_current_directory_is_importable_for_pyargs_runs(user):
    """``pytest --pyargs matrix`` from the user's directory: no NameError, no import error.
    An installed package's behaviour: the plugin comes from its pytest11 entry point,
    so without an installed mtls-matrix (pip install -e ., or tox) there is nothing to
    check. Asked of a Python started as the run below is (same directory and
    environment), so a stray mtls_matrix.egg-info elsewhere cannot decide it."""
    probe = run(["-c", PLUGIN_ENTRY_POINT], user)
    assert probe.returncode == 0, probe.stderr
    if probe.stdout.strip() != "yes":
        pytest.skip(
            "mtls-matrix is not installed: no pytest11 entry point loads matrix.plugin, so "
            "pytest outside the repository has no --target (pip install -e . or tox)"
        )
    result = run(
        ["-m", "pytest", "--pyargs", "matrix", "-p", "no:randomly", "-q",
         "--target", "targets:good", "--case", ONE_CASE],
        user,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout


def test_out_holding_files_of_the_users_is_refused(user):
    (user / "out").mkdir()
    (user / "out" / "results.json").write_text('{"my": "data"}\n')
    before = files(user)
    result = mtls_matrix(user, "run", "--target", "targets:good", "--out", "out")
    assert_one_line(result, 2, "not written by mtls-matrix", "--force")
    assert files(user) == before


def test_out_that_is_a_file_is_refused(user):
    before = files(user)
    result = mtls_matrix(user, "run", "--target", "targets:good", "--out", "notes.txt")
    assert_one_line(result, 2, "exists and is not a directory")
    assert files(user) == before


@pytest.mark.parametrize(
    "case, words",
    [
        ("builtin-nonsense", ("unknown case id 'builtin-nonsense'",)),
        (ONE_CASE.replace("builtin", "pyopenssl"), ("which target 'good' does not run",)),
    ],
)
def test_an_unknown_case_is_refused_before_anything_is_written(user, case, words):
    before = files(user)
    result = mtls_matrix(
        user, "run", "--target", "targets:stdlib_only", "--out", "out", "--case", case
    )
    assert_one_line(result, 2, *words)
    assert files(user) == before  # no output directory, no certificates
    assert not (user / "out").exists()


def test_certs_dir_of_the_users_is_refused(user):
    (user / "keys").mkdir()
    (user / "keys" / "server.key").write_text("my production key\n")
    before = files(user)
    result = pytest_matrix(user, "--target", "targets:good", "--certs-dir", "keys")
    assert_one_line(result, 4, "--certs-dir: ", "holds no certificate set this project made")
    assert files(user) == before


def test_delegated_jobs_that_are_missing_say_so(user):
    for command in ("resilience", "limbo", "clients"):
        result = mtls_matrix(user, command, "--help")
        if result.returncode == 0:  # that job has been written: its own help
            continue
        assert_one_line(result, 2, f"mtls-matrix {command}: not available")


def test_help_and_unknown_command(user):
    result = mtls_matrix(user, "--help")
    assert result.returncode == 0
    for command in ("run", "compat", "report", "diff", "certs", "serve", "resilience"):
        assert command in result.stdout
    assert_one_line(mtls_matrix(user, "frobnicate"), 2, "invalid choice: 'frobnicate'")


def test_a_handle_whose_stop_raises_is_no_traceback(user):
    result = mtls_matrix(
        user, "run", "--target", "targets:stop_breaks", "--out", "out", "--case", ONE_CASE
    )
    both = result.stdout + result.stderr
    assert result.returncode == 0, both
    assert "Traceback" not in both and "INTERNALERROR" not in both


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write to a read-only directory")
def test_a_results_directory_without_write_permission_is_refused(user):
    (user / "locked").mkdir(mode=0o500)
    result = pytest_matrix(user, "--target", "targets:good", "--results", "locked/r.json")
    assert_one_line(result, 4, "cannot write in", "Permission denied")


def test_unsupported_answering_not_a_reason_is_the_contract(user):
    result = mtls_matrix(
        user, "run", "--target", "targets:unsupported_answers_int", "--out", "out",
        "--case", ONE_CASE,
    )  # fmt: skip
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    summary = [line for line in result.stdout.splitlines() if line.startswith("mtls-matrix: t")]
    assert summary == [
        "mtls-matrix: target contract: good.unsupported() returned 42, not None or a reason (str)"
    ]
