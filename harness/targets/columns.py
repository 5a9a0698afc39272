"""The compat run's columns: one target under one Python with some server releases pinned.

``mtls-matrix compat --server gunicorn==22.0.0 --server gunicorn==23.0.0 --python 3.10``
asks for the targets whose server is ``gunicorn`` at each release, under Python 3.10: one
column each, one results file each (named by the column's label, ``gunicorn@22.0.0-py3.10``),
and the compat report puts them side by side. A column without pins or a Python runs in
the harness's own environment, as the compat run always did.
"""

from __future__ import annotations

import importlib
import itertools
from dataclasses import dataclass

from .environments import Pin, canonical

# Server packages of targets whose module does not say it as a ``package`` class attribute
PACKAGES = {"reference": "cheroot"}


@dataclass(frozen=True)
class Column:
    target: str
    python: str | None = None  # "3.10": an interpreter found by environments.find_python
    pins: tuple[Pin, ...] = ()

    @property
    def label(self) -> str:
        """The column's name in reports and its results file's stem (no spaces, no '/')."""
        package = target_package(self.target)
        text = self.target
        for pin in self.pins:
            text += f"@{pin.release}" if pin.key == package else f"+{pin.key}-{pin.release}"
        return text + (f"-py{self.python}" if self.python else "")

    @property
    def needs_environment(self) -> bool:
        return bool(self.python or self.pins)


def target_package(target: str) -> str | None:
    """The canonical name of the project a compat target runs, from its module's classes."""
    if target in PACKAGES:
        return canonical(PACKAGES[target])
    module_name = f"harness.targets.{target.split('-')[0]}"
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        return None
    for value in vars(module).values():
        if isinstance(value, type) and getattr(value, "name", None) == target:
            package = getattr(value, "package", None)
            if isinstance(package, str) and package != "?":
                return canonical(package)
    return None


def columns(targets: list[str], pins: list[Pin], pythons: list[str]) -> list[Column]:
    """Every (target, Python, release) column asked for, in a stable order.

    A pin applies to the targets running its project; ``targets`` empty with pins given
    means exactly those targets. A target no pin applies to gets one column per Python.
    """
    python_axis: list[str | None] = list(pythons) or [None]
    out: list[Column] = []
    for target in targets:
        package = target_package(target)
        own = [p for p in pins if p.key == package]
        releases: list[tuple[Pin, ...]] = [(p,) for p in own] or [()]
        for python, release in itertools.product(python_axis, releases):
            out.append(Column(target, python, release))
    return out


def targets_of(pins: list[Pin], known: tuple[str, ...]) -> list[str]:
    """The known targets whose project one of ``pins`` names, in ``known``'s order."""
    wanted = {p.key for p in pins}
    return [t for t in known if target_package(t) in wanted]
