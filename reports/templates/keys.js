  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape" && selected) { show(null, true); return; }
    var cell = event.target.closest && event.target.closest("{{ cell_selector }}");
    if (cell && (event.key === "Enter" || event.key === " ")) {
      event.preventDefault();
      show(cell, true);
    }
  });
  window.addEventListener("hashchange", applyHash);
  applyHash();
  root.setAttribute("data-ready", "true");
})();
