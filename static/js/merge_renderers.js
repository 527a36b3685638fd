/* Live figure of the merge job kind: per-task loss/accuracy of the merged model along the knob's sweep. */
(function () {
  "use strict";
  var renderers = (window.TerrainRenderers = window.TerrainRenderers || {});
  var CONFIG = { responsive: true, displaylogo: false };
  var COLOURS = ["#2563eb", "#f97316", "#16a34a", "#9333ea", "#dc2626", "#0891b2", "#111827"];

  renderers.merge = function (root) {
    var chart = root.querySelector(".merge-chart");
    var state = { knob: "", knobLabel: "", tasks: [], points: [], saved: null };
    var metric = "accuracy";

    function ingest(event) {
      var p = event.payload;
      if (event.kind === "start") {
        state.knob = p.knob; state.knobLabel = p.knob_label; state.tasks = p.tasks.concat(["mean"]); state.points = [];
        root.querySelector("#merge-recipe").textContent = p.method_label + " (" + p.citation + ") of " + p.models.join(", ") +
          (p.base ? " on base " + p.base : "") + "; " + p.values.length + " values of " + p.knob_label + ".";
      } else if (event.kind === "point") {
        state.points[p.index] = p;
      } else if (event.kind === "checkpoint") {
        state.saved = p;
        var box = root.querySelector("#merge-saved");
        var link = root.querySelector("#merged-link");
        link.href = p.url; link.textContent = p.name;
        root.querySelector("#tree-link").href = p.tree_url;
        var plane = root.querySelector("#plane-link");
        if (p.plane_url) { plane.href = p.plane_url; plane.hidden = false; }
        var list = root.querySelector("#merge-scores");
        list.innerHTML = "";
        Object.keys(p.results).forEach(function (task) {
          var li = document.createElement("li");
          var r = p.results[task];
          li.textContent = task + ": loss " + r.loss.toPrecision(4) + (r.accuracy === null ? "" : ", accuracy " + r.accuracy.toFixed(4));
          list.appendChild(li);
        });
        box.hidden = false;
      } else if (event.kind === "status" && event.payload.attempt > 1) {
        state.points = [];
      }
    }

    function render() {
      var points = state.points.filter(Boolean);
      var data = state.tasks.map(function (task, k) {
        return { x: points.map(function (pt) { return pt.value; }),
                 y: points.map(function (pt) { return pt.results[task] ? pt.results[task][metric] : null; }),
                 name: task, mode: "lines+markers",
                 line: { color: COLOURS[k % COLOURS.length], width: task === "mean" ? 3 : 2, dash: task === "mean" ? "dash" : "solid" } };
      });
      var layout = { margin: { t: 40, r: 10, b: 45, l: 60 }, xaxis: { title: { text: state.knobLabel || state.knob } },
                     yaxis: { title: { text: metric } }, legend: { orientation: "h", x: 0, y: 1.02, yanchor: "bottom" }, uirevision: "keep", shapes: [] };
      if (state.saved) layout.shapes.push({ type: "line", x0: state.saved.value, x1: state.saved.value, yref: "paper", y0: 0, y1: 1,
                                            line: { dash: "dot", color: "#111827" } });
      Plotly.react(chart, data, layout, CONFIG);
      chart.dataset.points = String(points.length);
    }

    var controls = root.querySelector(".landscape-controls");
    if (controls) controls.addEventListener("change", function (e) { if (e.target.name === "metric") { metric = e.target.value; render(); } });

    return {
      update: function (events) { events.forEach(ingest); if (events.length) render(); },
      state: state
    };
  };
})();

/* The merge_greedy job kind: per-round scores and pool kinship, kinship-guided against random partner choice. */
(function () {
  "use strict";
  var renderers = (window.TerrainRenderers = window.TerrainRenderers || {});

  renderers.merge_greedy = function (root) {
    var chart = root.querySelector(".greedy-chart"), body = root.querySelector("#greedy-rounds tbody");
    var runs = [];
    function fmt(v) { return v === null || v === undefined ? "n/a" : v.toFixed(3); }
    return {
      update: function (events) {
        var changed = false;
        events.forEach(function (event) {
          var p = event.payload;
          if (event.kind === "start") {
            root.querySelector("#greedy-recipe").textContent = "Pool " + p.pool.join(", ") + " on base " + p.base + "; tasks " + p.tasks.join(", ") + "; lambda " + p.lam + ".";
          } else if (event.kind === "run") {
            runs.push(p); changed = true;
            p.rounds.forEach(function (r) {
              var tr = document.createElement("tr");
              [p.run, r.round, r.partner, fmt(r.kinship), fmt(r.pool_kinship), fmt(r.score), r.accepted ? "yes" : "no"].forEach(function (v) {
                var td = document.createElement("td"); td.textContent = String(v); tr.appendChild(td);
              });
              body.appendChild(tr);
            });
          }
        });
        if (!changed) return;
        var data = [];
        runs.forEach(function (run) {
          var guided = run.strategy === "kinship", colour = guided ? "#16a34a" : "#9ca3af";
          var rounds = [0].concat(run.rounds.map(function (r) { return r.round; }));
          data.push({ x: rounds, y: [run.start_score].concat(run.rounds.map(function (r) { return r.score; })), name: run.run + " score",
                      mode: "lines+markers", line: { color: colour, width: guided ? 3 : 1.5 } });
          data.push({ x: run.rounds.map(function (r) { return r.round; }), y: run.rounds.map(function (r) { return r.pool_kinship; }),
                      name: run.run + " pool kinship", yaxis: "y2", mode: "lines", line: { color: colour, dash: "dot" } });
        });
        Plotly.react(chart, data, { margin: { t: 40, r: 60, b: 45, l: 60 }, xaxis: { title: { text: "round" }, dtick: 1 },
                                    yaxis: { title: { text: "mean score over tasks" } },
                                    yaxis2: { title: { text: "pool kinship" }, overlaying: "y", side: "right", range: [-1, 1], tickmode: "linear", tick0: -1, dtick: 0.5, showgrid: false },
                                    legend: { orientation: "h", x: 0, y: 1.02, yanchor: "bottom" } }, { responsive: true, displaylogo: false });
        chart.dataset.runs = String(runs.length);
      }
    };
  };
})();
