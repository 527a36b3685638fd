/* A lineage graph's overview: families as dots (size against depth), and model-id search. */
(function () {
  "use strict";
  function esc(text) { return String(text).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;"); }
  var chart = document.getElementById("overview-chart");
  if (chart) {
    fetch(chart.dataset.overviewUrl, { credentials: "same-origin" })
      .then(function (r) { return r.json(); })
      .then(function (d) {
        // Jitter depth a little: thousands of families share a (size, depth) pair.
        var y = d.depth.map(function (v, i) { return v + ((i * 2654435761) % 1000) / 1000 * 0.5 - 0.25; });
        var trace = {
          type: "scattergl", mode: "markers", x: d.size, y: y, customdata: d.index,
          text: d.label.map(function (label, i) {
            return esc(label) + "<br>" + d.size[i] + " models · depth " + d.depth[i] + " · max branching " + d.max_branching[i] +
              (d.merges[i] ? " · " + d.merges[i] + " merges" : "");
          }),
          hoverinfo: "text",
          marker: {
            size: d.max_branching.map(function (b) { return 4 + 2.2 * Math.sqrt(b); }),
            color: d.merges.map(function (m) { return m ? "#dc2626" : "#2563eb"; }), opacity: 0.6, line: { width: 0 }
          }
        };
        var layout = {
          margin: { t: 10, r: 10, b: 45, l: 50 }, hovermode: "closest",
          xaxis: { type: "log", title: { text: "family size (models)" } }, yaxis: { title: { text: "depth (generations)" } }
        };
        Plotly.newPlot(chart, [trace], layout, { responsive: true, displaylogo: false });
        chart.dataset.points = String(d.shown);
        chart.on("plotly_click", function (event) {
          var p = event.points && event.points[0];
          if (!p) return;
          var url = chart.dataset.familyUrl + p.customdata + "/";
          if (chart.dataset.target === "_blank") window.open(url, "_blank", "noopener"); else window.location.href = url;
        });
      });
  }

  var input = document.getElementById("model-search");
  var list = document.getElementById("model-search-results");
  if (!input || !list) return;
  var timer = null;
  function show(results) {
    list.textContent = "";
    results.forEach(function (hit) {
      var li = document.createElement("li");
      var id = document.createElement("span"); id.className = "model-id"; id.textContent = hit.id;
      var fam = document.createElement("span"); fam.className = "meta"; fam.textContent = "family #" + hit.family;
      li.appendChild(id); li.appendChild(fam);
      li.dataset.id = hit.id;
      li.addEventListener("mousedown", function (event) { event.preventDefault(); window.location.href = hit.url; });
      list.appendChild(li);
    });
    list.hidden = !results.length;
  }
  input.addEventListener("input", function () {
    clearTimeout(timer);
    timer = setTimeout(function () {
      var q = input.value.trim();
      if (!q) { list.hidden = true; return; }
      fetch(input.dataset.searchUrl + "?" + new URLSearchParams({ q: q }), { credentials: "same-origin" })
        .then(function (r) { return r.json(); }).then(function (body) { show(body.results); });
    }, 150);
  });
  input.addEventListener("blur", function () { setTimeout(function () { list.hidden = true; }, 150); });
})();
