"""What a target will get from a profile, before a server starts (``mtls-matrix check-target``).

Each case of the profile on the target's adapters is sorted into the verdict it is
headed for, by the same steps and in the same order as ``runner.run_case`` (for the
state profile, ``matrix.state.runner``: every server and reload of the case through
the gate, then the target's ``unsupported``):

- *unreachable*: the oracle predicts ``skipped`` (bind and connect addresses that
  cannot meet on this host, from the resolver probe);
- *unsupported*: ``Target.unsupported(spec)`` through the contract's checks
  (``CheckedTarget``: an undeclared feature first, SPEC section 10), grouped by the
  reason, word for word;
- *errors*: ``unsupported`` raised, or answered something that is not a reason: in a
  run, each such case fails with a ``harness`` problem or the target contract;
- *runnable*: the rest: these cases start the target's server and connect to it.

No server is started and nothing is written where the user works: the ``ServerSpec``
values are built from a certificate set generated in a temporary directory (the same
profile's set, so the paths and the fields that are None are what a run passes), and
the directory is deleted afterwards. Hand-written because no library knows the
matrix's own verdict order; it reuses the runner's spec builder and the oracle.
"""

from __future__ import annotations

import datetime as dt
import functools
import tempfile
from dataclasses import dataclass, field
from typing import Any

import certs_gen
from harness.target import FEATURES, CheckedTarget, TargetContractError

from . import state
from .dimensions import addresses
from .oracle import SKIPPED, predict
from .resolver import ResolverFacts, probe
from .runner import MatrixEnv, build_facts
from .state.model import StateCase
from .state.runner import unsupported as state_unsupported

RUNNABLE, UNREACHABLE, UNSUPPORTED, ERRORS = "runnable", "unreachable", "unsupported", "errors"


@dataclass
class Preview:
    """The cases a target would get, per verdict-to-be; ``groups`` maps a verdict to
    {reason: [case id, ...]} (runnable cases under the reason ``""``)."""

    target: str
    profile: str
    adapters: tuple[str, ...]
    features: tuple[str, ...]
    groups: dict[str, dict[str, list[str]]] = field(default_factory=dict)

    def count(self, verdict: str) -> int:
        return sum(len(ids) for ids in self.groups.get(verdict, {}).values())

    @property
    def total(self) -> int:
        return sum(self.count(v) for v in (RUNNABLE, UNREACHABLE, UNSUPPORTED, ERRORS))

    def to_json(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "profile": self.profile,
            "adapters": list(self.adapters),
            "features": list(self.features),
            "total": self.total,
            "counts": {v: self.count(v) for v in (RUNNABLE, UNREACHABLE, UNSUPPORTED, ERRORS)},
            "runnable": self.groups.get(RUNNABLE, {}).get("", []),
            **{
                v: [{"reason": r, "cases": ids} for r, ids in _by_size(self.groups.get(v, {}))]
                for v in (UNREACHABLE, UNSUPPORTED, ERRORS)
            },
        }


def preview(
    target: CheckedTarget,
    profile: str = "standard",
    adapters: tuple[str, ...] | None = None,
    resolver: ResolverFacts | None = None,
) -> Preview:
    """Sort every case ``target`` would run under ``profile`` (on ``adapters``, default all
    of the target's) by its verdict-to-be. Raises KeyError for an unknown profile."""
    from .plugin import certs_profile, matrix_cases

    chosen = tuple(adapters or target.adapters)
    cases = [c for c in matrix_cases(target, profile) if c.adapter in chosen]
    certs_set = certs_profile(profile)  # the state profile runs on the standard set
    resolver = resolver or probe(addresses(certs_set))
    result = Preview(target.name, profile, chosen, tuple(sorted(target.features)))
    with tempfile.TemporaryDirectory(prefix="mtls-matrix-check-") as scratch:
        certs = certs_gen.generate(f"{scratch}/certs", profile=certs_set)
        facts = build_facts(certs, resolver, dt.datetime.now(dt.timezone.utc))
        env = MatrixEnv(certs, facts, target)
        try:
            for case in cases:
                verdict, reason = _verdict(case, env)
                result.groups.setdefault(verdict, {}).setdefault(reason, []).append(case.id)
        finally:
            env.close()
    return result


def _verdict(case, env: MatrixEnv) -> tuple[str, str]:
    if isinstance(case, StateCase):  # as matrix.state.runner decides it
        steps = state.GRIDS[case.grid].predict(case, env.facts).steps
        skipped = [s for s in steps if s.outcome == SKIPPED]
        if skipped:
            return UNREACHABLE, skipped[0].reason
        ask = functools.partial(state_unsupported, case, env)
    else:
        expectation = predict(case, env.facts)
        if expectation.outcome == SKIPPED:
            return UNREACHABLE, expectation.reason
        ask = functools.partial(env.target.unsupported, env.spec(case.config))
    try:
        why = ask()
    except TargetContractError as exc:
        return ERRORS, str(exc)
    except Exception as exc:  # a run records the case as a harness problem of this type
        return ERRORS, f"{env.target.name}.unsupported() raised {type(exc).__name__}"
    return (UNSUPPORTED, why) if why else (RUNNABLE, "")


def _by_size(groups: dict[str, list[str]]) -> list[tuple[str, list[str]]]:
    return sorted(groups.items(), key=lambda item: (-len(item[1]), item[0]))


def render(result: Preview, reference: str = "") -> str:
    """The preview as text for people: counts per verdict, reasons by count."""
    named = f"{result.target} ({reference})" if reference else result.target
    undeclared = sorted(set(FEATURES) - set(result.features))
    lines = [
        f"{named}: profile {result.profile}, adapters {', '.join(result.adapters)}: "
        f"{result.total} cases",
        f"features declared: {', '.join(result.features) or 'none (standard only)'}"
        + (f"; not declared: {', '.join(undeclared)}" if undeclared else ""),
        f"{result.count(RUNNABLE):6}  runnable (the server starts and a client connects)",
    ]
    headings = {
        UNREACHABLE: "skipped, unreachable on this host",
        UNSUPPORTED: "unsupported, by reason",
        ERRORS: "would fail before connecting (the target's unsupported() breaks)",
    }
    for verdict, heading in headings.items():
        groups = result.groups.get(verdict, {})
        if not groups:
            continue
        lines.append(f"{result.count(verdict):6}  {heading}:")
        lines += [f"{len(ids):10}  {reason}" for reason, ids in _by_size(groups)]
    return "\n".join(lines)
