"""GPU benchmark (issues 4 and 18): throughput, achieved TFLOP/s, CUDA graphs, one full EMODB fold, stacked folds.

    .venv/bin/python benchmarks/run_gpu.py                      # on a CUDA machine (EMODB features cached or computed)
    .venv/bin/python benchmarks/run_gpu.py --peak-tflops 989    # peak dense bf16 TFLOP/s, if not looked up by name
    .venv/bin/python benchmarks/run_gpu.py --device cpu --smoke # a quick logic check without a GPU

The spectrograms stay on the GPU (:class:`eesr_lib.crops.CropBank` on ``cuda``: crops are one
gather, no host transfer per batch). Measured:

- ``train_samples_per_s_fp32`` / ``train_samples_per_s_fast``: ``train_step`` on batches of 32
  random 128-frame crops, fp32 vs the default ``precision="auto"`` (bf16 autocast on a GPU
  with bf16), alternating rounds after warm-up, median of rounds.
- ``flops_per_step``: FLOPs of one training step (forward + backward) counted with
  ``torch.utils.flop_counter.FlopCounterMode``; cuDNN's fused GRU kernels are invisible to
  the counter, so their FLOPs are added analytically when the counter misses them
  (``gru_flops_added``). ``achieved_tflops_fast`` = FLOPs x steps/s; ``mfu_fast`` = that / peak.
- ``fold_minutes_40_epochs``: wall time of ``train_fold`` (40 epochs) on EMODB 5-fold fold 0
  plus ``predict_utterances`` on its test fold, measured, not extrapolated; with its WA/UA.
- ``kfold5_minutes_projected``: 5 x the fold time (the folds have the same size within one utterance).
- CUDA graphs (:mod:`eesr_lib.graphed`, issue 18; skipped with ``--no-graphs``): ``train_samples_per_s_graphed``
  (the whole step replayed from one graph, interleaved with the eager rounds above),
  ``graphs_speedup_vs_eager``, ``mfu_graphed``; ``graphs_loss_*``: the eager and graphed steps from one
  initialization on the same batches, running means of the loss compared (do the curves overlay?);
  ``score_windows_per_s_*``: scoring eager vs :func:`~eesr_lib.graphed.graphed_scorer`; and the full fold
  again with graphs (``*_graphed``). A failure of the graph path is recorded (``graphs_error``) and the rest
  is measured anyway. With ``--device cpu --smoke`` the graph bookkeeping runs with a replay that reruns the
  step (:class:`~eesr_lib.graphed.RerunGraphs`).
- Stacked folds (``eesr run --stack-folds``, :mod:`eesr_lib.batched`; benchmarks/stacked.py):
  ``alone_samples_per_s`` (folds trained one after the other in this one process) against
  ``stacked<F>_samples_per_s`` for each F of ``--stack`` (F folds' weights stacked, one vmapped
  step), their ratio and ``stacked<F>_mfu`` (the step's FLOPs x F folds' steps/s over the peak);
  ``stacked<F>_precision_fp32_samples_per_s`` for the largest F in fp32. Then
  ``kfold5_minutes_stacked``: the five folds of EMODB 5-fold stacked, ``--epochs`` epochs, measured.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch
from stacked import bench_stacked, fold_data  # benchmarks/stacked.py: this script's folder is on sys.path
from torch.utils.flop_counter import FlopCounterMode

from eesr_lib.batched import train_folds
from eesr_lib.corpora import load_corpus
from eesr_lib.crops import CropBank
from eesr_lib.features import corpus_features
from eesr_lib.graphed import WARMUP_STEPS, RerunGraphs, capturable_adam, graphed_scorer, graphed_train_step
from eesr_lib.metrics import classification_metrics
from eesr_lib.model import EESR, ModelConfig
from eesr_lib.protocols import folds
from eesr_lib.train import (
    TrainConfig,
    autocast,
    predict_utterances,
    resolved_precision,
    standardize_is10,
    train_fold,
    train_step,
)

HERE = Path(__file__).resolve().parent

# Dense (no sparsity) bf16 tensor-core peaks in TFLOP/s, from the vendors' data sheets; matched in this order.
PEAK_BF16_TFLOPS = (
    ("H100 PCIe", 756.0),
    ("H100 NVL", 835.0),
    ("H100", 989.0),  # SXM
    ("H200", 989.0),
    ("GH200", 989.0),
    ("B200", 2250.0),
    ("A100", 312.0),
    ("L40S", 362.0),
    ("L4", 121.0),
    ("A10", 125.0),
)


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def lookup_peak(device: torch.device) -> float | None:
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    for key, peak in PEAK_BF16_TFLOPS:
        if key in name:
            return peak
    return None


def bench_backend(device: torch.device) -> RerunGraphs | None:
    """CUDA's graphs on a GPU (None: the default); on a CPU (``--smoke``), the stand-in that reruns the step."""
    return None if device.type == "cuda" else RerunGraphs()


class Stepper:
    """Model + optimizer + a crop stream from a CropBank on ``device``; ``run(n)`` times n training steps.

    ``graphs``: the steps replay a CUDA graph (:func:`eesr_lib.graphed.graphed_train_step`, capturable Adam)
    instead of today's eager ``train_step``; the statistics stay on the GPU instead of being read each step."""

    def __init__(self, cfg: TrainConfig, model_cfg: ModelConfig, bank: CropBank, y, is10, device, seed=0, graphs=False):
        torch.manual_seed(seed)
        self.cfg, self.device = cfg, device
        self.model = EESR(model_cfg).to(device).train()
        if graphs and device.type == "cuda":
            self.opt = capturable_adam(self.model, cfg, device)
        else:
            self.opt = torch.optim.Adam(self.model.parameters(), lr=cfg.lr, betas=(cfg.beta1, cfg.beta2))
        self.graphed = graphed_train_step(self.model, self.opt, cfg, device, bench_backend(device)) if graphs else None
        self.gen = torch.Generator().manual_seed(seed)
        self.bank, self.y, self.is10 = bank, y, is10

    def batch(self):
        idx = torch.randint(0, len(self.bank), (self.cfg.batch_size,), generator=self.gen).to(self.device)
        return self.bank.random_crops(idx, self.gen), self.y[idx], self.is10[idx]

    def step(self):
        """One step; (L_AE, L_EC, #correct) as numbers (eager) or as a tensor still on the GPU (graphed)."""
        if self.graphed is not None:
            return self.graphed(*self.batch())
        return train_step(self.model, self.opt, *self.batch(), self.cfg, self.device)

    def run(self, n: int) -> float:
        sync(self.device)
        t0 = time.perf_counter()
        for _ in range(n):
            self.step()
        sync(self.device)
        return time.perf_counter() - t0


def graph_overlay(cfg: TrainConfig, model_cfg: ModelConfig, bank, y, is10, device, steps: int) -> dict:
    """The same initialization and batches through the eager and the graphed step: do the loss curves overlay?
    They need not agree digit for digit (under bf16 the graph runs autocast without its cast cache, see
    eesr_lib/graphed.py; dropout's draws inside a graph come from the generator's offsets), hence running means."""
    curves = {}
    for graphs in (False, True):
        stepper = Stepper(cfg, model_cfg, bank, y, is10, device, seed=0, graphs=graphs)
        torch.manual_seed(1)
        stats = [stepper.step() for _ in range(steps)]
        curves[graphs] = [float(s[0]) + cfg.lam * float(s[1]) for s in stats]
    eager, graphed = curves[False], curves[True]
    window = max(1, steps // 10)  # single steps are noisy; compare running means over a tenth of the steps
    mean = lambda c, i: statistics.fmean(c[max(0, i - window + 1) : i + 1])  # noqa: E731
    return {
        "graphs_overlay_steps": steps,
        "graphs_loss_first_step_rel_diff": round(abs(graphed[0] - eager[0]) / eager[0], 5),
        "graphs_loss_running_mean_max_rel_diff": round(
            max(abs(mean(graphed, i) - mean(eager, i)) / mean(eager, i) for i in range(steps)), 4
        ),
        "graphs_loss_last_eager": round(mean(eager, steps - 1), 4),
        "graphs_loss_last_graphed": round(mean(graphed, steps - 1), 4),
    }


def scoring_rates(
    model_cfg: ModelConfig, cfg: TrainConfig, bank: CropBank, is10, device, rounds: int, reps: int = 50
) -> dict:
    """Windows scored per second, eager ``model.classify`` against :func:`eesr_lib.graphed.graphed_scorer`."""
    torch.manual_seed(0)
    model = EESR(model_cfg).to(device).eval()
    scorer = graphed_scorer(model, cfg, device, backend=bench_backend(device))
    gen = torch.Generator().manual_seed(0)
    idx = torch.randint(0, len(bank), (cfg.eval_batch_size,), generator=gen).to(device)
    x, rows = bank.random_crops(idx, gen), is10[idx]

    def eager(x, rows):
        with torch.no_grad(), autocast(device, cfg.precision):
            return model.classify(x, rows)

    rates: dict[str, list[float]] = {"eager": [], "graphed": []}
    for fn in (eager, scorer):  # warm-up (and the capture)
        for _ in range(5):
            fn(x, rows)
    for r in range(rounds):
        for name, fn in (
            (("eager", eager), ("graphed", scorer)) if r % 2 == 0 else (("graphed", scorer), ("eager", eager))
        ):
            sync(device)
            t0 = time.perf_counter()
            for _ in range(reps):
                fn(x, rows)
            sync(device)
            rates[name].append(reps * cfg.eval_batch_size / (time.perf_counter() - t0))
    out = {f"score_windows_per_s_{k}": round(statistics.median(v), 1) for k, v in rates.items()}
    out["score_graphs_speedup"] = round(out["score_windows_per_s_graphed"] / out["score_windows_per_s_eager"], 2)
    return out


def gru_training_flops(model: EESR, batch: int, crop_frames: int) -> float:
    """Analytic FLOPs of both GRUs in one training step: 2*3h*(in+h) per token and direction, x3 for backward."""
    total = 0.0
    for gru, steps in ((model.encoder.gru, crop_frames // 8), (model.decoder.gru, crop_frames)):
        dirs = 2 if gru.bidirectional else 1
        total += 3 * batch * steps * dirs * 2 * 3 * gru.hidden_size * (gru.input_size + gru.hidden_size)
    return total


def count_step_flops(stepper: Stepper) -> tuple[float, float]:
    """(FLOPs of one training step as counted, GRU FLOPs added because the counter could not see them)."""
    x, y, is10 = stepper.batch()
    with FlopCounterMode(display=False) as counter:
        train_step(stepper.model, stepper.opt, x, y, is10, stepper.cfg, stepper.device)
    counted = float(counter.get_total_flops())
    gru = stepper.model.encoder.gru
    probe = torch.zeros(2, 4, gru.input_size, device=stepper.device)
    with FlopCounterMode(display=False) as gru_counter:  # does the counter see this device's GRU kernels?
        gru(probe)
    added = (
        0.0
        if gru_counter.get_total_flops() > 0
        else gru_training_flops(stepper.model, stepper.cfg.batch_size, stepper.model.cfg.crop_frames)
    )
    return counted + added, added


def stacked_figures(args, corpus, specs, is10, model_cfg, fast_cfg, device, flops: float, peak) -> dict:
    """Stacked folds against folds one at a time (benchmarks/stacked.py), then all of 5-fold stacked."""
    sizes = [int(n) for n in args.stack.split(",")]
    n_utt = 64 if args.smoke else None
    log(f"stacked folds: {sizes}, {args.stack_epochs} epochs each")
    st = bench_stacked(corpus, specs, is10, model_cfg, fast_cfg, device, sizes, args.stack_epochs, n_utt)
    out = {"alone_samples_per_s": st["alone_samples_per_s"]}
    for n in sizes:
        rate = st[f"stacked{n}_samples_per_s"]
        out[f"stacked{n}_samples_per_s"] = rate
        out[f"stacked{n}_speedup"] = st[f"stacked{n}_speedup"]
        out[f"stacked{n}_mfu"] = round(flops * rate / fast_cfg.batch_size / 1e12 / peak, 4) if peak else None
        if f"stacked{n}_max_memory_gib" in st:
            out[f"stacked{n}_max_memory_gib"] = st[f"stacked{n}_max_memory_gib"]
        log(f"  {n} stacked: {rate:.0f} samples/s ({st[f'stacked{n}_speedup']}x one at a time)")
    out["stacked_loss_total_max_abs_diff"] = st["loss_total_max_abs_diff"]
    cfg32, big = replace(fast_cfg, precision="fp32"), max(sizes)
    fp32 = bench_stacked(corpus, specs, is10, model_cfg, cfg32, device, [big], args.stack_epochs, n_utt, alone=False)
    out[f"stacked{max(sizes)}_fp32_samples_per_s"] = fp32[f"stacked{max(sizes)}_samples_per_s"]
    data = fold_data(corpus, specs, is10, 5, n_utt)
    sync(device)
    t0 = time.perf_counter()
    train_folds(model_cfg, replace(fast_cfg, epochs=args.epochs), data, device, progress=False)
    sync(device)
    out["kfold5_minutes_stacked"] = round((time.perf_counter() - t0) / 60, 2)
    log(f"  EMODB 5-fold, all five folds stacked, {args.epochs} epochs: {out['kfold5_minutes_stacked']} min")
    return out


def fold_figures(args, corpus, specs, is10, model_cfg, fast_cfg, device, graphs: bool) -> dict:
    """One full fold (EMODB 5-fold fold 0), trained and scored, timed: eager, or with CUDA graphs (``graphs``:
    the figures' names end in ``_graphed``)."""
    train_idx, test_idx = folds(corpus, "kfold5", 0)[0]
    if args.smoke:
        train_idx, test_idx = train_idx[:64], test_idx[:16]
    cfg = replace(fast_cfg, epochs=args.epochs)
    tr_is10, te_is10 = standardize_is10(is10[train_idx], is10[test_idx])
    how = "CUDA graphs" if graphs else "eager"
    log(f"fold 0 ({how}): {len(train_idx)} train / {len(test_idx)} test utterances, {args.epochs} epochs")
    sync(device)
    t0 = time.perf_counter()
    model, history = train_fold(
        model_cfg,
        cfg,
        [specs[i] for i in train_idx],
        tr_is10,
        corpus.y[train_idx],
        seed=0,
        device=device,
        progress=False,
        cuda_graphs=graphs,
    )
    scorer = graphed_scorer(model, cfg, device) if graphs else None
    scores, _ = predict_utterances(model, [specs[i] for i in test_idx], te_is10, cfg, device, scorer=scorer)
    sync(device)
    fold_s = time.perf_counter() - t0
    m = classification_metrics(corpus.y[test_idx], scores.argmax(1), corpus.labels)
    end = "_graphed" if graphs else ""
    minutes = "fold_minutes_40_epochs" if args.epochs == 40 else f"fold_minutes_{args.epochs}_epochs"
    return {
        "fold_epochs": args.epochs,
        minutes + end: round(fold_s / 60, 2),
        "kfold5_minutes_projected" + end: round(5 * fold_s / 60, 2),
        "fold0_wa" + end: round(m["wa"], 2),
        "fold0_ua" + end: round(m["ua"], 2),
        "fold0_final_loss_total" + end: round(history[-1]["loss_total"], 4),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    p.add_argument("--smoke", action="store_true", help="tiny run (1 epoch on 64 utterances, 1 round): a logic check")
    p.add_argument("--peak-tflops", type=float, default=None, help="peak dense bf16 TFLOP/s (default: by GPU name)")
    p.add_argument("--epochs", type=int, default=40)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--steps", type=int, default=20, help="training steps per round")
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--no-fold", action="store_true", help="skip the full fold")
    p.add_argument("--no-graphs", action="store_true", help="skip the CUDA-graph path (eesr_lib.graphed)")
    p.add_argument("--overlay-steps", type=int, default=300, help="steps of the eager-vs-graphed loss overlay")
    p.add_argument(
        "--cudnn-benchmark", action="store_true", help="let cuDNN time its kernels (not the runner's default)"
    )
    p.add_argument("--stack", default="5,10,20", help="stacked fold counts to measure; empty: skip")
    p.add_argument("--stack-epochs", type=int, default=3, help="epochs of each stacked measurement (first untimed)")
    p.add_argument("--dataset", default="emodb")
    p.add_argument("--data-root", default=None)
    p.add_argument("--out", default=str(HERE), help="folder for results_gpu.json")
    args = p.parse_args(argv)
    if args.smoke:
        args.epochs, args.rounds, args.steps, args.warmup = 1, 1, 1, 1
        args.stack, args.stack_epochs, args.overlay_steps = "2", 2, 6
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        log("run_gpu.py: torch sees no CUDA GPU (use --device cpu --smoke for a logic check)")
        return 2
    if args.cudnn_benchmark:  # not what `eesr run` does; an experiment (crops are all 128 frames)
        torch.backends.cudnn.benchmark = True

    fast_cfg = TrainConfig()  # the defaults: precision "auto"
    corpus = load_corpus(args.dataset, args.data_root)
    model_cfg = ModelConfig(n_classes=len(corpus.labels))
    t0 = time.perf_counter()
    specs, is10 = corpus_features(corpus, progress=False)
    log(f"features: {len(specs)} utterances in {time.perf_counter() - t0:.1f} s")
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    peak = args.peak_tflops or lookup_peak(device)
    figures: dict[str, float | str | None] = {
        "device": name,
        "torch": torch.__version__,
        "fast_precision": resolved_precision(fast_cfg, device),
    }

    bank = CropBank(specs, model_cfg.crop_frames, fast_cfg.pad_mode, device)
    y_t = torch.tensor(corpus.y, dtype=torch.long, device=device)
    is10_t = torch.as_tensor(standardize_is10(is10)[0], device=device)
    graphs = (device.type == "cuda" or args.smoke) and not args.no_graphs  # on a CPU: a logic check only
    steppers = {
        "fp32": Stepper(replace(fast_cfg, precision="fp32"), model_cfg, bank, y_t, is10_t, device),
        "fast": Stepper(fast_cfg, model_cfg, bank, y_t, is10_t, device),
    }
    for s in steppers.values():
        s.run(args.warmup)
    if graphs:
        try:  # warm-up past WARMUP_STEPS includes the capture: the first place new code can fail on a GPU
            steppers["graphed"] = Stepper(fast_cfg, model_cfg, bank, y_t, is10_t, device, graphs=True)
            steppers["graphed"].run(max(args.warmup, WARMUP_STEPS + 2))
        except Exception as exc:  # noqa: BLE001
            steppers.pop("graphed", None)
            graphs = False
            figures["graphs_error"] = f"{type(exc).__name__}: {exc}"[:300]
            log(f"CUDA graphs: capture failed, measured without them: {figures['graphs_error']}")
    rates: dict[str, list[float]] = {k: [] for k in steppers}
    for r in range(args.rounds):
        for k in list(steppers) if r % 2 == 0 else list(reversed(steppers)):
            rates[k].append(args.steps * fast_cfg.batch_size / steppers[k].run(args.steps))
        log(f"round {r + 1}/{args.rounds}: " + ", ".join(f"{k} {v[-1]:.0f} samples/s" for k, v in rates.items()))
    thr = {k: statistics.median(v) for k, v in rates.items()}
    figures["train_samples_per_s_fp32"] = round(thr["fp32"], 1)
    figures["train_samples_per_s_fast"] = round(thr["fast"], 1)
    figures["train_speedup_vs_fp32"] = round(thr["fast"] / thr["fp32"], 2)

    flops, gru_added = count_step_flops(steppers["fast"])
    steps_per_s = thr["fast"] / fast_cfg.batch_size
    figures["flops_per_step"] = f"{flops:.4g}"
    figures["gru_flops_added"] = f"{gru_added:.4g}"
    figures["achieved_tflops_fast"] = round(flops * steps_per_s / 1e12, 2)
    figures["achieved_tflops_fp32"] = round(flops * thr["fp32"] / fast_cfg.batch_size / 1e12, 2)
    figures["peak_tflops_bf16"] = peak
    figures["mfu_fast"] = round(flops * steps_per_s / 1e12 / peak, 4) if peak else None
    if graphs:
        figures["train_samples_per_s_graphed"] = round(thr["graphed"], 1)
        figures["graphs_speedup_vs_eager"] = round(thr["graphed"] / thr["fast"], 2)
        figures["achieved_tflops_graphed"] = round(flops * thr["graphed"] / fast_cfg.batch_size / 1e12, 2)
        figures["mfu_graphed"] = round(flops * thr["graphed"] / fast_cfg.batch_size / 1e12 / peak, 4) if peak else None
        log(f"CUDA graphs: {thr['graphed']:.0f} samples/s ({figures['graphs_speedup_vs_eager']}x eager)")
        try:  # new code meeting its first GPU: a failure here must not cost the figures after it
            figures.update(graph_overlay(fast_cfg, model_cfg, bank, y_t, is10_t, device, args.overlay_steps))
            figures.update(
                scoring_rates(model_cfg, fast_cfg, bank, is10_t, device, args.rounds, 1 if args.smoke else 50)
            )
        except Exception as exc:  # noqa: BLE001
            figures["graphs_error"] = f"{type(exc).__name__}: {exc}"[:300]
            log(f"CUDA graphs: overlay/scoring failed: {figures['graphs_error']}")
    if device.type == "cuda":
        figures["max_memory_allocated_gib"] = round(torch.cuda.max_memory_allocated(device) / 2**30, 2)
    del steppers, bank

    for fold_graphs in ((False, True) if graphs and device.type == "cuda" else (False,)) if not args.no_fold else ():
        try:
            figures.update(fold_figures(args, corpus, specs, is10, model_cfg, fast_cfg, device, fold_graphs))
        except Exception as exc:  # noqa: BLE001
            if not fold_graphs:
                raise
            figures["graphs_fold_error"] = f"{type(exc).__name__}: {exc}"[:300]
            log(f"CUDA graphs: the full fold failed: {figures['graphs_fold_error']}")

    if args.stack:
        figures.update(stacked_figures(args, corpus, specs, is10, model_cfg, fast_cfg, device, flops, peak))

    if not args.smoke:  # a smoke run's numbers mean nothing: no file
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "results_gpu.json").write_text(
            json.dumps(
                {"figures": figures, "rates": rates, "args": vars(args), "date": time.strftime("%Y-%m-%d %H:%M:%S")},
                indent=1,
            )
        )
    for k, v in figures.items():
        print(f"{k}: {v if v is not None else 'n/a'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
