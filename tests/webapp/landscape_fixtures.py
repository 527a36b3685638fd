"""Small real checkpoints in the catalog for landscape tests (trained for a few epochs)."""

from webapp.catalog.services import checkpoint_create_from_file, experiment_create
from webapp.catalog.visibility import Visibility

SPEC = {"kind": "mlp", "in": 64, "hidden": [16], "out": 10}


def trained_checkpoint(owner, tmp_path, *, seed=0, visibility=Visibility.PUBLIC, experiment=None, with_trajectory=True, spec=None):
    from analysis import checkpoints, data, train

    X, y = data.load("digits", "train")
    spec = spec or SPEC
    result = train.train(spec, (X, y), lr=0.1, epochs=3, seed=seed, snapshot_every=10)
    path = tmp_path / f"m{seed}.safetensors"
    checkpoints.save(path, result.model, spec, meta={"dataset": "digits"})
    trajectory = None
    if with_trajectory:
        trajectory = tmp_path / f"t{seed}.safetensors"
        checkpoints.save_trajectory(trajectory, [s for _, s in result.snapshots], [k for k, _ in result.snapshots], spec)
    experiment = experiment or experiment_create(title=f"exp {seed}", owner=owner, visibility=visibility)
    return checkpoint_create_from_file(
        experiment=experiment, name=f"mlp-seed{seed}", path=path, trajectory_path=trajectory, spec=spec,
        dataset="digits", num_parameters=sum(p.numel() for p in result.model.parameters()),
    )
