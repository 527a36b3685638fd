/* Live figures per job kind. A renderer takes the result element and returns {update(events)}. */
(function () {
  "use strict";
  var renderers = (window.TerrainRenderers = window.TerrainRenderers || {});
  var PLOT_CONFIG = { responsive: true, displaylogo: false };

  renderers.generic = function (root) {
    var log = root.querySelector("#events-log");
    return {
      update: function (events) {
        if (!log) return;
        events.forEach(function (event) {
          var line = document.createElement("div");
          line.textContent = "#" + event.seq + " " + event.kind + " " + JSON.stringify(event.payload);
          log.appendChild(line);
        });
      }
    };
  };

  renderers.train = function (root) {
    var chart = root.querySelector("#loss-chart");
    var traces = [
      { name: "train loss", key: "train_loss", yaxis: "y", line: { color: "#2563eb" } },
      { name: "test loss", key: "test_loss", yaxis: "y", line: { color: "#f97316" } },
      { name: "train accuracy", key: "train_accuracy", yaxis: "y2", line: { color: "#2563eb", dash: "dot" } },
      { name: "test accuracy", key: "test_accuracy", yaxis: "y2", line: { color: "#f97316", dash: "dot" } }
    ];
    var data = traces.map(function (t) { return { x: [], y: [], name: t.name, yaxis: t.yaxis, mode: "lines", line: t.line }; });
    var layout = {
      margin: { t: 10, r: 60, b: 40, l: 60 },
      xaxis: { title: { text: "step" } },
      yaxis: { title: { text: "loss" }, type: "log" },
      yaxis2: { title: { text: "accuracy" }, overlaying: "y", side: "right", range: [0, 1.02] },
      legend: { orientation: "h" }
    };
    Plotly.newPlot(chart, data, layout, PLOT_CONFIG);
    var count = 0;
    return {
      update: function (events) {
        var xs = traces.map(function () { return []; });
        var ys = traces.map(function () { return []; });
        events.forEach(function (event) {
          if (event.kind === "status" && event.payload.attempt > 1) {
            // A new attempt after a lost worker starts the curve over.
            Plotly.react(chart, traces.map(function (t) { return { x: [], y: [], name: t.name, yaxis: t.yaxis, mode: "lines", line: t.line }; }), layout, PLOT_CONFIG);
            count = 0;
          }
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
      }
    };
  };
})();
