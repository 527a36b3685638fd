/* The result page: status, progress bar and the kind's live figure. */
(function () {
  "use strict";
  var root = document.getElementById("result");
  if (!root) return;
  var snapshot = JSON.parse(document.getElementById("job-snapshot").textContent);
  var slug = root.dataset.slug;

  function setState(state) {
    if (state.status) {
      var status = document.getElementById("job-status");
      status.textContent = state.status;
      status.className = "status " + state.status;
      if (["succeeded", "failed", "cancelled"].indexOf(state.status) >= 0) {
        var cancel = document.getElementById("cancel-form");
        if (cancel) cancel.hidden = true;
      }
      if (state.status === "succeeded") {
        document.querySelectorAll("[data-when-succeeded]").forEach(function (el) { el.hidden = false; });
      }
    }
    if (typeof state.progress === "number") {
      var pct = Math.round(state.progress * 100);
      var bar = document.getElementById("job-progress");
      bar.setAttribute("aria-valuenow", pct);
      bar.querySelector(".bar").style.width = pct + "%";
      document.getElementById("job-progress-label").textContent = pct + "%";
    }
    if (state.error) {
      var error = document.getElementById("job-error");
      error.textContent = state.error;
      error.hidden = false;
    }
    if (state.device) document.getElementById("job-device").textContent = "on " + state.device;
  }

  var renderer = (window.TerrainRenderers || {})[snapshot.job.kind] || window.TerrainRenderers.generic;
  var requested = new URLSearchParams(window.location.search).get("view");
  var view = renderer(root, requested ? { view: requested } : {});

  function apply(events) {
    events.forEach(function (event) {
      if (event.kind === "status") {
        setState({ status: event.payload.status, error: event.payload.error, device: event.payload.device });
      }
    });
    view.update(events);
  }

  setState(snapshot.job);
  apply(snapshot.events);
  var lastSeq = snapshot.events.length ? snapshot.events[snapshot.events.length - 1].seq : 0;
  var finished = ["succeeded", "failed", "cancelled"].indexOf(snapshot.job.status) >= 0;
  if (!finished) {
    window.terrainConnection = TerrainLive.connect(slug, { onState: setState, onEvents: apply }, { after: lastSeq });
  }
})();

/* PNG / SVG downloads of the page's main figure, drawn by Plotly in the browser. */
(function () {
  "use strict";
  document.querySelectorAll("[data-image-format]").forEach(function (link) {
    link.addEventListener("click", function (event) {
      event.preventDefault();
      var figure = document.querySelector("#result .js-plotly-plot");
      if (!figure) return;
      var slug = document.getElementById("result").dataset.slug;
      Plotly.downloadImage(figure, { format: link.dataset.imageFormat, filename: "terrain-" + slug, width: 1200, height: 800 });
    });
  });
})();
