"""Planes and Hessian spectra across architectures, Terrain vs loss-landscapes / PyHessian.

Part of ``benchmarks/landscape_and_curvature.py`` (``--parts e`` for planes, ``f`` for
eigenvalues, ``g`` for time to the coarse surface at the job form's default resolution); every measurement runs in its own spawned process, ours and the
peer's alternate.  Models (weights saved once by the parent, loaded with
``weights_only=True`` by each child):

- ``mlp``: digits MLP 64-256-256-10 (Terrain zoo, trained),
- ``cnn``: digits CNN with BatchNorm, channels 32-64 on 8x8 images (zoo, trained),
- ``resnet``: a tiny ``transformers`` ``ResNetForImageClassification`` (basic blocks,
  16-32 channels, random init) on the digits as 1x8x8 images,
- ``gpt2``: a small ``transformers`` ``GPT2LMHeadModel`` (2 layers, width 64, eager
  attention, random init) on 256 token sequences of length 32, next-token loss,

each behind a small adapter (one tensor in, logits out), which is how a model
source hands any model to Terrain.

"Default settings" are a Celery worker's on this machine: the plane's points
split between ``TERRAIN_WORKER_THREADS`` (= cores = 2) threads; the peer runs with
torch's 2 intra-op threads.  "One thread": both single-threaded.
"""

from __future__ import annotations

import time

VOCAB, SEQ, SEQS = 64, 32, 256
CNN_SPEC = {"kind": "cnn", "in_channels": 1, "image_size": 8, "channels": [32, 64], "out": 10, "batchnorm": True}
MLP_SPEC = {"kind": "mlp", "in": 64, "hidden": [256, 256], "out": 10}
MODELS = ("mlp", "cnn", "resnet", "gpt2")
# The landscape job form's default plane resolution (webapp/landscapes): what users get.
FORM_DEFAULT_RESOLUTION = 41


def _adapters():
    from torch import nn

    class Logits(nn.Module):
        """One tensor in, logits out (what Terrain and loss-landscapes both call)."""

        def __init__(self, inner: nn.Module, image: bool):
            super().__init__()
            self.inner, self.image = inner, image

        def forward(self, x):
            if self.image:
                return self.inner(pixel_values=x.view(-1, 1, 8, 8)).logits
            return self.inner(input_ids=x).logits

    return Logits


def next_token_loss(logits, ids):
    from torch.nn import functional as F

    return F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1))


def next_token_accuracy(logits, ids):
    return (logits[:, :-1].argmax(-1) == ids[:, 1:]).float().mean()


def build(kind: str):
    """The architecture (random init, seed 0), in eval mode."""
    import torch

    torch.manual_seed(0)
    if kind in ("mlp", "cnn"):
        from analysis import zoo

        return zoo.build(MLP_SPEC if kind == "mlp" else CNN_SPEC).eval()
    from transformers.utils import logging

    logging.set_verbosity_error()
    Logits = _adapters()
    if kind == "resnet":
        from transformers import ResNetConfig, ResNetForImageClassification

        config = ResNetConfig(num_channels=1, embedding_size=16, hidden_sizes=[16, 32], depths=[1, 1], layer_type="basic",
                              num_labels=10)
        return _as_if_trained(Logits(ResNetForImageClassification(config), image=True))
    from transformers import GPT2Config, GPT2LMHeadModel

    config = GPT2Config(vocab_size=VOCAB, n_positions=SEQ, n_embd=64, n_layer=2, n_head=4, bos_token_id=0, eos_token_id=0,
                        attn_implementation="eager")
    return _as_if_trained(Logits(GPT2LMHeadModel(config), image=False))


def _as_if_trained(model):
    """Random init leaves biases and norm shifts at exactly zero, which no trained model has (and which
    loss-landscapes' filter normalisation divides by); give them small random values, and the
    BatchNorm statistics non-default ones."""
    import torch

    with torch.no_grad():
        for p in model.parameters():
            if p.dim() == 1 and not p.any():
                p.normal_(0, 0.05)
        for name, buf in model.named_buffers():
            if name.endswith("running_mean"):
                buf.normal_(0, 0.1)
            elif name.endswith("running_var"):
                buf.uniform_(0.5, 1.5)
    return model.eval()


def dataset(kind: str):
    import torch

    if kind != "gpt2":
        from analysis import data

        return data.load("digits", "all")
    # sequences that count up by a per-sequence step: structure a language model can learn
    g = torch.Generator().manual_seed(0)
    start = torch.randint(0, VOCAB, (SEQS, 1), generator=g)
    step = torch.randint(1, 5, (SEQS, 1), generator=g)
    ids = (start + step * torch.arange(SEQ)) % VOCAB
    return ids, ids


def scoring(kind: str) -> dict:
    return {"loss_fn": next_token_loss, "accuracy_fn": next_token_accuracy} if kind == "gpt2" else {}


def prepare_models(tmp, epochs: int) -> dict[str, str]:
    """Train the zoo models briefly, save every model's weights; {kind: path}."""
    import torch

    from analysis import data, train

    paths = {}
    tr = data.load("digits", "train")
    for kind in MODELS:
        if kind in ("mlp", "cnn"):
            model = train.train(MLP_SPEC if kind == "mlp" else CNN_SPEC, tr, epochs=epochs, lr=0.05, seed=0).model
        else:
            model = build(kind)
        paths[kind] = str(tmp / f"{kind}.pt")
        torch.save(model.state_dict(), paths[kind])
    return paths


def load(kind: str, path: str, threads: int, device: str = "cpu"):
    """The model and its data on ``device`` (on a GPU both stay resident for the whole plane)."""
    import torch

    torch.set_num_threads(threads)
    model = build(kind)
    model.load_state_dict(torch.load(path, weights_only=True))
    X, y = dataset(kind)
    return torch, model.eval().to(device), X.to(device), y.to(device)


def _synchronise(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize(device)


# --------------------------------------------------------------------------- measurements (children)


def task_flops_and_gemm(kind: str, path: str, threads: int, device: str = "cpu") -> dict:
    """Forward-pass FLOPs on the whole data, and the device's dense GEMM FLOP/s (at ``threads`` on a CPU)."""
    torch, model, X, y = load(kind, path, threads, device)
    from torch.utils.flop_counter import FlopCounterMode

    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(X)
    size = 4096 if device.startswith("cuda") else 512
    A, B = torch.randn(4 * size, size, device=device), torch.randn(size, size, device=device)
    best = 0.0
    for _ in range(4):
        _synchronise(device)
        t0, reps = time.perf_counter(), 0
        while time.perf_counter() - t0 < 0.3:
            A @ B
            reps += 1
            _synchronise(device)
        best = max(best, 2 * 4 * size * size * size * reps / (time.perf_counter() - t0))
    return {"flops": counter.get_total_flops(), "gemm": best}


def task_plane_ours(kind: str, path: str, resolution: int, threads: int, point_threads: int | None,
                    device: str = "cpu") -> dict:
    from landscape_and_curvature import PeakRSS

    torch, model, X, y = load(kind, path, threads, device)
    from analysis import landscape

    with PeakRSS() as mem:
        t0 = time.perf_counter()
        surf = landscape.plane(model, (X, y), resolution=resolution, span=1.0, seed=0, threads=point_threads, device=device,
                               **scoring(kind))
        _synchronise(device)
        wall = time.perf_counter() - t0
    return {"seconds": wall, "points": resolution**2, "coarse": surf.coarse_seconds, "total": surf.seconds,
            "rss": mem.increase, "evaluator": surf.evaluator, "point_threads": surf.point_threads}


def task_plane_peer(kind: str, path: str, resolution: int, threads: int, device: str = "cpu") -> dict:
    from landscape_and_curvature import PeakRSS

    torch, model, X, y = load(kind, path, threads, device)
    torch.set_default_device(device)  # the peer draws its directions with a bare torch.randn
    import loss_landscapes
    import loss_landscapes.metrics as llm

    loss = next_token_loss if kind == "gpt2" else torch.nn.CrossEntropyLoss()
    metric = llm.Loss(loss, X, y)
    torch.manual_seed(123)
    with PeakRSS() as mem:
        t0 = time.perf_counter()
        loss_landscapes.random_plane(model, metric, distance=1.0, steps=resolution, normalization="filter", deepcopy_model=True)
        _synchronise(device)
        wall = time.perf_counter() - t0
    return {"seconds": wall, "points": resolution**2, "rss": mem.increase}


def task_eigen_ours(kind: str, path: str, threads: int, tol: float, samples: int) -> dict:
    from landscape_and_curvature import PeakRSS

    torch, model, X, y = load(kind, path, threads)
    X, y = X[:samples], y[:samples]
    from analysis import curvature

    with PeakRSS() as mem:
        t0 = time.perf_counter()
        op = curvature.HessianOperator(model, scoring(kind).get("loss_fn"), (X, y))
        res = curvature.lanczos(op, 5, tol=tol, seed=0, max_iters=400)
        wall = time.perf_counter() - t0
    return {"eigenvalues": res.eigenvalues.tolist(), "num_matvecs": res.num_matvecs, "seconds": wall, "rss": mem.increase}


def task_eigen_pyhessian(kind: str, path: str, threads: int, samples: int) -> dict:
    from landscape_and_curvature import PeakRSS, counted_pyhessian

    torch, model, X, y = load(kind, path, threads)
    X, y = X[:samples], y[:samples]
    ph, count = counted_pyhessian()
    torch.manual_seed(0)
    criterion = next_token_loss if kind == "gpt2" else torch.nn.CrossEntropyLoss()
    with PeakRSS() as mem:
        t0 = time.perf_counter()
        h = ph.hessian(model, criterion, data=(X, y), cuda=False)
        eigenvalues, _ = h.eigenvalues(top_n=5)
        wall = time.perf_counter() - t0
    return {"eigenvalues": sorted((float(e) for e in eigenvalues), reverse=True), "num_matvecs": count[0], "seconds": wall,
            "rss": mem.increase}


# --------------------------------------------------------------------------- report (parent)


def _fastest(runs: list[dict]) -> dict:
    return min(runs, key=lambda r: r["seconds"])


def part_planes(run_isolated, paths: dict, resolutions: dict, cores: int, repeats: int = 1, device: str = "cpu") -> list[dict]:
    """Each row alternates ours and the peer ``repeats`` times and keeps each side's fastest run
    (on a shared machine the slow runs are other work's, not the code's).  On a GPU (``device="cuda"``)
    there is one setting: both sides on the device, ours batching points (``analysis.evaluators``)."""
    rows = []
    print(f"\n## (e) planes across architectures: points/s, Terrain / loss-landscapes random_plane (fastest of {repeats})")
    print(f"{'model':8s}{'setting':>10s}{'res':>5s}{'terrain pts/s':>15s}{'peer pts/s':>12s}{'ratio':>7s}"
          f"{'GEMM frac':>11s}{'peer frac':>11s}{'RSS MB':>9s}{'peer MB':>9s}{'coarse/job':>12s}  evaluator")
    for kind in [k for k in MODELS if k in resolutions]:
        res = resolutions[kind]
        settings = (("default", 1, cores), ("1 thread", 1, None)) if device == "cpu" else ((device, cores, None),)
        for setting, torch_threads, point_threads in settings:
            peer_threads = 1 if setting == "1 thread" else cores
            rate = run_isolated(task_flops_and_gemm, kind, paths[kind], peer_threads, device)
            ours_runs, peer_runs = [], []
            for _ in range(repeats):
                ours_runs.append(run_isolated(task_plane_ours, kind, paths[kind], res, torch_threads, point_threads, device))
                peer_runs.append(run_isolated(task_plane_peer, kind, paths[kind], res, peer_threads, device))
            ours, peer = _fastest(ours_runs), _fastest(peer_runs)
            pps, ppps = ours["points"] / ours["seconds"], peer["points"] / peer["seconds"]
            row = {"model": kind, "setting": setting, "resolution": res, "ours_pps": pps, "peer_pps": ppps, "ratio": pps / ppps,
                   "gemm_fraction": pps * rate["flops"] / rate["gemm"], "peer_gemm_fraction": ppps * rate["flops"] / rate["gemm"],
                   "rss": ours["rss"], "peer_rss": peer["rss"], "coarse_fraction": ours["coarse"] / ours["total"],
                   "evaluator": f"{ours['evaluator']} x{ours['point_threads']}"}
            rows.append(row)
            print(f"{kind:8s}{setting:>10s}{res:5d}{pps:15.1f}{ppps:12.1f}{row['ratio']:6.2f}x{row['gemm_fraction']:11.3f}"
                  f"{row['peer_gemm_fraction']:11.3f}{row['rss']:9.1f}{row['peer_rss']:9.1f}{row['coarse_fraction']:12.1%}"
                  f"  {row['evaluator']}", flush=True)
    print("GEMM frac: points/s x forward FLOPs (torch FlopCounterMode) / dense GEMM FLOP/s at the row's thread count;"
          " Terrain's can exceed the peer's because it skips the first layer's FLOPs.")
    return rows


def part_coarse(run_isolated, paths: dict, cores: int, resolution: int = FORM_DEFAULT_RESOLUTION) -> list[dict]:
    """Time to the first full coarse surface as a share of the plane, at the resolution a user gets by
    default and the worker's default threads (Terrain only: the peer has no coarse stage)."""
    rows = []
    print(f"\n## (g) time to the first full coarse surface, {resolution}x{resolution} (the job form's default), worker default threads")
    print(f"{'model':8s}{'coarse s':>10s}{'plane s':>10s}{'coarse/job':>12s}{'pts/s':>8s}  evaluator")
    for kind in MODELS:
        ours = run_isolated(task_plane_ours, kind, paths[kind], resolution, 1, cores)
        row = {"model": kind, "resolution": resolution, "coarse": ours["coarse"], "total": ours["total"],
               "coarse_fraction": ours["coarse"] / ours["total"], "pps": ours["points"] / ours["seconds"]}
        rows.append(row)
        print(f"{kind:8s}{row['coarse']:10.2f}{row['total']:10.1f}{row['coarse_fraction']:12.1%}{row['pps']:8.1f}"
              f"  {ours['evaluator']} x{ours['point_threads']}", flush=True)
    return rows


def part_eigen(run_isolated, paths: dict, threads: int, samples: int) -> list[dict]:
    import numpy as np

    rows = []
    print(f"\n## (f) top-5 Hessian eigenvalues to 1e-3 relative on the first {samples} samples: Hessian-vector products, "
          "Terrain / PyHessian")
    for kind in ("cnn", "gpt2"):
        ref = run_isolated(task_eigen_ours, kind, paths[kind], threads, 1e-9, samples)
        ours = run_isolated(task_eigen_ours, kind, paths[kind], threads, 1e-3, samples)
        peer = run_isolated(task_eigen_pyhessian, kind, paths[kind], threads, samples)
        r = np.array(ref["eigenvalues"])
        err = lambda e: float(np.max(np.abs(np.array(e) - r) / np.abs(r)))  # noqa: E731
        row = {"model": kind, "ours_hvp": ours["num_matvecs"], "peer_hvp": peer["num_matvecs"],
               "ratio": ours["num_matvecs"] / peer["num_matvecs"], "ours_err": err(ours["eigenvalues"]),
               "peer_err": err(peer["eigenvalues"]), "ours_s": ours["seconds"], "peer_s": peer["seconds"],
               "rss": ours["rss"], "peer_rss": peer["rss"], "reference": r.tolist()}
        rows.append(row)
        print(f"{kind}: reference {np.array2string(r, precision=5)} ({ref['num_matvecs']} products)")
        print(f"  products terrain {row['ours_hvp']} / PyHessian {row['peer_hvp']} = {row['ratio']:.2f}x; "
              f"max rel. error {row['ours_err']:.1e} / {row['peer_err']:.1e}; wall {row['ours_s']:.1f}s / {row['peer_s']:.1f}s; "
              f"RSS {row['rss']:.0f} / {row['peer_rss']:.0f} MB", flush=True)
    return rows
