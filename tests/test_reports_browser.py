"""matrix.html in a real browser: headless Chromium, driven only from its command line.

No DevTools client is needed because the page can be steered by its URL fragment, which its
script applies on load (and on every later ``hashchange``):

    matrix.html#filter=adapter:pyopenssl,status:fail   DIM:VALUE pairs, comma-separated,
                                                       values URI-encoded; DIM is a data-*
                                                       name (server-cert, not server_cert)
    matrix.html#case=<URI-encoded case id>             opens that case's details panel
    matrix.html#filter=finding:f2                      the cases of one finding

``--dump-dom`` then prints the DOM as the script left it. The page records its own script
errors on ``<html data-js-errors>`` and marks ``<html data-ready="true">`` when its script
finished; ``--enable-logging=stderr`` makes Chromium print every console message, which is
checked too. The four Chromium runs are started together, each bounded by a timeout.

Skipped, with the reason shown, only when no chromium, chromium-browser or google-chrome is
on PATH. A screenshot of the full synthetic run is saved to build/report-screenshot.png.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from test_reports_data import Node, case_id, full_run, parse_html, write

import reports

REPO = Path(__file__).resolve().parents[1]
SCREENSHOT = REPO / "build" / "report-screenshot.png"
BROWSERS = ("chromium", "chromium-browser", "google-chrome")
TIMEOUT_S = 60
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--enable-logging=stderr",
    "--v=0",
]
FAILING_WILDCARD = case_id(
    "pyopenssl", "required+host", "0.0.0.0", "localhost", "wildcard", "server"
)


def find_browser() -> str | None:
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    return None


BROWSER = find_browser()
pytestmark = pytest.mark.skipif(
    BROWSER is None,
    reason=f"no Chromium found on PATH (looked for {', '.join(BROWSERS)}); "
    "install one, e.g. apt-get install chromium",
)


class Page:
    def __init__(self, dom: str, stderr: str) -> None:
        self.source = dom
        self.dom = parse_html(dom)
        self.console = [line for line in stderr.splitlines() if "CONSOLE" in line]

    @property
    def html(self) -> Node:
        return self.dom.find("html")

    def cells(self) -> list[Node]:
        return self.dom.find_all("td", data_case_id=True)

    def visible_cells(self) -> list[Node]:
        return [c for c in self.cells() if "out" not in c.classes and "hidden" not in c.attrs]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Build the report for a full synthetic run and load it four ways at once."""
    assert BROWSER is not None
    base = tmp_path_factory.mktemp("browser")
    data = full_run()
    results = reports.load_results(write(base / "results.json", data))
    html_path = reports.build(results, base / "report")[0]
    url = html_path.resolve().as_uri()
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    SCREENSHOT.unlink(missing_ok=True)
    jobs = {
        "plain": ["--dump-dom", url],
        "pyopenssl": ["--dump-dom", f"{url}#filter=adapter:pyopenssl"],
        "failures": [
            "--dump-dom",
            f"{url}#filter=status:fail&case={quote(FAILING_WILDCARD, safe='')}",
        ],
        "finding": ["--dump-dom", f"{url}#filter=finding:f2"],
        "screenshot": [
            "--window-size=1366,2200",
            "--hide-scrollbars",
            f"--screenshot={SCREENSHOT}",
            url,
        ],
    }
    procs = {}
    with tempfile.TemporaryDirectory() as profiles:
        try:
            for name, args in jobs.items():
                procs[name] = subprocess.Popen(
                    [BROWSER, *FLAGS, f"--user-data-dir={Path(profiles) / name}", *args],
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                )
            outputs = {}
            for name, proc in procs.items():
                out, err = proc.communicate(timeout=TIMEOUT_S)
                assert proc.returncode == 0, f"chromium ({name}) exited {proc.returncode}: {err}"
                outputs[name] = (out, err)
        finally:
            for proc in procs.values():
                if proc.poll() is None:
                    proc.kill()
                    proc.wait(timeout=TIMEOUT_S)
    yield {
        "data": data,
        "pages": {
            name: Page(*outputs[name]) for name in ("plain", "pyopenssl", "failures", "finding")
        },
        "screenshot_log": outputs["screenshot"][1],
    }


def test_script_runs_without_errors(run: dict[str, Any]) -> None:
    for name, page in run["pages"].items():
        html = page.html
        assert html.attrs.get("data-ready") == "true", f"{name}: page script did not finish"
        assert "data-js-errors" not in html.attrs, f"{name}: {html.attrs['data-js-errors']}"
        assert page.console == [], f"{name}: console output {page.console}"
    assert not [line for line in run["screenshot_log"].splitlines() if "CONSOLE" in line]


def test_grid_has_one_cell_per_case(run: dict[str, Any]) -> None:
    page = run["pages"]["plain"]
    ids = [c.attrs["data-case-id"] for c in page.cells()]
    assert len(ids) == len(run["data"]["cases"]) == 460
    assert sorted(ids) == sorted(c["id"] for c in run["data"]["cases"])
    assert len(page.visible_cells()) == 460
    assert page.dom.find("output", id="shown").text() == "460 of 460 cases shown"
    assert "hidden" in page.dom.find("aside", id="details").attrs


def test_adapter_filter_from_the_url_hides_the_other_adapter(run: dict[str, Any]) -> None:
    page = run["pages"]["pyopenssl"]
    assert page.html.attrs["data-filter"] == "adapter:pyopenssl"
    visible = page.visible_cells()
    assert {c.attrs["data-adapter"] for c in visible} == {"pyopenssl"}
    assert len(visible) == 230
    for cell in page.cells():
        if cell.attrs["data-adapter"] == "builtin":
            assert "out" in cell.classes and "hidden" in cell.attrs
    for th in page.dom.find_all("th", data_adapter="builtin"):
        assert "hidden" in th.attrs  # the whole builtin column group is gone
    for th in page.dom.find_all("th", data_adapter="pyopenssl"):
        assert "hidden" not in th.attrs
    assert page.dom.find("output", id="shown").text() == "230 of 460 cases shown"


def test_status_filter_keeps_only_failures_and_opens_the_linked_case(run: dict[str, Any]) -> None:
    page = run["pages"]["failures"]
    failing = sorted(c["id"] for c in run["data"]["cases"] if c["status"] == "fail")
    assert sorted(c.attrs["data-case-id"] for c in page.visible_cells()) == failing
    rows = page.dom.find("table", id="grid-client").find("tbody").find_all("tr")
    shown_rows = [r for r in rows if "hidden" not in r.attrs]
    assert len(shown_rows) == 3  # one row per failing client-grid case
    panel = page.dom.find("aside", id="details")
    assert "hidden" not in panel.attrs
    assert panel.find("h2").text() == FAILING_WILDCARD
    fields = {n.attrs["data-field"]: n.text() for n in panel.find_all(data_field=True)}
    assert fields["expected"] == "rejected"
    assert fields["observed"] == "ok"
    assert fields["status"] == "fail"
    assert fields["problems"] == "security · outcome rejected->ok: expected rejected, observed ok"
    selected = page.dom.find("td", data_case_id=FAILING_WILDCARD)
    assert "selected" in selected.classes


def test_screenshot_is_saved(run: dict[str, Any]) -> None:
    assert SCREENSHOT.is_file(), run["screenshot_log"][-2000:]
    data = SCREENSHOT.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert (width, height) == (1366, 2200)
    assert re.search(rb"IDAT", data)


def test_findings_and_grid_agree_on_counts(run: dict[str, Any]) -> None:
    page = run["pages"]["plain"]
    failing = {c.attrs["data-case-id"] for c in page.cells() if c.attrs["data-status"] == "fail"}
    items = page.dom.find("section", id="findings").find_all("li", data_finding=True)
    failures = [li for li in items if li.attrs["data-severity"]]
    listed: set[str] = set()
    for li in failures:
        ids = [c.attrs["data-case-id"] for c in li.find_all("li", data_case_id=True)]
        assert len(ids) == int(li.attrs["data-cases"] or 0)
        listed.update(ids)
        for listed_id in ids:  # each listed case's cell names the finding
            cell = page.dom.find("td", data_case_id=listed_id)
            assert li.attrs["data-finding"] in (cell.attrs["data-finding"] or "").split()
    assert listed == failing
    severities = page.dom.find("span", id="severity-counts").find_all("span", data_severity=True)
    assert sum(int(s.attrs["data-count"] or 0) for s in severities) == len(failing)
    assert page.dom.find("span", id="count-fail").text() == f"\u2717 {len(failing)} fail"

    # the finding's link filters the grid to exactly its cases, and scrolls to the grid
    steered = run["pages"]["finding"]
    assert steered.html.attrs["data-filter"] == "finding:f2"
    assert steered.html.attrs["data-scrolled-to"] == "matrix"
    f2 = steered.dom.find("li", data_finding="f2")
    ids = sorted(c.attrs["data-case-id"] for c in f2.find_all("li", data_case_id=True))
    assert sorted(c.attrs["data-case-id"] for c in steered.visible_cells()) == ids
    shown = steered.dom.find("output", id="shown").text()
    assert shown == f"{f2.attrs['data-cases']} of 460 cases shown"
