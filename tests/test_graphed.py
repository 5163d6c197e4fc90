"""The CUDA-graph path's bookkeeping, on the CPU: a "replay" that reruns the recorded step from the static
tensors must give the eager step's numbers bit for bit (so the batch really goes through the static inputs,
odd-sized batches run eagerly, outputs are copies). The capture itself needs a GPU (benchmarks/run_gpu.py)."""

import functools

import numpy as np
import pytest
import torch

from eesr_lib import runner
from eesr_lib.errors import EESRError
from eesr_lib.graphed import (
    WARMUP_STEPS,
    RerunGraphs,
    capturable_adam,
    check_device,
    graphed_scorer,
    graphed_train_step,
    make_capturable,
)
from eesr_lib.model import EESR, ModelConfig
from eesr_lib.train import TrainConfig, epoch_lr, predict_utterances, set_epoch_lr, step_stats, train_fold

CPU = torch.device("cpu")
CFG = TrainConfig(batch_size=4, eval_batch_size=6, precision="fp32")


def _model() -> EESR:
    torch.manual_seed(0)
    return EESR(ModelConfig(n_classes=7))


def _batches(sizes: list[int]) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(3)
    return [
        (
            torch.rand(n, 513, 128, generator=g),
            torch.randint(0, 7, (n,), generator=g),
            torch.randn(n, 1582, generator=g),
        )
        for n in sizes
    ]


def test_replayed_steps_are_the_eager_steps():
    batches = _batches([4, 4, 4, 4, 3, 4, 4])  # warm-up, capture, an odd batch, replays
    eager, graphed = _model().train(), _model().train()
    opt_e = torch.optim.Adam(eager.parameters(), lr=CFG.lr)
    opt_g = torch.optim.Adam(graphed.parameters(), lr=CFG.lr)
    step = graphed_train_step(graphed, opt_g, CFG, CPU, backend=RerunGraphs())
    torch.manual_seed(1)  # the dropout stream: both paths draw from it in the same order
    want = [step_stats(eager, opt_e, *b, CFG, CPU) for b in batches]
    torch.manual_seed(1)
    got = [step(*b) for b in batches]
    assert (step.warmups, step.eager_calls, step.replays) == (WARMUP_STEPS, 1, 3)
    for w, g in zip(want, got):
        assert torch.equal(w, g)
    assert len({tuple(g.tolist()) for g in got}) == len(got)  # each step's own statistics, not the last one's
    for p, q in zip(eager.parameters(), graphed.parameters()):
        assert torch.equal(p, q)


def test_graphed_scoring_is_the_eager_scoring():
    model = _model().eval()
    rng = np.random.default_rng(0)
    specs = [rng.random((513, n), dtype=np.float32) for n in (900, 1200, 700, 400, 130)]
    is10 = rng.standard_normal((5, 1582)).astype(np.float32)
    want = predict_utterances(model, specs, is10, CFG, CPU)
    scorer = graphed_scorer(model, CFG, CPU, backend=RerunGraphs())
    got = predict_utterances(model, specs, is10, CFG, CPU, scorer=scorer)
    assert scorer.replays > 0 and scorer.warmups == WARMUP_STEPS and scorer.eager_calls > 0
    for w, g in zip(want, got):
        np.testing.assert_array_equal(w, g)


def test_train_fold_with_graphs_records_the_eager_run():
    rng = np.random.default_rng(1)
    specs = [rng.random((513, int(n)), dtype=np.float32) for n in rng.integers(130, 300, 10)]
    is10 = rng.standard_normal((10, 1582)).astype(np.float32)
    y = np.arange(10) % 7
    cfg = TrainConfig(epochs=3, batch_size=4, precision="fp32")  # batches of 4, 4, 2: replays and odd ones
    args = (ModelConfig(n_classes=7), cfg, specs, is10, y)
    _, want = train_fold(*args, progress=False)
    model, got = train_fold(*args, progress=False, cuda_graphs=True, graph_backend=RerunGraphs())
    assert all(h.pop("cuda_graphs") for h in got)
    for h in want + got:
        h.pop("seconds")
    assert got == want


def test_graphs_refuse_a_cpu_with_a_clear_error():
    with pytest.raises(EESRError, match="CUDA graphs need a CUDA device"):
        check_device(CPU)
    with pytest.raises(EESRError, match="CUDA graphs need a CUDA device"):
        graphed_train_step(_model(), None, CFG, CPU)
    with pytest.raises(EESRError, match="CUDA graphs need a CUDA device"):
        train_fold(
            ModelConfig(n_classes=7), CFG, [np.zeros((513, 140), np.float32)] * 2, None, np.zeros(2), cuda_graphs=True
        )


def test_a_tensor_learning_rate_is_set_in_place():
    cfg = TrainConfig(epochs=10, lr_schedule="cosine")
    opt = capturable_adam(_model(), cfg, CPU)
    lr = opt.param_groups[0]["lr"]
    set_epoch_lr(opt, cfg, 5)
    assert opt.param_groups[0]["lr"] is lr  # the graph keeps reading this tensor
    assert lr.item() == pytest.approx(epoch_lr(cfg, 5)) and epoch_lr(cfg, 5) < cfg.lr


def test_a_resumed_optimizer_is_made_capturable_again():
    model = _model().train()
    eager = torch.optim.Adam(model.parameters(), lr=CFG.lr)
    step_stats(model, eager, *_batches([4])[0], CFG, CPU)
    opt = capturable_adam(model, CFG, CPU)
    opt.load_state_dict(eager.state_dict())  # an eager run's checkpoint: capturable off, lr a float
    assert not opt.param_groups[0]["capturable"]
    make_capturable(opt, CPU)
    assert opt.param_groups[0]["capturable"] and torch.is_tensor(opt.param_groups[0]["lr"])
    steps = [s["step"] for s in opt.state.values()]
    assert steps and all(s.dtype == torch.float32 and s.item() == 1 for s in steps)


def test_the_runner_graphs_a_gpu_fold_alone_and_refuses_what_cannot_be_graphed(cli_run_kwargs):
    cuda = torch.device("cuda")  # a device object only: nothing runs on it
    graphs = runner.use_cuda_graphs
    assert graphs(None, cuda) and not graphs(None, CPU)
    assert not graphs(None, cuda, stack_folds=5) and not graphs(False, cuda)
    with pytest.raises(EESRError, match="need a CUDA device"):
        graphs(True, CPU)
    with pytest.raises(EESRError, match="stacked folds"):
        graphs(True, cuda, stack_folds=5)
    assert cli_run_kwargs([])["cuda_graphs"] is None
    assert cli_run_kwargs(["--no-cuda-graphs"])["cuda_graphs"] is False


def test_a_runner_fold_asked_for_graphs_trains_through_them_and_says_so(mini, tmp_path, monkeypatch):
    """The runner's choice reaches the trainer: with the CPU stand-in for a CUDA graph, the fold's
    history records the graphed steps, and its numbers are the eager fold's."""

    def run(folder):
        return runner.run(
            "emodb_mini", "kfold5", "ae-os", corpus=mini, results_dir=folder, progress=False,
            folds_to_run=[0], epochs=2, overrides={"batch_size": 4, "precision": "fp32"},
        )[0]  # fmt: skip

    eager = run(tmp_path / "eager")
    monkeypatch.setattr(runner, "use_cuda_graphs", lambda *a, **k: True)
    monkeypatch.setattr(runner, "train_fold", functools.partial(train_fold, graph_backend=RerunGraphs()))
    graphed = run(tmp_path / "graphed")
    assert all(h.pop("cuda_graphs") for h in graphed["history"])
    for h in eager["history"] + graphed["history"]:
        h.pop("seconds")
    assert graphed["history"] == eager["history"]
    assert graphed["predictions"] == eager["predictions"]
