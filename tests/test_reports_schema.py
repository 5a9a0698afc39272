"""results.json schema 2 from real runs, and the reports' independence from its free text.

Two runs of the same real cases (real servers, real handshakes) must give byte-identical
``problems`` and ``detail``: nothing run-specific (ports, ephemeral addresses, timings, retry
wording) may reach them. And since ``detail`` is for people only, changing it must change no
report: every report is built from the fields.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from test_reports_compat_data import TARGETS, all_runs
from test_reports_data import full_run, make_case, results

import reports

REPO = Path(__file__).resolve().parents[1]
RUN_TIMEOUT = 120
LOOPBACK = "bind:127.0.0.1-connect:127.0.0.1"
# (target, cases): environ differences (cheroot_native), a wrong admission (a server that
# downgrades required to optional), a server that stops serving after a refusal.
REAL = {
    "harness.targets.cheroot_native:target": [
        f"builtin-optional-{LOOPBACK}-client:localhost",
        f"pyopenssl-required-{LOOPBACK}-client:ip",
    ],
    "tests.wrong_servers:downgrade_required": [
        f"builtin-required-{LOOPBACK}-client:none",
        f"pyopenssl-required-{LOOPBACK}-client:none",
    ],
    "tests.wrong_servers:drops_all_after_rejection": [
        f"builtin-optional-{LOOPBACK}-client:wrong-ca",
        f"builtin-optional-{LOOPBACK}-client:expired",
    ],
    # a start failure whose message names a port, and an exception of the harness's own
    "tests.test_reports_targets:no_start": [f"builtin-optional-{LOOPBACK}-client:localhost"],
    "tests.test_reports_targets:broken": [f"builtin-required-{LOOPBACK}-client:localhost"],
}


def _run_all(tmp: Path) -> dict[tuple[str, int], list[dict[str, Any]]]:
    """Each target's cases twice, all runs at once (each a pytest process, bounded)."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    }
    procs = {}
    for target, cases in REAL.items():
        for attempt in (1, 2):
            out = tmp / f"{target.replace(':', '_')}-{attempt}.json"
            command = [sys.executable, "-m", "pytest", "matrix", "-q", "-p", "no:cacheprovider"]
            command += ["-p", "no:randomly", "--target", target, "--results", str(out)]
            command += ["--certs-dir", str(tmp / "certs")] + [
                a for c in cases for a in ("--case", c)
            ]
            procs[(target, attempt)] = (
                out,
                subprocess.Popen(
                    command,
                    cwd=REPO,
                    env=env,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    text=True,
                ),
            )
    found = {}
    try:
        for key, (out, proc) in procs.items():
            log, _ = proc.communicate(timeout=RUN_TIMEOUT)
            assert proc.returncode in (0, 1), log[-3000:]
            found[key] = json.loads(out.read_text())["cases"]
    finally:
        for _, proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
    return found


def test_two_runs_of_the_same_cases_give_identical_problems_and_detail(tmp_path: Path) -> None:
    # one certificate set for every run, made before they start
    subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, certs_gen; certs_gen.generate(sys.argv[1], profile='standard')",
            str(tmp_path / "certs"),
        ],
        cwd=REPO,
        check=True,
        timeout=RUN_TIMEOUT,
    )
    runs = _run_all(tmp_path)
    kinds = set()
    for target in REAL:
        first, second = runs[(target, 1)], runs[(target, 2)]
        assert [c["id"] for c in first] == [c["id"] for c in second] == REAL[target]
        for a, b in zip(first, second, strict=True):
            keep = ("problems", "detail", "status", "server_alive", "expected")
            assert json.dumps({k: a[k] for k in keep}) == json.dumps({k: b[k] for k in keep})
            kinds.update((p["kind"], p["severity"]) for p in a["problems"])
            assert ":" + str(a["duration_ms"]) not in a["detail"]
    assert kinds >= {
        ("environ", "visibility"),
        ("outcome", "security"),
        ("survival", "availability"),
        ("start", "availability"),
        ("harness", "availability"),
    }
    (no_start,) = runs[("tests.test_reports_targets:no_start", 1)]
    assert no_start["problems"] == [
        {
            "kind": "start",
            "severity": "availability",
            "what": "start",
            "expected": "running",
            "observed": "OSError",
        }
    ]
    assert no_start["detail"] == "server could not start: OSError"
    (broken,) = runs[("tests.test_reports_targets:broken", 1)]
    assert [p["what"] for p in broken["problems"]] == ["LookupError"]


def _pages(single: dict[str, Any], targets: dict[str, dict[str, Any]]) -> list[str]:
    results_ = reports.parse_results(single)
    comparison = reports.compare(
        [reports.TargetRun(n, reports.parse_results(targets[n])) for n in TARGETS]
    )
    return [
        reports.render_html(results_),
        reports.render_markdown(results_),
        reports.render_compat_html(comparison),
        reports.render_compat_markdown(comparison),
    ]


def test_detail_text_can_change_without_changing_any_report() -> None:
    single, targets = full_run(), all_runs()
    before = _pages(single, targets)
    for data in (single, *targets.values()):
        for number, case in enumerate(data["cases"]):
            case["detail"] = (
                f"expected ok, observed rejected; server not serving afterwards #{number}"
            )
    assert _pages(single, targets) == before


def test_refusal_forms_and_resilience_figures_are_rendered() -> None:
    forms = [("alert", "unknown_ca"), ("alert", "unknown_ca"), ("close", None)]
    cases = []
    for index, (form, alert) in enumerate(forms):
        case = make_case(
            "builtin",
            "required",
            client=("none", "wrong-ca", "expired")[index],
            expected="rejected",
        )
        case["observed"].update(tls_version="TLSv1.3", stage="handshake", form=form, alert=alert)
        cases.append(case)
    wrong_form = copy.deepcopy(cases[2])
    wrong_form["id"] += "-again"
    wrong_form["status"] = "fail"
    wrong_form["problems"] = [
        {
            "kind": "refusal-form",
            "severity": "protocol",
            "what": "certificate_expired",
            "expected": "alert certificate_expired",
            "observed": "close",
        }
    ]
    cases.append(wrong_form)
    resilience = {
        "version": 1,
        "command": "python -m matrix.resilience --target reference",
        "adapters": {
            "builtin": {
                "workers": None,
                "good_alone": {"n": 20, "median_ms": 4.2, "max_ms": 9.0},
                "kinds": [
                    {
                        "kind": "slowloris",
                        "attackers": 8,
                        "during": {"n": 20, "median_ms": 5.0, "max_ms": 12.0, "failed": 0},
                        "after": {"n": 5, "median_ms": 4.4, "max_ms": 5.0, "failed": 0},
                        "added_ms": 0.8,
                        "stall": "none",
                        "bound_s": None,
                        "alive": True,
                        "tracebacks": 0,
                        "restarts": 0,
                        "resources": None,
                    },
                    {
                        "kind": "idle",
                        "attackers": 1,
                        "during": {"n": 3, "median_ms": 5000.0, "max_ms": 5001.0, "failed": 3},
                        "after": {"n": 5, "median_ms": 4.4, "max_ms": 5.0, "failed": 0},
                        "added_ms": 4995.8,
                        "stall": "unbounded",
                        "bound_s": None,
                        "alive": True,
                        "tracebacks": 0,
                        "restarts": 0,
                        "resources": None,
                    },
                ],
            }
        },
    }
    data = results(cases, resilience=resilience)
    other = results(
        [make_case("builtin", "ignore")], target="plain", resilience={"idle_client": {}}
    )
    single = reports.parse_results(data)
    comparison = reports.compare(
        [
            reports.TargetRun("forms", single),
            reports.TargetRun("plain", reports.parse_results(other)),
        ]
    )
    compat = reports.render_compat_html(comparison)
    assert (
        '<span class="form" data-form="alert unknown_ca">alert unknown_ca \u00d72</span>' in compat
    )
    assert '<span class="form" data-form="close">close \u00d72</span>' in compat
    text = reports.render_compat_markdown(comparison)
    assert "| **forms** | alert unknown\\_ca \u00d72 · close \u00d72 | 1 |" in text
    assert "| **plain** | \u2013 | 0 |" in text
    assert (
        "| forms | builtin | idle \u00d71 | 4.2 ms | 5000 ms / 5001 ms, 3 failed | "
        "4.4 ms / 5.0 ms | +4996 ms | \u2717 unbounded | yes |" in text
    )
    page = reports.render_html(single)
    assert 'id="resilience-table"' in page and "slowloris \u00d78" in page
    assert "python -m matrix.resilience --target reference" in page
    summary = reports.render_markdown(single)
    assert (
        "| builtin | slowloris \u00d78 | 4.2 ms | 5.0 ms / 12 ms | 4.4 ms / 5.0 ms | +0.8 ms | "
        "none | yes |" in summary
    )
    # a run without a version-1 block (the older idle_client) has no table, not an error
    assert 'id="resilience-table"' not in reports.render_html(reports.parse_results(other))
