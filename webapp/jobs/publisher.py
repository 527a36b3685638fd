"""Publish job events to their channel group from synchronous code (Celery tasks).

channels_redis >= 4 binds its connection pools to the event loop that first used
them, so `async_to_sync(group_send)` (a fresh loop per call) leaks pools.  We keep
one long-lived loop per process on a daemon thread and hand every send to it.
Delivery is at-most-once by design: the JobEvent rows are the source of truth.
"""

import asyncio
import logging
import os
import threading
import time
from sys import exc_info

from channels.layers import get_channel_layer

logger = logging.getLogger(__name__)

_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None
_loop_pid: int | None = None


def _publisher_loop() -> asyncio.AbstractEventLoop:
    global _loop, _loop_pid
    with _lock:
        # A forked Celery child inherits the variable but not the thread: start anew.
        if _loop is None or _loop_pid != os.getpid():
            _loop = asyncio.new_event_loop()
            _loop_pid = os.getpid()
            threading.Thread(target=_loop.run_forever, name="terrain-publisher", daemon=True).start()
        return _loop


_down_until = 0.0
# After a failed send, skip sending for a moment: a Redis that is down must not slow every event.
BACKOFF_SECONDS = 5.0


def publish(group: str, message: dict, timeout: float = 5.0) -> bool:
    """Send `message` to `group`; return False (and log) instead of raising on failure."""
    global _down_until
    layer = get_channel_layer()
    if layer is None or time.monotonic() < _down_until:
        return False
    future = asyncio.run_coroutine_threadsafe(layer.group_send(group, message), _publisher_loop())
    try:
        future.result(timeout=timeout)
        return True
    except Exception:  # the database still has the event; clients re-sync from it
        logger.warning("could not publish to %s (%s); clients will re-sync from the database", group, exc_info()[1])
        future.cancel()
        _down_until = time.monotonic() + BACKOFF_SECONDS
        return False
