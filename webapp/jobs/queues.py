"""Which queue a job goes to, and how GPU workers say that they are alive."""

import logging
import socket
import threading

import redis
from django.conf import settings

from webapp.jobs.kinds import JobKind

logger = logging.getLogger(__name__)

CPU_QUEUE = "cpu"
GPU_QUEUE = "gpu"
_HEARTBEAT_PREFIX = "terrain:gpu-worker:"


def _redis() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2)


def gpu_worker_alive() -> bool:
    try:
        return any(True for _ in _redis().scan_iter(match=_HEARTBEAT_PREFIX + "*", count=100))
    except redis.RedisError:
        logger.warning("could not look for GPU workers; routing to the CPU queue", exc_info=True)
        return False


def queue_for(kind: JobKind) -> str:
    """GPU-capable kinds go to the GPU queue only while a GPU worker is alive."""
    if kind.gpu_capable and gpu_worker_alive():
        return GPU_QUEUE
    return CPU_QUEUE


def start_gpu_heartbeat(worker_name: str | None = None) -> threading.Thread:
    """Announce a live GPU worker in Redis until this process exits."""
    key = _HEARTBEAT_PREFIX + (worker_name or socket.gethostname())
    period = settings.TERRAIN_GPU_HEARTBEAT_SECONDS
    stop = threading.Event()

    def beat():
        client = _redis()
        while True:
            try:
                client.set(key, "1", ex=period * 3)
            except redis.RedisError:
                logger.warning("GPU heartbeat failed", exc_info=True)
            if stop.wait(period):
                break

    thread = threading.Thread(target=beat, name="terrain-gpu-heartbeat", daemon=True)
    thread.stop = stop  # type: ignore[attr-defined]
    thread.start()
    return thread
