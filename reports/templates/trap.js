(function () {
  var root = document.documentElement;
  function record(message) {
    var before = root.getAttribute("data-js-errors");
    root.setAttribute("data-js-errors", (before ? before + "\n" : "") + message);
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
