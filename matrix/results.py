"""results.json (schema 2): the run's metadata and one entry per case.

Schema 2 (docs/reports.md) holds every verdict as fields: each case's dimensions, the
oracle's expectation, the client's observation and a list of problems with kind and
severity. The schema number is in the top level and in the run block, so a report reading
a file (or only its run block) can tell which shape it has.
"""

from __future__ import annotations

import json
import os
import platform
import ssl
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

SCHEMA = 2
PACKAGES = ("pyOpenSSL", "cryptography", "trustme", "cheroot", "requests", "service_identity")


def library_versions() -> dict[str, str]:
    out = {"python": platform.python_version(), "openssl": ssl.OPENSSL_VERSION}
    for package in PACKAGES:
        try:
            out[package.lower()] = version(package)
        except PackageNotFoundError:
            out[package.lower()] = "not installed"
    return out


def run_metadata(
    *,
    started: str,
    duration_s: float,
    target: str,
    target_versions: dict[str, str],
    profile: str,
    resolver: dict[str, Any],
    fingerprints: dict[str, str],
) -> dict[str, Any]:
    return {
        "schema": SCHEMA,
        "started": started,
        "duration_s": round(duration_s, 3),
        "target": target,
        # the compat run's column label (harness/targets/columns.py) when it ran this one
        "column": os.environ.get("MTLS_MATRIX_COLUMN") or None,
        "profile": profile,
        "versions": {
            **library_versions(),
            **{f"target:{k}": v for k, v in target_versions.items()},
        },
        "platform": platform.platform(),
        "python_implementation": sys.implementation.name,
        "resolver": resolver,
        "certificates": fingerprints,
    }


def write_results(path: Path, run: dict[str, Any], cases: list[dict[str, Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")  # beside it: the rename is atomic
    tmp.write_text(json.dumps({"schema": SCHEMA, "run": run, "cases": cases}, indent=1) + "\n")
    tmp.replace(path)
    return path
