/* Live figure of the "lineage_recovery" job kind: models as they are trained or loaded,
 * then the distance matrix, the recovered tree (edges coloured by whether they match the
 * truth) and the scores.  Loaded as the kind declares (webapp/lineage/job_kinds.py). */
(function () {
  "use strict";
  var renderers = (window.TerrainRenderers = window.TerrainRenderers || {});
  var CONFIG = { responsive: true, displaylogo: false };
  var STATUS_COLOURS = { correct: "#16a34a", reversed: "#f59e0b", wrong: "#dc2626", unscored: "#64748b" };
  var RELATION_DASH = { finetune: "solid", adapter: "dash", quantized: "dot", merge: "dashdot", unknown: "longdash" };
  var FAMILY_COLOURS = ["#2563eb", "#f97316", "#16a34a", "#9333ea", "#0891b2", "#db2777", "#ca8a04", "#4f46e5"];

  function esc(text) { return String(text).replace(/&/g, "&amp;").replace(/[<]/g, "&lt;").replace(/>/g, "&gt;"); }
  function percent(v) { return v === null || v === undefined ? "–" : (100 * v).toFixed(1) + "%"; }

  renderers.lineage_recovery = function (root) {
    var stage = root.querySelector("#recovery-stage");
    var treeEl = root.querySelector("#recovery-tree");
    var distEl = root.querySelector("#recovery-distances");
    var scoreEl = root.querySelector("#recovery-score");
    var disagreeEl = root.querySelector("#recovery-disagreements");
    var log = root.querySelector("#events-log");
    var trained = 0;

    function line(text) {
      if (!log) return;
      var div = document.createElement("div");
      div.textContent = text;
      log.appendChild(div);
      log.scrollTop = log.scrollHeight;
    }

    function listDisagreements(tree) {
      if (!disagreeEl || !tree.metadata_known) return;
      disagreeEl.hidden = false;
      var list = disagreeEl.querySelector("ul");
      list.innerHTML = "";
      var items = tree.disagreements || [];
      if (!items.length) { var ok = document.createElement("li"); ok.textContent = "Weights and metadata agree on every edge."; list.appendChild(ok); }
      items.forEach(function (d) { var li = document.createElement("li"); li.textContent = d.message; li.dataset.kind = d.kind; list.appendChild(li); });
      disagreeEl.dataset.count = String(items.length);
    }

    function drawTree(tree) {
      var pos = {};
      var disagreeing = {};
      (tree.disagreements || []).forEach(function (d) { disagreeing[d.child] = d.message; });
      tree.nodes.forEach(function (n) { pos[n.id] = n; });
      var traces = [];
      // One line trace per (status, relation): colour says whether it matches the truth, dash says
      // how the child was derived; the width grows with the recovery's confidence in the edge.
      ["correct", "reversed", "wrong", "unscored"].forEach(function (status) {
        Object.keys(RELATION_DASH).forEach(function (relation) {
          var picked = tree.edges.filter(function (e) { return e.status === status && (e.relation || "finetune") === relation; });
          picked.forEach(function (e) {
            var p = pos[e.parent], c = pos[e.child];
            var conf = e.confidence === undefined ? 1 : e.confidence;
            traces.push({ type: "scatter", mode: "lines", x: [p.x, c.x], y: [p.y, c.y], hoverinfo: "skip", showlegend: false,
                          line: { color: STATUS_COLOURS[status], width: 1 + 3 * conf, dash: RELATION_DASH[relation] } });
          });
          if (picked.length) traces.push({ type: "scatter", mode: "lines", x: [null], y: [null], name: status + " · " + relation,
                                           line: { color: STATUS_COLOURS[status], width: 2.5, dash: RELATION_DASH[relation] } });
        });
      });
      var mid = tree.edges.map(function (e) { var p = pos[e.parent], c = pos[e.child]; return [(p.x + c.x) / 2, (p.y + c.y) / 2]; });
      traces.push({ type: "scatter", mode: "markers", x: mid.map(function (m) { return m[0]; }), y: mid.map(function (m) { return m[1]; }),
                    marker: { size: 9, opacity: 0 }, hoverinfo: "text", showlegend: false, name: "edges",
                    hovertext: tree.edges.map(function (e) {
                      return esc(e.parent) + " → " + esc(e.child) + "<br>" + esc(e.relation || "finetune") +
                        (e.confidence === undefined ? "" : " · confidence " + Number(e.confidence).toFixed(2)) +
                        "<br>" + e.status + (disagreeing[e.child] ? "<br>metadata disagrees: " + esc(disagreeing[e.child]) : "");
                    }) });
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
            "<br>kurtosis " + n.kurtosis + (n.quantized_bits ? "<br>quantised: " + n.quantized_bits + " bits" : "") +
            (n.task ? "<br>" + esc(n.task) : "");
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
      listDisagreements(tree);
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
      var rel = root.querySelector("#score-relations");
      if (rel) rel.textContent = percent(s.relation_accuracy);
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
