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
from test_reports_data import Node, make_case, parse_html, results, write

import reports
from reports.compat_model import environ_labels

REPO = Path(__file__).resolve().parents[1]
MIB = 1024 * 1024
CHECK, CROSS, DASH, NOPE = "\u2713", "\u2717", "\u2013", "\u2298"

FINDINGS = {
    "reference": [],
    "acceptor": [
        "acceptor: accepts expired client certificates under optional, required (all 4 cases)",
        "acceptor: unsupported on pyopenssl only: acceptor terminates TLS with stdlib ssl only "
        "(adapter 'builtin'), not 'pyopenssl' (90 cases)",
    ],
    "blind": [
        "blind: exposes no client certificate to the application (SSL_CLIENT_* missing, "
        "SSL_CLIENT_VERIFY missing) under optional, required; clients localhost, ip, "
        "wildcard, wrong-host (all 16 cases)",
        "blind: unsupported under optional+host, required+host: no client host check "
        "(client_check_host) (36 cases)",
    ],
    "fragile": [
        "fragile: server did not survive a rejected client (server_alive false) under "
        "required; clients none, wrong-ca; on builtin only (3 of 4 cases)",
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
        unsupported = sum(
            c["status"] == "skip" and c["detail"].startswith("unsupported by ") for c in cases
        )
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
    out = {}
    for block in dom.find_all("li", data_target=True):
        if "target-findings" not in block.classes:
            continue
        name = block.attrs["data-target"] or ""
        out[name] = [
            f"{name}: {span(li, 'text')} {span(li, 'scope')} {span(li, 'count')}".replace("  ", " ")
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
    assert [tf.run.name for tf in comparison.findings] == list(TARGETS)
    for tf in comparison.findings:
        lines = [f.line for f in (*tf.divergences, *tf.unsupported)]
        assert lines == FINDINGS[tf.run.name]
    assert finding_lines(built["dom"]) == FINDINGS
    reference = built["dom"].find(
        "li", data_target="reference", **{"class": "target-findings pass"}
    )
    assert f"{CHECK} no divergence from the spec in 180 cases run" in reference.text()
    lede = built["dom"].find("p", id="lede").text()
    assert lede == "3 of 4 targets diverge from the spec: acceptor, blind, fragile."
    acceptor = built["dom"].find("li", data_kind="outcome", data_target="acceptor")
    assert acceptor.attrs["data-cases"] == "4"
    assert "optional: expired certificate does not verify" in acceptor.text()


def test_findings_group_by_kind_merge_subjects_and_name_narrow_scopes() -> None:
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

    cases = [
        fail("required", "expired", "ok"),
        fail("required", "wrong-ca", "ok"),
        fail("required", "none", "ok"),
        fail("optional", "expired", "ok"),
        fail("optional", "expired", "ok", adapter="builtin"),
        fail("optional", "localhost", "ok", expected="ok", detail="HTTPS is 'off', expected 'on'"),
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
    cases[2]["detail"] = "expected rejected, observed ok"
    runs = [reports.TargetRun("t", reports.parse_results(results(cases)))]
    lines = [f.line for f in reports.compare(runs).findings[0].divergences]
    assert lines == [
        "t: server did not survive a rejected client (server_alive false) under required; "
        "clients expired; on pyopenssl only (1 of 2 cases)",
        "t: gives an error instead of ok for wildcard client certificates under ignore; "
        "on pyopenssl only (1 case)",
        "t: the client accepted the bad server certificate server-wrong-ca under ignore (1 case)",
        "t: accepts expired client certificates under optional (all 2 cases)",
        "t: serves clients that present no certificate under required; on pyopenssl only (1 case)",
        "t: accepts wrong-ca, expired client certificates under required; on pyopenssl only "
        "(2 of 3 cases)",
        "t: application environ differs from the spec (HTTPS is off, not on) under optional; "
        "clients localhost; on pyopenssl only (1 case)",
    ]


def test_environ_labels_collapse_certificate_variables() -> None:
    detail = (
        "SSL_CLIENT_VERIFY is 'NONE', expected 'SUCCESS'; SSL_CLIENT_CERT is None, expected "
        "'-----BEGIN'; SSL_CLIENT_SAN_DNS_0 is None, expected 'localhost'; "
        "SSL_CLIENT_CERT_CHAIN_1 is present ('x') but should not be; HTTPS is None, expected 'on'"
    )
    assert environ_labels(detail) == (
        True,
        (
            "SSL_CLIENT_* missing",
            "HTTPS missing",
            "SSL_CLIENT_VERIFY is NONE, not SUCCESS",
            "SSL_CLIENT_CERT_CHAIN_n present but should not be",
        ),
    )
    assert environ_labels("SSL_CLIENT_VERIFY is None, expected 'NONE'") == (
        False,
        ("SSL_CLIENT_VERIFY missing",),
    )


def test_markdown_has_findings_and_a_compact_table(built: dict[str, Any]) -> None:
    text = built["md"]
    assert len(text.encode()) < MIB
    assert text.startswith("## mTLS compatibility: 4 targets\n")
    assert "**3 of 4 targets diverge from the spec: acceptor, blind, fragile**" in text
    assert f"- **reference**: {CHECK} no divergence from the spec in 180 cases run" in text
    assert (
        f"  - {CROSS} accepts expired client certificates under optional, required "
        "(all 4 cases)\n" in text
    )
    assert f"  - {NOPE} unsupported under optional+host, required+host: no client host" in text
    assert "server did not survive a rejected client (server\\_alive false)" in text
    assert "| policy | client | expected | reference | acceptor | blind | fragile |" in text
    assert f"| **optional** | none | ok | {CHECK} 4 | {CHECK} 2 | {CHECK} 2 | {CHECK} 4 |" in text
    assert (
        f"|   | expired | rejected | {CHECK} 4 | {CROSS} 2/2 saw ok | {CHECK} 2 | {CHECK} 4 |"
        in text
    )
    assert f"| {NOPE} unsupported |" in text
    assert f"| {DASH} skipped |" in text  # fragile's server-wrong-host under ignore
    assert (
        "| **blind** | rustls | 38 | 16 | 36 | 35 | 4.5 s | blind 1.2.3 · rustls 0.23.1 |" in text
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
                detail=f"odd problem number {i} " + "x" * 2000,
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
            case["detail"] = evil
            case["reason"] = evil
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
    malformed.write_text('{"schema": 1, "cases": [', encoding="utf-8")
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
    assert "server not serving afterwards" in panel.text()
    assert "selected" in steered.find("td", data_cell=key).classes


# -- run.resilience.idle_client (python -m matrix.stall) ------------------------------------


def idle_block(stalled: bool, **change: Any) -> dict[str, Any]:
    block = {
        "adapter": "builtin",
        "policy": "required",
        "bind": "127.0.0.1",
        "client": "localhost",
        "baseline_ms": 4.8,
        "with_idle_ms": {"1": 5020.2, "4": 5017.8} if stalled else {"1": 5.1, "4": 4.6},
        "timed_out": ["1", "4"] if stalled else [],
        "after_ms": 13.9,
        "extra_ms": 5015.4 if stalled else 0.3,
        "stalled": stalled,
        "threshold_ms": 100.0,
        "timeout_s": 5.0,
        "detail": "measured",
    }
    return {**block, **change}


def idle_runs(tmp_path: Path) -> list[reports.TargetRun]:
    """reference (no stall), acceptor (stalled), blind (no key: an older file), fragile
    (an unreadable block), each with its usual cases."""
    blocks: dict[str, Any] = {
        "reference": {"idle_client": idle_block(False)},
        "acceptor": {"idle_client": idle_block(True)},
        "fragile": {"idle_client": {"stalled": "maybe"}},
    }
    paths = []
    for name in TARGETS:
        data = target_run(name)
        if name in blocks:
            data["run"]["resilience"] = blocks[name]
        paths.append(write(tmp_path / f"{name}.json", data))
    return reports.load_targets(paths)


def test_idle_client_measurement_is_read_leniently(tmp_path: Path) -> None:
    runs = {r.name: r for r in idle_runs(tmp_path)}
    assert runs["blind"].idle_client is None
    assert runs["reference"].idle_client.state == "pass"
    assert runs["reference"].idle_client.text == f"{CHECK} no stall (+0.3 ms)"
    stalled = runs["acceptor"].idle_client
    assert stalled.state == "fail" and stalled.text == f"{CROSS} stalled \u2265 5000 ms"
    assert [stalled.figure(c) for c in ("1", "4")] == ["\u2265 5000 ms", "\u2265 5000 ms"]
    broken = runs["fragile"].idle_client
    assert broken.state == "skip" and broken.stalled is None
    assert "malformed" in broken.problem
    unsupported = reports.compat_model.IdleClient.from_json(
        {"stalled": None, "unsupported": "no TLS here"}
    )
    assert unsupported.state == "unsupported"
    slow = reports.compat_model.IdleClient.from_json(
        idle_block(True, with_idle_ms={"1": 30.0, "4": 420.0}, timed_out=[])
    )
    assert slow.text == f"{CROSS} stalled 415 ms" and slow.stalling_count == "4"
    # measured differences (paired with a request alone) win over figure minus baseline
    busy = reports.compat_model.IdleClient.from_json(
        idle_block(False, with_idle_ms={"1": 110.0, "4": 164.0}, added_ms={"1": 3.0, "4": 2.0})
    )
    assert busy.text == f"{CHECK} no stall (+3.0 ms)" and busy.added == (("1", 3.0), ("4", 2.0))


def test_a_stalled_target_gets_a_finding_line_and_the_page_a_table(tmp_path: Path) -> None:
    comparison = reports.compare(idle_runs(tmp_path))
    assert comparison.stalled == ["acceptor"]
    stalls = {tf.run.name: [f.line for f in tf.stalls] for tf in comparison.findings}
    assert stalls == {
        "reference": [],
        "acceptor": ["acceptor: one idle client delays every other client by \u2265 5000 ms"],
        "blind": [],
        "fragile": [],
    }
    for tf in comparison.findings:  # the case findings are what they were without the key
        assert [f.line for f in (*tf.divergences, *tf.unsupported)] == FINDINGS[tf.run.name]
    dom = parse_html(reports.render_compat_html(comparison))
    lede = dom.find("p", id="lede").text()
    assert lede.endswith("Idle clients stall acceptor.")
    line = dom.find("li", data_kind="stall", data_target="acceptor")
    assert "one idle client delays every other client by \u2265 5000 ms" in line.text()
    assert "on builtin, required" in line.text()
    rows = dom.find("table", id="idle-table").find("tbody").find_all("tr")
    assert [(r.attrs["data-target"], r.attrs["data-state"]) for r in rows] == [
        ("reference", "pass"),
        ("acceptor", "fail"),
        ("blind", "skip"),
        ("fragile", "skip"),
    ]
    assert [td.text() for td in rows[1].find_all("td")] == [
        "builtin, required",
        "4.8 ms",
        "\u2265 5000 ms",
        "\u2265 5000 ms",
        "14 ms",
        f"{CROSS} stalled \u2265 5000 ms",
    ]
    assert f"{DASH} not measured" in rows[2].text()
    text = reports.render_compat_markdown(comparison)
    assert "**Idle clients stall acceptor.**" in text
    assert (
        f"  - {CROSS} one idle client delays every other client by \u2265 5000 ms on builtin, "
        "required (bound 100 ms; alone 4.8 ms)\n" in text
    )
    assert "### One idle client delays a good one" in text
    assert (
        "| target | adapter, policy | alone | with 1 idle | with 4 idle | after | verdict |" in text
    )
    assert (
        f"| **reference** | builtin, required | 4.8 ms | 5.1 ms | 4.6 ms | 14 ms | "
        f"{CHECK} no stall (+0.3 ms) |" in text
    )
    assert f"| **blind** | {DASH} | {DASH} | {DASH} | {DASH} | {DASH} | {DASH} not measured" in text


def test_results_without_resilience_leave_the_reports_as_they_were(built: dict[str, Any]) -> None:
    assert not built["comparison"].idle_measured
    assert 'id="idle-table"' not in built["source"]
    assert "One idle client" not in built["md"]
    assert all(tf.stalls == () for tf in built["comparison"].findings)
