/* The figure of a job kind that declares no renderer of its own: its events as lines of text.
 * A renderer takes the result element and returns {update(events)}. */
(function () {
  "use strict";
  var renderers = (window.TerrainRenderers = window.TerrainRenderers || {});

  renderers.generic = function (root) {
    var log = root.querySelector("#events-log");
    return {
      update: function (events) {
        if (!log) return;
        events.forEach(function (event) {
          var line = document.createElement("div");
          line.textContent = "#" + event.seq + " " + event.kind + " " + JSON.stringify(event.payload);
          log.appendChild(line);
        });
      }
    };
  };
})();
