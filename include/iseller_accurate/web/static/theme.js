// Colour mode and palette of the operator pages: the Airflow UI's own.
//
// The pages run in an iframe of the Airflow UI (same origin), so they read the parent's colour
// mode (class "light"/"dark" on <html>, set by the UI's theme switch) and its Chakra colour tokens,
// copy them here, and follow every later switch. Opened on their own, they follow the browser's
// prefers-color-scheme with the built-in palette of operator.css.
(function () {
  "use strict";
  var TOKENS = [
    "bg", "bg-subtle", "bg-muted", "bg-panel", "bg-emphasized", "fg", "fg-muted", "fg-subtle",
    "border", "border-muted", "border-emphasized", "brand-solid", "brand-fg", "brand-muted", "brand-subtle",
    "brand-focus-ring", "failed-solid", "failed-fg", "failed-subtle", "success-fg", "success-subtle",
    "upstream_failed-solid", "upstream_failed-fg", "upstream_failed-subtle", "queued-fg", "queued-subtle", "running-fg", "running-subtle",
    "skipped-fg", "skipped-subtle", "up_for_retry-fg", "up_for_retry-subtle", "blue-fg"
  ];
  var root = document.documentElement;

  function parentRoot() {
    try {
      if (window.parent && window.parent !== window && window.parent.document) {
        return window.parent.document.documentElement;
      }
    } catch (e) { /* another origin: stay standalone */ }
    return null;
  }

  function systemMode() {
    return window.matchMedia && window.matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light";
  }

  function apply() {
    var outer = parentRoot();
    var mode = systemMode();
    if (outer) {
      mode = outer.classList.contains("dark") ? "dark" : "light";
      var style = window.parent.getComputedStyle(outer);
      TOKENS.forEach(function (name) {
        var value = style.getPropertyValue("--chakra-colors-" + name).trim();
        if (value) { root.style.setProperty("--af-" + name, value); }
      });
      var font = style.getPropertyValue("--chakra-fonts-body").trim();
      if (font) { root.style.setProperty("--af-font", font); }
      root.setAttribute("data-embedded", "true");
    }
    root.classList.remove("light", "dark");
    root.classList.add(mode);
    root.style.colorScheme = mode;
  }

  apply();
  var outer = parentRoot();
  if (outer && window.MutationObserver) {
    new MutationObserver(apply).observe(outer, { attributes: true, attributeFilter: ["class", "style"] });
  } else if (window.matchMedia) {
    window.matchMedia("(prefers-color-scheme: dark)").addEventListener("change", apply);
  }
})();
