"""Which torch device this worker process computes on."""

import os


def worker_device() -> str:
    """TERRAIN_WORKER_DEVICE=cpu|cuda|cuda:N|auto (default auto: the first GPU if any).

    Returned as a string so it travels in job rows and events; analysis code turns
    it into torch.device itself, nothing hard-codes "cuda".
    """
    wanted = os.environ.get("TERRAIN_WORKER_DEVICE", "auto").strip().lower()
    if wanted == "cpu":
        return "cpu"
    import torch

    if torch.cuda.is_available():
        return "cuda:0" if wanted in ("auto", "cuda") else wanted
    return "cpu"
