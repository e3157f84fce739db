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

  // MCP page: a server's tools are listed (upstream) only when its "Tools" panel is opened.
  var toolsMessage = function (body, text, kind) {
    var p = document.createElement("p");
    p.className = kind;
    if (kind === "error") p.setAttribute("role", "alert");
    p.textContent = text;
    body.replaceChildren(p);
  };
  var toolsTable = function (body, tools) {
    if (!tools.length) { toolsMessage(body, "This server offers you no tools.", "empty"); return; }
    var wrap = document.createElement("div");
    wrap.className = "table-wrap";
    var table = document.createElement("table");
    var head = table.createTHead().insertRow();
    ["Tool", "Description"].forEach(function (title) {
      var th = document.createElement("th");
      th.textContent = title;
      head.appendChild(th);
    });
    var rows = table.createTBody();
    tools.forEach(function (tool) {
      var row = rows.insertRow();
      var code = document.createElement("code");
      code.textContent = tool.name;
      row.insertCell().appendChild(code);
      row.insertCell().textContent = tool.description;
    });
    wrap.appendChild(table);
    body.replaceChildren(wrap);
  };
  document.querySelectorAll("details[data-tools-url]").forEach(function (details) {
    details.addEventListener("toggle", function () {
      if (!details.open || details.getAttribute("data-state")) return;
      details.setAttribute("data-state", "loading");
      var body = details.querySelector(".tools-body");
      toolsMessage(body, "Loading the tools…", "hint");
      fetch(details.getAttribute("data-tools-url"), { credentials: "same-origin" })
        .then(function (r) {
          return r.json().catch(function () { return {}; }).then(function (data) {
            return { status: r.status, data: data };
          });
        })
        .then(function (answer) {
          if (answer.status === 200) {
            toolsTable(body, answer.data.tools || []);
            details.setAttribute("data-state", "loaded");
            return;
          }
          var why = answer.status === 401 ? "your session ended; sign in again" :
            (answer.data.error || "the console answered " + answer.status);
          toolsMessage(body, "The tools could not be listed: " + why +
            ". Close and open this panel to try again.", "error");
          details.removeAttribute("data-state");
        })
        .catch(function () {
          toolsMessage(body, "The tools could not be listed: the console did not answer. " +
            "Close and open this panel to try again.", "error");
          details.removeAttribute("data-state");
        });
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
