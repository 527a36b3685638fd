/* TerrainLive: the browser side of the job protocol (snapshot, then events by seq).
 *
 * - keeps the highest seq it has applied and ignores duplicates;
 * - on a gap (a dropped channel-layer message) asks the server to resync;
 * - reconnects with backoff, passing ?after=<last seq>, so nothing is missed;
 * - hands events to the page in batches at most every `batchMs`, so a fast
 *   stream never makes the browser redraw more than a few times a second.
 */
(function () {
  "use strict";

  function connect(slug, handlers, options) {
    options = options || {};
    var batchMs = options.batchMs || 250;
    var lastSeq = options.after || 0;
    var pending = [];
    var flushTimer = null;
    var socket = null;
    var closedByUs = false;
    var retry = 0;
    var finished = false;
    var resyncing = false;

    // Back-pressure: a slow redraw (a big 3-D surface on a weak GPU) stretches the next
    // interval, so drawing never takes more than about a third of the main thread.
    var delay = batchMs;
    function flush() {
      flushTimer = null;
      if (!pending.length) return;
      var batch = pending;
      pending = [];
      var started = performance.now();
      if (handlers.onEvents) handlers.onEvents(batch);
      delay = Math.max(batchMs, 2 * (performance.now() - started));
    }

    function queue(event) {
      if (event.seq <= lastSeq) return; // seen already (snapshot/event overlap)
      if (event.seq !== lastSeq + 1) {
        // A gap: the channel layer dropped something. The database has it.
        if (!resyncing) { resyncing = true; send({ type: "resync", after: lastSeq }); }
        return;
      }
      lastSeq = event.seq;
      pending.push(event);
      if (event.kind === "status" && event.payload && ["succeeded", "failed", "cancelled"].indexOf(event.payload.status) >= 0) {
        finished = true;
      }
      if (!flushTimer) flushTimer = setTimeout(flush, delay);
    }

    function send(message) {
      if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(message));
    }

    function open() {
      var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
      socket = new WebSocket(scheme + window.location.host + "/ws/jobs/" + encodeURIComponent(slug) + "/?after=" + lastSeq);
      socket.onopen = function () { retry = 0; if (handlers.onConnection) handlers.onConnection(true); };
      socket.onmessage = function (message) {
        var data = JSON.parse(message.data);
        if (data.type === "snapshot") {
          resyncing = false;
          if (handlers.onState) handlers.onState(data.job);
          data.events.forEach(queue);
          if (["succeeded", "failed", "cancelled"].indexOf(data.job.status) >= 0 && data.job.last_seq <= lastSeq) finished = true;
        } else if (data.type === "event") {
          queue(data);
          if (handlers.onState) handlers.onState({ status: data.status, progress: data.progress });
        }
      };
      socket.onclose = function (event) {
        if (handlers.onConnection) handlers.onConnection(false);
        if (closedByUs || event.code === 4404) return;
        if (finished) return; // nothing more will come
        retry = Math.min(retry + 1, 6);
        setTimeout(open, 250 * Math.pow(2, retry - 1));
      };
    }

    open();
    return {
      close: function () { closedByUs = true; flush(); if (socket) socket.close(); },
      lastSeq: function () { return lastSeq; },
      dropConnection: function () { if (socket) socket.close(); } // used by tests to force a reconnect
    };
  }

  window.TerrainLive = { connect: connect };
})();
