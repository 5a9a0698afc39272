(function () {
  "use strict";
  var root = document.documentElement;
  var panel = document.getElementById("details");
  var title = document.getElementById("details-title");
  var body = document.getElementById("details-body");
  var only = document.getElementById("only-failing");
  var shown = document.getElementById("rows-shown");
  var rows = document.querySelectorAll("#compat-table tbody tr.row");
  var cells = {};
  var selected = null;
  Array.prototype.forEach.call(document.querySelectorAll("td[data-cell]"), function (c) {
    cells[c.getAttribute("data-cell")] = c;
  });

  function decode(text) {
    try { return decodeURIComponent(text); } catch (e) { return text; }
  }

  function writeHash() {
    var parts = [];
    if (only.checked) { parts.push("failing"); }
    if (selected) {
      parts.push("cell=" + encodeURIComponent(selected.getAttribute("data-cell")));
    }
    var url = location.href.split("#")[0] + (parts.length ? "#" + parts.join("&") : "");
    try { history.replaceState(null, "", url); } catch (e) { /* file:// may refuse */ }
  }

  function filter(updateHash) {
    root.classList.toggle("only-failing", only.checked);
    root.setAttribute("data-only-failing", String(only.checked));
    var count = 0;
    var group = null;
    Array.prototype.forEach.call(rows, function (r) {
      var visible = !only.checked || r.classList.contains("has-fail");
      // the first row shown of a policy names it in full, even when its group's first is hidden
      r.classList.toggle("first-shown", visible && r.getAttribute("data-group") !== group);
      if (visible) { count += 1; group = r.getAttribute("data-group"); }
    });
    shown.textContent = count + " of " + rows.length + " rows shown";
    if (updateHash) { writeHash(); }
  }

  function show(cell, updateHash) {
    if (selected) { selected.classList.remove("selected"); }
    selected = cell && cell.getAttribute("data-state") !== "none" ? cell : null;
    while (body.firstChild) { body.removeChild(body.firstChild); }
    if (selected) {
      selected.classList.add("selected");
      title.textContent = selected.getAttribute("data-label");
      var source = document.getElementById("d-" + selected.id);
      if (source) {
        var copy = source.cloneNode(true);
        copy.removeAttribute("id");
        body.appendChild(copy);
      }
      panel.hidden = false;
      root.setAttribute("data-selected", selected.getAttribute("data-cell"));
    } else {
      panel.hidden = true;
      root.removeAttribute("data-selected");
    }
    if (updateHash) { writeHash(); }
  }

  function applyHash() {
    var wanted = null;
    var failing = false;
    location.hash.replace(/^#/, "").split("&").forEach(function (part) {
      if (part === "failing") { failing = true; }
      if (part.indexOf("cell=") === 0) { wanted = decode(part.slice(5)); }
    });
    only.checked = failing;
    filter(false);
    show(wanted !== null ? cells[wanted] : null, false);
  }

  only.addEventListener("change", function () { filter(true); });
  document.getElementById("details-close").addEventListener("click", function () {
    show(null, true);
  });
  document.addEventListener("click", function (event) {
    var cell = event.target.closest("td[data-cell]");
    if (cell) { show(cell === selected ? null : cell, true); }
  });
