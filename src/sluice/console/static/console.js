// Small behaviours of the console pages. Everything works without it except copy buttons,
// the theme toggle, live health and the playground.
(function () {
  "use strict";

  function currentTheme() {
    var set = document.documentElement.getAttribute("data-theme");
    if (set) return set;
    return window.matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light";
  }

  var toggle = document.getElementById("theme-toggle");
  if (toggle) {
    toggle.addEventListener("click", function () {
      var next = currentTheme() === "dark" ? "light" : "dark";
      document.documentElement.setAttribute("data-theme", next);
      var secure = window.location.protocol === "https:" ? "; secure" : "";
      document.cookie = "sluice_theme=" + next + "; path=/ui; max-age=31536000; samesite=lax" + secure;
    });
  }

  document.querySelectorAll("[data-copy]").forEach(function (button) {
    button.addEventListener("click", function () {
      var input = document.querySelector(button.getAttribute("data-copy"));
      if (!input) return;
      input.select();
      var done = function () { button.textContent = "Copied"; };
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(input.value).then(done, function () {
          document.execCommand("copy"); done();
        });
      } else {
        document.execCommand("copy"); done();
      }
    });
  });

  document.querySelectorAll("[data-use-key]").forEach(function (button) {
    button.addEventListener("click", function () {
      var input = document.querySelector(button.getAttribute("data-use-key"));
      if (!input) return;
      if (!window.sluiceSecrets.set("playground-key", input.value)) return;
      window.location.href = "/ui/playground";
    });
  });

  document.querySelectorAll("form[data-confirm]").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      if (!window.confirm(form.getAttribute("data-confirm"))) event.preventDefault();
    });
  });

  var health = document.getElementById("health");
  if (health) {
    var fmt = {
      latency_ewma_ms: function (v) { return v == null ? "—" : Math.round(v) + " ms"; },
      ttft_ewma_ms: function (v) { return v == null ? "—" : Math.round(v) + " ms"; },
      error_rate: function (v) { return v == null ? "—" : Math.round(v * 100) + " %"; }
    };
    var refresh = function () {
      fetch(health.getAttribute("data-health-url"), { credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.json() : Promise.reject(r.status); })
        .then(function (report) {
          var status = document.getElementById("health-status");
          status.textContent = report.status;
          status.className = "badge " + report.status;
          report.models.forEach(function (model) {
            model.deployments.forEach(function (d) {
              var row = health.querySelector('tr[data-deployment="' + CSS.escape(d.id) + '"]');
              if (!row) return;
              row.querySelectorAll("[data-field]").forEach(function (cell) {
                var name = cell.getAttribute("data-field");
                var value = d[name];
                cell.textContent = fmt[name] ? fmt[name](value) : String(value);
                if (name === "breaker") cell.className = "badge breaker-" + value;
              });
            });
          });
          document.getElementById("health-updated").textContent =
            "Updated " + new Date().toLocaleTimeString() + ".";
        })
        .catch(function () {
          document.getElementById("health-updated").textContent = "Could not refresh.";
        });
    };
    window.setInterval(refresh, 5000);
  }
})();
