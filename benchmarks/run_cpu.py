"""CPU benchmarks of issue 4, in one process: training throughput, fold wall time, feature extraction.

    make bench                                   # everything (3.5 minutes on 2 idle cores)
    .venv/bin/python benchmarks/run_cpu.py --quick   # without the fp32-vs-fast loss comparison

What is measured (benchmarks/README.md has the figures and the machine):

1. Features: spectrogram + IS10 of every EMODB file into a fresh, empty ``EESR_CACHE``
   (cold), then the same call again (from the cache).
2. Training throughput: ``eesr_lib.train.train_step`` (forward, the joint loss, backward,
   Adam) on batches of 32 random 128-frame crops of the real EMODB spectrograms, for the
   straightforward fp32 step and for the fast path (what ``TrainConfig()`` does by default:
   ``precision="auto"``, which is bf16 autocast on this CPU if it has native bf16). The two
   run in alternating rounds on models with the same initial weights, after warm-up steps;
   each figure is the median of the rounds.
3. Accuracy kept: the same short training (``train_fold``, same seed, same crops) in fp32
   and on the fast path; the per-epoch losses are printed and plotted
   (``benchmarks/loss_fp32_vs_fast.png``). ``--quick`` skips it.
4. Fold wall time: EMODB stratified 5-fold, fold 0 (the runner's folds), ``train_fold`` on
   its training utterances for ``--fold-epochs`` epochs plus ``predict_utterances`` on its
   test utterances, extrapolated to 40 epochs.
5. Stacked folds (``eesr run --stack-folds``, :mod:`eesr_lib.batched`): ``--stack-folds`` folds
   trained one at a time and stacked, samples/s of each (benchmarks/stacked.py). On the CPU the
   stacked path must not be slower; it exists for the GPU. ``--only-stacked`` runs this step alone
   and writes ``results_cpu_stacked.json`` (the other figures stay as they are).

The script ends with one ``name: value`` line per figure (also written to
``benchmarks/results_cpu.json``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from stacked import bench_stacked  # benchmarks/stacked.py: this script's folder is on sys.path

from eesr_lib.corpora import load_corpus
from eesr_lib.crops import CropBank
from eesr_lib.features import corpus_features
from eesr_lib.model import EESR, ModelConfig
from eesr_lib.protocols import folds
from eesr_lib.provenance import cpu_model
from eesr_lib.train import (
    TrainConfig,
    predict_utterances,
    resolved_precision,
    standardize_is10,
    train_fold,
    train_step,
)

HERE = Path(__file__).resolve().parent
CPU = torch.device("cpu")


def process_cpu_s() -> float:
    """CPU seconds of this process and its finished children (the feature-extraction workers)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# ------------------------------------------------------------------ 1. features


def bench_features(corpus) -> tuple[list[np.ndarray], np.ndarray, float, float]:
    """Cold extraction into an empty temporary cache, then the cached call; the cache is removed after."""
    old = os.environ.get("EESR_CACHE")
    tmp = tempfile.mkdtemp(prefix="eesr-bench-cache-")
    os.environ["EESR_CACHE"] = tmp
    try:
        t0 = time.perf_counter()
        corpus_features(corpus, progress=False)
        cold = time.perf_counter() - t0
        t0 = time.perf_counter()
        specs, is10 = corpus_features(corpus, progress=False)
        cached = time.perf_counter() - t0
    finally:
        if old is None:
            os.environ.pop("EESR_CACHE", None)
        else:
            os.environ["EESR_CACHE"] = old
        shutil.rmtree(tmp, ignore_errors=True)
    return specs, is10, cold, cached


# ------------------------------------------------------------------ 2. throughput


class Stepper:
    """One model + optimizer + crop stream; ``run(n)`` times ``n`` training steps."""

    def __init__(self, cfg: TrainConfig, model_cfg: ModelConfig, bank: CropBank, y, is10, seed: int = 0):
        torch.manual_seed(seed)
        self.cfg = cfg
        self.model = EESR(model_cfg).train()
        self.opt = torch.optim.Adam(self.model.parameters(), lr=cfg.lr, betas=(cfg.beta1, cfg.beta2))
        self.gen = torch.Generator().manual_seed(seed)
        self.bank, self.y, self.is10 = bank, y, is10

    def run(self, n: int) -> float:
        t0 = time.perf_counter()
        for _ in range(n):
            idx = torch.randint(0, len(self.bank), (self.cfg.batch_size,), generator=self.gen)
            x = self.bank.random_crops(idx, self.gen)
            train_step(self.model, self.opt, x, self.y[idx], self.is10[idx], self.cfg, CPU)
        return time.perf_counter() - t0

    def count_flops(self) -> float:
        """FLOPs of one training step (forward + backward; the CPU GRU runs as visible matmuls) by FlopCounterMode."""
        from torch.utils.flop_counter import FlopCounterMode

        with FlopCounterMode(display=False) as counter:
            self.run(1)
        return float(counter.get_total_flops())


def bench_throughput(specs, is10, y, model_cfg, fast_cfg, rounds: int, steps: int, warmup: int) -> dict:
    bank = CropBank(specs, model_cfg.crop_frames, "zero", CPU)
    y_t = torch.tensor(y, dtype=torch.long)
    is10_t = torch.as_tensor(standardize_is10(is10)[0])
    variants = {"fp32": replace(fast_cfg, precision="fp32"), "fast": fast_cfg}
    steppers = {name: Stepper(cfg, model_cfg, bank, y_t, is10_t) for name, cfg in variants.items()}
    for stepper in steppers.values():
        stepper.run(warmup)
    per_round: dict[str, list[float]] = {name: [] for name in variants}
    for r in range(rounds):
        order = list(steppers) if r % 2 == 0 else list(reversed(steppers))  # alternate who goes first
        for name in order:
            per_round[name].append(steps * fast_cfg.batch_size / steppers[name].run(steps))
        log(f"  round {r + 1}/{rounds}: " + ", ".join(f"{n} {v[-1]:.1f} samples/s" for n, v in per_round.items()))
    out = {name: statistics.median(v) for name, v in per_round.items()}
    out["rounds"] = per_round
    out["flops_per_step"] = steppers["fast"].count_flops()
    return out


# ------------------------------------------------------------------ 3. accuracy kept


def bench_losses(specs, is10, y, model_cfg, fast_cfg, n_utt: int, epochs: int, out_png: Path) -> dict:
    """The same short training in fp32 and on the fast path: per-epoch losses and their max relative difference."""
    rng = np.random.default_rng(0)
    sub = np.sort(rng.choice(len(specs), size=min(n_utt, len(specs)), replace=False))
    sub_specs = [specs[i] for i in sub]
    sub_is10 = standardize_is10(is10[sub])[0]
    curves = {}
    for name, cfg in (
        ("fp32", replace(fast_cfg, precision="fp32", epochs=epochs)),
        ("fast", replace(fast_cfg, epochs=epochs)),
    ):
        t0 = time.perf_counter()
        _, history = train_fold(model_cfg, cfg, sub_specs, sub_is10, y[sub], seed=0, device=CPU, progress=False)
        curves[name] = history
        log(
            f"  {name} ({history[0]['precision']}): {time.perf_counter() - t0:.0f} s, loss_total per epoch "
            + " ".join(f"{h['loss_total']:.4f}" for h in history)
        )
    rel = {}
    for key in ("loss_total", "loss_ae", "loss_ec"):
        a = np.array([h[key] for h in curves["fp32"]])
        b = np.array([h[key] for h in curves["fast"]])
        rel[key] = float(np.max(np.abs(b - a) / np.abs(a)))
    plot_losses(curves, out_png, n_utt=len(sub), fast_precision=curves["fast"][0]["precision"])
    return {"curves": curves, "max_rel_diff": rel}


def plot_losses(curves: dict, out_png: Path, n_utt: int, fast_precision: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    fig, axes = plt.subplots(1, 3, figsize=(11, 3.2))
    for ax, key, title in zip(axes, ("loss_total", "loss_ae", "loss_ec"), ("L_Total", "L_AE", "L_EC")):
        for name, style in (("fp32", "o-"), ("fast", "x--")):
            h = curves[name]
            label = "fp32" if name == "fp32" else f"fast path ({fast_precision})"
            ax.plot([r["epoch"] for r in h], [r[key] for r in h], style, label=label)
        ax.set_title(title)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes[0].set_ylabel("mean training loss")
    axes[0].legend()
    fig.suptitle(f"EMODB, {n_utt} utterances, same seed and crops: fp32 vs fast path", fontsize=10)
    fig.tight_layout()
    fig.savefig(out_png, dpi=120)
    plt.close(fig)


# ------------------------------------------------------------------ 4. fold wall time


def bench_fold(corpus, specs, is10, model_cfg, fast_cfg, fold_epochs: int, total_epochs: int = 40) -> dict:
    """Fold 0 of EMODB 5-fold: measured epochs of train_fold (+ predict), extrapolated to ``total_epochs``."""
    train_idx, test_idx = folds(corpus, "kfold5", 0)[0]
    y = corpus.y
    tr_is10, te_is10 = standardize_is10(is10[train_idx], is10[test_idx])
    stamps = []
    cfg = replace(fast_cfg, epochs=fold_epochs)
    t0 = time.perf_counter()
    model, history = train_fold(
        model_cfg,
        cfg,
        [specs[i] for i in train_idx],
        tr_is10,
        y[train_idx],
        seed=0,
        device=CPU,
        progress=False,
        on_epoch=lambda e, m: stamps.append(time.perf_counter()),
    )
    train_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    scores, _ = predict_utterances(model, [specs[i] for i in test_idx], te_is10, cfg, CPU)
    predict_s = time.perf_counter() - t1
    epoch_s = [b - a for a, b in zip([t0] + stamps[:-1], stamps)]
    # the first epoch carries the one-off costs (model init, oneDNN primitive creation): count it once
    steady = statistics.median(epoch_s[1:]) if len(epoch_s) > 1 else epoch_s[0]
    total_s = epoch_s[0] + (total_epochs - 1) * steady + predict_s
    return {
        "n_train": len(train_idx),
        "n_test": len(test_idx),
        "epoch_s": epoch_s,
        "train_s": train_s,
        "predict_s": predict_s,
        "steady_epoch_s": steady,
        "fold_minutes": total_s / 60,
        "precision": history[0]["precision"],
        "n_batches": -(-len(train_idx) // cfg.batch_size),
    }


# ------------------------------------------------------------------ main


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="skip the fp32-vs-fast loss comparison")
    p.add_argument("--rounds", type=int, default=6, help="alternating timing rounds per variant")
    p.add_argument("--steps", type=int, default=3, help="training steps per round")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps per variant before the rounds")
    p.add_argument("--loss-utterances", type=int, default=160)
    p.add_argument("--loss-epochs", type=int, default=4)
    p.add_argument("--fold-epochs", type=int, default=3, help="measured epochs of the fold (extrapolated to 40)")
    p.add_argument("--stack-folds", type=int, default=2, help="folds trained stacked in step 5")
    p.add_argument("--stack-epochs", type=int, default=3, help="epochs of step 5 (the first is not timed)")
    p.add_argument("--stack-utterances", type=int, default=96, help="training utterances per fold in step 5")
    p.add_argument("--only-stacked", action="store_true", help="run step 5 alone (results_cpu_stacked.json)")
    p.add_argument("--dataset", default="emodb")
    p.add_argument("--data-root", default=None)
    p.add_argument("--out", default=str(HERE), help="folder for the PNG and results_cpu.json")
    args = p.parse_args(argv)
    if args.only_stacked:
        return only_stacked(args)
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)

    fast_cfg = TrainConfig()  # the defaults: precision "auto"
    model_cfg = ModelConfig()
    machine = {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "capability": torch.backends.cpu.get_cpu_capability(),
        "fast_precision": resolved_precision(fast_cfg, CPU),
    }
    log(f"machine: {machine}")
    figures: dict[str, float | str] = {}
    t_all = time.perf_counter()
    cpu_all = process_cpu_s()
    load_start = os.getloadavg()[0]

    corpus = load_corpus(args.dataset, args.data_root)
    log(f"[1/4] features: {len(corpus)} files, cold into an empty cache, then cached")
    specs, is10, cold, cached = bench_features(corpus)
    figures["features_cold_s"] = round(cold, 2)
    figures["features_cached_s"] = round(cached, 3)
    log(f"  cold {cold:.1f} s, cached {cached:.2f} s")
    model_cfg = replace(model_cfg, n_classes=len(corpus.labels))

    log(
        f"[2/4] training throughput, fp32 vs fast ({machine['fast_precision']}), {args.rounds} rounds x "
        f"{args.steps} steps of batch {fast_cfg.batch_size}"
    )
    thr = bench_throughput(specs, is10, corpus.y, model_cfg, fast_cfg, args.rounds, args.steps, args.warmup)
    figures["train_samples_per_s_fp32"] = round(thr["fp32"], 2)
    figures["train_samples_per_s_fast"] = round(thr["fast"], 2)
    figures["train_speedup_vs_fp32"] = round(thr["fast"] / thr["fp32"], 2)
    steps_per_s = {k: thr[k] / fast_cfg.batch_size for k in ("fp32", "fast")}
    figures["train_gflop_per_step"] = round(thr["flops_per_step"] / 1e9, 1)
    figures["train_gflops_per_s_fp32"] = round(thr["flops_per_step"] * steps_per_s["fp32"] / 1e9, 1)
    figures["train_gflops_per_s_fast"] = round(thr["flops_per_step"] * steps_per_s["fast"] / 1e9, 1)
    figures["fast_path"] = f"precision={machine['fast_precision']},threads={torch.get_num_threads()}"

    losses = None
    if not args.quick:
        log(f"[3/4] loss curves, fp32 vs fast: {args.loss_epochs} epochs on {args.loss_utterances} utterances")
        losses = bench_losses(
            specs,
            is10,
            corpus.y,
            model_cfg,
            fast_cfg,
            args.loss_utterances,
            args.loss_epochs,
            out_dir / "loss_fp32_vs_fast.png",
        )
        for key, v in losses["max_rel_diff"].items():
            figures[f"{key}_max_rel_diff_fast_vs_fp32"] = round(v, 4)
        for name in ("fp32", "fast"):
            figures[f"loss_total_per_epoch_{name}"] = " ".join(f"{h['loss_total']:.4f}" for h in losses["curves"][name])
    else:
        log("[3/4] loss comparison skipped (--quick)")

    log(f"[4/4] fold wall time: EMODB kfold5 fold 0, {args.fold_epochs} measured epochs, extrapolated to 40")
    fold = bench_fold(corpus, specs, is10, model_cfg, fast_cfg, args.fold_epochs)
    log(
        f"  {fold['n_train']} train / {fold['n_test']} test utterances, epochs "
        + ", ".join(f"{s:.1f} s" for s in fold["epoch_s"])
        + f", predict {fold['predict_s']:.1f} s"
    )
    n_stack = args.stack_folds
    log(f"[5/5] stacked folds: {n_stack} folds of {args.stack_utterances} utterances, {args.stack_epochs} epochs")
    stacked = bench_stacked(
        corpus, specs, is10, model_cfg, fast_cfg, CPU, [args.stack_folds], args.stack_epochs, args.stack_utterances
    )
    for key in (
        "alone_samples_per_s",
        f"stacked{args.stack_folds}_samples_per_s",
        f"stacked{args.stack_folds}_speedup",
    ):
        figures[key] = stacked[key]
    figures["fold_epoch_s"] = round(fold["steady_epoch_s"], 2)
    figures["fold_predict_s"] = round(fold["predict_s"], 2)
    figures["fold_minutes_cpu_40_epochs"] = round(fold["fold_minutes"], 2)
    figures["kfold5_hours_cpu_40_epochs"] = round(5 * fold["fold_minutes"] / 60, 2)
    wall = time.perf_counter() - t_all
    figures["benchmark_wall_s"] = round(wall, 1)
    # honesty check on a shared machine: the 1-minute load before we started (0 = idle; our own run adds
    # about 2 on 2 cores) and how busy our own process kept the cores (about 1 = no one else competed for them)
    figures["load_avg_1min_at_start"] = round(load_start, 2)
    figures["load_avg_1min_at_end"] = round(os.getloadavg()[0], 2)
    figures["own_cpu_utilization"] = round((process_cpu_s() - cpu_all) / wall / (os.cpu_count() or 1), 2)

    record = {
        "machine": machine,
        "figures": figures,
        "throughput_rounds": thr["rounds"],
        "fold": fold,
        "losses": losses,
        "stacked": stacked,
        "args": vars(args),
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    (out_dir / "results_cpu.json").write_text(json.dumps(record, indent=1))
    print(
        f"machine: {machine['cpu']}, {machine['cores']} cores, torch {machine['torch']}, "
        f"{machine['torch_threads']} threads, {machine['capability']}"
    )
    for name, value in figures.items():
        print(f"{name}: {value}")
    return 0


def only_stacked(args) -> int:
    """Step 5 alone, into results_cpu_stacked.json: folds one at a time, stacked the CPU's way (the folds'
    steps in turn) and stacked the GPU's way (one vmapped step), on the same folds."""
    corpus = load_corpus(args.dataset, args.data_root)
    specs, is10 = corpus_features(corpus, progress=False)
    model_cfg = ModelConfig(n_classes=len(corpus.labels))
    t0, cpu0, load_start = time.perf_counter(), process_cpu_s(), os.getloadavg()[0]
    common = (corpus, specs, is10, model_cfg, TrainConfig(), CPU, [args.stack_folds], args.stack_epochs)
    figures = bench_stacked(*common, args.stack_utterances)
    vmapped = bench_stacked(*common, args.stack_utterances, alone=False, vectorize=True, label="vmapped")
    figures.update({k: v for k, v in vmapped.items() if k.startswith("vmapped")})
    n = args.stack_folds
    figures[f"vmapped{n}_speedup"] = round(figures[f"vmapped{n}_samples_per_s"] / figures["alone_samples_per_s"], 2)
    wall = time.perf_counter() - t0
    threads = torch.get_num_threads()
    figures["machine"] = f"{cpu_model()}, {os.cpu_count()} cores, torch {torch.__version__}, {threads} threads"
    figures["benchmark_wall_s"] = round(wall, 1)
    figures["load_avg_1min_at_start"] = round(load_start, 2)
    figures["own_cpu_utilization"] = round((process_cpu_s() - cpu0) / wall / (os.cpu_count() or 1), 2)
    figures["date"] = time.strftime("%Y-%m-%d %H:%M:%S")
    (Path(args.out) / "results_cpu_stacked.json").write_text(json.dumps(figures, indent=1))
    for name, value in figures.items():
        if not name.startswith("loss_total_") or name == "loss_total_max_abs_diff":
            print(f"{name}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
