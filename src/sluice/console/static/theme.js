// Runs in <head> before the page paints: apply the stored theme choice, if any. It is kept
// in a cookie, not in localStorage: signing out clears the site's storage (Clear-Site-Data),
// and this browser's display preference is no secret of the person who signed out.
(function () {
  var found = /(?:^|;\s*)sluice_theme=(light|dark)(?:;|$)/.exec(document.cookie);
  if (found) document.documentElement.setAttribute("data-theme", found[1]);
})();
