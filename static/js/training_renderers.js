/* Live figure of the "train" job kind: loss and accuracy curves, sharpness beside the loss, the path versus the line.
 * A renderer takes the result element and returns {update(events)}. */
(function () {
  "use strict";
  var renderers = (window.TerrainRenderers = window.TerrainRenderers || {});
  var PLOT_CONFIG = { responsive: true, displaylogo: false };

  // Sharpness beside the loss: the top Hessian eigenvalue and the optimizer's stability threshold.
  function sharpnessChart(root) {
    var chart = root.querySelector("#sharpness-chart");
    var plotted = false;
    var count = 0;
    var totalSteps = 0;
    var config = null;
    function start(started) {
      if (!chart || !started.sharpness) return;
      config = started.sharpness;
      totalSteps = started.total_steps;
      chart.hidden = false;
      var note = root.querySelector("#sharpness-note");
      if (note) {
        note.hidden = false;
        note.querySelector("#sharpness-threshold-label").textContent = config.threshold_label;
      }
      var adaptive = config.tracked === "preconditioned_sharpness";
      var data = [
        { x: [], y: [], name: "sharpness λ_max", mode: "lines+markers", line: { color: "#7c3aed" }, marker: { size: 4 } },
        { x: [], y: [], name: "preconditioned λ_max(P⁻¹H)", mode: "lines+markers", line: { color: "#db2777" }, marker: { size: 4 }, visible: adaptive },
        { x: [0, totalSteps], y: [config.threshold, config.threshold], name: config.threshold_label, mode: "lines", line: { color: "#dc2626", dash: "dash" } }
      ];
      var layout = {
        margin: { t: 40, r: 20, b: 40, l: 60 },
        xaxis: { title: { text: "step" }, range: [0, totalSteps] },
        yaxis: { title: { text: adaptive ? "sharpness (log)" : "sharpness" }, type: adaptive ? "log" : "linear", rangemode: "tozero" },
        legend: { orientation: "h", x: 0, y: 1.02, yanchor: "bottom" }
      };
      Plotly.newPlot(chart, data, layout, PLOT_CONFIG);
      plotted = true;
      count = 0;
    }
    return {
      start: start,
      reset: function () { if (plotted) Plotly.purge(chart); plotted = false; },
      add: function (events) {
        if (!plotted) return;
        var xs = [[], []], ys = [[], []];
        events.forEach(function (p) {
          if (p.sharpness !== null) { xs[0].push(p.step); ys[0].push(p.sharpness); }
          if (p.preconditioned_sharpness !== null) { xs[1].push(p.step); ys[1].push(p.preconditioned_sharpness); }
          count += 1;
        });
        if (events.length) Plotly.extendTraces(chart, { x: xs, y: ys }, [0, 1]);
        chart.dataset.points = String(count);
      },
      summary: function (s) {
        var el = root.querySelector("#sharpness-summary");
        if (!el) return;
        function fmt(v, digits) { return v === null || v === undefined ? "—" : Number(v).toFixed(digits); }
        el.textContent = "Progressive sharpening (end / start): " + fmt(s.progressive_sharpening, 2) +
          " · edge of stability reached at step " + (s.eos_step === null ? "— (never)" : s.eos_step) +
          " · measurements at or above the threshold: " + fmt(100 * (s.frac_above_2_over_eta || 0), 0) + "%" +
          " · " + s.matvecs + " Hessian-vector products";
        el.hidden = false;
      }
    };
  }

  // Loss along the trajectory vs along the straight line from start to end.
  function drawPath(root, path) {
    var panel = root.querySelector("#path-panel");
    var chart = root.querySelector("#path-chart");
    if (!panel || !chart) return;
    panel.hidden = false;
    var data = [
      { x: path.line.t, y: path.line.loss, name: "straight line start → end", mode: "lines", line: { color: "#64748b", dash: "dash" } },
      { x: path.trajectory.t, y: path.trajectory.loss, name: "training trajectory", mode: "lines+markers", line: { color: "#2563eb" },
        text: path.trajectory.step.map(function (s) { return "step " + s; }), hovertemplate: "%{text}<br>loss %{y:.4g}<extra></extra>" }
    ];
    var layout = {
      margin: { t: 40, r: 20, b: 40, l: 60 },
      xaxis: { title: { text: "position between initial (0) and final (1) weights" } },
      yaxis: { title: { text: "train loss" }, type: "log" },
      legend: { orientation: "h", x: 0, y: 1.02, yanchor: "bottom" }
    };
    Plotly.newPlot(chart, data, layout, PLOT_CONFIG);
  }

  renderers.train = function (root) {
    var chart = root.querySelector("#loss-chart");
    var sharpness = sharpnessChart(root);
    var traces = [
      { name: "train loss", key: "train_loss", yaxis: "y", line: { color: "#2563eb" } },
      { name: "test loss", key: "test_loss", yaxis: "y", line: { color: "#f97316" } },
      { name: "train accuracy", key: "train_accuracy", yaxis: "y2", line: { color: "#2563eb", dash: "dot" } },
      { name: "test accuracy", key: "test_accuracy", yaxis: "y2", line: { color: "#f97316", dash: "dot" } }
    ];
    var data = traces.map(function (t) { return { x: [], y: [], name: t.name, yaxis: t.yaxis, mode: "lines", line: t.line }; });
    var layout = {
      margin: { t: 40, r: 60, b: 40, l: 60 },
      xaxis: { title: { text: "step" } },
      yaxis: { title: { text: "loss" }, type: "log" },
      yaxis2: { title: { text: "accuracy" }, overlaying: "y", side: "right", range: [0, 1.02], tickmode: "linear", tick0: 0, dtick: 0.2, showgrid: false },
      legend: { orientation: "h", x: 0, y: 1.02, yanchor: "bottom" }
    };
    Plotly.newPlot(chart, data, layout, PLOT_CONFIG);
    var count = 0;
    return {
      update: function (events) {
        var xs = traces.map(function () { return []; });
        var ys = traces.map(function () { return []; });
        var measured = [];
        events.forEach(function (event) {
          if (event.kind === "status" && event.payload.attempt > 1) {
            // A new attempt after a lost worker starts the curve over.
            Plotly.react(chart, traces.map(function (t) { return { x: [], y: [], name: t.name, yaxis: t.yaxis, mode: "lines", line: t.line }; }), layout, PLOT_CONFIG);
            count = 0;
            sharpness.reset();
            measured = [];
          }
          if (event.kind === "started") {
            sharpness.add(measured);
            measured = [];
            sharpness.start(event.payload);
          }
          if (event.kind === "sharpness") measured.push(event.payload);
          if (event.kind === "sharpness_summary") sharpness.summary(event.payload);
          if (event.kind === "path") drawPath(root, event.payload);
          if (event.kind === "metrics") {
            traces.forEach(function (t, i) {
              var value = event.payload[t.key];
              if (value !== null && value !== undefined) { xs[i].push(event.payload.step); ys[i].push(value); }
            });
            count += 1;
          }
          if (event.kind === "checkpoint") {
            var link = root.querySelector("#checkpoint-link");
            link.querySelector("a").href = event.payload.url;
            link.querySelector("a").textContent = event.payload.name;
            link.hidden = false;
          }
        });
        if (xs[0].length || xs[1].length) {
          Plotly.extendTraces(chart, { x: xs, y: ys }, [0, 1, 2, 3]);
        }
        chart.dataset.points = String(count);
        sharpness.add(measured);
      }
    };
  };
})();
