// Renders the page's charts with uPlot (installed from npm, served from node_modules).
// Chart data is embedded by the server as JSON in #chart-data:
//   [{title, time, unit, y_max, x: [...], series: [{label, values: [...]}]}]
(function () {
  "use strict";
  var PALETTE = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2",
                 "#ca8a04", "#db2777", "#4b5563", "#65a30d"];
  var source = document.getElementById("chart-data");
  if (!source || typeof uPlot === "undefined") { return; }
  var charts = JSON.parse(source.textContent);
  var plots = [];

  function formatValue(unit) {
    return function (u, v) {
      if (v == null) { return "—"; }
      var text = Math.abs(v) >= 1000 ? v.toFixed(0) : +v.toPrecision(4);
      return unit ? text + " " + unit : String(text);
    };
  }

  function build(el, chart) {
    var width = Math.max(320, el.clientWidth || 600);
    var series = [{ label: chart.time ? "time (UTC)" : (chart.x_label || "x") }];
    chart.series.forEach(function (s, i) {
      series.push({ label: s.label, stroke: PALETTE[i % PALETTE.length], width: 2,
                    spanGaps: true, points: { show: chart.x.length < 60 },
                    value: formatValue(chart.unit) });
    });
    var opts = {
      title: chart.title + (chart.unit ? " (" + chart.unit + ")" : ""),
      width: width, height: 260,
      tzDate: function (ts) { return uPlot.tzDate(new Date(ts * 1e3), "Etc/UTC"); },
      scales: { x: { time: !!chart.time } },
      series: series,
      cursor: { drag: { x: true, y: false } },  // drag to zoom, double-click to reset
      legend: { live: true },
    };
    if (!chart.time) {  // list positions are whole numbers
      opts.axes = [{ incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000] }, {}];
    }
    if (chart.y_max) {
      opts.scales.y = { range: function (u, min, max) {
        return [0, Math.max(chart.y_max, max || 0)];
      } };
    }
    var data = [chart.x].concat(chart.series.map(function (s) { return s.values; }));
    var plot = new uPlot(opts, data, el);
    el.dataset.rendered = "1";
    return plot;
  }

  document.querySelectorAll("[data-chart]").forEach(function (el) {
    var chart = charts[+el.dataset.chart];
    if (chart) { plots.push([el, build(el, chart)]); }
  });
  window.addEventListener("resize", function () {
    plots.forEach(function (pair) {
      pair[1].setSize({ width: Math.max(320, pair[0].clientWidth), height: 260 });
    });
  });
})();
