/* Small charts of lineage numbers: drift rate per generation, kinship per tensor. */
(function () {
  "use strict";
  var CONFIG = { responsive: true, displaylogo: false };

  var driftData = document.getElementById("drift-data");
  var driftChart = document.getElementById("drift-chart");
  if (driftData && driftChart) {
    var drift = JSON.parse(driftData.textContent);
    var traces = (drift.categorical || []).filter(function (d) { return d.by_generation.length; }).map(function (d) {
      return {
        type: "scatter", mode: "lines+markers", name: String(d.trait).replace(/</g, "&lt;"),
        x: d.by_generation.map(function (g) { return g.generation; }),
        y: d.by_generation.map(function (g) { return g.rate; }),
        text: d.by_generation.map(function (g) { return g.changed + " of " + g.edges + " edges changed"; }),
        hovertemplate: "%{fullData.name}, generation %{x}: %{y:.0%}<br>%{text}<extra></extra>"
      };
    });
    if (traces.length) {
      Plotly.newPlot(driftChart, traces, {
        margin: { t: 40, r: 10, b: 45, l: 55 }, xaxis: { title: { text: "generation of the parent" }, dtick: 1 },
        yaxis: { title: { text: "share of edges that change" }, tickformat: ".0%", range: [0, 1.02] }, legend: { orientation: "h", x: 0, y: 1.02, yanchor: "bottom" }
      }, CONFIG);
    } else {
      driftChart.classList.remove("chart");
      driftChart.innerHTML = "";
      var p = document.createElement("p");
      p.className = "meta";
      p.textContent = "No edge has a categorical trait known on both ends, so there is no rate to plot. Traits come from model cards, Hub metadata or extra CSV columns (license, language, pipeline_tag ...).";
      driftChart.appendChild(p);
    }
  }

  var kinshipData = document.getElementById("kinship-data");
  var kinshipChart = document.getElementById("kinship-chart");
  if (kinshipData && kinshipChart) {
    var k = JSON.parse(kinshipData.textContent);
    var names = k.layers.map(function (l) { return String(l.name).replace(/</g, "&lt;"); });
    Plotly.newPlot(kinshipChart, [
      { type: "bar", name: "Pearson", x: names, y: k.layers.map(function (l) { return l.pearson; }) },
      { type: "bar", name: "cosine", x: names, y: k.layers.map(function (l) { return l.cosine; }) }
    ], { margin: { t: 40, r: 10, b: 80, l: 50 }, barmode: "group", yaxis: { range: [-1, 1], title: { text: "similarity of deltas" } },
         legend: { orientation: "h", x: 0, y: 1.02, yanchor: "bottom" } }, CONFIG);
  }
})();
