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
        var dim = s.getAttribute("data-dim");
        if (dim === "finding") {  // a case may belong to several findings
          return (" " + cell.getAttribute("data-finding") + " ").indexOf(" " + s.value + " ") >= 0;
        }
        return cell.getAttribute("data-" + dim) === s.value;
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
        el.textContent = value ? value : "\u2013";
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
    // a link that filters the grid takes the reader to it
    if (hash.filter && !selected) {
      document.getElementById("matrix").scrollIntoView();
      root.setAttribute("data-scrolled-to", "matrix");
    }
    if (selected) { selected.scrollIntoView({block: "center"}); }
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
