"""Which queue a job goes to, and how workers (GPU ones in particular) say that they are alive."""

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
_SLOTS_PREFIX = "terrain:worker-slots:"  # + queue + ":" + worker name -> its process count


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
    return _announce({_HEARTBEAT_PREFIX + (worker_name or socket.gethostname()): "1"}, "terrain-gpu-heartbeat")


def start_worker_heartbeat(worker_name: str | None, queues, slots: int) -> threading.Thread:
    """Announce how many processes this worker gives each of its queues, until it exits."""
    name = worker_name or socket.gethostname()
    return _announce({f"{_SLOTS_PREFIX}{queue}:{name}": str(int(slots)) for queue in queues}, "terrain-worker-heartbeat")


def worker_slots(queue: str) -> int:
    """Worker processes alive on `queue` (across machines), as announced; 0 when Redis cannot say."""
    try:
        client = _redis()
        keys = list(client.scan_iter(match=f"{_SLOTS_PREFIX}{queue}:*", count=100))
        return sum(int(value) for value in client.mget(keys) if value is not None) if keys else 0
    except (redis.RedisError, ValueError):
        logger.warning("could not count the workers of queue %s", queue, exc_info=True)
        return 0


def _announce(keys: dict[str, str], thread_name: str) -> threading.Thread:
    """Keep `keys` set in Redis (expiring three periods after the last beat) until this process exits."""
    period = settings.TERRAIN_GPU_HEARTBEAT_SECONDS
    stop = threading.Event()

    def beat():
        client = _redis()
        while True:
            try:
                for key, value in keys.items():
                    client.set(key, value, ex=period * 3)
            except redis.RedisError:
                logger.warning("worker heartbeat failed", exc_info=True)
            if stop.wait(period):
                break

    thread = threading.Thread(target=beat, name=thread_name, daemon=True)
    thread.stop = stop  # type: ignore[attr-defined]
    thread.keys = keys  # type: ignore[attr-defined]
    thread.start()
    return thread


def stop_heartbeat(thread: threading.Thread) -> None:
    """A worker shutting down cleanly stops counting at once (a killed one expires with its keys)."""
    thread.stop.set()  # type: ignore[attr-defined]
    try:
        _redis().delete(*thread.keys)  # type: ignore[attr-defined]
    except redis.RedisError:
        pass
