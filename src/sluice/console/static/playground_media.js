// The playground's media card: speech, transcription and image generation through the data
// plane with the person's own key (the chat card's key field, kept in sessionStorage).
(function () {
  "use strict";
  var KEY = "playground-key";
  var secrets = window.sluiceSecrets;
  var form = document.getElementById("media-playground");
  if (!form) return;
  var kind = document.getElementById("pm-kind");
  var errorBox = document.getElementById("pm-error");
  var send = document.getElementById("pm-send");
  var audio = document.getElementById("pm-audio");
  var image = document.getElementById("pm-image");
  var output = document.getElementById("pm-output");
  var lastSpeech = null; // { blob, format } of the last speech made here
  var audioUrl = null;

  function value(id) { return document.getElementById(id).value; }
  function fact(name, text) {
    var cell = document.querySelector('[data-media="' + name + '"]');
    if (cell) cell.textContent = text;
  }
  function showError(text) { errorBox.textContent = text; errorBox.hidden = false; }
  function showKind() {
    document.querySelectorAll("#media-playground [data-kinds]").forEach(function (field) {
      field.hidden = field.getAttribute("data-kinds").split(" ").indexOf(kind.value) < 0;
    });
  }
  kind.addEventListener("change", showKind);
  showKind();

  function facts(response) {
    fact("units", (response.headers.get("x-sluice-units") || "—").replace("_", " "));
    var cost = response.headers.get("x-sluice-cost-usd");
    fact("cost", cost ? "$" + Number(cost).toFixed(6) : "—");
    fact("request_id", response.headers.get("x-request-id") || "—");
  }
  function failed(response) {
    return response.json().then(function (body) {
      showError(response.status + ": " + ((body.error && body.error.message) || "request failed"));
    }, function () { showError("HTTP " + response.status); });
  }

  function request(key) {
    var model = value("pm-model");
    var auth = { "authorization": "Bearer " + key };
    if (kind.value === "speech") {
      var format = value("pm-format");
      return fetch("/v1/audio/speech", {
        method: "POST",
        headers: Object.assign({ "content-type": "application/json" }, auth),
        body: JSON.stringify({ model: model, input: value("pm-text"), voice: value("pm-voice"), response_format: format })
      }).then(function (response) {
        facts(response);
        if (!response.ok) return failed(response);
        return response.blob().then(function (blob) {
          lastSpeech = { blob: blob, format: format };
          if (audioUrl) URL.revokeObjectURL(audioUrl);
          audioUrl = URL.createObjectURL(blob);
          audio.src = audioUrl;
          audio.hidden = false;
        });
      });
    }
    if (kind.value === "transcription") {
      var file = document.getElementById("pm-file").files[0];
      var data = new FormData();
      data.append("model", model);
      data.append("response_format", value("pm-transcript-format"));
      if (file) data.append("file", file, file.name);
      else if (lastSpeech) data.append("file", lastSpeech.blob, "speech." + lastSpeech.format);
      else { showError("Choose an audio file, or make speech first."); return Promise.resolve(); }
      return fetch("/v1/audio/transcriptions", { method: "POST", headers: auth, body: data })
        .then(function (response) {
          facts(response);
          if (!response.ok) return failed(response);
          return response.text().then(function (text) {
            var shown = text;
            try { shown = JSON.stringify(JSON.parse(text), null, 2); } catch (e) { /* text, srt, vtt */ }
            output.textContent = shown;
            output.hidden = false;
          });
        });
    }
    return fetch("/v1/images/generations", {
      method: "POST",
      headers: Object.assign({ "content-type": "application/json" }, auth),
      body: JSON.stringify({ model: model, prompt: value("pm-text"), size: value("pm-size"), response_format: "b64_json" })
    }).then(function (response) {
      facts(response);
      if (!response.ok) return failed(response);
      return response.json().then(function (body) {
        var first = (body.data || [])[0] || {};
        image.src = first.b64_json ? "data:image/png;base64," + first.b64_json : (first.url || "");
        image.hidden = false;
      });
    });
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    errorBox.hidden = true;
    var key = document.getElementById("pg-key").value.trim();
    if (!key) { showError("Paste one of your API keys first (Keys → create one)."); return; }
    if (kind.value !== "transcription" && !value("pm-text").trim()) { showError("Write the text or prompt."); return; }
    send.disabled = true;
    audio.hidden = image.hidden = output.hidden = true;
    secrets.alive().then(function (ok) {
      if (!ok) { secrets.end(); return null; }
      secrets.set(KEY, key);
      return request(key);
    }).catch(function (err) {
      showError("Network error: " + err.message);
    }).finally(function () { send.disabled = false; });
  });
})();
