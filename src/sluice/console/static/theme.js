// Runs in <head> before the page paints: apply the stored theme choice, if any.
(function () {
  var choice = null;
  try { choice = localStorage.getItem("sluice-theme"); } catch (e) { /* storage blocked */ }
  if (choice === "light" || choice === "dark") {
    document.documentElement.setAttribute("data-theme", choice);
  }
})();
