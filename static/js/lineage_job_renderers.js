/* Live figures of the "kinship" and "lineage_import" job kinds.  The finished result is also
 * rendered by the server (templates/lineage/result_*.html); these fill the page in as events
 * arrive.  Loaded as the kinds declare (webapp/lineage/job_kinds.py). */
(function () {
  "use strict";
  var renderers = (window.TerrainRenderers = window.TerrainRenderers || {});
  var CONFIG = { responsive: true, displaylogo: false };

  function cell(row, text, numeric) {
    var td = document.createElement("td");
    if (numeric) td.className = "num";
    td.textContent = text === null || text === undefined ? "–" : text;
    row.appendChild(td);
  }
  function fixed(v) { return typeof v === "number" ? v.toFixed(4) : "undefined"; }

  renderers.kinship = function (root) {
    var stage = root.querySelector("#kinship-stage");
    var body = root.querySelector("#kinship-layers tbody");
    var chart = root.querySelector("#kinship-chart");
    var layers = [];

    function draw() {
      if (!chart || !window.Plotly || !layers.length) return;
      var names = layers.map(function (l) { return String(l.name).replace(/</g, "&lt;"); });
      Plotly.react(chart, [
        { type: "bar", name: "Pearson", x: names, y: layers.map(function (l) { return l.pearson; }) },
        { type: "bar", name: "cosine", x: names, y: layers.map(function (l) { return l.cosine; }) }
      ], { margin: { t: 40, r: 10, b: 80, l: 50 }, barmode: "group", yaxis: { range: [-1, 1], title: { text: "similarity of deltas" } },
           legend: { orientation: "h", x: 0, y: 1.02, yanchor: "bottom" } }, CONFIG);
    }
    function addLayer(l) {
      layers.push(l);
      var row = document.createElement("tr");
      var name = document.createElement("td");
      var code = document.createElement("code");
      code.textContent = l.name;
      name.appendChild(code);
      row.appendChild(name);
      cell(row, l.numel, true); cell(row, fixed(l.pearson), true); cell(row, fixed(l.cosine), true); cell(row, fixed(l.euclidean), true);
      body.appendChild(row);
    }
    function finish(result) {
      root.querySelector("#kinship-result").dataset.state = "done";
      root.querySelector("#kinship-pearson").textContent = fixed(result.overall.pearson);
      root.querySelector("#kinship-cosine").textContent = fixed(result.overall.cosine);
      root.querySelector("#kinship-euclidean").textContent = fixed(result.overall.euclidean);
      root.querySelector("#kinship-numel").textContent = result.overall.numel;
      var link = root.querySelector("#kinship-landscape");
      link.href = result.connectivity_url;
      link.hidden = false;
      if (!layers.length) result.layers.forEach(addLayer);
      stage.textContent = "";
      draw();
    }
    return {
      update: function (events) {
        events.forEach(function (event) {
          var p = event.payload;
          if (event.kind === "model") stage.textContent = "Loading " + p.role + ": " + p.name + " (" + p.parameters + " weights)…";
          else if (event.kind === "layer") { stage.textContent = "Comparing deltas: " + p.name; addLayer(p); }
          else if (event.kind === "status" && p.result) finish(p.result);
        });
        draw();
      }
    };
  };

  renderers.lineage_import = function (root) {
    var stage = root.querySelector("#import-stage");
    var files = root.querySelector("#import-files tbody");

    function row(what, p) {
      var tr = document.createElement("tr");
      cell(tr, what); cell(tr, p.models, true); cell(tr, p.edges, true); cell(tr, p.issues, true);
      files.appendChild(tr);
    }
    function finish(result) {
      var g = result.graph;
      root.querySelector("#import-graph").hidden = false;
      ["import-graph-link", "import-open"].forEach(function (id) { root.querySelector("#" + id).href = g.url; });
      root.querySelector("#import-graph-link").textContent = g.name;
      root.querySelector("#import-nodes").textContent = g.nodes;
      root.querySelector("#import-edges").textContent = g.edges;
      root.querySelector("#import-families").textContent = g.families;
      root.querySelector("#import-errors").textContent = result.report.errors;
      root.querySelector("#import-warnings").textContent = result.report.warnings;
      stage.textContent = "Imported.";
    }
    function issues(list) {
      var table = root.querySelector("#import-issues");
      var body = table.querySelector("tbody");
      body.innerHTML = "";
      list.forEach(function (i) {
        var tr = document.createElement("tr");
        tr.className = i.severity;
        cell(tr, i.source); cell(tr, i.row, true); cell(tr, i.kind); cell(tr, i.message);
        body.appendChild(tr);
      });
      table.hidden = !list.length;
    }
    return {
      update: function (events) {
        events.forEach(function (event) {
          var p = event.payload;
          if (event.kind === "stage") stage.textContent = p.stage === "storing" ? "Storing " + p.models + " models and " + p.edges + " edges…" : "Reading…";
          else if (event.kind === "file") { stage.textContent = "Read " + p.name; row(p.name, p); }
          else if (event.kind === "hub") stage.textContent = "Hub request " + p.request + " (at most " + p.budget + "): " + p.model;
          else if (event.kind === "report") { stage.textContent = "Nothing was imported: " + p.summary; issues(p.issues || []); }
          else if (event.kind === "status" && p.result) { finish(p.result); issues(p.result.issues || []); }
        });
      }
    };
  };
})();
