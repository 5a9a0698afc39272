"""The reports package from the outside: rendered HTML read back with html.parser, the
Markdown summary, diffs, and the command line run as a subprocess."""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from test_reports_data import make_case, parse_html, remade, results, write

import reports

REPO = Path(__file__).resolve().parents[1]
MIB = 1024 * 1024
DASH = "\u2013"  # the skip symbol, an en dash

# A handful of cases over two adapters, several policies and both grids, one of each kind
# of cell. Keyed by a short name for the tests below.
SMALL = {
    "ok": make_case("builtin", "ignore", client="localhost"),
    "rejected": make_case("builtin", "required", client="none", expected="rejected"),
    "wildcard-fail": make_case(
        "pyopenssl",
        "required+host",
        client="wildcard",
        expected="rejected",
        observed="ok",
        status="fail",
        reason="required+host: <script>alert('x')</script> matches *.localhost & | pipes",
        detail="served",
        server_alive=True,
    ),
    "skip": make_case(
        "pyopenssl",
        "optional",
        bind="localhost",
        connect="127.0.0.1",
        status="skip",
        reason="bind localhost resolves to ::1 only",
    ),
    "dead": make_case(
        "builtin",
        "optional+host",
        bind="127.0.0.1",
        connect="127.0.0.1",
        client="ip",
        observed="error",
        status="fail",
        reason="optional+host: IP-ID matches the peer",
        detail="ReadTimeout: read timed out",
        server_alive=False,
    ),
    "server-cert": make_case(
        "pyopenssl",
        "ignore",
        connect="127.0.0.1",
        server_cert="server-wrong-host",
        expected="server-cert-rejected",
    ),
    "server-cert-fail": make_case(
        "builtin",
        "required",
        server_cert="server-wrong-ca",
        expected="server-cert-rejected",
        observed="ok",
        status="fail",
        reason="server-wrong-ca: issued by other-ca",
        detail="client trusted other-ca",
        server_alive=None,
    ),
}


def small_data() -> dict[str, Any]:
    return results(copy.deepcopy(list(SMALL.values())))


@pytest.fixture(scope="module")
def small() -> reports.Results:
    return reports.parse_results(small_data(), source="small.json")


@pytest.fixture(scope="module")
def page(small: reports.Results) -> str:
    return reports.render_html(small)


def run_cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "reports", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )


# --- HTML ---------------------------------------------------------------------------------


def test_every_case_has_exactly_one_cell_with_its_dimensions(page: str) -> None:
    dom = parse_html(page)
    cells = dom.find_all("td", data_case_id=True)
    assert sorted(c.attrs["data-case-id"] for c in cells) == sorted(c["id"] for c in SMALL.values())
    for raw in SMALL.values():
        cell = dom.find("td", data_case_id=raw["id"])
        assert cell.attrs["data-status"] == raw["status"]
        for dim in ("adapter", "policy", "bind", "connect", "client", "server_cert"):
            assert cell.attrs[f"data-{dim.replace('_', '-')}"] == raw[dim]
        assert raw["status"] in cell.classes


@pytest.mark.parametrize(
    ("name", "symbol", "word", "extra"),
    [
        ("ok", "✓", "ok", None),
        ("rejected", "✓", "rejected", None),
        ("wildcard-fail", "✗", "ok", "expected rejected"),
        ("skip", DASH, "skip", None),
        ("dead", "✗", "error", "expected ok"),
        ("server-cert", "✓", "server-cert-rejected", None),
        ("server-cert-fail", "✗", "ok", "expected server-cert-rejected"),
    ],
)
def test_cell_shows_symbol_and_outcome_word(
    page: str, name: str, symbol: str, word: str, extra: str | None
) -> None:
    cell = parse_html(page).find("td", data_case_id=SMALL[name]["id"])
    text = " ".join(cell.text().split())
    assert text == f"{symbol} {word}" + (f" {extra}" if extra else "")
    assert cell.find("span", **{"class": "sym"}).text() == symbol


def test_cell_tooltip_and_data_carry_expectation_reason_and_problems(page: str) -> None:
    raw = SMALL["wildcard-fail"]
    cell = parse_html(page).find("td", data_case_id=raw["id"])
    title = cell.attrs["title"] or ""
    problem = "security · outcome rejected->ok: expected rejected, observed ok"
    assert "expected rejected" in title
    assert raw["expected"]["reason"] in title
    assert problem in title
    assert "server alive: yes" in title
    assert cell.attrs["data-problems"] == problem
    assert cell.attrs["data-reason"] == raw["expected"]["reason"]
    assert cell.attrs["data-expected"] == "rejected"
    assert cell.attrs["data-observed"] == "ok"
    assert cell.attrs["data-finding"] == "f1"


def test_cases_land_in_the_right_grid_row_and_column(page: str) -> None:
    dom = parse_html(page)
    client = dom.find("table", id="grid-client")
    server = dom.find("table", id="grid-server-cert")
    client_ids = {c.attrs["data-case-id"] for c in client.find_all("td", data_case_id=True)}
    server_ids = {c.attrs["data-case-id"] for c in server.find_all("td", data_case_id=True)}
    assert server_ids == {SMALL["server-cert"]["id"], SMALL["server-cert-fail"]["id"]}
    assert client_ids == {c["id"] for c in SMALL.values()} - server_ids

    # Columns: builtin before pyopenssl, policies in the fixed order; only those present.
    heads = [(th.attrs["data-adapter"], th.text()) for th in client.find_all("th", data_col=True)]
    assert heads == [
        ("builtin", "ignore"),
        ("builtin", "optional+host"),
        ("builtin", "required"),
        ("pyopenssl", "optional"),
        ("pyopenssl", "required+host"),
    ]
    # Rows: client credential order (none, localhost, ip, wildcard), each cell under the
    # header of its own column.
    rows = client.find("tbody").find_all("tr")
    labels = [[th.text() for th in row.find_all("th")] for row in rows]
    assert labels == [
        ["none", "0.0.0.0 → localhost"],
        ["localhost", "localhost → 127.0.0.1"],
        ["localhost", "0.0.0.0 → localhost"],
        ["ip", "127.0.0.1 → 127.0.0.1"],
        ["wildcard", "0.0.0.0 → localhost"],
    ]
    for row in rows:
        for cell in row.find_all("td", data_case_id=True):
            col = int(cell.attrs["data-col"] or -1)
            assert heads[col] == (cell.attrs["data-adapter"], cell.attrs["data-policy"])
            assert row.find_all("th")[0].text() == cell.attrs["data-client"]
    server_rows = [[th.text() for th in r.find_all("th")] for r in server.find_all("tr")[2:]]
    assert server_rows == [
        ["server-wrong-host", "0.0.0.0 → 127.0.0.1"],
        ["server-wrong-ca", "0.0.0.0 → localhost"],
    ]
    # The one client credential of that grid is named once, in its heading.
    heading = dom.find("div", id="block-server-cert").find("h3").text()
    assert heading.endswith("; client credential localhost")


def test_server_grid_gets_a_client_column_when_clients_vary() -> None:
    data = results(
        [
            make_case("builtin", "ignore"),
            make_case("builtin", "ignore", server_cert="server-wrong-ca", client="none"),
            make_case("builtin", "ignore", server_cert="server-wrong-ca", client="ip"),
        ]
    )
    dom = parse_html(reports.render_html(reports.parse_results(data)))
    server = dom.find("table", id="grid-server-cert")
    rows = [[th.text() for th in r.find_all("th")] for r in server.find_all("tr")[2:]]
    assert rows == [
        ["server-wrong-ca", "0.0.0.0 → localhost", "none"],
        ["server-wrong-ca", "0.0.0.0 → localhost", "ip"],
    ]


def test_findings_come_first_most_severe_first_each_with_its_cases(page: str) -> None:
    dom = parse_html(page)
    order = [n.attrs.get("id") for n in dom.iter() if n.tag == "section"]
    assert order == ["findings", "matrix"]
    items = dom.find("section", id="findings").find_all("li", data_finding=True)
    facts = [
        (li.attrs["data-severity"], li.attrs["data-kind"], li.attrs["data-cases"]) for li in items
    ]
    # two wrong admissions (security), then the dead server: its error outcome and its
    # survival are two causes of one case (availability); three failing cases in all
    assert facts == [
        ("security", "outcome", "1"),
        ("security", "outcome", "1"),
        ("availability", "outcome", "1"),
        ("availability", "survival", "1"),
    ]
    listed = [
        [c.attrs["data-case-id"] for c in li.find_all("li", data_case_id=True)] for li in items
    ]
    assert listed == [
        [SMALL[n]["id"]] for n in ("wildcard-fail", "server-cert-fail", "dead", "dead")
    ]
    texts = [li.find("span", **{"class": "text"}).text() for li in items]
    assert texts == [
        "expected rejected, observed ok",
        "expected server-cert-rejected, observed ok",
        "expected ok, observed error",
        "server not serving afterwards: a good client got error",
    ]
    links = [li.find("a", **{"class": "noprint show"}).attrs["href"] for li in items]
    assert links == [f"#filter=finding:f{i}" for i in range(1, 5)]
    assert dom.find("section", id="findings").find("h2").text() == "Findings (4)"
    severities = dom.find("span", id="severity-counts").find_all("span", data_severity=True)
    counts = {s.attrs["data-severity"]: s.attrs["data-count"] for s in severities}
    assert counts == {"security": "2", "availability": "1", "protocol": "0", "visibility": "0"}


def test_no_failures_is_said_plainly() -> None:
    data = results([make_case("builtin", "ignore"), make_case("pyopenssl", "required")])
    dom = parse_html(reports.render_html(reports.parse_results(data)))
    section = dom.find("section", id="findings")
    assert "No failures" in section.text()
    assert not section.find_all("li")


def test_the_findings_heading_counts_every_entry_it_lists() -> None:
    """Failing causes and unsupported configurations are both listed under "Findings": the
    heading counts both (issue 18: "Findings (3)" stood over 4 entries)."""
    unsupported = make_case(
        "builtin", "required+host", status="skip", unsupported="no check of the host name"
    )
    data = results([*copy.deepcopy(list(SMALL.values())), unsupported])
    parsed = reports.parse_results(data)
    dom = parse_html(reports.render_html(parsed))
    section = dom.find("section", id="findings")
    entries = section.find_all("li", data_finding=True)
    assert len(entries) == 5  # the 4 failing causes of SMALL, and the unsupported one
    assert section.find("h2").text() == "Findings (4 failing, 1 unsupported)"
    text = reports.render_markdown(parsed)
    assert "### Findings (4 failing, 1 unsupported)" in text
    listed = [line for line in text.splitlines() if line.startswith("- ") and "**" in line]
    assert len(listed) == 5


def test_results_text_is_escaped(page: str) -> None:
    assert "<script>alert('x')</script>" not in page
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in page
    scripts = parse_html(page).find_all("script")
    assert len(scripts) == 2  # the page's own error trap and filter script, nothing else


def test_page_is_self_contained(page: str) -> None:
    dom = parse_html(page)
    assert not dom.find_all("link")
    assert not [n for n in dom.iter() if "src" in n.attrs]
    hrefs = [n.attrs["href"] or "" for n in dom.iter() if "href" in n.attrs]
    assert all(h.startswith("#") for h in hrefs)
    assert not re.search(r"https?://|@import|url\(", page)
    csp = dom.find("meta", http_equiv="Content-Security-Policy").attrs["content"] or ""
    assert "default-src 'none'" in csp


def test_header_shows_run_metadata_and_counts(page: str) -> None:
    header = parse_html(page).find("header")
    assert " ".join(header.find("h1").text().split()) == "mTLS matrix: reference profile standard"
    totals = header.find("p", id="totals")
    badges = [" ".join(b.text().split()) for b in totals.find_all("span", **{"class": True})]
    assert badges[:4] == ["✓ 3 pass", "✗ 3 fail", f"{DASH} 1 skip", "7 cases"]
    dl = header.find("dl", id="run")
    names, values = dl.find_all("dt"), dl.find_all("dd")
    meta = {n.text(): v.text() for n, v in zip(names, values, strict=True)}
    assert meta["started"] == "2026-11-28 23:00 UTC"
    assert meta["duration"] == "12.3 s"
    assert meta["resolver: localhost"] == "127.0.0.1"
    assert meta["resolver: reverse"] == "127.0.0.1 → localhost; ::1 → (none)"
    assert meta["resolver: ipv6_loopback"] == "yes"
    assert meta["platform"].startswith("Linux-")
    # long lists are collapsed, one click away
    versions = header.find("details", id="versions")
    assert versions.find("summary").text() == "versions (7)"
    pairs = zip(versions.find_all("dt"), versions.find_all("dd"), strict=True)
    shown = {n.text(): v.text() for n, v in pairs}
    assert shown["python"] == "3.11.7" and shown["cheroot"] == "11.1.2"


def test_filters_offer_every_dimension_and_status(page: str) -> None:
    dom = parse_html(page)
    selects = {s.attrs["data-dim"]: s for s in dom.find("div", id="filters").find_all("select")}
    assert set(selects) >= {
        "adapter",
        "policy",
        "bind",
        "connect",
        "client",
        "server-cert",
        "status",
    }
    values = [o.attrs["value"] for o in selects["status"].find_all("option")]
    assert values == ["", "pass", "fail", "skip"]
    values = [o.attrs["value"] for o in selects["client"].find_all("option")]
    assert values == ["", "none", "localhost", "ip", "wildcard"]


def test_cases_with_the_same_dimensions_each_keep_a_cell() -> None:
    first = make_case("builtin", "ignore")
    second = {
        **make_case("builtin", "ignore", observed="error", status="fail"),
        "id": "builtin-ignore-again",
    }
    page = reports.render_html(reports.parse_results(results([first, second])))
    grid = parse_html(page).find("table", id="grid-client")
    assert [c.attrs["data-case-id"] for c in grid.find_all("td", data_case_id=True)] == [
        first["id"],
        "builtin-ignore-again",
    ]
    labels = [r.find_all("th")[1].text() for r in grid.find("tbody").find_all("tr")]
    assert labels == ["0.0.0.0 → localhost", "0.0.0.0 → localhost (duplicate 2)"]


def test_new_adapters_and_values_are_ordered_after_known_ones() -> None:
    data = results(
        [
            make_case("rustls", "ignore"),
            make_case("pyopenssl", "strict"),
            make_case("builtin", "required"),
            make_case("aardvark", "ignore"),
            make_case("builtin", "ignore", client="chain"),
        ]
    )
    dom = parse_html(reports.render_html(reports.parse_results(data)))
    grid = dom.find("table", id="grid-client")
    groups = [th.text() for th in grid.find_all("th", **{"class": "group group-edge"})]
    assert groups == ["builtin", "pyopenssl", "aardvark", "rustls"]
    clients = [r.find_all("th")[0].text() for r in grid.find("tbody").find_all("tr")]
    assert clients == ["localhost", "chain"]


# --- Markdown -----------------------------------------------------------------------------


def table_rows(markdown: str, first_cell: str) -> list[list[str]]:
    """Cells of table rows starting with ``first_cell``, split on unescaped pipes."""
    rows = []
    for line in markdown.splitlines():
        if line.startswith(f"| {first_cell}"):
            cells = re.split(r"(?<!\\)\|", line.strip())[1:-1]
            rows.append([c.strip() for c in cells])
    return rows


def test_summary_has_totals_findings_and_a_grid_per_adapter(small: reports.Results) -> None:
    text = reports.render_markdown(small)
    assert f"7 cases: ✓ 3 pass · ✗ 3 fail · {DASH} 1 skip" in text
    assert (
        "Failing cases by severity: 2 security · 1 availability · 0 protocol · 0 visibility" in text
    )
    assert "### Findings (4)" in text
    findings = [line for line in text.splitlines() if line.startswith("- ✗ **")]
    here = "bind: 0.0.0.0; connect: localhost"
    dead = (
        "adapter: builtin; policy: optional+host; bind: 127.0.0.1; connect: 127.0.0.1; client: ip"
    )
    assert findings == [
        "- ✗ **security** expected rejected, observed ok · adapter: pyopenssl; "
        f"policy: required+host; {here}; client: wildcard; server cert: server (1 case)",
        "- ✗ **security** expected server-cert-rejected, observed ok · adapter: builtin; "
        f"policy: required; {here}; client: localhost; server cert: server-wrong-ca (1 case)",
        f"- ✗ **availability** expected ok, observed error · {dead}; server cert: server (1 case)",
        "- ✗ **availability** server not serving afterwards: a good client got error · "
        f"{dead}; server cert: server (1 case)",
    ]
    assert f"  - `{SMALL['wildcard-fail']['id']}`" in text
    assert "<script>" not in text
    assert text.index("### Findings") < text.index("<summary><b>builtin</b>")
    assert text.index("<summary><b>builtin</b>") < text.index("<summary><b>pyopenssl</b>")
    assert f"<details open><summary><b>builtin</b>: ✓ 2 pass · ✗ 2 fail · {DASH} 0 skip" in text

    grids = table_rows(text, "client credential")
    assert grids[0] == [
        "client credential",
        "bind → connect",
        "ignore",
        "optional+host",
        "required",
    ]
    assert grids[1] == ["client credential", "bind → connect", "optional", "required+host"]
    assert ["none", "0.0.0.0 → localhost", "", "", "✓ rejected"] in table_rows(text, "none")
    assert ["ip", "127.0.0.1 → 127.0.0.1", "", "✗ error", ""] in table_rows(text, "ip")
    assert ["wildcard", "0.0.0.0 → localhost", "", "✗ ok"] in table_rows(text, "wildcard")
    assert ["localhost", "localhost → 127.0.0.1", f"{DASH} skip", ""] in table_rows(
        text, "localhost"
    )
    assert table_rows(text, "server-wrong-host") == [
        ["server-wrong-host", "0.0.0.0 → 127.0.0.1", "✓ server-cert-rejected"]
    ]


def test_summary_without_failures_says_so() -> None:
    text = reports.render_markdown(reports.parse_results(results([make_case("builtin", "ignore")])))
    assert "No failures" in text
    assert "- ✗" not in text


def test_summary_stays_under_one_mib_for_a_huge_run() -> None:
    detail = "x" * 5000 + " | <b>" + "y" * 5000
    cases = [
        make_case(
            "builtin" if i % 2 else f"adapter-{i % 7}",
            f"policy-{i % 13}",
            client=f"client-{i}",
            expected="ok",
            observed="rejected",
            status="fail",
            reason="r" * 3000,
            detail=detail,
            problems=[
                {
                    "kind": "outcome",
                    "severity": "availability",
                    "what": f"ok->rejected-{i}",
                    "expected": "ok",
                    "observed": "x" * 3000,
                }
            ],
        )
        for i in range(6_000)
    ]
    text = reports.render_markdown(reports.parse_results(results(cases)))
    assert len(text.encode("utf-8")) < MIB
    shown = len([line for line in text.splitlines() if line.startswith("- ✗ **")])
    match = re.search(r"^- \.\.\. (\d+) more findings left out", text, re.MULTILINE)
    assert match, "the findings list should say how many it left out"
    assert shown > 100
    assert shown + int(match.group(1)) == 6_000  # one wrong outcome per distinct client
    assert re.search(r"^\.\.\. and \d+ more rows", text, re.MULTILINE)


# --- diff ---------------------------------------------------------------------------------


def changed(data: dict[str, Any], name: str, **fields: Any) -> dict[str, Any]:
    for case in data["cases"]:
        if case["id"] == SMALL[name]["id"]:
            case.update(remade(case, **fields))
    return data


def test_diff_sorts_changes_by_kind(tmp_path: Path) -> None:
    new = small_data()
    changed(new, "ok", observed="rejected", status="fail")  # regression
    changed(new, "dead", observed="ok", status="pass", server_alive=None)  # fixed
    changed(new, "rejected", observed=None, status="skip")  # other
    changed(new, "server-cert-fail", observed="error")  # other: fails differently
    removed = new["cases"].pop(list(SMALL).index("server-cert"))
    new["cases"].append(make_case("rustls", "ignore"))
    old_r = reports.parse_results(small_data())
    new_r = reports.parse_results(new)
    d = reports.diff(old_r, new_r)
    assert [c.id for c in d.new_failures] == [SMALL["ok"]["id"]]
    assert [c.id for c in d.fixes] == [SMALL["dead"]["id"]]
    assert [c.id for c in d.other] == [SMALL["rejected"]["id"], SMALL["server-cert-fail"]["id"]]
    assert [c.id for c in d.added] == [make_case("rustls", "ignore")["id"]]
    assert [c.id for c in d.removed] == [removed["id"]]
    assert d.regressed

    proc = run_cli(
        "diff", write(tmp_path / "old.json", small_data()), write(tmp_path / "new.json", new)
    )
    assert proc.returncode == 1, proc.stderr
    out = proc.stdout
    headings = ("new failures (1)", "fixed (1)", "other changes (2)", "added (1)", "removed (1)")
    positions = [out.index(h) for h in headings]
    assert positions == sorted(positions)
    assert f"{SMALL['ok']['id']}: ✓ pass (ok) -> ✗ fail (rejected)  REGRESSION" in out
    assert out.rstrip().splitlines()[-1].startswith("REGRESSED: 1 new failures, 1 fixed")


def test_diff_exits_0_without_regressions(tmp_path: Path) -> None:
    old = write(tmp_path / "old.json", small_data())
    fixed = changed(small_data(), "dead", observed="ok", status="pass")
    proc = run_cli("diff", old, write(tmp_path / "fixed.json", fixed))
    assert (proc.returncode, proc.stderr) == (0, "")
    assert "fixed (1)" in proc.stdout and "no regressions" in proc.stdout

    # skipped before, failing now: listed as a new failure, but nothing that passed broke.
    unskipped = changed(small_data(), "skip", observed="rejected", status="fail")
    proc = run_cli("diff", old, write(tmp_path / "unskipped.json", unskipped))
    assert proc.returncode == 0
    assert "new failures (1)" in proc.stdout
    assert "REGRESSION" not in proc.stdout


def test_diff_of_identical_files_is_empty(tmp_path: Path) -> None:
    path = write(tmp_path / "r.json", small_data())
    proc = run_cli("diff", path, path)
    assert (proc.returncode, proc.stderr) == (0, "")
    assert "no changes (7 cases identical)" in proc.stdout


# --- build and bad input ------------------------------------------------------------------


def test_build_writes_both_files_and_prints_their_paths(tmp_path: Path) -> None:
    src = write(tmp_path / "results.json", small_data())
    out = tmp_path / "deep" / "report"
    proc = run_cli("build", src, "--out", out)
    assert (proc.returncode, proc.stderr) == (0, "")
    assert proc.stdout.splitlines() == [str(out / "matrix.html"), str(out / "summary.md")]
    assert (out / "matrix.html").read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert "### Findings (4)" in (out / "summary.md").read_text(encoding="utf-8")


def _case_edit(**changes: Any) -> dict[str, Any]:
    data = small_data()
    data["cases"][2].update(changes)
    return data


def _case_without(key: str) -> dict[str, Any]:
    data = small_data()
    del data["cases"][2][key]
    return data


BAD_INPUTS: dict[str, tuple[Any, str]] = {
    # name: (file content: bytes, JSON-able data, or None for "no file"; expected message part)
    "missing file": (None, "no such file"),
    "directory": ("DIR", "is a directory"),
    "not utf-8": (b'{"schema": 2, "cases": ["\xff"]}', "not valid UTF-8"),
    "malformed json": (b'{\n "schema": 2,\n "cases": [,]\n}', "not valid JSON (line 3"),
    "empty file": (b"", "not valid JSON (line 1"),
    "top-level list": ([1, 2], "expected a JSON object at the top level, got a list"),
    "no schema": ({"cases": []}, "missing key 'schema'"),
    "unknown schema": ({**small_data(), "schema": 3}, "unknown schema 3"),
    "schema 1": ({**small_data(), "schema": 1}, "schema 1 (problems as text"),
    "no cases key": ({"schema": 2, "run": {}}, "missing key 'cases'"),
    "cases not a list": ({"schema": 2, "cases": {}}, "'cases' must be a list"),
    "observed as text": (_case_edit(observed="ok"), ".observed: expected an object"),
    "failing without problems": (_case_edit(problems=[]), "must list its problems"),
    "unknown severity": (
        _case_edit(problems=[{"kind": "outcome", "severity": "fatal", "what": "x"}]),
        "unknown problem severity 'fatal'",
    ),
    "empty case list": ({**small_data(), "cases": []}, "no cases"),
    "case missing policy": (_case_without("policy"), "cases[2] (id "),
    "case missing status": (_case_without("status"), "missing key 'status'"),
    "case wrong type": (_case_edit(client=7), "cases[2] (id "),
    "unknown status": (_case_edit(status="passed"), 'unknown status "passed"'),
    "bad server_alive": (_case_edit(server_alive="yes"), "server_alive: expected true"),
    "duplicate id": (
        {**small_data(), "cases": [*small_data()["cases"], small_data()["cases"][0]]},
        "duplicate id",
    ),
    "run not an object": ({**small_data(), "run": []}, "'run' must be an object"),
}


def _materialise(tmp_path: Path, content: Any) -> Path:
    path = tmp_path / "results.json"
    if content is None:
        return path
    if content == "DIR":
        path.mkdir()
    elif isinstance(content, bytes):
        path.write_bytes(content)
    else:
        write(path, content)
    return path


def assert_one_line_error(proc: subprocess.CompletedProcess[str], *parts: str) -> None:
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    assert proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("reports: error: ")
    for part in parts:
        assert part in lines[0]


@pytest.mark.parametrize("name", list(BAD_INPUTS))
def test_bad_input_is_one_line_and_exit_2(tmp_path: Path, name: str) -> None:
    content, message = BAD_INPUTS[name]
    path = _materialise(tmp_path, content)
    proc = run_cli("build", path, "--out", tmp_path / "out")
    assert_one_line_error(proc, str(path), message)
    assert not (tmp_path / "out").exists()


def test_bad_input_messages_name_the_key(tmp_path: Path) -> None:
    with pytest.raises(reports.ReportError, match=r"cases\[2\] \(id '.*'\): missing key 'policy'"):
        reports.parse_results(_case_without("policy"))
    with pytest.raises(reports.ReportError, match=r"\.client: expected a string, got a number"):
        reports.parse_results(_case_edit(client=7))


def test_diff_reports_bad_input_in_either_file(tmp_path: Path) -> None:
    good = write(tmp_path / "good.json", small_data())
    bad = tmp_path / "bad.json"
    bad.write_text("{\n\n  oops", encoding="utf-8")
    assert_one_line_error(run_cli("diff", good, bad), "bad.json: not valid JSON (line 3")
    assert_one_line_error(run_cli("diff", tmp_path / "nope.json", good), "nope.json: no such file")


def test_unwritable_output_is_one_line_and_exit_2(tmp_path: Path) -> None:
    src = write(tmp_path / "results.json", small_data())
    blocker = tmp_path / "file"
    blocker.write_text("", encoding="utf-8")
    assert_one_line_error(run_cli("build", src, "--out", blocker), "is not a directory")


def test_load_results_api_round_trip(tmp_path: Path) -> None:
    path = write(tmp_path / "r.json", small_data())
    loaded = reports.load_results(path)
    assert loaded.source == str(path)
    assert loaded.counts == {"pass": 3, "fail": 3, "skip": 1}
    assert loaded.run.target == "reference"
    assert loaded.run.versions["cheroot"] == "11.1.2"
    skip = loaded.by_id()[SMALL["skip"]["id"]]
    assert (skip.observed, skip.outcome) == (None, "skipped")
    written = reports.build(loaded, tmp_path / "out")
    assert [p.name for p in written] == ["matrix.html", "summary.md"]
    assert json.loads(path.read_text(encoding="utf-8"))["schema"] == reports.SCHEMA_VERSION
