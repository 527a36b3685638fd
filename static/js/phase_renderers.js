/* The live phase diagram: a heatmap whose cells fill in as their seeds finish. */
(function () {
  "use strict";
  var renderers = (window.TerrainRenderers = window.TerrainRenderers || {});
  var CONFIG = { responsive: true, displaylogo: false };
  var PHASE_COLOURS = {
    comprehension: "#16a34a", grokking: "#2563eb", memorization: "#f59e0b", confusion: "#dc2626",
    "I": "#dc2626", "II": "#f59e0b", "III": "#a855f7", "IV-A": "#22c55e", "IV-B": "#0ea5e9"
  };

  function fmt(v) { return v === null || v === undefined ? "–" : (Math.abs(v) >= 1000 || (Math.abs(v) < 1e-3 && v !== 0) ? v.toExponential(2) : (+v).toPrecision(3)); }

  renderers.sweep = function (root, options) {
    options = options || {};
    var chart = root.querySelector(".sweep-chart"), legendEl = root.querySelector(".sweep-legend");
    var select = root.querySelector(".sweep-colour"), counter = root.querySelector(".sweep-counter");
    var detail = root.querySelector(".sweep-cell-detail");
    var slug = root.dataset.slug;
    // the page selects the sweep's own phase rule (webapp.phases.selectors.sweep_phase_rule)
    var header = null, cells = {}, runs = {}, colour = select ? select.value : "phase:grokking", metricOptions = {};

    function key(i, j) { return i + "-" + j; }

    function addMetricOptions(cell) {
      var names = Object.keys(cell.metrics || {}).concat(Object.keys(cell.pair_metrics || {}));
      names.forEach(function (name) {
        if (metricOptions[name] || !select) return;
        metricOptions[name] = true;
        var option = document.createElement("option");
        option.value = "metric:" + name; option.textContent = "metric: " + name.replace(/_/g, " ");
        select.appendChild(option);
      });
    }

    function metricOf(cell, name) {
      var summary = (cell.metrics || {})[name] || (cell.pair_metrics || {})[name];
      return summary ? summary : null;
    }

    function render() {
      if (!header) return;
      var xs = header.x.values, ys = header.y.values, phaseMode = colour.indexOf("phase:") === 0;
      var rule = phaseMode ? colour.slice(6) : null, metric = phaseMode ? null : colour.slice(7);
      var labels = rule ? header.legend[rule].phases.map(function (p) { return p.label; }) : [];
      var z = [], text = [];
      for (var j = 0; j < ys.length; j++) {
        var zr = [], tr = [];
        for (var i = 0; i < xs.length; i++) {
          var cell = cells[key(i, j)], done = (runs[key(i, j)] || []).length, hover;
          var value = null;
          if (cell && rule) { var label = (cell.phase || {})[rule]; value = label ? labels.indexOf(label) : null; }
          if (cell && metric) { var s = metricOf(cell, metric); value = s ? s.mean : null; }
          hover = header.x_title + " = " + fmt(xs[i]) + "<br>" + header.y_title + " = " + fmt(ys[j]) + "<br>";
          if (cell) {
            hover += "grokking: " + ((cell.phase || {}).grokking || "–") + "<br>taxonomy: " + ((cell.phase || {}).taxonomy || "–");
            var acc = metricOf(cell, "test_accuracy"), loss = metricOf(cell, "train_loss");
            if (acc) hover += "<br>test acc " + fmt(acc.mean) + " ± " + fmt(acc.std) + " [" + acc.values.map(fmt).join(", ") + "]";
            if (loss) hover += "<br>train loss " + fmt(loss.mean) + " ± " + fmt(loss.std);
            if (metric) { var m = metricOf(cell, metric); if (m) hover += "<br>" + metric + " " + fmt(m.mean) + " ± " + fmt(m.std) + " (seeds: " + m.values.map(fmt).join(", ") + ")"; }
            var per = (cell.grokking || {}).per_seed;
            if (per) hover += "<br>per seed: " + per.map(function (s) { return s.seed + ": " + s.label; }).join(", ");
          } else {
            hover += done ? done + "/" + header.seeds.length + " seeds done" : "waiting";
          }
          zr.push(value); tr.push(hover);
        }
        z.push(zr); text.push(tr);
      }
      var trace = { type: "heatmap", x: xs.map(String), y: ys.map(String), z: z, text: text, hoverinfo: "text", xgap: 2, ygap: 2 };
      if (rule) {
        var n = Math.max(1, labels.length);
        trace.zmin = -0.5; trace.zmax = n - 0.5;
        trace.colorscale = [];
        labels.forEach(function (label, k) {
          var c = PHASE_COLOURS[label] || "#94a3b8";
          trace.colorscale.push([k / n, c]); trace.colorscale.push([(k + 1) / n, c]);
        });
        trace.colorbar = { tickvals: labels.map(function (_, k) { return k; }), ticktext: labels, title: { text: rule } };
      } else {
        trace.colorscale = "Viridis"; trace.colorbar = { title: { text: metric } };
      }
      var layout = { margin: { t: 10, r: 10, b: 60, l: 80 }, xaxis: { title: { text: header.x_title + (header.x.scale === "log" ? " (log spaced)" : "") }, type: "category" },
                     yaxis: { title: { text: header.y_title + (header.y.scale === "log" ? " (log spaced)" : "") }, type: "category" } };
      var finished = Object.keys(cells).length;
      if (finished && !z.some(function (row) { return row.some(function (v) { return v !== null && v !== undefined; }); })) {
        // an all-empty heatmap draws nothing at all: keep the grid's axes and say why it is empty
        layout.xaxis.categoryarray = xs.map(String); layout.xaxis.range = [-0.5, xs.length - 0.5];
        layout.yaxis.categoryarray = ys.map(String); layout.yaxis.range = [-0.5, ys.length - 0.5];
        layout.annotations = [{ xref: "paper", yref: "paper", x: 0.5, y: 0.5, showarrow: false,
                                text: "no finished cell has a value for " + (metric || rule) + (metric === "eos_step" ? " (no run reached the edge of stability)" : "") }];
      }
      Plotly.react(chart, [trace], layout, CONFIG);
      chart.dataset.cells = String(Object.keys(cells).length);
      var doneRuns = Object.keys(runs).reduce(function (n, k) { return n + runs[k].length; }, 0);
      if (counter) counter.textContent = Object.keys(cells).length + " of " + xs.length * ys.length + " cells, " + doneRuns + " of " + header.total_runs + " models";
      if (!chart.dataset.clickBound) { chart.dataset.clickBound = "1"; chart.on("plotly_click", onClick); }
    }

    function renderLegend() {
      if (!legendEl || !header) return;
      var rule = colour.indexOf("phase:") === 0 ? colour.slice(6) : null;
      if (!rule) { legendEl.innerHTML = ""; return; }
      var legend = header.legend[rule];
      var html = "<p class='meta'><strong>" + legend.title + "</strong> — " + legend.summary + " <em>" + legend.reference + "</em></p><ul class='legend'>";
      legend.phases.forEach(function (p) { html += "<li><span class='swatch' style='background:" + (PHASE_COLOURS[p.label] || "#94a3b8") + "'></span><strong>" + p.label + "</strong>: " + p.text + "</li>"; });
      legendEl.innerHTML = html + "</ul>";
    }

    function onClick(event) {
      var point = event.points && event.points[0];
      if (!point) return;
      var i = header.x.values.map(String).indexOf(String(point.x)), j = header.y.values.map(String).indexOf(String(point.y));
      showCell(i, j);
    }

    function showCell(i, j) {
      fetch("/phases/" + encodeURIComponent(slug) + "/cell/" + i + "/" + j + "/", { credentials: "same-origin" })
        .then(function (r) { return r.json(); })
        .then(function (data) {
          detail.hidden = false;
          detail.dataset.cell = i + "-" + j;
          detail.querySelector(".cell-title").textContent = header.x_title + " = " + fmt(header.x.values[i]) + ", " + header.y_title + " = " + fmt(header.y.values[j]);
          var phase = data.cell ? data.cell.phase || {} : {};
          detail.querySelector(".cell-metrics").textContent = "grokking: " + (phase.grokking || "–") + " · taxonomy: " + (phase.taxonomy || "–");
          var traces = [];
          data.runs.forEach(function (run, k) {
            if (!run.curves) return;
            traces.push({ x: run.curves.step, y: run.curves.train_accuracy, name: "seed " + run.seed + " train", mode: "lines", line: { dash: "dot" } });
            traces.push({ x: run.curves.step, y: run.curves.test_accuracy, name: "seed " + run.seed + " test", mode: "lines" });
          });
          Plotly.react(detail.querySelector(".cell-chart"), traces, { margin: { t: 10, r: 10, b: 40, l: 50 }, xaxis: { title: { text: "step" }, type: "log" },
                                                                     yaxis: { title: { text: "accuracy" }, range: [0, 1.02] } }, CONFIG);
          var actions = detail.querySelector(".cell-actions");
          actions.innerHTML = "";
          data.runs.forEach(function (run) {
            if (!run.has_model) return;
            // A POST: opening the landscape form makes the run's checkpoint (a GET never writes).
            var form = document.createElement("form");
            form.method = "post"; form.className = "inline";
            form.action = "/phases/" + encodeURIComponent(slug) + "/run/" + run.id + "/landscape";
            var token = document.createElement("input");
            token.type = "hidden"; token.name = "csrfmiddlewaretoken"; token.value = actions.dataset.csrf || "";
            var button = document.createElement("button");
            button.type = "submit"; button.className = "secondary"; button.textContent = "Loss landscape of seed " + run.seed;
            form.appendChild(token); form.appendChild(button);
            actions.appendChild(form);
          });
        });
    }

    if (select) select.addEventListener("change", function () { colour = select.value; renderLegend(); render(); });

    return {
      update: function (events) {
        events.forEach(function (event) {
          var p = event.payload;
          if (event.kind === "sweep") { header = p; renderLegend(); }
          else if (event.kind === "run") { (runs[key(p.i, p.j)] = runs[key(p.i, p.j)] || []).push(p); }
          else if (event.kind === "cell") { cells[key(p.i, p.j)] = p; addMetricOptions(p); }
        });
        render();
      },
      showCell: showCell
    };
  };
})();
