// liftkit dashboard behaviour: small and declarative, driven by data- attributes.
"use strict";

(function () {
  // Switcher selects submit their form as soon as they change (the button stays for
  // keyboard users and for anyone without JavaScript).
  function autosubmit(root) {
    root.querySelectorAll("select[data-autosubmit]").forEach(function (el) {
      el.addEventListener("change", function () { el.form.submit(); });
    });
  }

  // <button data-open="id"> opens the <dialog id="id">; <button data-close> closes its dialog.
  function dialogs(root) {
    root.querySelectorAll("[data-open]").forEach(function (el) {
      el.addEventListener("click", function () {
        var d = document.getElementById(el.getAttribute("data-open"));
        if (d && !d.open) { d.showModal(); }
      });
    });
    root.querySelectorAll("[data-close]").forEach(function (el) {
      el.addEventListener("click", function () {
        var d = el.closest("dialog");
        if (d) { d.close(); }
      });
    });
  }

  // <figure class="chart"><script type="application/json">{...}</script></figure>
  // Data: {"x": [unix seconds], "series": [{"label", "values", "lower", "upper"}],
  //        "percent": bool, "y_label": str}. Lower/upper draw a shaded interval band.
  var palette = ["#2563eb", "#d97706", "#059669", "#7c3aed", "#db2777", "#0891b2"];

  function charts(root) {
    if (typeof uPlot === "undefined") { return; }
    root.querySelectorAll("figure.chart").forEach(function (fig) {
      if (fig.dataset.drawn) { return; }
      var source = fig.querySelector("script[type='application/json']");
      if (!source) { return; }
      var spec = JSON.parse(source.textContent);
      var data = [spec.x];
      var series = [{}];
      var bands = [];
      var fmt = function (u, v) {
        if (v == null) { return "—"; }
        return spec.percent ? (v * 100).toFixed(1) + "%" : v.toLocaleString();
      };
      spec.series.forEach(function (s, i) {
        var colour = palette[i % palette.length];
        data.push(s.values);
        series.push({ label: s.label, stroke: colour, width: 2, value: fmt });
        if (s.lower && s.upper) {
          var lowIdx = data.length;
          data.push(s.lower);
          series.push({ label: s.label + " lower", stroke: colour + "55", width: 1, value: fmt });
          data.push(s.upper);
          series.push({ label: s.label + " upper", stroke: colour + "55", width: 1, value: fmt });
          bands.push({ series: [lowIdx + 1, lowIdx], fill: colour + "22" });
        }
      });
      var holder = document.createElement("div");
      fig.insertBefore(holder, fig.firstChild);
      var width = Math.max(320, Math.min(fig.clientWidth || 720, 960));
      new uPlot({
        width: width,
        height: spec.height || 260,
        series: series,
        bands: bands,
        scales: { x: { time: spec.time !== false } },
        axes: [{}, { label: spec.y_label || "", values: function (u, vals) {
          return vals.map(function (v) { return fmt(u, v); });
        } }],
      }, data, holder);
      fig.dataset.drawn = "1";
    });
  }

  function init(root) { autosubmit(root); dialogs(root); charts(root); }

  // An error for a form inside an open dialog would land in the page's #flash, hidden behind
  // the modal: show it at the top of the dialog instead.
  document.addEventListener("htmx:beforeSwap", function (ev) {
    var target = ev.detail.target;
    var source = ev.detail.requestConfig && ev.detail.requestConfig.elt;
    if (!target || target.id !== "flash" || !source || !source.closest) { return; }
    var dialog = source.closest("dialog[open]");
    if (!dialog) { return; }
    var region = dialog.querySelector(".dialog-flash");
    if (!region) {
      region = document.createElement("div");
      region.className = "dialog-flash";
      region.setAttribute("aria-live", "polite");
      dialog.insertBefore(region, dialog.firstChild);
    }
    ev.detail.target = region;
  });

  document.addEventListener("DOMContentLoaded", function () { init(document); });
  document.addEventListener("htmx:afterSettle", function (ev) { init(ev.target); });
})();
