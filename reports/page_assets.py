"""The stylesheet and scripts inlined into matrix.html.

They live here as constants, not as package data files, so the page stays one self-contained
file however the package is installed. The scripts only ever set ``textContent`` and
attributes, never ``innerHTML``, so text from results cannot become markup in the browser
either.
"""

# Runs first, before anything else can fail: records errors where a headless browser's
# --dump-dom (and a person with devtools closed) can see them.
ERROR_TRAP_JS = """
(function () {
  var root = document.documentElement;
  function record(message) {
    var before = root.getAttribute("data-js-errors");
    root.setAttribute("data-js-errors", (before ? before + "\\n" : "") + message);
  }
  window.addEventListener("error", function (e) {
    record(String(e.message || e.type) + (e.lineno ? " (line " + e.lineno + ")" : ""));
  });
  window.addEventListener("unhandledrejection", function (e) {
    record("unhandled rejection: " + String(e.reason));
  });
  document.addEventListener("securitypolicyviolation", function (e) {
    record("blocked by CSP: " + e.blockedURI);
  });
  var consoleError = console.error;
  console.error = function () {
    record(Array.prototype.join.call(arguments, " "));
    return consoleError.apply(console, arguments);
  };
})();
"""

CSS = """
:root {
  --fg: #1d2125; --muted: #5f6b76; --line: #d0d7de; --head: #f3f5f7;
  --pass-bg: #e4f4e7; --pass-bg2: #cde9d3; --pass-fg: #17602a;
  --fail-bg: #fde1df; --fail-fg: #a4161a; --fail-edge: #c62828;
  --skip-bg: #ececec; --skip-fg: #5c5c5c; --accent: #0b5cad;
}
* { box-sizing: border-box; }
body { margin: 0; padding: 12px 20px 40px; color: var(--fg); background: #fff;
  font: 14px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", sans-serif; }
h1 { font-size: 20px; margin: 0 0 6px; }
h1 .profile { font-weight: normal; color: var(--muted); font-size: 16px; }
h2 { font-size: 17px; margin: 22px 0 8px; border-bottom: 1px solid var(--line);
  padding-bottom: 3px; }
h3 { font-size: 15px; margin: 18px 0 6px; }
code, pre, .mono { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace;
  font-size: 12px; }
.totals { margin: 4px 0 10px; display: flex; gap: 8px; align-items: center; flex-wrap: wrap; }
.badge { display: inline-block; padding: 2px 9px; border-radius: 10px; font-weight: 600; }
.badge.pass { background: var(--pass-bg); color: var(--pass-fg); }
.badge.fail { background: var(--fail-bg); color: var(--fail-fg);
  box-shadow: inset 0 0 0 1px var(--fail-edge); }
.badge.skip { background: var(--skip-bg); color: var(--skip-fg); }
.badge.none { background: none; color: var(--muted); box-shadow: none; font-weight: normal; }
dl.meta { display: grid; grid-template-columns: max-content 1fr; gap: 1px 14px; margin: 0;
  font-size: 13px; }
dl.meta dt { color: var(--muted); }
dl.meta dd { margin: 0; overflow-wrap: anywhere; }
details.more { margin-top: 4px; font-size: 13px; }
details.more summary { cursor: pointer; color: var(--accent); }
table { border-collapse: collapse; }
th, td { border: 1px solid var(--line); }
table.anomalies { width: 100%; font-size: 13px; }
table.anomalies th { background: var(--head); text-align: left; padding: 4px 6px; }
table.anomalies td { padding: 4px 6px; vertical-align: top; }
table.anomalies td.id { font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 12px;
  overflow-wrap: break-word; width: 32%; }
table.anomalies pre { margin: 0; white-space: pre-wrap; overflow-wrap: anywhere; max-height: 9em;
  overflow: auto; }
table.anomalies .dead { color: var(--fail-fg); font-weight: 700; }
a[data-goto] { color: var(--accent); }
.no-anomalies { background: var(--pass-bg); color: var(--pass-fg); padding: 6px 10px;
  border-radius: 4px; display: inline-block; font-weight: 600; margin: 0; }
.legend { display: flex; flex-wrap: wrap; gap: 6px 16px; font-size: 13px; margin: 4px 0 8px;
  align-items: center; }
.legend .key { display: inline-block; min-width: 2.2em; text-align: center; padding: 1px 6px;
  border-radius: 3px; margin-right: 4px; }
.legend .key.pass { background: var(--pass-bg); color: var(--pass-fg); }
.legend .key.fail { background: var(--fail-bg); color: var(--fail-fg);
  box-shadow: inset 0 0 0 2px var(--fail-edge); }
.legend .key.skip { background: var(--skip-bg); color: var(--skip-fg); }
.legend .words { color: var(--muted); }
#filters { display: flex; flex-wrap: wrap; gap: 6px 12px; align-items: center; padding: 6px 8px;
  background: var(--head); border: 1px solid var(--line); border-radius: 4px; font-size: 13px;
  margin-bottom: 6px; }
#filters label { display: inline-flex; gap: 4px; align-items: center; }
#filters select { font: inherit; max-width: 12em; }
#filters output { color: var(--muted); margin-left: auto; }
#filter-note { color: var(--fail-fg); }
.scroll { overflow-x: auto; }
table.grid { font-size: 12px; }
table.grid th { background: var(--head); padding: 3px 6px; font-weight: 600; }
table.grid thead th.group { font-size: 13px; border-bottom: 2px solid var(--fg); }
table.grid thead th.rowhead { text-align: left; vertical-align: bottom; }
table.grid thead th.policy { font-weight: normal; white-space: nowrap; }
table.grid tbody th { text-align: left; font-weight: normal; white-space: nowrap;
  background: #fafbfc; }
table.grid tbody tr.group-start > * { border-top: 2px solid #8c959f; }
table.grid tbody th.repeat { color: #9aa4ad; }
table.grid tbody th.lead { font-weight: 600; }
table.grid th.group-edge, table.grid td.group-edge { border-left: 2px solid var(--fg); }
table.grid th.policy, td.case { width: 8.4em; min-width: 8.4em; max-width: 8.4em; }
td.case { text-align: center; padding: 2px 4px; cursor: pointer; line-height: 1.25; }
td.case .sym { font-weight: 700; }
td.case .exp { display: block; font-size: 10px; font-weight: normal; }
td.case.pass { background: var(--pass-bg); color: var(--pass-fg); }
td.case.pass:not([data-observed="ok"]) { background: var(--pass-bg2); }
td.case.fail { background: var(--fail-bg); color: var(--fail-fg); font-weight: 600;
  box-shadow: inset 0 0 0 2px var(--fail-edge); }
td.case.skip { background: var(--skip-bg); color: var(--skip-fg); font-style: italic; }
td.case:hover, td.case:focus { outline: 2px solid var(--accent); outline-offset: -2px; }
td.case.selected { outline: 3px solid var(--accent); outline-offset: -3px; }
td.case.out { visibility: hidden; }
td.nocase { background: repeating-linear-gradient(45deg, #fff, #fff 4px, #f3f3f3 4px,
  #f3f3f3 8px); }
.grid-block .nothing { display: none; color: var(--muted); font-style: italic; }
.grid-block.empty .nothing { display: block; }
.grid-block.empty .scroll { display: none; }
#details { position: fixed; right: 16px; bottom: 16px; width: min(480px, calc(100vw - 32px));
  max-height: 60vh; overflow: auto; background: #fff; border: 1px solid var(--line);
  border-radius: 6px; box-shadow: 0 6px 24px rgba(0, 0, 0, .18); padding: 10px 14px; z-index: 10; }
#details[hidden] { display: none; }
#details h2 { margin: 0 28px 6px 0; font-size: 13px; border: 0; overflow-wrap: anywhere;
  font-family: ui-monospace, Menlo, Consolas, monospace; }
#details dl { display: grid; grid-template-columns: max-content 1fr; gap: 2px 10px; margin: 0;
  font-size: 13px; }
#details dt { color: var(--muted); }
#details dd { margin: 0; overflow-wrap: anywhere; }
#details pre { white-space: pre-wrap; overflow-wrap: anywhere; background: var(--head);
  padding: 6px; margin: 6px 0 0; max-height: 20em; overflow: auto; }
#details-close { position: absolute; top: 6px; right: 8px; border: 0; background: none;
  font-size: 20px; cursor: pointer; color: var(--muted); }
footer { margin-top: 24px; color: var(--muted); font-size: 12px; }
@media print {
  body { padding: 0; font-size: 10px; }
  * { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
  #filters, #details, .noprint { display: none !important; }
  details.more > *:not(summary) { display: block; }
  .scroll { overflow: visible; }
  table.grid { font-size: 9px; }
  td.case { min-width: 0; padding: 1px 3px; cursor: default; }
  thead { display: table-header-group; }
  tr, td, th { break-inside: avoid; }
  h2, h3 { break-after: avoid; }
  a[data-goto] { color: inherit; text-decoration: none; }
}
"""


def cell_keys_js(selector: str) -> str:
    """How both pages end: Enter/Space open a cell, Escape closes, the URL fragment applies,
    and ``data-ready`` tells the browser tests the script ran to its end. Expects the page
    script's ``selected``, ``show``, ``applyHash`` and ``root``."""
    return _CELL_KEYS_JS.replace("SELECTOR", selector)


_CELL_KEYS_JS = """  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape" && selected) { show(null, true); return; }
    var cell = event.target.closest && event.target.closest("SELECTOR");
    if (cell && (event.key === "Enter" || event.key === " ")) {
      event.preventDefault();
      show(cell, true);
    }
  });
  window.addEventListener("hashchange", applyHash);
  applyHash();
  root.setAttribute("data-ready", "true");
})();
"""

PAGE_JS = """
(function () {
  "use strict";
  var root = document.documentElement;
  var each = function (list, fn) { Array.prototype.forEach.call(list, fn); };
  var cells = Array.prototype.slice.call(document.querySelectorAll("td[data-case-id]"));
  var byId = {};
  cells.forEach(function (c) { byId[c.getAttribute("data-case-id")] = c; });
  var selects = Array.prototype.slice.call(document.querySelectorAll("#filters select[data-dim]"));
  var shown = document.getElementById("shown");
  var note = document.getElementById("filter-note");
  var panel = document.getElementById("details");
  var selected = null;

  function decode(text) {
    try { return decodeURIComponent(text); } catch (e) { return text; }
  }

  function readHash() {
    var out = {};
    location.hash.replace(/^#/, "").split("&").forEach(function (part) {
      if (!part) { return; }
      var i = part.indexOf("=");
      out[i < 0 ? part : part.slice(0, i)] = i < 0 ? "" : part.slice(i + 1);
    });
    return out;
  }

  function writeHash() {
    var parts = [];
    var spec = selects.filter(function (s) { return s.value !== ""; }).map(function (s) {
      return s.getAttribute("data-dim") + ":" + encodeURIComponent(s.value);
    }).join(",");
    if (spec) { parts.push("filter=" + spec); }
    if (selected) {
      parts.push("case=" + encodeURIComponent(selected.getAttribute("data-case-id")));
    }
    var url = location.href.split("#")[0] + (parts.length ? "#" + parts.join("&") : "");
    try { history.replaceState(null, "", url); } catch (e) { /* file:// may refuse; harmless */ }
  }

  function applyTable(table) {
    var body = table.tBodies[0];
    each(body.rows, function (row) {
      row.hidden = !row.querySelector("td[data-case-id]:not(.out)");
    });
    each(table.querySelectorAll("thead th[data-col]"), function (th) {
      var col = th.getAttribute("data-col");
      var hide = !body.querySelector(
        'tr:not([hidden]) > td[data-col="' + col + '"][data-case-id]:not(.out)');
      th.hidden = hide;
      each(body.querySelectorAll('td[data-col="' + col + '"]'), function (td) {
        td.hidden = hide;
      });
    });
    each(table.querySelectorAll("thead th.group"), function (g) {
      var n = table.querySelectorAll('thead th[data-col][data-group="' +
        g.getAttribute("data-group") + '"]:not([hidden])').length;
      g.hidden = n === 0;
      if (n) { g.colSpan = n; }
    });
    var block = table.closest(".grid-block");
    if (block) { block.classList.toggle("empty", !body.querySelector("tr:not([hidden])")); }
  }

  function apply(updateHash) {
    var active = selects.filter(function (s) { return s.value !== ""; });
    var count = 0;
    cells.forEach(function (cell) {
      var match = active.every(function (s) {
        return cell.getAttribute("data-" + s.getAttribute("data-dim")) === s.value;
      });
      cell.classList.toggle("out", !match);
      if (match) { count += 1; }
    });
    each(document.querySelectorAll("table.grid"), applyTable);
    root.setAttribute("data-filter", active.map(function (s) {
      return s.getAttribute("data-dim") + ":" + s.value;
    }).join(","));
    root.setAttribute("data-shown", String(count));
    shown.textContent = count + " of " + cells.length + " cases shown";
    if (selected && selected.classList.contains("out")) { show(null, false); }
    if (updateHash) { writeHash(); }
  }

  function show(cell, updateHash) {
    if (selected) { selected.classList.remove("selected"); }
    selected = cell || null;
    if (selected) {
      selected.classList.add("selected");
      each(panel.querySelectorAll("[data-field]"), function (el) {
        var value = selected.getAttribute("data-" + el.getAttribute("data-field"));
        el.textContent = value ? value : "\\u2013";
      });
      panel.hidden = false;
    } else {
      panel.hidden = true;
    }
    if (updateHash) { writeHash(); }
  }

  function applyHash() {
    var hash = readHash();
    var wanted = {};
    (hash.filter || "").split(",").forEach(function (item) {
      var i = item.indexOf(":");
      if (i > 0) {
        wanted[decode(item.slice(0, i)).replace(/_/g, "-")] = decode(item.slice(i + 1));
      }
    });
    var ignored = [];
    selects.forEach(function (s) {
      var dim = s.getAttribute("data-dim");
      var value = Object.prototype.hasOwnProperty.call(wanted, dim) ? wanted[dim] : "";
      s.value = value;
      if (s.value !== value) { ignored.push(dim + ":" + value); s.value = ""; }
      delete wanted[dim];
    });
    Object.keys(wanted).forEach(function (dim) { ignored.push(dim + ":" + wanted[dim]); });
    note.textContent = ignored.length ? "ignored unknown filter " + ignored.join(", ") : "";
    apply(false);
    show(hash["case"] !== undefined ? byId[decode(hash["case"])] : null, false);
  }

  each(selects, function (s) { s.addEventListener("change", function () { apply(true); }); });
  document.getElementById("reset").addEventListener("click", function () {
    selects.forEach(function (s) { s.value = ""; });
    note.textContent = "";
    apply(true);
  });
  document.getElementById("details-close").addEventListener("click", function () {
    show(null, true);
  });
  document.addEventListener("click", function (event) {
    var jump = event.target.closest("[data-goto]");
    if (jump) {
      event.preventDefault();
      var target = byId[jump.getAttribute("data-goto")];
      if (!target) { return; }
      if (target.classList.contains("out")) {
        selects.forEach(function (s) { s.value = ""; });
        apply(false);
      }
      show(target, true);
      target.scrollIntoView({block: "center"});
      target.focus();
      return;
    }
    var cell = event.target.closest("td[data-case-id]");
    if (cell) { show(cell === selected ? null : cell, true); }
  });
"""
PAGE_JS += cell_keys_js("td[data-case-id]")
