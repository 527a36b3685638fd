/* The dashboard: live progress for each running job of the user. */
(function () {
  "use strict";
  document.querySelectorAll('#my-jobs tr[data-live="1"]').forEach(function (row) {
    var statusEl = row.querySelector(".status");
    var bar = row.querySelector(".bar");
    var label = row.querySelector(".label");
    TerrainLive.connect(row.dataset.slug, {
      onState: function (state) {
        if (state.status) { statusEl.textContent = state.status; statusEl.className = "status " + state.status; }
        if (typeof state.progress === "number") {
          var pct = Math.round(state.progress * 100);
          bar.style.width = pct + "%";
          label.textContent = pct + "%";
        }
      },
      onEvents: function () {}
    }, { after: 1e9 });
  });
})();
