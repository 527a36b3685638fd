"""Which Celery workers are alive, what they consume and what they are running.

Every worker's main process keeps a heartbeat key in Redis (its name, host, queues,
device and concurrency, expiring after three missed beats); each task sets a key
naming its job while it runs. The staff status page and the GPU routing read these
keys: one Redis scan, no broadcast to the workers, so the page answers at once even
when a worker is wedged.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time

import redis
from celery.signals import task_postrun, task_prerun, worker_ready, worker_shutdown
from django.conf import settings

logger = logging.getLogger(__name__)

WORKER_PREFIX = "terrain:worker:"
TASK_PREFIX = "terrain:worker-task:"


def _redis() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2)


def start_worker_heartbeat(*, name: str, queues: list[str], concurrency: int, device: str) -> threading.Thread:
    """Announce this worker in Redis until the process exits (or ``thread.stop`` is set)."""
    period = settings.TERRAIN_WORKER_HEARTBEAT_SECONDS
    record = json.dumps({"name": name, "host": socket.gethostname(), "pid": os.getpid(), "queues": sorted(queues),
                         "concurrency": concurrency, "device": device, "started": time.time()})
    stop = threading.Event()

    def beat():
        client = _redis()
        while True:
            try:
                client.set(WORKER_PREFIX + name, record, ex=period * 3)
            except redis.RedisError:
                logger.warning("worker heartbeat failed", exc_info=True)
            if stop.wait(period):
                client.delete(WORKER_PREFIX + name)
                break

    thread = threading.Thread(target=beat, name="terrain-worker-heartbeat", daemon=True)
    thread.stop = stop  # type: ignore[attr-defined]
    thread.start()
    return thread


def _scan_json(client: redis.Redis, prefix: str) -> dict[str, dict]:
    keys = list(client.scan_iter(match=prefix + "*", count=500))
    values = client.mget(keys) if keys else []
    return {key.decode()[len(prefix):]: json.loads(value) for key, value in zip(keys, values) if value}


def workers_alive() -> list[dict]:
    """Live workers, each with the tasks its processes are running now."""
    client = _redis()
    workers = _scan_json(client, WORKER_PREFIX)
    for worker in workers.values():
        worker["tasks"] = []
    for key, task in _scan_json(client, TASK_PREFIX).items():
        name = key.rsplit(":", 1)[0]
        if name in workers:
            workers[name]["tasks"].append(task)
    return sorted(workers.values(), key=lambda w: w["name"])


def queue_lengths(names: list[str]) -> dict[str, int]:
    """Messages waiting in each Celery queue (the Redis transport keeps a queue as a list)."""
    client = _redis()
    return {name: int(client.llen(name)) for name in names}


def _live_workers() -> list[dict]:
    try:
        return list(_scan_json(_redis(), WORKER_PREFIX).values())
    except (redis.RedisError, ValueError):
        logger.warning("could not read worker heartbeats", exc_info=True)
        return []


def any_worker_consumes(queue: str) -> bool:
    return any(queue in worker["queues"] for worker in _live_workers())


def processes_consuming(queue: str) -> int:
    """Worker processes alive on `queue`, across machines (0 when Redis cannot say)."""
    return sum(int(worker["concurrency"]) for worker in _live_workers() if queue in worker["queues"])


def stop_heartbeat(thread: threading.Thread) -> None:
    """A worker shutting down cleanly stops counting at once (a killed one expires with its key)."""
    thread.stop.set()  # type: ignore[attr-defined]
    thread.join(timeout=5)


_heartbeats: list[threading.Thread] = []  # this worker's announcement, withdrawn when it shuts down


@worker_ready.connect
def _announce(sender=None, **kwargs):
    from webapp.jobs.devices import worker_device

    queues = [queue.name for queue in sender.app.amqp.queues.consume_from.values()] if sender else []
    # How many processes take work here (a landscape plane fans out when a queue has more than one).
    concurrency = getattr(getattr(sender, "controller", None), "concurrency", None) or 1
    _heartbeats.append(start_worker_heartbeat(name=getattr(sender, "hostname", None) or socket.gethostname(),
                                              queues=queues, concurrency=int(concurrency), device=worker_device()))


@worker_shutdown.connect
def _withdraw(**kwargs):
    while _heartbeats:
        stop_heartbeat(_heartbeats.pop())


def _task_key(task) -> str:
    return f"{TASK_PREFIX}{task.request.hostname}:{os.getpid()}"


@task_prerun.connect
def _task_started(task=None, args=None, **kwargs):
    try:
        record = {"task": task.name, "args": list(args or [])[:3], "since": time.time(), "pid": os.getpid()}
        _redis().set(_task_key(task), json.dumps(record), ex=settings.CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"])
    except (redis.RedisError, TypeError):
        logger.warning("could not record the running task", exc_info=True)


@task_postrun.connect
def _task_finished(task=None, **kwargs):
    try:
        _redis().delete(_task_key(task))
    except redis.RedisError:
        logger.warning("could not clear the running task", exc_info=True)
