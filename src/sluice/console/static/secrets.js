// Secrets the console keeps in the browser (the playground's key) belong to the signed-in
// session and go away with it. The page names its session in <meta name="sluice-session">
// (a one-way name, not the cookie); entries are stored as "sluice-secret:<session>:<name>".
// - Every signed-in page drops entries of any other session (someone else signed in here).
// - The sign-in page (content "") drops them all and nudges the console's other tabs.
// - A signed-in page asks /ui/session.json when its session is due to end, when the tab is
//   shown again, and when another tab reached the sign-in page; if the session is gone or is
//   someone else's, it blanks its secret fields and goes to the sign-in page.
// - Sign-out and a dead session also answer with Clear-Site-Data: "storage", which works
//   without this script.
// Loaded in <head> without defer: the other scripts use window.sluiceSecrets.
(function () {
  "use strict";
  var PREFIX = "sluice-secret:";
  var LEGACY = ["sluice-playground-key"]; // unscoped, from before secrets were per session
  var MAX_DELAY_MS = 2147483647;
  var meta = document.querySelector('meta[name="sluice-session"]');
  // null: this page does not say (an error page); "": nobody is signed in.
  var scope = meta ? meta.getAttribute("content") : null;
  var timer = null;

  function stores() {
    var found = [];
    try { found.push(window.sessionStorage); } catch (e) { /* storage blocked */ }
    try { found.push(window.localStorage); } catch (e) { /* storage blocked */ }
    return found;
  }

  // Remove every secret not stored under `keep` ("" removes them all).
  function purge(keep) {
    var mine = PREFIX + keep + ":";
    stores().forEach(function (store) {
      try {
        var doomed = LEGACY.slice();
        for (var i = 0; i < store.length; i++) {
          var name = store.key(i);
          if (name && name.indexOf(PREFIX) === 0 && (!keep || name.indexOf(mine) !== 0)) {
            doomed.push(name);
          }
        }
        doomed.forEach(function (name) { store.removeItem(name); });
      } catch (e) { /* storage blocked */ }
    });
  }

  // This page's session is over: forget, and go to sign-in (which comes back here after; if
  // someone else has signed in meanwhile, it comes straight back as them).
  function ended() {
    if (timer !== null) window.clearTimeout(timer);
    purge("");
    document.querySelectorAll("[data-secret]").forEach(function (field) { field.value = ""; });
    var here = window.location.pathname + window.location.search;
    window.location.replace("/ui/login?next=" + encodeURIComponent(here));
  }

  // Resolves true while this page's session lives, false once it is gone or replaced;
  // rejects when the console cannot be reached.
  function alive() {
    if (!scope) return Promise.resolve(false);
    return fetch("/ui/session.json", { credentials: "same-origin", cache: "no-store" })
      .then(function (r) {
        if (r.status === 401) return null;
        if (!r.ok) throw new Error("session check: HTTP " + r.status);
        return r.json();
      })
      .then(function (state) {
        if (!state || state.scope !== scope) return false;
        schedule(state.expires_in_s);
        return true;
      });
  }

  function check() {
    alive().then(function (ok) { if (!ok) ended(); }, function () { schedule(60); });
  }

  function schedule(seconds) {
    if (timer !== null) window.clearTimeout(timer);
    var delay = Math.min(MAX_DELAY_MS, (Math.max(0, Number(seconds) || 0) + 1) * 1000);
    timer = window.setTimeout(check, delay);
  }

  function slot(name) { return PREFIX + scope + ":" + name; }

  window.sluiceSecrets = {
    get: function (name) {
      if (!scope) return "";
      try { return window.sessionStorage.getItem(slot(name)) || ""; } catch (e) { return ""; }
    },
    set: function (name, value) {
      if (!scope) return false;
      try { window.sessionStorage.setItem(slot(name), value); } catch (e) { return false; }
      return true;
    },
    forget: function () { purge(""); },
    alive: alive,
    end: ended
  };

  var channel = null;
  try { channel = new BroadcastChannel("sluice-console"); } catch (e) { /* unsupported */ }

  if (scope === "") {
    purge("");
    if (channel) channel.postMessage("signed-out");
  } else if (scope) {
    purge(scope);
    if (channel) channel.onmessage = check;
    schedule(meta.getAttribute("data-left-s"));
    document.addEventListener("visibilitychange", function () {
      if (document.visibilityState === "visible") check();
    });
    window.addEventListener("pageshow", function (event) { if (event.persisted) check(); });
  }

  // Signing out forgets at once, before the server answers.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (form && form.getAttribute && form.getAttribute("action") === "/ui/logout") purge("");
  });
})();
