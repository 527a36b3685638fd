/* Live figure of the "lineage_recovery" job kind: models as they are trained or loaded,
 * then the distance matrix, the recovered tree (edges coloured by whether they match the
 * truth) and the scores.  Inlined into the result template (see lineage_tags.py). */
(function () {
  "use strict";
  var renderers = (window.TerrainRenderers = window.TerrainRenderers || {});
  var CONFIG = { responsive: true, displaylogo: false };
  var STATUS_COLOURS = { correct: "#16a34a", reversed: "#f59e0b", wrong: "#dc2626", unscored: "#64748b" };
  var FAMILY_COLOURS = ["#2563eb", "#f97316", "#16a34a", "#9333ea", "#0891b2", "#db2777", "#ca8a04", "#4f46e5"];

  function esc(text) { return String(text).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;"); }
  function percent(v) { return v === null || v === undefined ? "–" : (100 * v).toFixed(1) + "%"; }

  renderers.lineage_recovery = function (root) {
    var stage = root.querySelector("#recovery-stage");
    var treeEl = root.querySelector("#recovery-tree");
    var distEl = root.querySelector("#recovery-distances");
    var scoreEl = root.querySelector("#recovery-score");
    var log = root.querySelector("#events-log");
    var trained = 0;

    function line(text) {
      if (!log) return;
      var div = document.createElement("div");
      div.textContent = text;
      log.appendChild(div);
      log.scrollTop = log.scrollHeight;
    }

    function drawTree(tree) {
      var pos = {};
      tree.nodes.forEach(function (n) { pos[n.id] = n; });
      var traces = [];
      ["correct", "reversed", "wrong", "unscored"].forEach(function (status) {
        var x = [], y = [];
        tree.edges.filter(function (e) { return e.status === status; }).forEach(function (e) {
          var p = pos[e.parent], c = pos[e.child];
          x.push(p.x, c.x, null); y.push(p.y, c.y, null);
        });
        if (x.length) traces.push({ type: "scatter", mode: "lines", x: x, y: y, hoverinfo: "skip", name: status + " edge",
                                    line: { color: STATUS_COLOURS[status], width: 2.5 } });
      });
      if (tree.missed && tree.missed.length) {
        var mx = [], my = [];
        tree.missed.forEach(function (e) { var p = pos[e[0]], c = pos[e[1]]; if (p && c) { mx.push(p.x, c.x, null); my.push(p.y, c.y, null); } });
        traces.push({ type: "scatter", mode: "lines", x: mx, y: my, hoverinfo: "skip", name: "missed true edge",
                      line: { color: "#94a3b8", width: 1.5, dash: "dot" } });
      }
      traces.push({
        type: "scatter", mode: "markers+text", x: tree.nodes.map(function (n) { return n.x; }), y: tree.nodes.map(function (n) { return n.y; }),
        text: tree.nodes.map(function (n) { return esc(n.id); }), textposition: "bottom center", textfont: { size: 10 },
        hovertext: tree.nodes.map(function (n) {
          return esc(n.id) + "<br>recovered family " + n.family + (n.true_family !== null && n.true_family !== undefined ? " · true family " + n.true_family : "") +
            "<br>kurtosis " + n.kurtosis + (n.task ? "<br>" + esc(n.task) : "");
        }),
        hoverinfo: "text", name: "models", showlegend: false,
        marker: { size: 13, color: tree.nodes.map(function (n) { return FAMILY_COLOURS[n.family % FAMILY_COLOURS.length]; }), line: { width: 1, color: "#fff" } }
      });
      Plotly.react(treeEl, traces, {
        margin: { t: 10, r: 10, b: 10, l: 10 }, hovermode: "closest", legend: { orientation: "h" },
        xaxis: { visible: false }, yaxis: { visible: false, autorange: "reversed" }
      }, CONFIG);
      treeEl.dataset.state = "drawn";
      treeEl.dataset.edges = String(tree.edges.length);
    }

    function drawDistances(p) {
      distEl.hidden = false;
      var names = p.names.map(esc);
      Plotly.react(distEl, [{ type: "heatmap", z: p.distances, x: names, y: names, colorscale: "Viridis",
                              colorbar: { title: { text: "distance" } } }],
                   { margin: { t: 30, r: 10, b: 90, l: 90 }, title: { text: "Pairwise weight distances", font: { size: 13 } },
                     yaxis: { autorange: "reversed" } }, CONFIG);
    }

    function showScore(s) {
      scoreEl.hidden = false;
      root.querySelector("#score-clustering").textContent = percent(s.clustering_accuracy);
      root.querySelector("#score-ari").textContent = s.adjusted_rand_index.toFixed(3);
      root.querySelector("#score-directed").textContent = percent(s.directed_edge_accuracy);
      root.querySelector("#score-undirected").textContent = percent(s.undirected_edge_accuracy);
      root.querySelector("#score-roots").textContent = percent(s.root_accuracy);
      scoreEl.dataset.directed = String(s.directed_edge_accuracy);
    }

    return {
      update: function (events) {
        events.forEach(function (event) {
          var p = event.payload;
          if (event.kind === "stage") { stage.textContent = p.message; line(p.message); }
          else if (event.kind === "model") { trained = p.done; stage.textContent = p.action + " " + p.done + " of " + p.total + " models (" + p.name + ")"; line(p.action + " " + p.name); }
          else if (event.kind === "distances") drawDistances(p);
          else if (event.kind === "families") line(p.families.length + " families found (distance cut " + p.threshold.toFixed(3) + ")");
          else if (event.kind === "tree") drawTree(p);
          else if (event.kind === "score") showScore(p);
          else if (event.kind === "status" && p.status === "succeeded" && p.result) {
            var r = p.result;
            stage.textContent = r.num_models + " models, " + r.num_families + " families recovered" +
              (r.truth_known ? "" : " (no true lineage known: nothing to score against)");
            if (r.tree && treeEl.dataset.state !== "drawn") drawTree(r.tree);
            if (r.score && scoreEl.hidden) showScore(r.score);
          } else if (event.kind === "status" && p.status === "failed") stage.textContent = "Failed: " + (p.error || "");
        });
        root.dataset.trained = String(trained);
      }
    };
  };
})();
