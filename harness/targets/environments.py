"""Cached virtual environments for the compat run's version axis: (Python, server release).

A column of the compat report is one target run under one interpreter with one set of
pinned server releases (``gunicorn==22.0.0``). Each such environment is a virtual
environment made with the standard ``venv`` module and filled by ``pip`` from the package
registry: the project's own runtime dependencies (read from ``pyproject.toml``, so the
matrix and the server's launcher run there unchanged), the target's server package at its
compat pin, and the pins asked for, which replace any requirement on the same project.
The project itself is not installed: it runs from its source tree (``PYTHONPATH``), so a
cached environment never holds a stale copy of it.

Environments live under ``$XDG_CACHE_HOME/mtls-matrix/venvs`` (``~/.cache`` by default,
``--venv-cache`` to change it), named by a digest of the interpreter's version and the
requirement list; a marker file is written into it only once pip has succeeded, so an
interrupted build is never mistaken for a finished one (it is rebuilt on the next run).

Hand-written because no maintained library does this narrow job without bringing its own
runner (tox and nox each want to own the command line and the run); it is ~150 lines of
``venv`` + ``pip`` calls.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

from .process import PROJECT_ROOT

PIP_TIMEOUT = 900.0  # seconds for one environment's pip install
_REQUIREMENT_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([A-Za-z0-9.+!_-]+)$")
_PYTHON = re.compile(r"^3\.\d{1,2}$")


class EnvironmentError_(Exception):
    """An environment could not be found or built; the message is one line."""


@dataclass(frozen=True)
class Pin:
    """One server release asked for on the command line: ``package==release``."""

    package: str
    release: str

    @classmethod
    def parse(cls, text: str) -> Pin:
        """``Pin`` from ``name==release``; ValueError (one line) for anything else."""
        match = _PIN.match(text.strip())
        if not match:
            raise ValueError(f"{text!r} is not PACKAGE==RELEASE (for example gunicorn==23.0.0)")
        return cls(match.group(1), match.group(2))

    @property
    def key(self) -> str:
        return canonical(self.package)

    def __str__(self) -> str:
        return f"{self.package}=={self.release}"


def canonical(name: str) -> str:
    """PEP 503 normalised project name: ``Cheroot`` and ``cheroot`` are one project."""
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(requirement: str) -> str:
    match = _REQUIREMENT_NAME.match(requirement)
    return canonical(match.group(1)) if match else ""


def read_pins(path: Path) -> list[Pin]:
    """A versions file: one ``package==release`` a line; ``#`` starts a comment."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise EnvironmentError_(f"{path}: cannot read ({exc.strerror})") from None
    pins = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        try:
            pins.append(Pin.parse(line))
        except ValueError as exc:
            raise EnvironmentError_(f"{path}:{number}: {exc}") from None
    return pins


def project_requirements(extra: str | None = "compat") -> list[str]:
    """The project's runtime requirements, plus one optional extra's (pyproject.toml)."""
    data = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())
    project = data["project"]
    requirements = list(project.get("dependencies", []))
    if extra:
        requirements += project.get("optional-dependencies", {}).get(extra, [])
    return requirements


def find_python(version: str) -> Path:
    """The interpreter for ``3.X``: ``python3.X`` on PATH, else under pyenv's versions.

    EnvironmentError_ (one line) when there is none; a shim that cannot run counts as none.
    """
    if not _PYTHON.match(version):
        raise EnvironmentError_(f"--python {version!r}: give a version such as 3.12")
    candidates: list[Path] = []
    found = shutil.which(f"python{version}")
    if found:
        candidates.append(Path(found))
    pyenv_root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    for directory in sorted((pyenv_root / "versions").glob(f"{version}.*"), reverse=True):
        candidates.append(directory / "bin" / f"python{version}")
    for candidate in candidates:
        actual = _interpreter_version(candidate)
        if actual and actual.startswith(version + "."):
            return candidate
    raise EnvironmentError_(f"python {version}: not found on PATH or under {pyenv_root}/versions")


def _interpreter_version(python: Path) -> str | None:
    try:
        done = subprocess.run(
            [str(python), "-c", "import platform; print(platform.python_version())"],
            capture_output=True,
            text=True,
            timeout=30,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def default_cache() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "mtls-matrix" / "venvs"


def requirements_for(pins: list[Pin], server: str | None = None) -> list[str]:
    """The project's runtime requirements, the ``compat`` extra's pin of ``server`` (the
    target's own project: not the whole extra, whose other servers may not install under
    an older Python), and ``pins``, each replacing any requirement on the same project."""
    pinned = {p.key for p in pins}
    wanted = project_requirements(extra=None)
    if server:
        compat = [r for r in project_requirements() if r not in wanted]
        wanted += [r for r in compat if requirement_name(r) == canonical(server)]
    kept = [r for r in wanted if requirement_name(r) not in pinned]
    return sorted(kept + [str(p) for p in pins])


def ensure(
    python: Path, pins: list[Pin], cache: Path | None = None, server: str | None = None
) -> Path:
    """The interpreter of a cached environment for ``python`` and ``pins`` (and the compat
    pin of ``server``, the target's own project); built if absent.

    Returns the environment's ``bin/python``. EnvironmentError_ (one line, with pip's last
    line) when the interpreter cannot run or pip cannot install the requirements.
    """
    cache = cache or default_cache()
    interpreter = _interpreter_version(python)
    if not interpreter:
        raise EnvironmentError_(f"{python}: cannot run")
    requirements = requirements_for(pins, server)
    digest = hashlib.sha256(json.dumps([interpreter, requirements]).encode()).hexdigest()[:16]
    home = cache / f"py{interpreter}-{digest}"
    marker = home / "mtls-matrix-environment.json"
    if marker.is_file():
        return home / "bin" / "python"
    cache.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(home, ignore_errors=True)  # an earlier build that never finished
    _run([str(python), "-m", "venv", str(home)], f"python {interpreter}: venv")
    pip = [str(home / "bin" / "python"), "-m", "pip", "install", "--quiet"]
    pip += ["--disable-pip-version-check", *requirements]
    what = ", ".join(str(p) for p in pins) or "the project's requirements"
    _run(pip, f"python {interpreter}: pip install {what}")
    marker.write_text(
        json.dumps({"python": interpreter, "requirements": requirements}, indent=1) + "\n"
    )
    return home / "bin" / "python"


def _run(command: list[str], what: str) -> None:
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=PIP_TIMEOUT, stdin=subprocess.DEVNULL
        )
    except subprocess.TimeoutExpired:
        raise EnvironmentError_(f"{what}: did not finish within {PIP_TIMEOUT:g} s") from None
    except OSError as exc:
        raise EnvironmentError_(f"{what}: {exc.strerror}") from None
    if done.returncode != 0:
        lines = [line for line in (done.stderr or done.stdout).splitlines() if line.strip()]
        last = lines[-1].strip() if lines else f"exit {done.returncode}"
        raise EnvironmentError_(f"{what}: {last}")
