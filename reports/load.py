"""Reading and checking a results file (schema 2; schema 1 is refused with one line).

Every problem becomes a ``ReportError`` whose message names the file and the spot
(``cases[3].policy``), because these files are written by a runner that may have crashed half
way, and the person reading CI output needs to know which of the two programs to fix.
"""

from __future__ import annotations

import json
import os
from typing import Any

from matrix.problems import Problem

from .model import SCHEMA_VERSION, Case, ReportError, Results, RunInfo
from .order import STATUSES

_REQUIRED = ("id", "adapter", "policy", "bind", "connect", "client", "server_cert")
# Keys of a case that are not dimensions; any other string-valued key is one (e.g. ``tls``).
_NOT_DIMS = {*_REQUIRED, "expected", "observed", "environ", "status", "unsupported", "detail"}


def load_results(path: str | os.PathLike[str]) -> Results:
    """Read and check ``path``; raise ReportError with a one-line message on any problem."""
    name = os.fspath(path)
    try:
        with open(name, encoding="utf-8") as fh:
            text = fh.read()
    except FileNotFoundError:
        raise ReportError(f"{name}: no such file") from None
    except IsADirectoryError:
        raise ReportError(f"{name}: is a directory, not a results file") from None
    except UnicodeDecodeError as exc:
        raise ReportError(f"{name}: not valid UTF-8 (byte {exc.start})") from None
    except OSError as exc:
        raise ReportError(f"{name}: cannot read ({exc.strerror or exc})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ReportError(
            f"{name}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
        ) from None
    except RecursionError:
        raise ReportError(f"{name}: not valid JSON (nested too deeply)") from None
    return parse_results(data, source=name)


def parse_results(data: Any, source: str = "<memory>") -> Results:
    """Check already-decoded JSON; the API twin of load_results for callers holding a dict."""
    if not isinstance(data, dict):
        raise ReportError(f"{source}: expected a JSON object at the top level, got {_kind(data)}")
    if "schema" not in data:
        raise ReportError(f"{source}: missing key 'schema' (not a results file?)")
    schema = data["schema"]
    if schema == 1:
        raise ReportError(
            f"{source}: schema 1 (problems as text, from before 2026-12); this version of "
            f"reports reads schema {SCHEMA_VERSION}: run the matrix again to rewrite it"
        )
    if schema != SCHEMA_VERSION or isinstance(schema, bool):
        raise ReportError(
            f"{source}: unknown schema {json.dumps(schema)} "
            f"(this version of reports reads schema {SCHEMA_VERSION})"
        )
    if "cases" not in data:
        raise ReportError(f"{source}: missing key 'cases'")
    raw_cases = data["cases"]
    if not isinstance(raw_cases, list):
        raise ReportError(f"{source}: 'cases' must be a list, got {_kind(raw_cases)}")
    if not raw_cases:
        raise ReportError(f"{source}: no cases (the case list is empty)")
    run = _run(data.get("run", {}), source)
    cases: list[Case] = []
    first_seen: dict[str, int] = {}
    for index, raw in enumerate(raw_cases):
        case = _case(raw, f"{source}: cases[{index}]")
        if case.id in first_seen:
            raise ReportError(
                f"{source}: cases[{index}]: duplicate id {case.id!r} "
                f"(first at cases[{first_seen[case.id]}])"
            )
        first_seen[case.id] = index
        cases.append(case)
    return Results(schema=SCHEMA_VERSION, run=run, cases=tuple(cases), source=source)


def _case(raw: Any, where: str) -> Case:
    if not isinstance(raw, dict):
        raise ReportError(f"{where}: expected an object, got {_kind(raw)}")
    label = f"{where} (id {raw['id']!r})" if isinstance(raw.get("id"), str) else where
    for key in (*_REQUIRED, "expected", "status"):
        if key not in raw:
            raise ReportError(f"{label}: missing key {key!r}")
    values: dict[str, Any] = {}
    for key in _REQUIRED:
        values[key] = _text(raw[key], f"{label}.{key}")
        if not values[key]:
            raise ReportError(f"{label}.{key}: must not be empty")
    status = raw["status"]
    if status not in STATUSES:
        raise ReportError(
            f"{label}.status: unknown status {json.dumps(status)} (expected pass, fail or skip)"
        )
    expectation = _fields(raw["expected"], f"{label}.expected")
    observation = raw.get("observed")  # null when nothing was attempted (skip, no start)
    observation = {} if observation is None else _fields(observation, f"{label}.observed")
    problems = _problems(raw.get("problems"), f"{label}.problems")
    if status == "fail" and not problems:
        raise ReportError(f"{label}.problems: a failing case must list its problems")
    duration = raw.get("duration_ms")
    if duration is not None and not _is_number(duration):
        raise ReportError(f"{label}.duration_ms: expected a number, got {_kind(duration)}")
    alive = raw.get("server_alive")
    if alive is not None and not isinstance(alive, bool):
        raise ReportError(f"{label}.server_alive: expected true, false or null, got {_kind(alive)}")
    unsupported = raw.get("unsupported")
    return Case(
        **values,
        expected=expectation["outcome"],
        observed=observation.get("outcome"),
        status=status,
        reason=_opt_text(expectation.get("reason")) or "",
        problems=problems,
        unsupported="" if unsupported is None else _text(unsupported, f"{label}.unsupported"),
        server_alive=alive,
        duration_ms=None if duration is None else float(duration),
        expectation=expectation,
        observation=observation,
        extra_dims={k: v for k, v in raw.items() if k not in _NOT_DIMS and isinstance(v, str)},
    )


def _fields(value: Any, where: str) -> dict[str, Any]:
    """An expectation or observation: an object whose ``outcome`` is a non-empty string."""
    if not isinstance(value, dict):
        raise ReportError(f"{where}: expected an object, got {_kind(value)}")
    if not isinstance(value.get("outcome"), str) or not value["outcome"]:
        raise ReportError(f"{where}.outcome: expected a non-empty string")
    return value


def _problems(value: Any, where: str) -> tuple[Problem, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise ReportError(f"{where}: expected a list, got {_kind(value)}")
    out = []
    for index, item in enumerate(value):
        if not isinstance(item, dict):
            raise ReportError(f"{where}[{index}]: expected an object, got {_kind(item)}")
        try:
            out.append(
                Problem(
                    _text(item.get("kind"), f"{where}[{index}].kind"),
                    _text(item.get("severity"), f"{where}[{index}].severity"),
                    _text(item.get("what"), f"{where}[{index}].what"),
                    item.get("expected"),
                    item.get("observed"),
                )
            )
        except ValueError as exc:
            raise ReportError(f"{where}[{index}]: {exc}") from None
    return tuple(out)


def _run(raw: Any, source: str) -> RunInfo:
    if not isinstance(raw, dict):
        raise ReportError(f"{source}: 'run' must be an object, got {_kind(raw)}")
    duration = raw.get("duration_s")
    if duration is not None and not _is_number(duration):
        raise ReportError(f"{source}: run.duration_s: expected a number, got {_kind(duration)}")
    known = {
        "schema",
        "started",
        "duration_s",
        "target",
        "profile",
        "versions",
        "platform",
        "resolver",
        "certificates",
        "provides",
        "resilience",
        "complete",
        "interrupted_by",
        "cases_total",
    }
    complete = raw.get("complete")
    if complete is not None and not isinstance(complete, bool):
        raise ReportError(f"{source}: run.complete: expected a boolean, got {_kind(complete)}")
    total = raw.get("cases_total")
    if total is not None and (not isinstance(total, int) or isinstance(total, bool)):
        raise ReportError(f"{source}: run.cases_total: expected a number, got {_kind(total)}")
    return RunInfo(
        started=_opt_text(raw.get("started")),
        duration_s=None if duration is None else float(duration),
        target=_opt_text(raw.get("target")),
        profile=_opt_text(raw.get("profile")),
        versions=_str_map(raw.get("versions"), f"{source}: run.versions"),
        platform=_opt_text(raw.get("platform")),
        resolver=_map(raw.get("resolver"), f"{source}: run.resolver"),
        certificates=_str_map(raw.get("certificates"), f"{source}: run.certificates"),
        provides=_map(raw.get("provides"), f"{source}: run.provides"),
        resilience=raw.get("resilience"),
        complete=complete,
        interrupted_by=_opt_text(raw.get("interrupted_by")),
        cases_total=total,
        extra={k: v for k, v in raw.items() if k not in known},
    )


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise ReportError(f"{where}: expected a string, got {_kind(value)}")
    return value


def _opt_text(value: Any) -> str | None:
    """Metadata is shown, never computed on, so any scalar is accepted and shown as text."""
    if value is None:
        return None
    return value if isinstance(value, str) else json.dumps(value)


def _map(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ReportError(f"{where}: expected an object, got {_kind(value)}")
    return value


def _str_map(value: Any, where: str) -> dict[str, str]:
    return {str(k): _opt_text(v) or "" for k, v in _map(value, where).items()}


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _kind(value: Any) -> str:
    """JSON's names for types, since the user wrote JSON, not Python."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return "an object"
