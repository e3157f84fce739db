// Tooltips for the server-drawn SVG charts: the value(s) and date under the pointer or the
// focused point. Without this script each point still has an SVG <title>.
(function () {
  "use strict";

  document.querySelectorAll("[data-chart]").forEach(function (figure) {
    var box = figure.querySelector(".chart-box");
    var tip = figure.querySelector(".chart-tip");
    if (!box || !tip) return;
    var active = null;

    function show(point) {
      if (active) active.classList.remove("active");
      active = point;
      point.classList.add("active");
      tip.textContent = point.getAttribute("data-tip");
      tip.hidden = false;
      var outer = box.getBoundingClientRect();
      var hit = (point.querySelector(".hit") || point).getBoundingClientRect();
      var centre = hit.left + hit.width / 2 - outer.left;
      var width = tip.offsetWidth;
      var left = Math.max(0, Math.min(outer.width - width, centre - width / 2));
      tip.style.left = left + "px";
      tip.style.top = Math.max(0, hit.top - outer.top - tip.offsetHeight - 6) + "px";
    }

    function hide() {
      if (active) active.classList.remove("active");
      active = null;
      tip.hidden = true;
    }

    figure.querySelectorAll("g.point").forEach(function (point) {
      point.addEventListener("mouseenter", function () { show(point); });
      point.addEventListener("focus", function () { show(point); });
      point.addEventListener("blur", hide);
      point.addEventListener("keydown", function (event) {
        var step = { ArrowRight: "nextElementSibling", ArrowLeft: "previousElementSibling" }[event.key];
        if (!step) return;
        var next = point[step];
        while (next && !(next.matches && next.matches("g.point"))) next = next[step];
        if (next) { event.preventDefault(); next.focus(); }
      });
    });
    box.addEventListener("mouseleave", hide);
  });
})();
