"""A real training script using the Terrain client (run by test_client_script.py in a subprocess).

Trains a tiny Terrain MLP on digits, logs metrics and a checkpoint at each of 20
steps, asks for the PCA plane of its trajectory, follows it with the progress
bar and saves the arrays it receives. Prints one JSON line of what happened.
"""

import json
import sys
import time

import numpy as np
import torch

import terrain
from analysis import data, zoo

out_path, steps, pause = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
spec = {"kind": "mlp", "in": 64, "hidden": [16], "out": 10}
torch.manual_seed(0)
model = zoo.build(spec)
X, y = data.load("digits", "train")
optimizer = torch.optim.SGD(model.parameters(), lr=0.5)

terrain.init()  # TERRAIN_URL and TERRAIN_TOKEN from the environment
run = terrain.Run(experiment="Client script", name="tiny mlp", config={"lr": 0.5, "spec": spec}, verbose=True)
logging_seconds = []
for step in range(steps):
    batch = torch.randint(0, len(X), (128,), generator=torch.Generator().manual_seed(step))
    loss = torch.nn.functional.cross_entropy(model(X[batch]), y[batch])
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    started = time.perf_counter()
    run.log(step=step, loss=loss.item(), lr=0.5)
    run.log_checkpoint(model, step=step, spec=spec)
    logging_seconds.append(time.perf_counter() - started)
    print(f"step {step}", flush=True)
    time.sleep(pause)

started = time.perf_counter()
job = run.landscape(resolution=9, eval_size=200, visibility="unlisted")
flushed_and_submitted = time.perf_counter() - started
job.wait()
waited = time.perf_counter() - started - flushed_and_submitted
result = job.result()
# Logged after the plane and never finished by hand: the client flushes it at exit.
run.log(step=steps, plane_min=float(np.nanmin(result["loss"])))
np.savez(out_path, a=result["a"], b=result["b"], loss=result["loss"], trajectory=result["trajectory"],
         trajectory_steps=result["trajectory_steps"])
print(json.dumps({"job": job.slug, "url": job.url, "run": run.slug, "retries": run.retries,
                  "event_kinds": sorted({e["kind"] for e in job.events}),
                  "loss_shape": list(result["loss"].shape),
                  "max_logging_ms": 1e3 * max(logging_seconds), "flush_and_submit_s": flushed_and_submitted, "wait_s": waited}), flush=True)
