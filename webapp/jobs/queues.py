"""Which queue a job goes to, and how many worker processes take each queue's work.

Both are read from the workers' heartbeats (webapp.jobs.workers): GPU-capable jobs
go to the GPU queue while a worker consuming it is alive, and a landscape plane
fans out when its queue has more than one live worker process.
"""

from webapp.jobs import workers
from webapp.jobs.kinds import JobKind

CPU_QUEUE = "cpu"
GPU_QUEUE = "gpu"


def gpu_worker_alive() -> bool:
    return workers.any_worker_consumes(GPU_QUEUE)


def queue_for(kind: JobKind) -> str:
    """GPU-capable kinds go to the GPU queue only while a GPU worker is alive."""
    if kind.gpu_capable and gpu_worker_alive():
        return GPU_QUEUE
    return CPU_QUEUE


def worker_slots(queue: str) -> int:
    """Worker processes alive on `queue` (across machines), as announced; 0 when Redis cannot say."""
    return workers.processes_consuming(queue)
