"""Folds trained as one stacked model (eesr_lib.batched) come out as folds trained one at a time."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
import torch.nn as nn
from torch.func import functional_call, stack_module_state, vmap

from eesr_lib.batched import FoldData, PlainAttention, StepGRU, _adam_rows, train_folds, vmappable_twin
from eesr_lib.errors import EESRError
from eesr_lib.graphed import WARMUP_STEPS, RerunGraphs
from eesr_lib.model import EESR, ModelConfig
from eesr_lib.train import TrainConfig, joint_loss, train_fold

# No dropout: the one random stream the stacked step does not share with train_fold (see eesr_lib.batched).
# 64 frames, i.e. 8 latent frames: instance norm over fewer frames amplifies float rounding too much to compare.
TINY = ModelConfig(n_classes=3, n_bins=17, crop_frames=64, is10_dim=6, dropout=0.0, classifier_dropout=0.0)
CFG = TrainConfig(epochs=2, batch_size=4, precision="fp32")


@pytest.fixture(autouse=True)
def float64():
    """In float32 the tiny model's instance norms (8 latent frames) amplify rounding until folds trained the
    two ways differ by percents after a few Adam steps; in float64 the two ways agree to ~1e-12, which is
    what shows that they compute the same thing."""
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(torch.float32)


def _folds(sizes=(6, 3, 7), seed0=3) -> list[FoldData]:
    """Folds of different sizes, so that their last batches differ in size and in number."""
    rng = np.random.default_rng(0)
    out = []
    for k, n in enumerate(sizes):
        specs = [rng.normal(size=(17, int(rng.integers(40, 100)))) for _ in range(n)]
        is10 = rng.normal(size=(n, 6))
        out.append(FoldData(specs, is10, np.arange(n) % 3, seed0 + k))
    return out


def _one_at_a_time(model_cfg, cfg, folds):
    return [train_fold(model_cfg, cfg, f.specs, f.is10, f.y, seed=f.seed, progress=False) for f in folds]


def _assert_same(stacked, separate):
    """Same steps, crops and weights (float64, so to ~1e-12: see the fixture); the same losses to fp32 rounding
    (:func:`eesr_lib.train.joint_loss` computes them in fp32)."""
    for (m_b, h_b), (m_s, h_s) in zip(stacked, separate):
        assert [h["steps"] for h in h_b] == [h["steps"] for h in h_s]
        assert [h["crops_seen"] for h in h_b] == [h["crops_seen"] for h in h_s]
        for key in ("loss_ae", "loss_ec", "train_crop_acc"):
            np.testing.assert_allclose([h[key] for h in h_b], [h[key] for h in h_s], rtol=1e-6)  # losses: fp32
        sd_s = m_s.state_dict()
        for name, value in m_b.state_dict().items():
            torch.testing.assert_close(value, sd_s[name], rtol=1e-8, atol=1e-10, msg=name)


def test_one_stacked_step_has_each_folds_gradient():
    """The stacked step's gradient for fold f is the gradient of fold f's own model (to float rounding)."""
    models = []
    for seed in range(3):
        torch.manual_seed(seed)
        models.append(EESR(TINY))
    params, buffers = stack_module_state(models)
    twin = vmappable_twin(models[0])
    torch.manual_seed(5)
    x, y, is10 = torch.randn(3, 4, 17, 64), torch.randint(0, 3, (3, 4)), torch.randn(3, 4, 6)

    def loss(p, b, x, y, is10):
        recon, logits, _ = functional_call(twin, (p, b), (x, y, is10))
        return joint_loss(recon, x, logits, y, 1.0)[0]

    vmap(loss, randomness="different")(params, buffers, x, y, is10).sum().backward()
    for f, model in enumerate(models):
        recon, logits, _ = model(x[f], y[f], is10[f])
        joint_loss(recon, x[f], logits, y[f], 1.0)[0].backward()
        for name, p in model.named_parameters():
            torch.testing.assert_close(params[name].grad[f], p.grad, rtol=1e-8, atol=1e-12, msg=name)


def test_stacked_adam_is_torch_adam_fold_by_fold():
    """Folds that sit out a step keep their weights, moments and step count (the bias corrections)."""
    cfg = TrainConfig(weight_decay=1e-2)
    torch.manual_seed(0)
    start = torch.randn(3, 5, 4)
    alone = [nn.Parameter(start[f].clone()) for f in range(3)]
    opts = [torch.optim.Adam([p], lr=1e-3, weight_decay=cfg.weight_decay) for p in alone]
    stacked = {"w": start.clone().requires_grad_()}
    state = {"m": {"w": torch.zeros_like(start)}, "v": {"w": torch.zeros_like(start)}}
    state["step"] = torch.zeros(3, dtype=torch.float64)
    for it in range(5):
        grad = torch.randn(3, 5, 4) * 10.0**-it
        rows = [0, 1, 2] if it % 2 == 0 else [1]
        for f in rows:
            alone[f].grad = grad[f].clone()
            opts[f].step()
        _adam_rows(stacked, {"w": grad}, state, torch.tensor(rows), cfg, 1e-3)
    for f in range(3):
        torch.testing.assert_close(stacked["w"][f].detach(), alone[f].detach(), rtol=1e-6, atol=1e-8)


def test_step_gru_is_torch_gru():
    torch.manual_seed(0)
    gru = nn.GRU(8, 5, batch_first=True, bidirectional=True)
    step = StepGRU(gru)
    x = torch.randn(3, 7, 8)
    torch.testing.assert_close(step(x)[0], gru(x)[0], rtol=1e-5, atol=1e-6)
    step(x)[0].square().sum().backward()
    gru(x)[0].square().sum().backward()
    for name, p in gru.named_parameters():
        torch.testing.assert_close(getattr(step, name).grad, p.grad, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("heads", [1, 4])
def test_plain_attention_is_multihead_attention(heads):
    torch.manual_seed(0)
    mha = nn.MultiheadAttention(16, heads, batch_first=True)
    x = torch.randn(2, 5, 16)
    torch.testing.assert_close(PlainAttention(mha)(x, x, x)[0], mha(x, x, x, need_weights=False)[0])


def test_stand_ins_refuse_what_they_do_not_cover():
    with pytest.raises(EESRError, match="bidirectional"):
        StepGRU(nn.GRU(4, 3, batch_first=True))
    with pytest.raises(EESRError, match="dropout"):
        PlainAttention(nn.MultiheadAttention(8, 1, dropout=0.1, batch_first=True))


@pytest.mark.parametrize("vectorize", [True, False])
def test_stacked_folds_train_as_one_at_a_time(vectorize):
    """Instance norm with IS10 (the proposed row): three folds of 6, 3 and 7 utterances in batches of 4, so
    that the folds' batches differ in size and in number (the stacked steps split and skip)."""
    folds = _folds()
    stacked = train_folds(TINY, CFG, folds, progress=False, vectorize=vectorize)
    _assert_same(stacked, _one_at_a_time(TINY, CFG, folds))
    assert all(h["vectorized"] is vectorize for _, hist in stacked for h in hist)


class CountingRerun(RerunGraphs):
    """The CPU stand-in for a CUDA graph, counting captures and replays."""

    def __init__(self):
        self.captures = self.replays = 0

    def capture(self, body):
        self.captures += 1

        def replay():
            self.replays += 1
            body()

        return replay


def test_the_graphed_stacked_step_is_the_vmapped_step_dropout_included():
    """The folds' vmapped step replayed from a graph (here its CPU stand-in, which reruns the recorded step
    from the fixed tensors) trains exactly as the eager vmapped step: two folds of 10 utterances in batches of
    4, 4 and 2 over 3 epochs: 6 full batches (3 warm-ups, 3 replays) and 3 of 2 (eager)."""
    model_cfg = dataclasses.replace(TINY, dropout=0.5, classifier_dropout=0.5)
    cfg = dataclasses.replace(CFG, epochs=3)
    folds = _folds(sizes=(10, 10))
    torch.manual_seed(7)
    eager = train_folds(model_cfg, cfg, folds, progress=False, vectorize=True)
    backend = CountingRerun()
    torch.manual_seed(7)
    graphed = train_folds(
        model_cfg, cfg, folds, progress=False, vectorize=True, cuda_graphs=True, graph_backend=backend
    )
    assert (backend.captures, backend.replays) == (1, 6 - WARMUP_STEPS)
    for (m_g, h_g), (m_e, h_e) in zip(graphed, eager):
        assert all(h.pop("cuda_graphs") for h in h_g)
        assert [{k: v for k, v in h.items() if k != "seconds"} for h in h_g] == [
            {k: v for k, v in h.items() if k != "seconds"} for h in h_e
        ]
        for name, value in m_g.state_dict().items():
            assert torch.equal(value, m_e.state_dict()[name]), name
    with pytest.raises(EESRError, match="vectorize=True"):
        train_folds(model_cfg, cfg, folds, progress=False, vectorize=False, cuda_graphs=True)


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_folds_in_turn_are_train_folds_bit_for_bit_dropout_included(precision):
    """Not vectorized (the CPU's way), each fold keeps its own global random stream: with dropout and batch
    norm, in float32 or under bf16 autocast, the folds come out exactly as train_fold trains them."""
    torch.set_default_dtype(torch.float32)
    model_cfg = dataclasses.replace(TINY, dropout=0.5, classifier_dropout=0.5, norm="batch")
    cfg = dataclasses.replace(CFG, precision=precision)
    folds = [
        f._replace(specs=[a.astype(np.float32) for a in f.specs], is10=f.is10.astype(np.float32)) for f in _folds()
    ]
    stacked = train_folds(model_cfg, cfg, folds, progress=False, vectorize=False)
    untimed = {"seconds", "batched_folds", "vectorized"}
    for (m_b, h_b), (m_s, h_s) in zip(stacked, _one_at_a_time(model_cfg, cfg, folds)):
        assert [{k: v for k, v in h.items() if k not in untimed} for h in h_b] == [
            {k: v for k, v in h.items() if k not in untimed} for h in h_s
        ]
        for name, value in m_b.state_dict().items():
            assert torch.equal(value, m_s.state_dict()[name]), name


@pytest.mark.parametrize(
    "model_over, train_over",
    [
        ({"norm": "batch", "use_is10": False}, {}),  # the BN deep-only row: running statistics stay per fold
        ({"aux_head": True}, {"aux_loss": 1.0, "is10_dropout": 0.5, "weight_decay": 1e-3}),  # departures, L2
        ({"emotion_embedding": False}, {"two_stage_epochs": 1, "crop_set": "fixed", "crops_per_epoch": 2}),
    ],
)
def test_stacked_folds_train_as_one_at_a_time_in_every_row(model_over, train_over):
    model_cfg = dataclasses.replace(TINY, **model_over)
    cfg = dataclasses.replace(CFG, **train_over)
    folds = _folds(sizes=(5, 3))
    _assert_same(
        train_folds(model_cfg, cfg, folds, progress=False, vectorize=True), _one_at_a_time(model_cfg, cfg, folds)
    )


def test_callbacks_see_each_fold_and_records_say_batched():
    folds = _folds(sizes=(4, 3))
    seen = []
    on_epoch = [lambda e, m, f=f: seen.append((f, e, m.training)) or {"mark": f} for f in range(2)]
    out = train_folds(TINY, CFG, folds, progress=False, on_epoch=on_epoch)
    assert sorted((f, e) for f, e, _ in seen) == [(0, 1), (0, 2), (1, 1), (1, 2)]
    assert [h["mark"] for h in out[1][1]] == [1, 1]
    assert all(h["batched_folds"] == 2 for _, hist in out for h in hist)


@pytest.mark.parametrize("vectorize", [True, False])
def test_a_stacked_run_resumes_from_its_checkpoint(tmp_path, vectorize):
    folds = _folds(sizes=(5, 3))
    ckpt = tmp_path / "stacked.ckpt.pt"
    kw = {"progress": False, "vectorize": vectorize}
    train_folds(TINY, dataclasses.replace(CFG, epochs=1), folds, checkpoint=ckpt, checkpoint_every_s=0, **kw)
    assert torch.load(ckpt, weights_only=False)["epoch"] == 1
    resumed = train_folds(TINY, CFG, folds, checkpoint=ckpt, checkpoint_every_s=0, **kw)
    _assert_same(resumed, train_folds(TINY, CFG, folds, **kw))
    with pytest.raises(EESRError, match="other folds"):
        train_folds(TINY, CFG, _folds(sizes=(5, 4)), progress=False, checkpoint=ckpt)


def test_the_cli_passes_stack_folds_on(cli_run_kwargs):
    assert cli_run_kwargs(["--stack-folds", "5"])["stack_folds"] == 5


def test_stack_folds_below_one_is_refused(mini, tmp_path):
    from eesr_lib import runner

    with pytest.raises(EESRError, match="stack_folds"):
        runner.run("emodb_mini", "kfold5", "ae+ee+in", corpus=mini, results_dir=tmp_path, stack_folds=0)
