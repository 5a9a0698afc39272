"""Two broken targets for tests/test_reports_schema.py (no tests here): one that cannot
start, with a message that names a port as real start failures do, and one whose
``unsupported`` raises, standing in for a bug of the harness. ``--target
tests.test_reports_targets:NAME``."""

from __future__ import annotations

import itertools

from harness.target import ServerSpec
from harness.targets.reference import ReferenceTarget

_PORTS = itertools.count(40000)


class NoStart(ReferenceTarget):
    name = "no-start"

    def start(self, spec: ServerSpec):  # type: ignore[override]
        raise OSError(f"[Errno 98] Address already in use: port {next(_PORTS)}")


class Broken(ReferenceTarget):
    name = "broken"

    def unsupported(self, spec: ServerSpec) -> str | None:
        raise LookupError(f"no table for {spec.adapter}")


no_start = NoStart
broken = Broken
