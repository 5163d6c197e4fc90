"""Precision: "auto" resolves to a real choice, and bf16 autocast trains and scores sanely (no timing here)."""

import numpy as np
import pytest
import torch

from eesr_lib.errors import EESRError
from eesr_lib.model import EESR, ModelConfig
from eesr_lib.train import PRECISIONS, TrainConfig, predict_utterances, resolved_precision, train_step


def test_auto_is_the_default_and_resolves_to_fp32_or_bf16():
    assert TrainConfig().precision == "auto"
    assert set(PRECISIONS) == {"auto", "fp32", "bf16"}
    assert resolved_precision(TrainConfig(), "cpu") in ("fp32", "bf16")
    assert resolved_precision(TrainConfig(precision="fp32"), "cpu") == "fp32"
    assert resolved_precision(TrainConfig(precision="bf16"), torch.device("cpu")) == "bf16"
    with pytest.raises(EESRError):
        TrainConfig(precision="fp16")


def test_fp32_flag_of_the_cli_forces_fp32(cli_run_kwargs):
    seen = cli_run_kwargs(["--fp32", "--set", "lam=0.5"])
    assert seen["overrides"] == {"lam": 0.5, "precision": "fp32"}


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return EESR(ModelConfig())


def test_bf16_train_step_gives_finite_losses(model):
    cfg = TrainConfig(precision="bf16", batch_size=2)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(2, 513, 128, generator=gen)
    y = torch.tensor([0, 3])
    is10 = torch.randn(2, 1582, generator=gen)
    before = model.encoder.conv2.weight.detach().clone()
    l_ae, l_ec, correct = train_step(model.train(), opt, x, y, is10, cfg, torch.device("cpu"))
    assert np.isfinite(l_ae) and np.isfinite(l_ec) and 0 <= correct <= 2
    assert model.encoder.conv2.weight.dtype == torch.float32  # autocast: the master weights stay fp32
    assert not torch.equal(before, model.encoder.conv2.weight)


def test_bf16_predict_utterances_gives_probabilities(model):
    rng = np.random.default_rng(0)
    specs = [rng.random((513, t), dtype=np.float32) for t in (99, 128, 300)]
    is10 = rng.standard_normal((3, 1582)).astype(np.float32)
    scores, deep = predict_utterances(model, specs, is10, TrainConfig(precision="bf16"))
    assert scores.shape == (3, 7) and deep.shape == (3, 512)
    assert scores.dtype == np.float32 and np.isfinite(scores).all() and np.isfinite(deep).all()
    np.testing.assert_allclose(scores.sum(1), 1.0, atol=1e-5)
