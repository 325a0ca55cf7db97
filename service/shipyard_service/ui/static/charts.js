// Renders the page's charts with uPlot (installed from npm, served from node_modules).
// Chart data is embedded by the server as JSON in #chart-data:
//   [{title, time, unit, y_max, x_min, x_max, x: [...],
//     series: [{label, values: [...], gaps: [x indexes where the line breaks]}]}]
(function () {
  "use strict";
  var PALETTE = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2",
                 "#ca8a04", "#db2777", "#4b5563", "#65a30d"];
  var BYTES = ["B", "KiB", "MiB", "GiB", "TiB"];
  var source = document.getElementById("chart-data");
  if (!source || typeof uPlot === "undefined") { return; }
  var charts = JSON.parse(source.textContent);
  var plots = [];

  // One number with its unit: bytes in binary multiples, the rest as given.
  function formatOne(unit, v) {
    if (v == null) { return "—"; }
    if (unit === "bytes") {
      var i = 0;
      while (Math.abs(v) >= 1024 && i < BYTES.length - 1) { v /= 1024; i += 1; }
      return (i === 0 ? v.toFixed(0) : v.toFixed(1)) + " " + BYTES[i];
    }
    var text = Math.abs(v) >= 1000 ? v.toFixed(0) : String(+v.toPrecision(4));
    return unit ? text + " " + unit : text;
  }

  // null breaks a line (a real gap); undefined is only "no reading at this x" and the
  // line goes on (uPlot joins over undefined when spanGaps is off).
  function seriesValues(s) {
    var gaps = {};
    (s.gaps || []).forEach(function (i) { gaps[i] = true; });
    return s.values.map(function (v, i) { return v === null ? (gaps[i] ? null : undefined) : v; });
  }

  function width(el) { return Math.max(240, el.clientWidth - 16 || 600); }

  function build(el, chart) {
    var series = [{ label: chart.time ? "time (UTC)" : (chart.x_label || "x") }];
    chart.series.forEach(function (s, i) {
      series.push({ label: s.label, stroke: PALETTE[i % PALETTE.length], width: 2,
                    spanGaps: false, points: { show: chart.x.length < 60 },
                    value: function (u, v) { return formatOne(chart.unit, v); } });
    });
    var yAxis = { size: 84, values: function (u, ticks) {
      return ticks.map(function (v) { return formatOne(chart.unit, v); });
    } };
    var opts = {
      title: chart.title + (chart.unit && chart.unit !== "bytes" ? " (" + chart.unit + ")" : ""),
      width: width(el), height: 260,
      tzDate: function (ts) { return uPlot.tzDate(new Date(ts * 1e3), "Etc/UTC"); },
      scales: { x: { time: !!chart.time } },
      series: series,
      axes: [{}, yAxis],
      cursor: { drag: { x: true, y: false } },  // drag to zoom, double-click to reset
      legend: { live: true },
      hooks: { setScale: [function (u, key) {  // the shown x range, read by tests
        if (key === "x") { el.dataset.xMin = String(u.scales.x.min); el.dataset.xMax = String(u.scales.x.max); }
      }] },
    };
    if (!chart.time) {  // list positions are whole numbers
      opts.axes[0] = { incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000] };
    }
    if (chart.x_min != null && chart.x_max != null) {
      // The chosen date range, whole, even where nothing was read; zooming still works.
      opts.scales.x.range = function (u, min, max) {
        return u.status === 0 ? [chart.x_min, chart.x_max] : [min, max];
      };
    }
    if (chart.y_max) {
      opts.scales.y = { range: function (u, min, max) {
        return [0, Math.max(chart.y_max, max || 0)];
      } };
    }
    var data = [chart.x].concat(chart.series.map(seriesValues));
    var plot = new uPlot(opts, data, el);
    el.dataset.rendered = "1";
    el.uplot = plot;  // for tests and the live pages
    return plot;
  }

  document.querySelectorAll("[data-chart]").forEach(function (el) {
    var chart = charts[+el.dataset.chart];
    if (chart) { plots.push([el, build(el, chart)]); }
  });
  window.addEventListener("resize", function () {
    plots.forEach(function (pair) { pair[1].setSize({ width: width(pair[0]), height: 260 }); });
  });
})();
