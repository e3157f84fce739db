// The playground: stream a chat completion from the data plane with the person's own key.
// The key lives in this tab's sessionStorage under the console session (secrets.js), so it
// goes with the session; nothing here is sent to the console server.
(function () {
  "use strict";
  var KEY = "playground-key";
  var secrets = window.sluiceSecrets;
  var form = document.getElementById("playground");
  if (!form) return;
  var keyInput = document.getElementById("pg-key");
  var output = document.getElementById("pg-output");
  var errorBox = document.getElementById("pg-error");
  var send = document.getElementById("pg-send");
  var stop = document.getElementById("pg-stop");
  var controller = null;

  keyInput.value = secrets.get(KEY);
  keyInput.addEventListener("change", function () { secrets.set(KEY, keyInput.value.trim()); });

  function stat(name, text) {
    var cell = document.querySelector('[data-stat="' + name + '"]');
    if (cell) cell.textContent = text;
  }
  function ms(v) { return v == null ? "—" : Math.round(v) + " ms"; }
  function showError(text) { errorBox.textContent = text; errorBox.hidden = false; }

  function onFinal(info) {
    if (info.cost_usd != null) stat("cost", "$" + Number(info.cost_usd).toFixed(6));
    if (info.latency_ms != null) stat("gateway_latency", ms(info.latency_ms));
    if (info.upstream_ms != null) stat("upstream", ms(info.upstream_ms) + (info.provider ? " · " + info.provider : ""));
    if (info.deployment) stat("deployment", info.deployment);
    if (info.request_id) stat("request_id", info.request_id);
  }

  function handle(payload, started, state) {
    if (payload === "[DONE]") return;
    var chunk;
    try { chunk = JSON.parse(payload); } catch (e) { return; }
    if (chunk.error) { showError(chunk.error.message || "the stream ended with an error"); return; }
    if (chunk.sluice) onFinal(chunk.sluice);
    if (chunk.usage) stat("tokens", chunk.usage.prompt_tokens + " in · " + chunk.usage.completion_tokens + " out");
    (chunk.choices || []).forEach(function (choice) {
      var text = choice.delta && choice.delta.content;
      if (text) {
        if (state.ttft == null) { state.ttft = performance.now() - started; stat("ttft", ms(state.ttft)); }
        output.textContent += text;
      }
    });
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    errorBox.hidden = true;
    var key = keyInput.value.trim();
    var message = document.getElementById("pg-message").value;
    if (!key) { showError("Paste one of your API keys first (Keys → create one)."); return; }
    if (!message.trim()) { showError("Write a message."); return; }
    // A tab left open after its session ended (or after someone else signed in) must not
    // spend the key it still shows: check the session first.
    send.disabled = true;
    secrets.alive().then(function (ok) {
      if (!ok) { secrets.end(); return; }
      secrets.set(KEY, key);
      run(key, message);
    }, function () {
      send.disabled = false;
      showError("Could not check your console session; try again.");
    });
  });

  function run(key, message) {
    var messages = [];
    var system = document.getElementById("pg-system").value;
    if (system.trim()) messages.push({ role: "system", content: system });
    messages.push({ role: "user", content: message });
    output.textContent = "";
    ["ttft", "latency", "gateway_latency", "upstream", "cost", "tokens", "deployment", "request_id"].forEach(function (n) { stat(n, "—"); });
    controller = new AbortController();
    send.disabled = true; stop.disabled = false;
    var started = performance.now();
    var state = { ttft: null };
    fetch("/v1/chat/completions", {
      method: "POST",
      signal: controller.signal,
      headers: {
        "content-type": "application/json",
        "authorization": "Bearer " + key,
        "x-sluice-metadata": "true"
      },
      body: JSON.stringify({
        model: document.getElementById("pg-model").value,
        messages: messages,
        stream: true,
        stream_options: { include_usage: true }
      })
    }).then(function (response) {
      var rid = response.headers.get("x-request-id");
      if (rid) stat("request_id", rid);
      if (!response.ok) {
        return response.json().then(function (body) {
          showError(response.status + ": " + ((body.error && body.error.message) || "request failed"));
        }, function () { showError("HTTP " + response.status); });
      }
      var reader = response.body.getReader();
      var decoder = new TextDecoder();
      var buffer = "";
      var pump = function () {
        return reader.read().then(function (part) {
          if (part.done) return;
          buffer += decoder.decode(part.value, { stream: true });
          var events = buffer.split("\n\n");
          buffer = events.pop();
          events.forEach(function (block) {
            block.split("\n").forEach(function (line) {
              if (line.indexOf("data:") === 0) handle(line.slice(5).trim(), started, state);
            });
          });
          return pump();
        });
      };
      return pump();
    }).catch(function (err) {
      if (err.name !== "AbortError") showError("Network error: " + err.message);
    }).finally(function () {
      stat("latency", ms(performance.now() - started));
      send.disabled = false; stop.disabled = true; controller = null;
    });
  }

  stop.addEventListener("click", function () { if (controller) controller.abort(); });
})();
