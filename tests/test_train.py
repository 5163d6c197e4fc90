"""The joint-loss training loop on real EMODB crops: it learns, it is reproducible, it resumes."""

import numpy as np
import pytest
import torch

from eesr_lib.crops import CropBank
from eesr_lib.errors import EESRError
from eesr_lib.features import corpus_features
from eesr_lib.model import EESR, ModelConfig
from eesr_lib.train import (
    TrainConfig,
    epoch_lr,
    joint_loss,
    predict_utterances,
    recalibrate_batch_norm,
    standardize_is10,
    train_fold,
    train_step,
)


@pytest.fixture(scope="module")
def feats(mini):
    specs, is10 = corpus_features(mini, n_jobs=1, progress=False)
    return specs, standardize_is10(is10)[0], mini.y


def test_a_few_steps_reduce_the_joint_loss(feats):
    specs, is10, y = feats
    idx = torch.arange(8)
    torch.manual_seed(0)
    model = EESR(ModelConfig())
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    bank = CropBank(specs[:8])
    x = bank.random_crops(idx, torch.Generator().manual_seed(0))
    yt, it = torch.as_tensor(y[:8]), torch.as_tensor(is10[:8])
    cfg = TrainConfig(precision="fp32")

    def loss():
        model.eval()
        with torch.no_grad():
            recon, logits, _ = model(x, yt, it)
        return joint_loss(recon, x, logits, yt, 1.0)[0].item()

    before = loss()
    model.train()
    for _ in range(6):
        train_step(model, opt, x, yt, it, cfg, torch.device("cpu"))
    assert loss() < 0.9 * before


def _untimed(history):
    """Epoch records without their wall time, the one field two identical runs may differ in."""
    return [{k: v for k, v in h.items() if k != "seconds"} for h in history]


def _short(feats, **kw):
    specs, is10, y = feats
    cfg = TrainConfig(
        epochs=kw.pop("epochs", 1), batch_size=8, precision="fp32", lr_schedule=kw.pop("lr_schedule", "constant")
    )
    return train_fold(ModelConfig(), cfg, specs[:16], is10[:16], y[:16], seed=3, progress=False, **kw)


def test_same_seed_same_result(feats):
    m1, h1 = _short(feats)
    m2, h2 = _short(feats)
    assert _untimed(h1) == _untimed(h2) and all(h["seconds"] > 0 for h in h1)
    specs, is10, _ = feats
    cfg = TrainConfig(precision="fp32")
    s1, d1 = predict_utterances(m1, specs[16:20], is10[16:20], cfg)
    s2, d2 = predict_utterances(m2, specs[16:20], is10[16:20], cfg)
    assert np.array_equal(s1, s2) and np.array_equal(d1, d2)
    assert np.allclose(s1.sum(1), 1, atol=1e-5) and d1.shape == (4, 512)


def test_cosine_schedule_decays_from_the_paper_lr():
    const, cos = TrainConfig(epochs=10), TrainConfig(epochs=10, lr_schedule="cosine")
    assert [epoch_lr(const, e) for e in range(10)] == [1e-4] * 10
    lrs = [epoch_lr(cos, e) for e in range(10)]
    assert lrs[0] == 1e-4 and all(a > b > 0 for a, b in zip(lrs, lrs[1:]))
    with pytest.raises(Exception, match="lr_schedule"):
        TrainConfig(lr_schedule="step")


def _interrupt_after_epoch_1(feats, ckpt, **kw):
    """A 2-epoch training "interrupted" after epoch 1 (the epoch hook raises), leaving ``ckpt``."""

    class Stop(Exception):
        pass

    def stop(epoch, model):
        if epoch == 2:
            raise Stop

    with pytest.raises(Stop):
        _short(feats, epochs=2, checkpoint=ckpt, on_epoch=stop, checkpoint_every_s=0, **kw)


def test_a_fold_checkpoints_at_most_every_so_often_and_after_its_last_epoch(feats, tmp_path):
    ckpt = tmp_path / "fold.ckpt.pt"
    written = []

    def seen(epoch, model):
        written.append(torch.load(ckpt, weights_only=False)["epoch"] if ckpt.exists() else None)

    _short(feats, epochs=3, checkpoint=ckpt, on_epoch=seen, checkpoint_every_s=3600)
    # no write before the hour is up, however many epochs end; the last epoch's is written regardless
    assert written == [None, None, None] and torch.load(ckpt, weights_only=False)["epoch"] == 3
    ckpt.unlink()
    written.clear()
    _short(feats, epochs=3, checkpoint=ckpt, on_epoch=seen, checkpoint_every_s=0)
    assert written == [None, 1, 2]  # every epoch (on_epoch runs before its own epoch is written)


@pytest.mark.parametrize("schedule", ["constant", "cosine"])
def test_interrupted_training_resumes_exactly(feats, tmp_path, schedule):
    straight, h_straight = _short(feats, epochs=2, lr_schedule=schedule)
    ckpt = tmp_path / "fold.ckpt.pt"
    _interrupt_after_epoch_1(feats, ckpt, lr_schedule=schedule)
    assert ckpt.exists()
    resumed, h_resumed = _short(feats, epochs=2, lr_schedule=schedule, checkpoint=ckpt)
    assert _untimed(h_resumed) == _untimed(h_straight)
    for (k, a), b in zip(straight.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), k


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_training_resumes_on_cuda(feats, tmp_path):
    """Loading a checkpoint onto the GPU moves the saved RNG states there too; resuming once raised on it."""
    ckpt = tmp_path / "fold.ckpt.pt"
    _interrupt_after_epoch_1(feats, ckpt, device="cuda")
    first = torch.load(ckpt, weights_only=False)["history"]
    _, history = _short(feats, epochs=2, checkpoint=ckpt, device="cuda")
    assert [h["epoch"] for h in history] == [1, 2] and history[0] == first[0]


def test_windows_cover_each_test_utterance_once(feats):
    specs, is10, _ = feats
    model = EESR(ModelConfig()).eval()
    scores, deep = predict_utterances(model, specs[:3], is10[:3], TrainConfig(window_hop=32, precision="fp32"))
    assert scores.shape == (3, 7) and np.isfinite(deep).all()
    # averaging is per utterance: scoring one utterance alone gives the same numbers
    alone, _ = predict_utterances(model, specs[1:2], is10[1:2], TrainConfig(window_hop=32, precision="fp32"))
    assert np.allclose(alone[0], scores[1], atol=1e-5)


def test_batch_norm_recalibration_gives_eval_mode_the_batch_statistics(feats):
    """Utterances of exactly 128 frames have one crop, so every recalibration pass sees the same
    batch: afterwards eval mode must reproduce what BN computes from that batch (dropout off),
    up to the unbiased-variance factor. With the untouched running averages it does not."""
    specs, _, _ = feats
    crops = [s[:, :128] for s in specs[:6]]
    bank = CropBank(crops)
    torch.manual_seed(0)
    model = EESR(ModelConfig(norm="batch", use_is10=False))
    x = bank.gather(torch.arange(6), torch.zeros(6, dtype=torch.long))
    model.eval()
    bns = [m for m in model.encoder.modules() if isinstance(m, torch.nn.BatchNorm1d)]
    for m in bns:
        m.train()  # dropout off, BN from the batch: the target
    with torch.no_grad():
        target = model.encoder(x)
    for m in bns:
        m.reset_running_stats()
        m.momentum = 0.1
    model.eval()
    with torch.no_grad():
        before = model.encoder(x)
    assert not torch.allclose(before, target, rtol=0.05, atol=0.05)

    assert recalibrate_batch_norm(model, bank, TrainConfig(precision="fp32", batch_size=6), 0, torch.device("cpu"))
    assert not model.training and all(m.momentum == 0.1 for m in bns)
    with torch.no_grad():
        after = model.encoder(x)
    torch.testing.assert_close(after, target, rtol=0.05, atol=0.05)
    assert not recalibrate_batch_norm(EESR(ModelConfig()), bank, TrainConfig(), 0, torch.device("cpu"))


def test_train_fold_recalibrates_batch_norm_only_when_asked(feats):
    specs, _, y = feats
    mc = ModelConfig(norm="batch", use_is10=False)
    runs = {
        stats: train_fold(
            mc,
            TrainConfig(epochs=1, batch_size=4, precision="fp32", bn_stats=stats),
            specs[:8],
            None,
            y[:8],
            progress=False,
        )[0]
        for stats in ("running", "recalibrate")
    }
    params = [dict(m.named_parameters()) for m in runs.values()]
    assert all(torch.equal(params[0][k], params[1][k]) for k in params[0])  # the same training
    first_bn = [m.encoder.norms[0].running_var for m in runs.values()]
    assert not torch.allclose(first_bn[0], first_bn[1])  # different test-time statistics


def test_crop_sets_define_what_an_epoch_is(feats):
    """ "fixed" reuses one drawn crop set, "windows" is every window with hop crop_hop; the steps and
    crops each epoch records match crops_per_epoch(), the budget in crops."""
    from eesr_lib.crops import window_starts
    from eesr_lib.train import crops_per_epoch, epoch_crops

    specs = feats[0][:16]
    bank = CropBank(specs)
    lengths = bank.lengths.numpy()
    assert epoch_crops(bank, TrainConfig(), 0) is None  # "random": drawn anew every epoch
    fixed = TrainConfig(crop_set="fixed", crops_per_epoch=3)
    u1, s1 = epoch_crops(bank, fixed, 0)
    u2, s2 = epoch_crops(bank, fixed, 0)
    assert torch.equal(s1, s2) and len(u1) == 48 and (np.bincount(u1.numpy()) == 3).all()
    assert ((s1 >= 0) & (s1 <= bank.lengths[u1] - 128)).all()
    win = TrainConfig(crop_set="windows", crop_hop=32)
    u, s = epoch_crops(bank, win, 0)
    assert len(u) == sum(len(window_starts(int(n), 128, 32)) for n in lengths) == crops_per_epoch(lengths, win)
    assert crops_per_epoch(lengths, fixed) == 48
    for cfg in (fixed, win):
        short = replace_cfg(cfg, epochs=2)
        _, hist = train_fold(ModelConfig(), short, specs, feats[1][:16], feats[2][:16], progress=False)
        n = crops_per_epoch(lengths, cfg) - (crops_per_epoch(lengths, cfg) % 8 == 1)  # a batch of one is skipped
        assert [h["crops_seen"] for h in hist] == [n, 2 * n]
        assert hist[1]["steps"] == 2 * hist[0]["steps"] > 0
    with pytest.raises(EESRError, match="crop_set"):
        TrainConfig(crop_set="all")


def replace_cfg(cfg, **kw):
    from dataclasses import replace

    return replace(cfg, batch_size=8, precision="fp32", **kw)


def test_is10_departures_zero_is10_when_asked_and_leave_the_default_alone():
    from eesr_lib.train import is10_for_step

    is10 = torch.ones(1000, 5)
    gen = torch.Generator().manual_seed(0)
    state = gen.get_state()
    assert is10_for_step(is10, TrainConfig(), 0, gen) is is10
    assert torch.equal(gen.get_state(), state)  # the paper's recipe draws nothing extra
    two = TrainConfig(two_stage_epochs=3)
    assert is10_for_step(is10, two, 2, gen).abs().sum() == 0 and is10_for_step(is10, two, 3, gen) is is10
    kept = is10_for_step(is10, TrainConfig(is10_dropout=0.3), 0, gen)[:, 0]
    assert set(kept.tolist()) == {0.0, 1.0} and 0.25 < 1 - kept.mean() < 0.35
    for bad in ({"is10_dropout": 1.0}, {"two_stage_epochs": 40}, {"aux_loss": -1}):
        with pytest.raises(EESRError):
            TrainConfig(**bad)


def test_aux_loss_trains_a_deep_only_head_that_the_paper_recipe_lacks(feats):
    from eesr_lib.runner import configs

    m_cfg, t_cfg = configs("ae+ee+in", 7, {"aux_loss": 0.5, "precision": "fp32", "batch_size": 8, "epochs": 1})
    assert m_cfg.aux_head and configs("ae+ee+in", 7)[0].aux_head is False
    specs, is10, y = feats
    torch.manual_seed(0)
    model = EESR(m_cfg)
    before = model.classifier.aux.weight.detach().clone()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    idx = torch.arange(8)
    x = CropBank(specs[:8]).random_crops(idx, torch.Generator().manual_seed(0))
    train_step(model, opt, x, torch.as_tensor(y[:8]), torch.as_tensor(is10[:8]), t_cfg, torch.device("cpu"))
    assert not torch.equal(before, model.classifier.aux.weight)  # the auxiliary loss reached its head
    assert EESR(ModelConfig()).classifier.aux is None
