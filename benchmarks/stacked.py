"""Folds trained one at a time against the same folds trained stacked (eesr_lib.batched), one measurement.

Shared by run_cpu.py (the stacked path must not be slower on the CPU) and run_gpu.py (where it is
meant to fill the GPU). Real EMODB stratified 5-fold folds (the runner's), each with its own seed
as the runner gives it; the same folds, seeds and budget both ways. Only the steady epochs are
timed (every epoch after the first: the first pays for allocation, cuDNN's plans, warm caches).
"""

from __future__ import annotations

import time
from dataclasses import replace

import numpy as np
import torch

from eesr_lib.batched import FoldData, train_folds
from eesr_lib.protocols import folds
from eesr_lib.train import standardize_is10, train_fold


def fold_data(corpus, specs, is10, n_folds: int, n_utt: int | None = None) -> list[FoldData]:
    """``n_folds`` training sets: EMODB 5-fold's folds in turn (fold ``k % 5``), fold k with seed k, so that more
    than five are the same folds with other seeds (the test-curve runs' seeds, for instance)."""
    splits = folds(corpus, "kfold5", 0)
    out = []
    for k in range(n_folds):
        train_idx = splits[k % len(splits)][0]
        idx = train_idx[:n_utt] if n_utt else train_idx
        out.append(FoldData([specs[i] for i in idx], standardize_is10(is10[idx])[0], corpus.y[idx], k))
    return out


def _steady(history: list[dict], share: int = 1) -> tuple[int, float]:
    """(crops, seconds) of the epochs after the first; ``share``: the stacked epochs' seconds are per fold."""
    crops = history[-1]["crops_seen"] - history[0]["crops_seen"]
    return crops, sum(h["seconds"] for h in history[1:]) * share


def bench_stacked(
    corpus,
    specs,
    is10,
    model_cfg,
    cfg,
    device,
    sizes: list[int],
    epochs: int,
    n_utt: int | None = None,
    alone: bool = True,
    vectorize: bool | None = None,
    label: str = "stacked",
) -> dict:
    """Samples/s of folds trained one after the other (the first ``min(sizes)`` folds; ``alone=False``
    skips them) and of ``F`` folds stacked for each F in ``sizes``, over ``epochs`` epochs each (at least 2:
    the first is not timed); and the largest difference between the loss curves of the same folds trained
    the two ways. ``vectorize``: :func:`eesr_lib.batched.train_folds`'s (None: its device default); the
    stacked figures are named ``<label><F>_...``."""
    if epochs < 2:
        raise ValueError("bench_stacked times the epochs after the first: epochs must be >= 2")
    cfg = replace(cfg, epochs=epochs)
    data = fold_data(corpus, specs, is10, max(sizes), n_utt)
    crops = seconds = 0.0
    histories = []
    for f in data[: min(sizes)] if alone else []:
        _, history = train_fold(model_cfg, cfg, f.specs, f.is10, f.y, seed=f.seed, device=device, progress=False)
        c, s = _steady(history)
        crops, seconds, histories = crops + c, seconds + s, histories + [history]
    out = {"epochs": epochs, "utterances_per_fold": len(data[0].y)}
    if alone:
        out["alone_samples_per_s"] = round(crops / seconds, 1)
    for n in sizes:
        if device.type == "cuda":
            torch.cuda.synchronize(device)
            torch.cuda.reset_peak_memory_stats(device)
        t0 = time.perf_counter()
        stacked = train_folds(model_cfg, cfg, data[:n], device, progress=False, vectorize=vectorize)
        wall = time.perf_counter() - t0
        rate = sum(_steady(h)[0] for _, h in stacked) / _steady(stacked[0][1], share=n)[1]
        out[f"{label}{n}_samples_per_s"] = round(rate, 1)
        if alone:
            out[f"{label}{n}_speedup"] = round(rate / out["alone_samples_per_s"], 2)
        out[f"{label}{n}_wall_s"] = round(wall, 1)
        if device.type == "cuda":
            out[f"{label}{n}_max_memory_gib"] = round(torch.cuda.max_memory_allocated(device) / 2**30, 2)
        if alone and n == min(sizes):  # dropout masks differ between the two ways (eesr_lib.batched): close, not equal
            pairs = [(a, b) for ha, (_, hb) in zip(histories, stacked) for a, b in zip(ha, hb)]
            diffs = [abs(a["loss_total"] - b["loss_total"]) for a, b in pairs]
            out["loss_total_max_abs_diff"] = round(float(np.max(diffs)), 4)
            out["loss_total_alone"] = [[round(h["loss_total"], 4) for h in hist] for hist in histories]
            out["loss_total_stacked"] = [[round(h["loss_total"], 4) for h in hist] for _, hist in stacked]
    return out
