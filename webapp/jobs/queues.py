"""Which queue a job goes to: the GPU queue while a worker consuming it is alive."""

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
