/* The family tree: server-side layout, drawn with Plotly (WebGL scattergl for the nodes).
 *
 * The server lays out one family at a time (GET layout.json with the collapsed and
 * expanded node keys) and caps what it returns, so the browser only ever draws what is
 * visible.  This file keeps the view state (layout kind, colour trait, folds, selection),
 * draws, and shows a details panel for the clicked node.
 *
 * window.lineageTree exposes a few read-only helpers (state, pointOnScreen) for tests.
 */
(function () {
  "use strict";
  var configEl = document.getElementById("lineage-config");
  var chart = document.getElementById("tree-chart");
  if (!configEl || !chart) return;
  var config = JSON.parse(configEl.textContent);
  var embed = !!config.embed;

  var RELATION_COLOURS = { finetune: "#2563eb", adapter: "#16a34a", quantized: "#9333ea", merge: "#dc2626", unknown: "#94a3b8" };
  var RELATION_LABELS = { finetune: "fine-tune", adapter: "adapter", quantized: "quantized", merge: "merge", unknown: "unknown" };
  var PALETTE = ["#2563eb", "#f97316", "#16a34a", "#dc2626", "#9333ea", "#0891b2", "#ca8a04", "#db2777", "#4f46e5", "#65a30d", "#0d9488", "#a16207"];
  var UNKNOWN_COLOUR = "#cbd5e1";
  var EXPANDER_DX = 0.38;  // the "+" sits beside a folded node, not on it: a click on the node selects it
  var PLOT_CONFIG = { responsive: true, displaylogo: false, scrollZoom: true, modeBarButtonsToRemove: ["select2d", "lasso2d"] };
  var webgl = (function () {
    try { var c = document.createElement("canvas"); return !!(c.getContext("webgl") || c.getContext("experimental-webgl")); }
    catch (e) { return false; }
  })();
  var SCATTER = webgl ? "scattergl" : "scatter";

  var state = {
    kind: config.layout || "tidy",
    colour: config.colour || "relation",
    collapsed: new Set(),
    expanded: new Set(),
    focus: config.focus,           // node key to open the path to and highlight
    selected: null,                // node key shown in the details panel
    pinned: null,                  // {id, checkpoint, dataset} kept for "landscape between these two"
    data: null,
    loads: 0
  };
  var statusEl = document.getElementById("tree-status");
  var colourSelect = document.getElementById("colour-by");
  var panel = document.getElementById("node-panel");
  var details = document.getElementById("node-details");
  var request = null;

  // Plotly reads a few HTML tags in hover and legend text; ids and trait values are untrusted.
  function esc(text) { return String(text).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;"); }

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === "className") node.className = attrs[k]; else node.setAttribute(k, attrs[k]);
    });
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function setStatus(text, warn) {
    statusEl.textContent = "";
    statusEl.appendChild(el("span", warn ? { className: "warn" } : {}, text));
  }

  // -- loading --------------------------------------------------------------

  function layoutQuery() {
    var q = new URLSearchParams({ kind: state.kind, cap: String(config.cap) });
    if (state.collapsed.size) q.set("collapsed", Array.from(state.collapsed).join(","));
    if (state.expanded.size) q.set("expanded", Array.from(state.expanded).join(","));
    if (state.focus !== null && state.focus !== undefined) q.set("focus", String(state.focus));
    return q.toString();
  }

  function load() {
    chart.dataset.state = "loading";
    var started = performance.now();
    if (request) request.abort();
    request = new AbortController();
    return fetch(config.layoutUrl + "?" + layoutQuery(), { signal: request.signal, credentials: "same-origin" })
      .then(function (r) { if (!r.ok) throw new Error("layout request failed: " + r.status); return r.json(); })
      .then(function (data) {
        state.data = data;
        state.loads += 1;
        // The server answers with what is folded now; keep our sets in step with it.
        state.collapsed = new Set(data.collapsed);
        fillColourChoices(data.traits);
        draw();
        chart.dataset.loadMs = String(Math.round(performance.now() - started));
        chart.dataset.visible = String(data.visible);
        chart.dataset.state = "ready";
        describe(data);
      })
      .catch(function (err) {
        if (err.name === "AbortError") return;
        chart.dataset.state = "error";
        setStatus(String(err.message || err), true);
      });
  }

  function describe(data) {
    var parts = [data.visible.toLocaleString() + " of " + data.total_nodes.toLocaleString() + " models drawn"];
    if (data.hidden_total) parts.push(data.hidden_total.toLocaleString() + " inside folded subtrees (click a “+” to open one)");
    statusEl.textContent = parts.join(" · ");
    (data.notes || []).forEach(function (note) {
      statusEl.appendChild(document.createTextNode(" · "));
      statusEl.appendChild(el("span", { className: "warn", "data-note": "1" }, note));
    });
  }

  // -- colour ---------------------------------------------------------------

  function fillColourChoices(traits) {
    var current = state.colour;
    var names = traits.map(function (t) { return t.name; });
    if (names.indexOf(current) < 0) current = state.colour = "relation";
    if (colourSelect.options.length === traits.length && colourSelect.dataset.names === names.join("|")) return;
    colourSelect.textContent = "";
    traits.forEach(function (t) {
      var option = el("option", { value: t.name }, t.label || t.name);
      if (t.name === current) option.selected = true;
      colourSelect.appendChild(option);
    });
    colourSelect.dataset.names = names.join("|");
  }

  function traitKind(name) {
    var t = (state.data.traits || []).filter(function (t) { return t.name === name; })[0];
    return t ? t.kind : "categorical";
  }

  function traitText(i) {
    var name = state.colour, column = state.data.values[name];
    if (!column) return "";
    if (column.levels) { var c = column.codes[i]; return c < 0 ? "unknown" : column.levels[c]; }
    var v = column[i];
    return v === null || v === undefined ? "unknown" : String(Math.round(v * 1000) / 1000);
  }

  // -- drawing --------------------------------------------------------------

  function edgeShapes(data) {
    // Edges are SVG path shapes, one per relation: colour by relation for the price of a few
    // strings.  (Each WebGL line trace cost ~0.3 s more to set up on software WebGL.)
    var n = data.nodes, tidy = data.kind === "tidy", paths = {};
    for (var i = 0; i < n.id.length; i++) {
      var p = n.parent[i];
      if (p < 0) continue;
      var rel = n.relation[i] || "unknown";
      // Elbow connectors read better than diagonals in a layered tree.
      var seg = tidy ? "M" + n.x[p] + "," + n.y[p] + "V" + (n.y[p] + n.y[i]) / 2 + "H" + n.x[i] + "V" + n.y[i]
                     : "M" + n.x[p] + "," + n.y[p] + "L" + n.x[i] + "," + n.y[i];
      paths[rel] = (paths[rel] || "") + seg;
    }
    var shapes = [], legend = [];
    Object.keys(RELATION_COLOURS).forEach(function (rel) {
      if (!paths[rel]) return;
      shapes.push({ type: "path", path: paths[rel], layer: "below", xref: "x", yref: "y", line: { color: RELATION_COLOURS[rel], width: 1.2 } });
      legend.push({ type: "scatter", mode: "lines", x: [null], y: [null], name: RELATION_LABELS[rel] + " edge", hoverinfo: "skip",
                    line: { color: RELATION_COLOURS[rel], width: 2 }, meta: { role: "legend" } });
    });
    if (data.extra_edges.length) {
      var extra = data.extra_edges.map(function (e) { return "M" + n.x[e[0]] + "," + n.y[e[0]] + "L" + n.x[e[1]] + "," + n.y[e[1]]; }).join("");
      shapes.push({ type: "path", path: extra, layer: "below", xref: "x", yref: "y", line: { color: RELATION_COLOURS.merge, width: 1, dash: "dot" } });
      legend.push({ type: "scatter", mode: "lines", x: [null], y: [null], name: "other parent (merge)", hoverinfo: "skip",
                    line: { color: RELATION_COLOURS.merge, width: 1.5, dash: "dot" }, meta: { role: "legend" } });
    }
    return { shapes: shapes, legend: legend };
  }

  function hoverText(i) {
    var n = state.data.nodes;
    var lines = [esc(n.id[i]), esc(state.colour + ": " + traitText(i)), "generation " + n.depth[i]];
    if (n.placeholder[i]) lines.push("placeholder: known only as a parent");
    if (n.hidden[i]) lines.push(n.hidden[i] + " descendants folded");
    return lines.join("<br>");
  }

  // Viridis, sampled: numeric traits are turned into colours here so that all nodes stay in one trace.
  var VIRIDIS = ["#440154", "#482878", "#3e4989", "#31688e", "#26828e", "#1f9e89", "#35b779", "#6ece58", "#b5de2b", "#fde725"];
  function viridis(t) {
    var k = Math.max(0, Math.min(VIRIDIS.length - 1, Math.round(t * (VIRIDIS.length - 1))));
    return VIRIDIS[k];
  }

  function legendEntry(name, colour, symbol) {
    // Empty and drawn in SVG: a legend line costs nothing, unlike another WebGL trace.
    return { type: "scatter", mode: "markers", x: [null], y: [null], name: name, hoverinfo: "skip",
             marker: { color: colour, size: 9, symbol: symbol || "circle" }, meta: { role: "legend" } };
  }

  function nodeTraces(data) {
    // Every node in ONE WebGL trace with per-point colours: each extra scattergl trace costs
    // a fixed few hundred milliseconds to set up on software WebGL, whatever its size.
    var n = data.nodes, count = n.id.length, name = state.colour;
    var column = data.values[name];
    var size = count > 1500 ? 6 : count > 400 ? 8 : 11;
    var all = new Array(count);
    for (var i = 0; i < count; i++) all[i] = i;
    var colours = new Array(count), legend = [];
    if (!column) {
      colours.fill("#64748b");
    } else if (column.levels) {
      var levelColour = column.levels.map(function (level, k) {
        return name === "relation" && RELATION_COLOURS[level] ? RELATION_COLOURS[level] : PALETTE[k % PALETTE.length];
      });
      var tally = column.levels.map(function () { return 0; }), unknown = 0;
      var unknownColour = name === "relation" ? "#0f172a" : UNKNOWN_COLOUR;
      column.codes.forEach(function (c, i) {
        if (c < 0) { colours[i] = unknownColour; unknown += 1; } else { colours[i] = levelColour[c]; tally[c] += 1; }
      });
      column.levels.forEach(function (level, k) { if (tally[k]) legend.push(legendEntry(esc(level) + " (" + tally[k] + ")", levelColour[k])); });
      if (unknown) legend.push(legendEntry((name === "relation" ? "root" : "unknown") + " (" + unknown + ")", unknownColour));
    } else {
      var known = column.filter(function (v) { return v !== null && v !== undefined; });
      var lo = Math.min.apply(null, known.length ? known : [0]), hi = Math.max.apply(null, known.length ? known : [1]);
      var missing = 0;
      column.forEach(function (v, i) {
        if (v === null || v === undefined) { colours[i] = UNKNOWN_COLOUR; missing += 1; }
        else colours[i] = viridis(hi > lo ? (v - lo) / (hi - lo) : 0.5);
      });
      legend.push({ type: "scatter", mode: "markers", x: [null, null], y: [null, null], showlegend: false, hoverinfo: "skip",
                    marker: { color: [lo, hi], colorscale: "Viridis", showscale: true, colorbar: { title: { text: esc(name) }, thickness: 12 } },
                    meta: { role: "legend" } });
      if (missing) legend.push(legendEntry("unknown (" + missing + ")", UNKNOWN_COLOUR));
    }
    var anyPlaceholder = n.placeholder.some(function (p) { return p; });
    if (anyPlaceholder) legend.push(legendEntry("placeholder (no row of its own)", "#64748b", "circle-open"));
    var trace = {
      type: SCATTER, mode: "markers", x: n.x, y: n.y, customdata: all, text: all.map(hoverText), hoverinfo: "text",
      name: "models", showlegend: false, meta: { role: "nodes" },
      marker: { size: size, color: colours, line: { width: 0 },
                symbol: anyPlaceholder ? n.placeholder.map(function (p) { return p ? "circle-open" : "circle"; }) : "circle" }
    };
    return [trace].concat(legend);
  }

  function expanderTrace(data) {
    // An amber "+N" beside every folded node: click it to unfold.  SVG (for the text), so capped.
    var n = data.nodes, idx = [];
    for (var i = 0; i < n.id.length && idx.length < 600; i++) if (n.hidden[i] > 0) idx.push(i);
    if (!idx.length) return null;
    var dx = EXPANDER_DX;
    return {
      type: "scatter", mode: "markers+text", x: idx.map(function (i) { return n.x[i] + dx; }), y: idx.map(function (i) { return n.y[i]; }),
      text: idx.map(function (i) { return "+" + n.hidden[i]; }), textposition: "middle right",
      textfont: { color: "#b45309", size: 11 }, customdata: idx, hoverinfo: "text",
      hovertext: idx.map(function (i) { return "unfold " + n.hidden[i] + " descendants of " + esc(n.id[i]); }),
      marker: { symbol: "cross-thin-open", size: 9, color: "#b45309", line: { width: 2, color: "#b45309" } },
      name: "folded subtree (click + to open)", showlegend: false, meta: { role: "expanders" }
    };
  }

  function highlightTrace(data) {
    var n = data.nodes, keys = [];
    if (state.selected !== null) keys.push(state.selected);
    if (state.focus !== null && state.focus !== undefined && keys.indexOf(state.focus) < 0) keys.push(state.focus);
    var idx = keys.map(function (k) { return n.key.indexOf(k); }).filter(function (i) { return i >= 0; });
    return {
      type: "scatter", mode: "markers+text", x: idx.map(function (i) { return n.x[i]; }), y: idx.map(function (i) { return n.y[i]; }),
      text: idx.map(function (i) { return esc(n.id[i]); }), textposition: "top center", textfont: { size: 12, color: "#0f172a" },
      customdata: idx, hoverinfo: "skip", showlegend: false, meta: { role: "highlight" },
      marker: { size: 22, color: "rgba(0,0,0,0)", line: { width: 3, color: "#f59e0b" } }
    };
  }

  function figureLayout(data, shapes) {
    var tidy = data.kind === "tidy";
    var layout = {
      shapes: shapes,
      margin: { t: 10, r: 10, b: 10, l: 10 }, hovermode: "closest", dragmode: "pan", showlegend: true,
      legend: { orientation: "h", y: -0.02, yanchor: "top", font: { size: 11 }, itemclick: false, itemdoubleclick: false },
      xaxis: { visible: false, zeroline: false }, yaxis: { visible: false, zeroline: false, autorange: tidy ? "reversed" : true },
      plot_bgcolor: "#fff", paper_bgcolor: "#fff", uirevision: data.kind + ":" + state.colour
    };
    if (!tidy) { layout.yaxis.scaleanchor = "x"; layout.yaxis.scaleratio = 1; }
    var f = state.focus !== null && state.focus !== undefined ? data.nodes.key.indexOf(state.focus) : -1;
    if (f >= 0 && tidy && data.visible > 150) {
      // Zoom to the searched node when the whole tree would make it a speck.
      var x = data.nodes.x[f], y = data.nodes.y[f];
      layout.xaxis.range = [x - 25, x + 25]; layout.yaxis.range = [y + 6, y - 6];
      layout.xaxis.autorange = false; layout.yaxis.autorange = false;
      layout.uirevision = "focus:" + state.focus;
    }
    return layout;
  }

  function draw() {
    var data = state.data;
    var edges = edgeShapes(data);
    var traces = nodeTraces(data).concat(edges.legend);
    var expander = expanderTrace(data);
    if (expander) traces.push(expander);
    traces.push(highlightTrace(data));
    var started = performance.now();
    Plotly.react(chart, traces, figureLayout(data, edges.shapes), PLOT_CONFIG);
    chart.dataset.renderMs = String(Math.round(performance.now() - started));
    if (!chart.dataset.bound) bindChart();
  }

  function redrawHighlight() {
    if (!state.data) return;
    var roles = chart.data.map(function (t) { return t.meta && t.meta.role; });
    var k = roles.lastIndexOf("highlight");
    var h = highlightTrace(state.data);
    Plotly.restyle(chart, { x: [h.x], y: [h.y], text: [h.text], customdata: [h.customdata] }, [k]);
  }

  function bindChart() {
    chart.dataset.bound = "1";
    chart.on("plotly_click", function (event) {
      var point = event.points && event.points[0];
      if (!point) return;
      var role = point.data.meta && point.data.meta.role;
      var i = point.customdata;
      if (i === undefined || i === null) return;
      var key = state.data.nodes.key[i];
      if (role === "expanders") { toggle(key); return; }
      if (role === "nodes" || role === "highlight") {
        if (event.event && event.event.altKey) { toggle(key); return; }
        select(key);
      }
    });
  }

  // -- folding --------------------------------------------------------------

  function indexOfKey(key) { return state.data ? state.data.nodes.key.indexOf(key) : -1; }

  function isFolded(key) { var i = indexOfKey(key); return i >= 0 && state.data.nodes.hidden[i] > 0; }

  function toggle(key) {
    if (isFolded(key)) { state.collapsed.delete(key); state.expanded.add(key); }
    else { state.expanded.delete(key); state.collapsed.add(key); }
    return load().then(function () { if (state.selected === key) showDetails(key); });
  }

  function collapseAll() {
    // Keep the roots and their children; fold everything below them.
    var n = state.data.nodes, children = state.data.values.children;
    state.expanded.clear();
    state.collapsed = new Set();
    for (var i = 0; i < n.id.length; i++) {
      var p = n.parent[i];
      if (p >= 0 && n.parent[p] < 0 && children[i] > 0) state.collapsed.add(n.key[i]);
    }
    if (!state.collapsed.size) for (var r = 0; r < n.id.length; r++) if (n.parent[r] < 0 && children[r] > 0) state.collapsed.add(n.key[r]);
    state.focus = null;
    return load();
  }

  function expandAll() { state.collapsed.clear(); state.expanded.clear(); return load(); }

  // -- selection and details --------------------------------------------------

  function select(key) {
    state.selected = key;
    redrawHighlight();
    if (!embed) showDetails(key);
  }

  function nodeById(id) { var i = state.data ? state.data.nodes.id.indexOf(id) : -1; return i >= 0 ? state.data.nodes.key[i] : null; }

  function showDetails(key) {
    var i = indexOfKey(key);
    if (i < 0 || !panel) return Promise.resolve();
    var id = state.data.nodes.id[i];
    if (panel.hidden) { panel.hidden = false; Plotly.Plots.resize(chart); }
    panel.dataset.state = "loading";
    details.textContent = "Loading " + id + "…";
    return fetch(config.nodeUrl + "?" + new URLSearchParams({ id: id }), { credentials: "same-origin" })
      .then(function (r) { if (!r.ok) throw new Error("details request failed: " + r.status); return r.json(); })
      .then(function (node) { renderDetails(node, i); panel.dataset.state = "ready"; panel.dataset.node = node.id; })
      .catch(function (err) { details.textContent = String(err.message || err); panel.dataset.state = "error"; });
  }

  function relTag(relation) { return el("span", { className: "rel " + relation }, RELATION_LABELS[relation] || relation); }

  function linkList(title, items, total) {
    var box = el("div");
    box.appendChild(el("strong", {}, title + " (" + total + ")"));
    var ul = el("ul");
    items.forEach(function (item) {
      var li = el("li");
      var a = el("a", { href: item.url, "data-id": item.id }, item.id);
      a.addEventListener("click", function (event) {
        var k = nodeById(item.id);
        event.preventDefault();
        if (k !== null) { select(k); return; }
        // Hidden in a fold: ask the server to open the path to it.
        state.focus = null; window.location.href = item.url;
      });
      li.appendChild(a);
      li.appendChild(relTag(item.relation));
      if (item.placeholder) li.appendChild(el("span", { className: "meta" }, " placeholder"));
      ul.appendChild(li);
    });
    if (!items.length) ul.appendChild(el("li", { className: "meta" }, "none"));
    if (total > items.length) ul.appendChild(el("li", { className: "meta" }, "… and " + (total - items.length) + " more"));
    box.appendChild(ul);
    return box;
  }

  function attrValue(value) {
    if (value === null || value === undefined) return "–";
    if (Array.isArray(value)) return value.join(", ");
    if (typeof value === "object") return JSON.stringify(value);
    return String(value);
  }

  function connectivityHref(a, b) {
    return config.connectivityUrl + "?" + new URLSearchParams({ checkpoint: a.checkpoint, checkpoint_b: b.checkpoint, dataset: a.dataset || b.dataset || "digits" });
  }

  function renderDetails(node, i) {
    details.textContent = "";
    details.appendChild(el("h3", { id: "node-title" }, node.id));
    var meta = "generation " + node.generation + " · family #" + node.family;
    if (node.placeholder) meta += " · placeholder (known only as someone's parent)";
    details.appendChild(el("p", { className: "meta" }, meta));

    var actions = el("div", { className: "actions" });
    var folded = state.data.nodes.hidden[i] > 0;
    if (node.num_children) {
      var toggleButton = el("button", { type: "button", id: "node-toggle", className: "secondary" },
        folded ? "Expand subtree (" + state.data.nodes.hidden[i] + " hidden)" : "Collapse subtree");
      toggleButton.addEventListener("click", function () { toggle(node.key); });
      actions.appendChild(toggleButton);
    }
    if (node.hub_url) {
      // Only a link for the reader's browser; Terrain itself never calls the Hub from this page.
      actions.appendChild(el("a", { className: "button secondary", id: "node-hub", href: node.hub_url, target: "_blank", rel: "noopener noreferrer" }, "Open on the Hub ↗"));
    }
    var me = node.checkpoint ? { id: node.id, checkpoint: node.checkpoint.slug, dataset: node.checkpoint.dataset } : null;
    if (me) {
      actions.appendChild(el("a", { className: "button secondary", href: node.checkpoint.url }, "Checkpoint " + node.checkpoint.name));
      var parentCk = node.parents.filter(function (p) { return p.checkpoint; })[0];
      if (parentCk) {
        actions.appendChild(el("a", { className: "button", id: "node-landscape-parent", href: connectivityHref(me, { checkpoint: parentCk.checkpoint, dataset: parentCk.dataset }) },
          "Landscape between this and its parent"));
      }
      if (state.pinned && state.pinned.checkpoint !== me.checkpoint) {
        actions.appendChild(el("a", { className: "button", id: "node-landscape", href: connectivityHref(state.pinned, me) }, "Landscape between these two (" + state.pinned.id + ")"));
        actions.appendChild(el("a", { className: "button secondary", id: "node-kinship", href: config.kinshipUrl + "?" + new URLSearchParams({ a: state.pinned.checkpoint, b: me.checkpoint }) }, "Kinship of these two"));
      }
      var pin = el("button", { type: "button", id: "node-pin", className: "secondary" },
        state.pinned && state.pinned.checkpoint === me.checkpoint ? "Pinned for comparison" : "Pin to compare with another checkpoint");
      pin.addEventListener("click", function () { state.pinned = me; pin.textContent = "Pinned for comparison"; });
      actions.appendChild(pin);
    }
    details.appendChild(actions);

    var keys = Object.keys(node.attrs || {});
    if (keys.length) {
      var dl = el("dl", { id: "node-attrs" });
      keys.sort().forEach(function (k) { dl.appendChild(el("dt", {}, k)); dl.appendChild(el("dd", {}, attrValue(node.attrs[k]))); });
      details.appendChild(dl);
    } else {
      details.appendChild(el("p", { className: "meta" }, "No attributes recorded."));
    }
    details.appendChild(linkList("Parents", node.parents, node.parents.length));
    details.appendChild(linkList("Children", node.children, node.num_children));
  }

  // -- search ---------------------------------------------------------------

  function bindSearch() {
    var input = document.getElementById("tree-search");
    var list = document.getElementById("tree-search-results");
    if (!input) return;
    var timer = null, hits = [];
    function go(hit) {
      list.hidden = true;
      input.value = hit.id;
      if (hit.family === config.family) {
        state.focus = hit.key;
        load().then(function () { select(hit.key); });
      } else {
        // Another family: its own page, opened at the model, in the same view.
        window.location.href = hit.url + "&" + new URLSearchParams({ layout: state.kind, colour: state.colour });
      }
    }
    function show(results) {
      hits = results;
      list.textContent = "";
      results.forEach(function (hit, k) {
        var li = el("li", { "data-id": hit.id, role: "option" });
        li.appendChild(el("span", { className: "model-id" }, hit.id));
        li.appendChild(el("span", { className: "meta" }, hit.family === config.family ? "this family" : "family #" + hit.family));
        if (k === 0) li.className = "active";
        li.addEventListener("mousedown", function (event) { event.preventDefault(); go(hit); });
        list.appendChild(li);
      });
      if (!results.length) list.appendChild(el("li", { className: "meta" }, "no model id contains that"));
      list.hidden = false;
    }
    function query() {
      var q = input.value.trim();
      if (!q) { list.hidden = true; return Promise.resolve(); }
      return fetch(config.searchUrl + "?" + new URLSearchParams({ q: q }), { credentials: "same-origin" })
        .then(function (r) { return r.json(); }).then(function (body) { show(body.results); });
    }
    input.addEventListener("input", function () { clearTimeout(timer); timer = setTimeout(query, 150); });
    input.addEventListener("keydown", function (event) {
      if (event.key === "Enter") {
        event.preventDefault();
        clearTimeout(timer);
        query().then(function () { if (hits.length) go(hits[0]); });
      } else if (event.key === "Escape") { list.hidden = true; }
    });
    input.addEventListener("blur", function () { setTimeout(function () { list.hidden = true; }, 150); });
  }

  // -- wiring ---------------------------------------------------------------

  document.querySelectorAll("input[name=layout]").forEach(function (radio) {
    radio.addEventListener("change", function () { if (radio.checked) { state.kind = radio.value; load(); } });
  });
  colourSelect.addEventListener("change", function () { state.colour = colourSelect.value; if (state.data) draw(); });
  var collapseButton = document.getElementById("collapse-all");
  if (collapseButton) collapseButton.addEventListener("click", function () { if (state.data) collapseAll(); });
  var expandButton = document.getElementById("expand-all");
  if (expandButton) expandButton.addEventListener("click", function () { state.focus = null; expandAll(); });
  var closeButton = document.getElementById("node-panel-close");
  if (closeButton) closeButton.addEventListener("click", function () {
    panel.hidden = true; state.selected = null; Plotly.Plots.resize(chart); redrawHighlight();
  });
  document.querySelectorAll("[data-image-format]").forEach(function (link) {
    link.addEventListener("click", function (event) {
      event.preventDefault();
      Plotly.downloadImage(chart, { format: link.dataset.imageFormat, filename: "terrain-family-" + config.graph + "-" + config.family, width: 1600, height: 1000 });
    });
  });
  bindSearch();

  load().then(function () {
    if (state.focus !== null && state.focus !== undefined && !embed && indexOfKey(state.focus) >= 0) select(state.focus);
  });

  window.lineageTree = {
    state: function () {
      var d = state.data;
      return { kind: state.kind, colour: state.colour, loads: state.loads, visible: d ? d.visible : 0, total: d ? d.total_nodes : 0,
               collapsed: Array.from(state.collapsed), selected: state.selected, focus: state.focus,
               hidden: d ? d.hidden_total : 0 };
    },
    hiddenUnder: function (id) { var i = state.data.nodes.id.indexOf(id); return i >= 0 ? state.data.nodes.hidden[i] : null; },
    visibleIds: function () { return state.data ? state.data.nodes.id.slice() : []; },
    // Page coordinates of a drawn node: lets a test click it like a person would.
    // (expander: true) gives its "+" instead.
    pointOnScreen: function (id, expander) {
      var i = state.data.nodes.id.indexOf(id);
      if (i < 0) return null;
      var full = chart._fullLayout, box = chart.getBoundingClientRect();
      return { x: box.left + full._size.l + full.xaxis.l2p(state.data.nodes.x[i] + (expander ? EXPANDER_DX : 0)),
               y: box.top + full._size.t + full.yaxis.l2p(state.data.nodes.y[i]) };
    }
  };
})();
