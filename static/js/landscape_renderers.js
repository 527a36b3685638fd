/* Live figures for the landscape, Hessian and connectivity job kinds.
 * Each renderer keeps the numbers it has received and redraws once per batch
 * (TerrainLive hands over batches at most every 250 ms). */
(function () {
  "use strict";
  var renderers = (window.TerrainRenderers = window.TerrainRenderers || {});
  var CONFIG = { responsive: true, displaylogo: false };
  window.terrainRedraws = window.terrainRedraws || 0;

  // Counts redraws and the main-thread time they take, so tests can hold the page to "responsive".
  function draw(el, data, layout) {
    var started = performance.now();
    window.terrainRedraws += 1;
    el.dataset.redraws = String((parseInt(el.dataset.redraws || "0", 10) || 0) + 1);
    var result = Plotly.react(el, data, layout, CONFIG);
    var spent = performance.now() - started;
    el.dataset.renderMs = String((parseFloat(el.dataset.renderMs || "0") || 0) + spent);
    // The first draw creates the figure (and a WebGL context for 3-D): updates are what streaming costs.
    if (el.dataset.redraws !== "1") el.dataset.maxUpdateMs = String(Math.max(parseFloat(el.dataset.maxUpdateMs || "0") || 0, spent));
    return result;
  }

  function lattice(n, stride) {
    var out = [];
    for (var i = 0; i < n; i += stride) out.push(i);
    if (out[out.length - 1] !== n - 1) out.push(n - 1);
    return out;
  }
  function nearestIn(sorted, i) {
    var best = sorted[0];
    for (var k = 0; k < sorted.length; k++) if (Math.abs(sorted[k] - i) < Math.abs(best - i)) best = sorted[k];
    return best;
  }

  renderers.landscape = function (root, options) {
    options = options || {};
    var chart = root.querySelector(".landscape-chart");
    var controls = root.querySelector(".landscape-controls");
    var state = { a: null, b: null, loss: null, acc: null, known: null, t: [], lineLoss: [], lineAcc: [], mode: null,
                  trajectory: null, trajectoryLoss: null, trajectorySteps: null, hover: null, done: 0, total: 0, centreLoss: null,
                  markers: null, strides: [] };
    var stepsChart = root.querySelector(".trajectory-loss-chart");
    var view = { kind: options.view || "surface", log: false, metric: "loss", task: null };
    // A plane through three models has one grid per task; `state` shows the selected one.
    var grids = {}, taskNames = [];

    function gridFor(task, p) {
      task = task || "";
      if (!grids[task]) {
        // strides: the plane's refinement levels as the worker computes them ([row, column] per level, coarse first).
        var g = { a: p.a, b: p.b, loss: [], acc: [], known: [], markers: p.markers || null, total: p.total, done: 0, strides: p.strides || [] };
        for (var i = 0; i < p.a.length; i++) {
          g.loss.push(new Array(p.b.length).fill(null)); g.acc.push(new Array(p.b.length).fill(null)); g.known.push(new Array(p.b.length).fill(false));
        }
        grids[task] = g; taskNames.push(task);
        if (view.task === null) view.task = task;
        updateTaskSelect();
      }
      return grids[task];
    }

    function updateTaskSelect() {
      var select = controls && controls.querySelector("select[name=task]");
      if (!select || taskNames.length < 2 && taskNames[0] === "") return;
      select.innerHTML = "";
      taskNames.forEach(function (task) {
        var option = document.createElement("option");
        option.value = task; option.textContent = task || "data"; option.selected = task === view.task;
        select.appendChild(option);
      });
      select.closest("label").hidden = taskNames.length < 2;
    }

    function show(task) {
      var g = grids[task];
      if (!g) return;
      state.a = g.a; state.b = g.b; state.loss = g.loss; state.acc = g.acc; state.known = g.known; state.markers = g.markers;
      state.done = g.done; state.total = g.total; state.strides = g.strides;
    }

    function ingest(event) {
      var p = event.payload;
      if (event.kind === "start") {
        state.mode = "plane";
        if (p.trajectory) state.trajectory = p.trajectory;
        var g = gridFor(p.task, p);
        if (p.markers) g.markers = p.markers;
      } else if (event.kind === "markers") {
        if (grids[p.task || ""]) grids[p.task || ""].markers = p.markers;
      } else if (event.kind === "points") {
        var target = grids[p.task || ""];
        if (target) { target.done = p.done; target.total = p.total; }
        state.done = p.done; state.total = p.total;
        p.points.forEach(function (pt) {
          if (pt.i !== undefined) {
            if (!target) return;
            target.loss[pt.i][pt.j] = pt.loss; target.acc[pt.i][pt.j] = pt.accuracy; target.known[pt.i][pt.j] = true;
          } else {
            state.mode = "line";
            state.t[pt.k] = pt.t; state.lineLoss[pt.k] = pt.loss; state.lineAcc[pt.k] = pt.accuracy;
          }
        });
      } else if (event.kind === "trajectory") {
        state.trajectory = p.trajectory; state.trajectoryLoss = p.trajectory_loss; state.trajectorySteps = p.trajectory_steps;
      } else if (event.kind === "status" && p.result) {
        state.centreLoss = p.result.centre_loss;
        if (p.result.trajectory_loss) state.trajectoryLoss = p.result.trajectory_loss;
        if (p.result.trajectory_steps) state.trajectorySteps = p.result.trajectory_steps;
      }
    }

    // The loss at each trajectory step, linked to the plane: hovering a step marks its point there.
    function renderSteps() {
      if (!stepsChart || !stepsChart.hidden || !state.trajectory || !state.trajectoryLoss || !state.trajectorySteps) return;
      stepsChart.hidden = false;
      Plotly.newPlot(stepsChart, [{ x: state.trajectorySteps, y: state.trajectoryLoss, mode: "lines+markers", name: "loss on the plane",
                                   line: { color: "#f97316" }, hovertemplate: "step %{x}<br>loss %{y:.4g}<extra></extra>" }],
                     { margin: { t: 10, r: 10, b: 40, l: 60 }, xaxis: { title: { text: "training step" } },
                       yaxis: { title: { text: "loss at the trajectory point" }, type: "log" }, hovermode: "closest" }, CONFIG);
      stepsChart.on("plotly_hover", function (e) { setHover(e.points[0].pointIndex); });
      stepsChart.on("plotly_unhover", function () { setHover(null); });
    }
    function setHover(k) {
      state.hover = k;
      stepsChart.dataset.hoverStep = k === null ? "" : String(state.trajectorySteps[k]);
      render();
    }
    function hoverMarker(threeD, z) {
      var k = state.hover, p = state.trajectory[k];
      var marker = { type: threeD ? "scatter3d" : "scatter", mode: "markers", name: "step " + state.trajectorySteps[k], x: [p[0]], y: [p[1]],
                     marker: { size: threeD ? 7 : 14, color: "#111827", symbol: threeD ? "diamond" : "star" } };
      if (threeD) marker.z = [z];
      return marker;
    }

    // The grid as shown: computed points as they are; the rest borrowed from the
    // nearest point of the densest fully computed lattice among the levels the
    // start event announced (the coarse grid, then whole rows at ever finer
    // strides), so the surface sharpens.
    function displayGrid(source) {
      var nx = state.a.length, ny = state.b.length;
      var rows = null, cols = null, best = 0;
      state.strides.forEach(function (stride) {
        var li = lattice(nx, stride[0]), lj = lattice(ny, stride[1]);
        if (li.length * lj.length <= best) return;
        for (var x = 0; x < li.length; x++) for (var y = 0; y < lj.length; y++) if (!state.known[li[x]][lj[y]]) return;
        rows = li; cols = lj; best = li.length * lj.length;
      });
      var z = [];
      for (var j = 0; j < ny; j++) {
        var row = [];
        for (var i = 0; i < nx; i++) {
          var v = state.known[i][j] ? source[i][j] : (rows ? source[nearestIn(rows, i)][nearestIn(cols, j)] : null);
          if (v !== null && view.log && view.metric === "loss") v = Math.log10(Math.max(v, 1e-12));
          row.push(v);
        }
        z.push(row); // plotly: z[row = b index][column = a index]
      }
      return z;
    }

    function centreValue(source) {
      var i = state.a.reduce(function (best, v, k) { return Math.abs(v) < Math.abs(state.a[best]) ? k : best; }, 0);
      var j = state.b.reduce(function (best, v, k) { return Math.abs(v) < Math.abs(state.b[best]) ? k : best; }, 0);
      var v = state.known[i][j] ? source[i][j] : null;
      return v !== null && view.log && view.metric === "loss" ? Math.log10(Math.max(v, 1e-12)) : v;
    }

    function render() {
      if (state.mode === "line") return renderLine();
      show(view.task);
      if (!state.a) return;
      // Nothing computed yet: a WebGL surface of nothing but nulls throws, so wait for the first points.
      if (!state.known.some(function (row) { return row.some(Boolean); })) return;
      var source = view.metric === "loss" ? state.loss : state.acc;
      var z = displayGrid(source);
      var label = view.metric === "loss" ? (view.log ? "log10 loss" : "loss") : "accuracy";
      var scale = { colorscale: "Viridis", colorbar: { title: { text: label } } };
      if (options.zrange && view.metric === "loss" && !view.log) { scale.zmin = options.zrange[0]; scale.zmax = options.zrange[1]; scale.cmin = options.zrange[0]; scale.cmax = options.zrange[1]; }
      var data = [], layout = { margin: { t: 10, r: 10, b: 40, l: 50 }, uirevision: "keep" };
      var cz = centreValue(source);
      if (view.kind === "surface") {
        data.push(Object.assign({ type: "surface", x: state.a, y: state.b, z: z, name: label, hovertemplate: "a=%{x:.3f}<br>b=%{y:.3f}<br>" + label + "=%{z:.4g}<extra></extra>" }, scale));
        if (cz !== null) data.push({ type: "scatter3d", mode: "markers", x: [0], y: [0], z: [cz], name: "centre", marker: { size: 5, color: "#dc2626" } });
        if (state.trajectory && state.trajectoryLoss && view.metric === "loss") {
          data.push({ type: "scatter3d", mode: "lines+markers", name: "trajectory", x: state.trajectory.map(function (p) { return p[0]; }),
                      y: state.trajectory.map(function (p) { return p[1]; }),
                      z: state.trajectoryLoss.map(function (v) { return view.log ? Math.log10(Math.max(v, 1e-12)) : v; }),
                      line: { color: "#f97316", width: 5 }, marker: { size: 3, color: "#f97316" } });
          if (state.hover !== null) {
            var hz = state.trajectoryLoss[state.hover];
            data.push(hoverMarker(true, view.log ? Math.log10(Math.max(hz, 1e-12)) : hz));
          }
        }
        markerTraces(true, label).forEach(function (t) { data.push(t); });
        layout.scene = { xaxis: { title: { text: "a" } }, yaxis: { title: { text: "b" } }, zaxis: { title: { text: label } } };
      } else {
        data.push(Object.assign({ type: view.kind === "contour" ? "contour" : "heatmap", x: state.a, y: state.b, z: z, name: label,
                                  hovertemplate: "a=%{x:.3f}<br>b=%{y:.3f}<br>" + label + "=%{z:.4g}<extra></extra>" }, scale));
        if (!state.markers) data.push({ type: "scatter", mode: "markers", x: [0], y: [0], name: "centre", marker: { size: 10, color: "#dc2626", symbol: "x" } });
        markerTraces(false, label).forEach(function (t) { data.push(t); });
        if (state.trajectory) {
          data.push({ type: "scatter", mode: "lines+markers", name: "trajectory", x: state.trajectory.map(function (p) { return p[0]; }),
                      y: state.trajectory.map(function (p) { return p[1]; }), line: { color: "#f97316", width: 2 }, marker: { size: 5 } });
          if (state.hover !== null) data.push(hoverMarker(false));
        }
        layout.xaxis = { title: { text: "a" } }; layout.yaxis = { title: { text: "b" }, scaleanchor: "x" };
      }
      draw(chart, data, layout);
      chart.dataset.points = String(state.known.reduce(function (n, row) { return n + row.filter(Boolean).length; }, 0));
      renderSteps();
    }

    // The three models, the straight paths between them, and every merge placed on their plane.
    function markerTraces(in3d, label) {
      if (!state.markers) return [];
      var corners = state.markers.filter(function (m) { return m.role !== "marker"; });
      var others = state.markers.filter(function (m) { return m.role === "marker"; });
      function z(m) {
        var v = view.metric === "loss" ? m.loss : m.accuracy;
        return v === null || v === undefined ? null : (view.log && view.metric === "loss" ? Math.log10(Math.max(v, 1e-12)) : v);
      }
      function trace(list, name, style) {
        // 3-D needs a height: a marker shows there once its loss has arrived (WebGL fails on null z).
        if (in3d) list = list.filter(function (m) { return z(m) !== null; });
        var t = { mode: style.mode, name: name, x: list.map(function (m) { return m.a; }), y: list.map(function (m) { return m.b; }),
                  text: list.map(function (m) { return m.name; }), textposition: "top center",
                  hovertemplate: "%{text}<br>a=%{x:.3f}<br>b=%{y:.3f}<extra></extra>" };
        if (style.marker) t.marker = style.marker; // plotly rejects an undefined marker or line
        if (style.line) t.line = style.line;
        if (in3d) { t.type = "scatter3d"; t.z = list.map(z); } else { t.type = "scatter"; }
        return t;
      }
      var traces = [];
      if (corners.length === 3 && !in3d) {
        var loop = corners.concat([corners[0]]);
        traces.push(trace(loop, "linear paths", { mode: "lines", line: { color: "#ffffff", width: 2, dash: "dash" } }));
      }
      traces.push(trace(corners, "models", { mode: "markers+text", marker: { size: in3d ? 5 : 11, color: "#dc2626", symbol: in3d ? "circle" : "x" } }));
      others.forEach(function (m) {
        traces.push(trace([m], "merge: " + m.name, { mode: "markers+text", marker: { size: in3d ? 6 : 13, color: "#f59e0b", symbol: in3d ? "diamond" : "star" } }));
      });
      return traces.filter(function (t) { return t.x.length > 0; });
    }

    function renderLine() {
      var t = state.t.filter(function (v) { return v !== undefined; });
      var loss = state.lineLoss.filter(function (v, k) { return state.t[k] !== undefined; });
      var acc = state.lineAcc.filter(function (v, k) { return state.t[k] !== undefined; });
      var data = [{ x: t, y: loss, name: "loss", mode: "lines+markers" }];
      if (acc.some(function (v) { return v !== null && v !== undefined; })) data.push({ x: t, y: acc, name: "accuracy", yaxis: "y2", mode: "lines", line: { dash: "dot" } });
      draw(chart, data, { margin: { t: 10, r: 60, b: 40, l: 60 }, xaxis: { title: { text: "t" } }, yaxis: { title: { text: "loss" }, type: view.log ? "log" : "linear" },
                          yaxis2: { title: { text: "accuracy" }, overlaying: "y", side: "right", range: [0, 1.02], tickmode: "linear", tick0: 0, dtick: 0.2, showgrid: false }, uirevision: "keep" });
      chart.dataset.points = String(t.length);
    }

    if (controls) {
      var chosen = controls.querySelector('input[name=view][value="' + view.kind + '"]');
      if (chosen) chosen.checked = true;
      controls.addEventListener("change", function (e) {
        var target = e.target;
        if (target.name === "view") view.kind = target.value;
        if (target.name === "log") view.log = target.checked;
        if (target.name === "metric") view.metric = target.value;
        if (target.name === "task") view.task = target.value;
        render();
      });
    }

    return {
      update: function (events) { events.forEach(ingest); if (events.length) render(); },
      state: state
    };
  };

  renderers.hessian = function (root) {
    var eigChart = root.querySelector(".eig-chart"), densityChart = root.querySelector(".density-chart");
    var traceEl = root.querySelector(".trace-value");
    return {
      update: function (events) {
        events.forEach(function (event) {
          var p = event.payload;
          if (event.kind === "eigenvalues") {
            draw(eigChart, [{ type: "bar", x: p.values.map(function (_, k) { return "λ" + (k + 1); }), y: p.values,
                              error_y: { type: "data", array: p.residuals, visible: true }, marker: { color: "#2563eb" } }],
                 { margin: { t: 10, r: 10, b: 40, l: 60 }, yaxis: { title: { text: "eigenvalue" } } });
            eigChart.dataset.ready = "1";
          } else if (event.kind === "trace") {
            // Non-finite numbers arrive as null (one sample has no standard error).
            traceEl.textContent = (p.estimate === null ? "n/a" : p.estimate.toPrecision(6)) + (p.stderr === null ? "" : " ± " + p.stderr.toPrecision(3)) +
              " (" + p.method + ", " + p.num_matvecs + " products)";
            traceEl.dataset.ready = "1";
          } else if (event.kind === "density") {
            draw(densityChart, [{ x: p.grid, y: p.density.map(function (v) { return Math.max(v, 1e-12); }), mode: "lines", fill: "tozeroy", line: { color: "#7c3aed" } }],
                 { margin: { t: 10, r: 10, b: 40, l: 60 }, xaxis: { title: { text: "eigenvalue" } }, yaxis: { title: { text: "density" }, type: "log" } });
            densityChart.dataset.ready = "1";
          }
        });
      }
    };
  };

  renderers.connectivity = function (root) {
    var chart = root.querySelector(".connectivity-chart"), barriers = root.querySelector(".barriers");
    var curves = {};
    return {
      update: function (events) {
        var changed = false;
        events.forEach(function (event) {
          if (event.kind === "curve") { curves[event.payload.label] = event.payload; changed = true; }
        });
        if (!changed) return;
        var colours = { naive: "#dc2626", aligned: "#16a34a" };
        draw(chart, Object.keys(curves).map(function (label) {
          return { x: curves[label].t, y: curves[label].loss, name: label === "naive" ? "without alignment" : "with weight matching", mode: "lines+markers", line: { color: colours[label] } };
        }), { margin: { t: 10, r: 10, b: 40, l: 60 }, xaxis: { title: { text: "t (0 = first, 1 = second checkpoint)" } }, yaxis: { title: { text: "loss" } } });
        barriers.innerHTML = "";
        Object.keys(curves).forEach(function (label) {
          var li = document.createElement("li");
          li.dataset.label = label;
          li.textContent = (label === "naive" ? "Barrier without alignment: " : "Barrier with weight matching: ") + (curves[label].barrier_height === null ? "n/a" : curves[label].barrier_height.toPrecision(4));
          barriers.appendChild(li);
        });
      }
    };
  };
})();
