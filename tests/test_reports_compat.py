"""The compat report: several targets' results side by side (reports/compat*.py).

Four synthetic targets (see test_reports_compat_data) are written to files and run through
``python -m reports compat`` once; the page is read back with html.parser and checked cell by
cell against counts computed here straight from the JSON, the findings against the sentences a
reader should see, and the Markdown against its content and the 1 MiB bound. One test opens the
page in headless Chromium (skipped only when no Chromium is installed).
"""

from __future__ import annotations

import copy
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from test_reports_browser import FLAGS, find_browser
from test_reports_compat_data import TARGETS, all_runs, target_run
from test_reports_data import Node, environ_problem, make_case, parse_html, results, write

import reports

REPO = Path(__file__).resolve().parents[1]
MIB = 1024 * 1024
CHECK, CROSS, DASH, NOPE = "\u2713", "\u2717", "\u2013", "\u2298"

FINDINGS = {
    "reference": [],
    "acceptor": [
        "security · expected rejected, observed ok · policy: optional, required; client: "
        "expired; server cert: server (4 cases)",
        "unsupported · acceptor terminates TLS with stdlib ssl only (adapter 'builtin'), not "
        "'pyopenssl' · adapter: pyopenssl (90 cases)",
    ],
    "blind": [
        "visibility · environ SSL_CLIENT_CERT, SSL_CLIENT_M_VERSION, SSL_CLIENT_S_DN, "
        "SSL_CLIENT_VERIFY: missing · policy: optional, required; client: localhost, ip, "
        "wildcard, wrong-host; server cert: server (16 cases)",
        "visibility · environ SSL_CLIENT_SAN_DNS_0: missing · policy: optional, required; "
        "client: localhost, wildcard, wrong-host; server cert: server (12 cases)",
        "unsupported · no client host check (client_check_host) · policy: optional+host, "
        "required+host (36 cases)",
    ],
    "fragile": [
        "availability · server not serving afterwards: a good client got error · adapter: "
        "builtin; policy: required; client: none, wrong-ca; server cert: server (3 cases)",
    ],
}


def run_cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "reports", *map(str, args)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    base = tmp_path_factory.mktemp("compat")
    data = all_runs()
    paths = [write(base / f"{name}.json", data[name]) for name in TARGETS]
    proc = run_cli("compat", *paths, "--out", base / "out")
    assert proc.returncode == 0, proc.stderr
    html_path, md_path = base / "out" / "compat.html", base / "out" / "compat.md"
    assert proc.stdout.split() == [str(html_path), str(md_path)]
    assert proc.stderr == ""
    source = html_path.read_text(encoding="utf-8")
    return {
        "data": data,
        "paths": paths,
        "html_path": html_path,
        "source": source,
        "dom": parse_html(source),
        "md": md_path.read_text(encoding="utf-8"),
        "comparison": reports.compare(reports.load_targets(paths)),
    }


def cells_from_json(data: dict[str, dict[str, Any]]) -> dict[str, tuple[str, str, dict]]:
    """cell key -> (state, main text, counts), computed from the raw JSON, not via reports."""
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for name, run in data.items():
        for c in run["cases"]:
            if c["server_cert"] == "server":
                groups[f"{name}@client/{c['policy']}/{c['client']}"].append(c)
            else:
                groups[f"{name}@server-cert/{c['policy']}/{c['server_cert']}"].append(c)
    out = {}
    for key, cases in groups.items():
        unsupported = sum(c["status"] == "skip" and bool(c["unsupported"]) for c in cases)
        counts = {
            "pass": sum(c["status"] == "pass" for c in cases),
            "fail": sum(c["status"] == "fail" for c in cases),
            "unsupported": unsupported,
            "skip": sum(c["status"] == "skip" for c in cases) - unsupported,
        }
        if counts["fail"]:
            state, main = "fail", f"{counts['fail']}/{counts['fail'] + counts['pass']}"
        elif counts["pass"]:
            state, main = "pass", str(counts["pass"])
        elif unsupported:
            state, main = "unsupported", "unsupported"
        else:
            state, main = "skip", "skipped"
        out[key] = (state, main, counts)
    return out


def cell(dom: Node, key: str) -> Node:
    return dom.find("td", data_cell=key)


def span(node: Node, cls: str) -> str:
    found = [n for n in node.iter() if cls in n.classes]
    return found[0].text() if found else ""


def finding_lines(dom: Node) -> dict[str, list[str]]:
    """Per target, each finding as its severity, text, scope and count read from the page."""
    out = {}
    for block in dom.find_all("li", data_target=True):
        if "target-findings" not in block.classes:
            continue
        out[block.attrs["data-target"] or ""] = [
            " · ".join(t for t in (span(li, "sev"), span(li, "text"), span(li, "scope")) if t)
            + f" {span(li, 'count')}"
            for li in block.find_all("li", data_kind=True)
        ]
    return out


def test_one_column_per_target_in_the_order_given(built: dict[str, Any]) -> None:
    dom = built["dom"]
    heads = dom.find("table", id="compat-table").find("thead").find_all("th", data_target=True)
    assert [h.attrs["data-target"] for h in heads] == list(TARGETS)
    adapters = {h.attrs["data-target"]: span(h, "adapters") for h in heads}
    assert adapters == {
        "reference": "builtin · pyopenssl",
        "acceptor": "builtin",
        "blind": "rustls",
        "fragile": "builtin · pyopenssl",
    }
    runs = dom.find("table", id="runs").find("tbody").find_all("tr")
    assert [r.attrs["data-target"] for r in runs] == list(TARGETS)
    blind = runs[2]
    counts = {td.attrs["data-count"]: td.text() for td in blind.find_all("td", data_count=True)}
    assert counts == {
        "pass": f"{CHECK} 38",
        "fail": f"{CROSS} 16",
        "unsupported": f"{NOPE} 36",
        "skip": f"{DASH} 35",
    }
    assert "rustls 0.23.1" in blind.text() and "4.5 s" in blind.text()
    assert dom.find("title").text() == "mTLS compatibility: 4 targets, 3 diverging"


def test_every_cell_matches_counts_from_the_json(built: dict[str, Any]) -> None:
    expected = cells_from_json(built["data"])
    tds = built["dom"].find_all("td", data_cell=True)
    assert len(tds) == 4 * (35 + 10)  # policy x client rows, policy x bad server cert rows
    assert {td.attrs["data-cell"] for td in tds} == set(expected)
    for td in tds:
        state, main, counts = expected[td.attrs["data-cell"] or ""]
        where = td.attrs["data-cell"]
        assert td.attrs["data-state"] == state, where
        assert state in td.classes, where
        assert span(td, "main") == main, where
        symbol = {"pass": CHECK, "fail": CROSS, "unsupported": NOPE, "skip": DASH}[state]
        assert span(td, "sym") == symbol, where
        for name, n in counts.items():
            assert td.attrs[f"data-{name}"] == str(n), where


def test_cells_say_what_went_wrong_and_list_the_failing_cases(built: dict[str, Any]) -> None:
    dom = built["dom"]
    words = {
        "acceptor@client/optional/expired": "saw ok",
        "acceptor@client/required/expired": "saw ok",
        "blind@client/required/wildcard": "environ",
        "fragile@client/required/none": "server died",
        "fragile@client/required/wrong-ca": "server died",
        "reference@client/optional/expired": "",
        "blind@client/optional+host/localhost": "",
    }
    for key, word in words.items():
        assert span(cell(dom, key), "extra") == word, key
    td = cell(dom, "acceptor@client/optional/expired")
    failing = sorted(
        c["id"]
        for c in built["data"]["acceptor"]["cases"]
        if c["status"] == "fail" and c["policy"] == "optional"
    )
    assert len(failing) == 2
    for case_id in failing:
        assert case_id in td.attrs["title"]
    detail = dom.find("div", id=f"d-{td.attrs['id']}")
    listed = [li.attrs["data-case-id"] for li in detail.find_all("li", data_case_id=True)]
    assert sorted(listed[:2]) == failing  # failures first, then the unreachable skips
    assert "expected rejected, observed ok" in detail.text()
    assert "optional: expired certificate does not verify" in detail.text()
    assert "security · outcome rejected->ok: expected rejected, observed ok" in detail.text()
    assert "hidden" in dom.find("div", id="cell-details").attrs
    # unsupported and plain skips are told apart, with their reasons, in tooltips too
    uns = cell(dom, "blind@client/required+host/ip")
    assert "unsupported: no client host check (client_check_host)" in uns.attrs["title"]
    skip = cell(dom, "fragile@server-cert/ignore/server-wrong-host")
    assert "skipped: bind localhost listens on ::1" in skip.attrs["title"]
    assert "unsupported" not in skip.attrs["title"]


def test_rows_aggregate_over_adapter_bind_and_connect(built: dict[str, Any]) -> None:
    rows = built["dom"].find("table", id="compat-table").find("tbody").find_all("tr")
    sections = [r.attrs["data-section"] for r in rows if "section" in r.classes]
    assert sections == ["client", "server-cert"]
    body = [r for r in rows if "row" in r.classes]
    assert [r.attrs["data-row"] for r in body[:8]] == [
        *(f"client/ignore/{c}" for c in ("none", "localhost", "ip", "wildcard")),
        *(f"client/ignore/{c}" for c in ("wrong-host", "wrong-ca", "expired")),
        "client/optional/none",
    ]
    assert body[-1].attrs["data-row"] == "server-cert/required+host/server-wrong-ca"
    expected_col = {r.attrs["data-row"]: r.find("td", **{"class": "expected"}).text() for r in body}
    assert expected_col["client/required/none"] == "rejected"
    assert expected_col["server-cert/ignore/server-wrong-ca"] == "server-cert-rejected"
    failing_rows = {r.attrs["data-row"] for r in body if "has-fail" in r.classes}
    assert len(failing_rows) == 12
    assert "client/optional/expired" in failing_rows
    assert "client/optional+host/expired" not in failing_rows


def test_findings_text_and_order(built: dict[str, Any]) -> None:
    comparison = built["comparison"]
    assert [t.run.name for t in comparison.targets] == list(TARGETS)
    for target in comparison.targets:
        assert [f.line for f in target.findings] == FINDINGS[target.run.name]
    assert finding_lines(built["dom"]) == FINDINGS
    reference = built["dom"].find(
        "li", data_target="reference", **{"class": "target-findings pass"}
    )
    assert f"{CHECK} no divergence from the spec in 180 cases run" in reference.text()
    lede = built["dom"].find("p", id="lede").text()
    assert lede == "3 of 4 targets diverge from the spec: acceptor, blind, fragile."
    acceptor = built["dom"].find("li", data_kind="outcome")
    assert acceptor.attrs["data-cases"] == "4" and acceptor.attrs["data-severity"] == "security"
    assert "optional: expired certificate does not verify" in acceptor.text()


def test_severity_counts_per_target(built: dict[str, Any]) -> None:
    runs = built["dom"].find("table", id="runs").find("tbody").find_all("tr")
    counts = {
        r.attrs["data-target"]: {
            s.attrs["data-severity"]: int(s.attrs["data-count"] or 0)
            for s in r.find_all("span", data_severity=True)
        }
        for r in runs
    }
    zero = {"security": 0, "availability": 0, "protocol": 0, "visibility": 0}
    assert counts == {
        "reference": zero,
        "acceptor": {**zero, "security": 4},
        "blind": {**zero, "visibility": 16},
        "fragile": {**zero, "availability": 3},
    }
    text = built["md"]
    assert "| 0 security · 0 availability · 0 protocol · 16 visibility |" in text


def test_findings_group_problems_by_cause_and_name_what_they_span() -> None:
    def fail(policy: str, client: str, observed: str, **kw: Any) -> dict[str, Any]:
        expected = "ok" if observed != "ok" else "rejected"
        return make_case(
            kw.pop("adapter", "pyopenssl"),
            policy,
            client=client,
            expected=kw.pop("expected", expected),
            observed=observed,
            status="fail",
            **kw,
        )

    https = [environ_problem("HTTPS", "on", "off")]
    cases = [
        fail("required", "expired", "ok"),
        fail("required", "wrong-ca", "ok"),
        fail("required", "none", "ok"),
        fail("optional", "expired", "ok"),
        fail("optional", "expired", "ok", adapter="builtin"),
        fail("optional", "localhost", "ok", expected="ok", problems=https),
        fail("optional", "ip", "ok", expected="ok", problems=https, detail="other words"),
        fail(
            "required",
            "expired",
            "rejected",
            expected="rejected",
            server_alive=False,
            bind="127.0.0.1",
            connect="127.0.0.1",
        ),
        fail(
            "ignore",
            "localhost",
            "ok",
            server_cert="server-wrong-ca",
            expected="server-cert-rejected",
        ),
        fail("ignore", "wildcard", "error", bind="127.0.0.1"),
        make_case("builtin", "required", client="wrong-ca", expected="rejected"),
    ]
    runs = [reports.TargetRun("t", reports.parse_results(results(cases)))]
    lines = [f.line for f in reports.compare(runs).targets[0].findings]
    here = "bind: 0.0.0.0; connect: localhost"
    assert lines == [
        # one cause across policies, adapters and clients; the spans name where it occurs
        "security · expected rejected, observed ok · policy: optional, required; "
        f"{here}; client: none, wrong-ca, expired; server cert: server (5 cases)",
        "security · expected server-cert-rejected, observed ok · adapter: pyopenssl; policy: "
        f"ignore; {here}; client: localhost; server cert: server-wrong-ca (1 case)",
        "availability · expected ok, observed error · adapter: pyopenssl; policy: ignore; "
        "bind: 127.0.0.1; connect: localhost; client: wildcard; server cert: server (1 case)",
        "availability · server not serving afterwards: a good client got error · adapter: "
        "pyopenssl; policy: required; bind: 127.0.0.1; connect: 127.0.0.1; client: expired; "
        "server cert: server (1 case)",
        # the same environ difference for two clients is one finding, whatever the details say
        "visibility · environ HTTPS: differs (expected on, observed off) · adapter: pyopenssl; "
        f"policy: optional; {here}; client: localhost, ip; server cert: server (2 cases)",
    ]


def test_markdown_has_findings_and_a_compact_table(built: dict[str, Any]) -> None:
    text = built["md"]
    assert len(text.encode()) < MIB
    assert text.startswith("## mTLS compatibility: 4 targets\n")
    assert "**3 of 4 targets diverge from the spec: acceptor, blind, fragile**" in text
    assert f"- **reference**: {CHECK} no divergence from the spec in 180 cases run" in text
    assert f"  - {CROSS} **security** expected rejected, observed ok · policy: optional" in text
    assert f"  - {NOPE} **unsupported** no client host check (client\\_check\\_host)" in text
    assert "**availability** server not serving afterwards: a good client got error" in text
    assert "| policy | client | expected | reference | acceptor | blind | fragile |" in text
    assert f"| **optional** | none | ok | {CHECK} 4 | {CHECK} 2 | {CHECK} 2 | {CHECK} 4 |" in text
    assert (
        f"|   | expired | rejected | {CHECK} 4 | {CROSS} 2/2 saw ok | {CHECK} 2 | {CHECK} 4 |"
        in text
    )
    assert f"| {NOPE} unsupported |" in text
    assert f"| {DASH} skipped |" in text  # fragile's server-wrong-host under ignore
    assert (
        "| **blind** | rustls | 38 | 16 | 36 | 35 | 0 security · 0 availability · 0 protocol · "
        "16 visibility | 4.5 s | blind 1.2.3 · rustls 0.23.1 |" in text
    )
    assert "<script" not in text


def test_markdown_stays_under_1_mib_however_many_findings() -> None:
    runs = []
    for t in range(3):
        cases = [
            make_case(
                "builtin",
                "optional",
                client=f"client-{i:05d}-" + "c" * 80,
                status="fail",
                problems=[environ_problem(f"SSL_ODD_{i}", "x" * 2000, "y" * 2000)],
            )
            for i in range(2500)
        ]
        runs.append(
            reports.TargetRun(f"target-{t}-" + "n" * 300, reports.parse_results(results(cases)))
        )
    text = reports.render_compat_markdown(reports.compare(runs))
    assert len(text.encode()) < MIB
    assert "see compat.html" in text


def test_html_escapes_text_from_results(tmp_path: Path) -> None:
    evil = "<script>alert(1)</script>"
    data = target_run("acceptor")
    data["run"]["target"] = evil
    for case in data["cases"]:
        if case["status"] == "fail":
            case["expected"]["reason"] = evil
            case["problems"][0]["observed"] = evil
    other = target_run("reference")
    comparison = reports.compare(
        reports.load_targets([write(tmp_path / "a.json", data), write(tmp_path / "b.json", other)])
    )
    page = reports.render_compat_html(comparison)
    assert evil not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    dom = parse_html(page)
    assert [s for s in dom.find_all("script") if "alert" in s.text()] == []
    assert evil not in reports.render_compat_markdown(comparison)


def test_targets_with_different_case_sets_leave_cells_empty_not_wrong() -> None:
    full = reports.parse_results(target_run("reference"))
    client_only = [c for c in target_run("acceptor")["cases"] if c["server_cert"] == "server"]
    nothing_ran = [c for c in target_run("blind")["cases"] if c["status"] == "skip"]
    runs = [
        reports.TargetRun("full", full),
        reports.TargetRun("client-only", reports.parse_results(results(client_only))),
        reports.TargetRun("nothing-ran", reports.parse_results(results(nothing_ran))),
    ]
    comparison = reports.compare(runs)
    dom = parse_html(reports.render_compat_html(comparison))
    empty = cell(dom, "client-only@server-cert/ignore/server-wrong-ca")
    assert empty.attrs["data-state"] == "none" and "tabindex" not in empty.attrs
    assert empty.text() == ""
    assert cell(dom, "nothing-ran@client/ignore/none").attrs["data-state"] == "skip"
    nothing = dom.find("li", data_target="nothing-ran", **{"class": "target-findings skip"})
    assert "no case ran" in nothing.text()
    text = reports.render_compat_markdown(comparison)
    assert f"| **ignore** | server-wrong-host | server-cert-rejected | {CHECK} 4 |   | " in text


def test_a_file_without_a_target_name_is_named_after_the_file(tmp_path: Path) -> None:
    data = target_run("acceptor")
    del data["run"]["target"]
    runs = reports.load_targets([write(tmp_path / "gunicorn.json", data)])
    assert [r.name for r in runs] == ["gunicorn"]


def _bad_inputs(tmp: Path) -> dict[str, tuple[list[Path], str]]:
    good = write(tmp / "good.json", target_run("reference"))
    other = write(tmp / "other.json", target_run("acceptor"))
    malformed = tmp / "malformed.json"
    malformed.write_text('{"schema": 2, "cases": [', encoding="utf-8")
    schema = write(tmp / "schema.json", {**target_run("blind"), "schema": 7})
    empty = write(tmp / "empty.json", {**target_run("blind"), "cases": []})
    again = copy.deepcopy(target_run("acceptor"))
    twice = write(tmp / "twice.json", again)
    return {
        "missing": ([good, tmp / "nope.json"], "nope.json: no such file"),
        "malformed": ([malformed, good], "malformed.json: not valid JSON"),
        "schema": ([good, schema], "unknown schema 7"),
        "empty": ([empty], "no cases (the case list is empty)"),
        "same target twice": ([good, other, twice], "target 'acceptor' again"),
    }


def test_bad_input_is_one_line_and_exit_2(tmp_path: Path) -> None:
    procs = {}
    for name, (paths, _) in _bad_inputs(tmp_path).items():
        procs[name] = subprocess.Popen(
            [sys.executable, "-m", "reports", "compat", *map(str, paths), "--out", tmp_path / name],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
    expected = _bad_inputs(tmp_path)
    for name, proc in procs.items():
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 2, (name, err)
        assert out == "", name
        assert "Traceback" not in err, name
        lines = err.splitlines()
        assert len(lines) == 1, (name, err)
        assert lines[0].startswith("reports: error: "), name
        assert expected[name][1] in lines[0], (name, lines[0])
        assert not (tmp_path / name).exists(), name  # nothing written on bad input


def test_divergences_exit_0_and_output_is_deterministic(
    built: dict[str, Any], tmp_path: Path
) -> None:
    proc = run_cli("compat", *built["paths"], "--out", tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "compat.html").read_text(encoding="utf-8") == built["source"]
    assert (tmp_path / "compat.md").read_text(encoding="utf-8") == built["md"]


BROWSER = find_browser()


@pytest.mark.skipif(
    BROWSER is None, reason="no Chromium found on PATH; e.g. apt-get install chromium"
)
def test_page_in_a_real_browser(built: dict[str, Any]) -> None:
    """Headless Chromium, steered by the URL fragment: plain, and failing rows + one cell open."""
    assert BROWSER is not None
    url = built["html_path"].resolve().as_uri()
    key = "fragile@client/required/none"
    jobs = {"plain": url, "steered": f"{url}#failing&cell={quote(key, safe='')}"}
    procs = {}
    with tempfile.TemporaryDirectory() as profiles:
        try:
            for name, target in jobs.items():
                procs[name] = subprocess.Popen(
                    [
                        BROWSER,
                        *FLAGS,
                        f"--user-data-dir={Path(profiles) / name}",
                        "--dump-dom",
                        target,
                    ],
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                )
            outputs = {name: p.communicate(timeout=60) for name, p in procs.items()}
        finally:
            for proc in procs.values():
                if proc.poll() is None:
                    proc.kill()
                    proc.wait(timeout=60)
    for name, (dom_text, log) in outputs.items():
        assert procs[name].returncode == 0, log[-2000:]
        dom = parse_html(dom_text)
        html = dom.find("html")
        assert html.attrs.get("data-ready") == "true", f"{name}: page script did not finish"
        assert "data-js-errors" not in html.attrs, f"{name}: {html.attrs['data-js-errors']}"
        assert [line for line in log.splitlines() if "CONSOLE" in line] == [], name
        heads = dom.find("table", id="compat-table").find_all("th", data_target=True)
        assert [h.attrs["data-target"] for h in heads] == list(TARGETS)
    plain = parse_html(outputs["plain"][0])
    assert plain.find("output", id="rows-shown").text() == "45 of 45 rows shown"
    assert "hidden" in plain.find("aside", id="details").attrs
    steered = parse_html(outputs["steered"][0])
    html = steered.find("html")
    assert html.attrs["data-only-failing"] == "true"
    assert "only-failing" in html.classes
    assert steered.find("output", id="rows-shown").text() == "12 of 45 rows shown"
    assert html.attrs["data-selected"] == key
    panel = steered.find("aside", id="details")
    assert "hidden" not in panel.attrs
    assert panel.find("h2").text() == "fragile · required · none"
    listed = [li.attrs["data-case-id"] for li in panel.find_all("li", data_case_id=True)]
    assert listed[:2] == [
        "builtin-required-bind:127.0.0.1-connect:127.0.0.1-client:none",
        "builtin-required-bind:0.0.0.0-connect:localhost-client:none",
    ]
    assert "availability · survival server-alive: expected ok, observed error" in panel.text()
    assert "selected" in steered.find("td", data_cell=key).classes
