"""Several folds of one experiment trained as one model whose weights are the folds' weights stacked.

Why: on a GPU one fold's training step is bound by kernel launches, not arithmetic
(benchmarks/README.md: a step of batch 32 takes ~33 ms on an H100, under 1 % of its peak). With
the weights of F folds stacked (:func:`torch.func.stack_module_state`) and one functional step
vmapped over them, every kernel does the work of F folds for the launches of one.

What stays per fold, so that the folds come out as :func:`eesr_lib.train.train_fold` trains them
one at a time: the initialization (each fold's seed), the crops, their order and the IS10 draws
(each fold's own generator, drawn in train_fold's order), the Adam moments and step count, the
batch-norm statistics, the history. A fold whose epoch has fewer batches (folds differ in size by
a few utterances) simply sits out the steps it does not have.

Two ways to run the stacked step, ``vectorize``:

- True (the default on a GPU): one vmapped step for all folds. Two layers have no vmap rule in
  torch, ``nn.GRU`` (one fused cuDNN or oneDNN kernel) and the fused attention kernel of
  ``nn.MultiheadAttention``; the vmapped step runs a twin of the model in which both are written
  out with ordinary tensor operations (:class:`StepGRU`, :class:`PlainAttention`: the same
  parameters under the same names, the same equations). Without dropout the numbers equal
  train_fold's to float rounding (tests/test_batched.py, in float64). Dropout masks are drawn for
  all folds at once (vmap ``randomness="different"``): the same distribution as train_fold's, from
  another random stream.
- False (the default elsewhere): the folds' steps in turn, each on its own slice of the stacked
  weights, with the model's own layers and each fold's own global random stream. Bit for bit
  train_fold's numbers, dropout included. On a CPU the vmapped step is *slower* (batched-weight
  convolutions and GRU steps run below oneDNN's fused kernels: benchmarks/README.md), and a CPU
  has no launch overhead to amortize, so this is what stacking means there.

A fold trained stacked records ``batched_folds`` and ``vectorized`` in its epochs, as a fold
trained on a GPU records its device.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.func import functional_call, stack_module_state, vmap

from . import graphed
from .crops import CropBank
from .errors import EESRError
from .model import EESR, ModelConfig
from .train import (
    TrainConfig,
    _save_atomic,
    autocast,
    epoch_bar,
    epoch_batches,
    epoch_crops,
    epoch_lr,
    is10_for_step,
    joint_loss,
    recalibrate_batch_norm,
    resolved_precision,
)

CHECKPOINT_EVERY_S = 600.0  # a stacked checkpoint is F folds' weights and Adam state: written every 10 min


class FoldData(NamedTuple):
    """One fold's training set, as :func:`eesr_lib.train.train_fold` takes it."""

    specs: list[np.ndarray]
    is10: np.ndarray | None  # standardized with this fold's training statistics
    y: np.ndarray
    seed: int


# ------------------------------------------------------------------ the vmappable twin of the model


class StepGRU(nn.Module):
    """A one-layer bidirectional ``nn.GRU(batch_first=True)`` written step by step (PyTorch's equations:
    r, z = σ(W_i x + b_i + W_h h + b_h); n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn)); h' = (1 - z) ⊙ n + z ⊙ h),
    with the parameters under nn.GRU's names so a GRU's state dict loads into it unchanged."""

    def __init__(self, gru: nn.GRU):
        super().__init__()
        if gru.num_layers != 1 or not gru.bidirectional or not gru.batch_first:
            raise EESRError("StepGRU stands in for one-layer, bidirectional, batch-first GRUs only")
        self.hidden_size = gru.hidden_size
        for name, p in gru.named_parameters():
            self.register_parameter(name, nn.Parameter(p.detach().clone()))

    def _direction(self, x: torch.Tensor, suffix: str, reverse: bool) -> torch.Tensor:
        w_hh, b_hh = getattr(self, f"weight_hh_l0{suffix}"), getattr(self, f"bias_hh_l0{suffix}")
        gates_x = F.linear(x, getattr(self, f"weight_ih_l0{suffix}"), getattr(self, f"bias_ih_l0{suffix}"))
        h = x.new_zeros(x.shape[0], self.hidden_size, dtype=gates_x.dtype)
        out = []
        for t in reversed(range(x.shape[1])) if reverse else range(x.shape[1]):
            x_r, x_z, x_n = gates_x[:, t].chunk(3, dim=-1)
            h_r, h_z, h_n = F.linear(h, w_hh, b_hh).chunk(3, dim=-1)
            r, z = torch.sigmoid(x_r + h_r), torch.sigmoid(x_z + h_z)
            h = (1 - z) * torch.tanh(x_n + r * h_n) + z * h
            out.append(h)
        return torch.stack(out[::-1] if reverse else out, dim=1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, None]:
        return torch.cat([self._direction(x, "", False), self._direction(x, "_reverse", True)], dim=-1), None


class PlainAttention(nn.Module):
    """``nn.MultiheadAttention(batch_first=True)`` self-attention without its fused kernel (no attention
    dropout, which the model never sets), under its parameter names."""

    def __init__(self, mha: nn.MultiheadAttention):
        super().__init__()
        if mha.dropout or not mha.batch_first or not mha._qkv_same_embed_dim:
            raise EESRError("PlainAttention stands in for batch-first attention without dropout only")
        self.heads = mha.num_heads
        self.in_proj_weight = nn.Parameter(mha.in_proj_weight.detach().clone())
        self.in_proj_bias = nn.Parameter(mha.in_proj_bias.detach().clone())
        self.out_proj = copy.deepcopy(mha.out_proj)

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, need_weights: bool = False):
        b, t, d = q.shape
        split = [
            F.linear(a, w, bias)
            for a, w, bias in zip((q, k, v), self.in_proj_weight.chunk(3), self.in_proj_bias.chunk(3))
        ]
        q_h, k_h, v_h = (a.view(b, t, self.heads, d // self.heads).transpose(1, 2) for a in split)
        weights = torch.softmax(q_h @ k_h.transpose(-2, -1) / math.sqrt(d // self.heads), dim=-1)
        attended = (weights @ v_h).transpose(1, 2).reshape(b, t, d)
        return self.out_proj(attended), None


def vmappable_twin(model: EESR) -> nn.Module:
    """The model with its GRUs and attention written out (see the module), on the meta device: a
    structure for :func:`torch.func.functional_call`, holding no weights of its own."""
    twin = copy.deepcopy(model)
    twin.encoder.gru = StepGRU(twin.encoder.gru)
    twin.decoder.gru = StepGRU(twin.decoder.gru)
    twin.classifier.attention = PlainAttention(twin.classifier.attention)
    return twin.to("meta")


# ------------------------------------------------------------------ Adam, one state per fold


def _adam_rows(params, grads, state, rows, cfg: TrainConfig, lr: float) -> None:
    """torch.optim.Adam's update (its single-tensor algorithm, L2 weight decay) for folds ``rows`` of every
    stacked parameter; the other folds' weights and moments are left as they are."""
    state["step"][rows] += 1
    t = state["step"][rows]
    bias1 = 1 - cfg.beta1**t
    bias2_sqrt = (1 - cfg.beta2**t).sqrt()
    full = len(rows) == len(state["step"])
    with torch.no_grad():
        for name, p in params.items():
            if grads[name] is None:  # a parameter this row does not use (torch.optim.Adam skips it too)
                continue
            g = grads[name] if full else grads[name][rows]
            shape = (-1,) + (1,) * (p.dim() - 1)
            m, v = (state[k][name] if full else state[k][name][rows] for k in ("m", "v"))
            w = p if full else p[rows]
            if cfg.weight_decay:
                g = g.add(w, alpha=cfg.weight_decay)
            m = m.lerp(g, 1 - cfg.beta1)
            v = (v * cfg.beta2).addcmul_(g, g, value=1 - cfg.beta2)
            denom = (v.sqrt() / bias2_sqrt.view(shape).to(v.dtype)).add_(1e-8)
            w = w - (lr / bias1).view(shape).to(w.dtype) * m / denom
            for target, new in ((state["m"][name], m), (state["v"][name], v), (p, w)):
                if full:
                    target.copy_(new)
                else:
                    target[rows] = new


def _adam_fold(weights: dict[str, torch.Tensor], state, f: int, cfg: TrainConfig, lr: float) -> None:
    """torch.optim.Adam's single-tensor update, op for op, on fold ``f``'s slices of the stacked weights and
    moments; ``weights`` are the fold's leaf views (their ``.grad`` is the fold's own gradient)."""
    state["step"][f] += 1
    step = float(state["step"][f])
    step_size = lr / (1 - cfg.beta1**step)
    bias2_sqrt = (1 - cfg.beta2**step) ** 0.5
    with torch.no_grad():
        for name, w in weights.items():
            if w.grad is None:
                continue
            g = w.grad if not cfg.weight_decay else w.grad.add(w, alpha=cfg.weight_decay)
            m, v = state["m"][name][f], state["v"][name][f]
            m.lerp_(g, 1 - cfg.beta1)
            v.mul_(cfg.beta2).addcmul_(g, g, value=1 - cfg.beta2)
            w.addcdiv_(m, (v.sqrt() / bias2_sqrt).add_(1e-8), value=-step_size)


# ------------------------------------------------------------------ the training loop


def _rng_state(device: torch.device) -> torch.Tensor:
    """The global random stream dropout draws from on ``device``."""
    return torch.cuda.get_rng_state(device) if device.type == "cuda" else torch.get_rng_state()


def _set_rng_state(device: torch.device, state: torch.Tensor) -> None:
    if device.type == "cuda":
        torch.cuda.set_rng_state(state.cpu(), device)
    else:
        torch.set_rng_state(state.cpu())


def unstack(stacked: dict[str, torch.Tensor], f: int, into: EESR) -> EESR:
    """Copy fold ``f``'s weights and buffers out of the stacked dict into an ordinary model."""
    with torch.no_grad():
        into.load_state_dict({k: v[f] for k, v in stacked.items()})
    return into


def train_folds(
    model_cfg: ModelConfig,
    cfg: TrainConfig,
    folds: list[FoldData],
    device: str | torch.device = "cpu",
    checkpoint: str | Path | None = None,
    progress: bool = True,
    on_epoch: list[Callable | None] | None = None,
    after_epoch: list[Callable | None] | None = None,
    checkpoint_every_s: float = CHECKPOINT_EVERY_S,
    vectorize: bool | None = None,
    cuda_graphs: bool = False,
    graph_backend: object | None = None,
) -> list[tuple[EESR, list[dict]]]:
    """Train every fold of ``folds`` at once; returns what :func:`~eesr_lib.train.train_fold` returns, per fold.

    ``on_epoch[f](epoch, model)`` and ``after_epoch[f](history)`` are fold ``f``'s callbacks with
    train_fold's meaning (``model`` is the fold's weights copied out). The stacked state is written
    to ``checkpoint`` at most every ``checkpoint_every_s`` seconds and after the last epoch, and resumed
    from it: F folds' weights and Adam moments are hundreds of MB each. ``vectorize``: see the module
    (None: vmapped on a GPU, the folds' steps in turn elsewhere). ``cuda_graphs``: the vmapped step of all
    folds replays a CUDA graph (:mod:`eesr_lib.graphed`) for every full batch; needs ``vectorize``.
    ``graph_backend``: the tests' :class:`~eesr_lib.graphed.RerunGraphs` (the capture on a CPU)."""
    if not folds:
        return []
    device = torch.device(device)
    vectorize = device.type == "cuda" if vectorize is None else vectorize
    if cuda_graphs and not vectorize:
        raise EESRError("CUDA graphs replay the folds' vmapped step: train with vectorize=True")
    n_folds = len(folds)
    on_epoch = on_epoch or [None] * n_folds
    after_epoch = after_epoch or [None] * n_folds
    models, streams = [], []
    for fold in folds:
        torch.manual_seed(fold.seed)
        models.append(EESR(model_cfg).to(device))
        streams.append(_rng_state(device))  # each fold's global stream after its init, as in train_fold
    params, buffers = stack_module_state(models)
    state = {
        "m": {k: torch.zeros_like(p) for k, p in params.items()},
        "v": {k: torch.zeros_like(p) for k, p in params.items()},
        "step": torch.zeros(n_folds, dtype=torch.float64, device=device),
    }
    gens = [torch.Generator(device="cpu").manual_seed(fold.seed) for fold in folds]
    torch.manual_seed(folds[0].seed)  # the dropout stream of the stacked step
    histories: list[list[dict]] = [[] for _ in folds]
    start_epoch = 0
    if checkpoint is not None and Path(checkpoint).exists():
        saved = torch.load(checkpoint, map_location=device, weights_only=False)
        if saved["seeds"] != [fold.seed for fold in folds] or saved["sizes"] != [len(f.y) for f in folds]:
            raise EESRError(f"{checkpoint} was written for other folds; delete it to start these afresh")
        with torch.no_grad():
            for k in params:
                params[k].copy_(saved["params"][k])
            for k in buffers:
                buffers[k].copy_(saved["buffers"][k])
        state = saved["adam"]
        for gen, g_state in zip(gens, saved["generators"]):
            gen.set_state(g_state.cpu())
        torch.set_rng_state(saved["torch_rng"].cpu())
        if device.type == "cuda" and saved.get("cuda_rng") is not None:
            torch.cuda.set_rng_state(saved["cuda_rng"].cpu())
        streams = saved["streams"]
        histories, start_epoch = saved["histories"], saved["epoch"]

    twin = vmappable_twin(models[0]) if vectorize else copy.deepcopy(models[0]).to("meta")
    precision = resolved_precision(cfg, device)
    banks = [CropBank(f.specs, model_cfg.crop_frames, cfg.pad_mode, device) for f in folds]
    ys = [torch.as_tensor(f.y, dtype=torch.long, device=device) for f in folds]
    is10s = [torch.as_tensor(f.is10, device=device) if model_cfg.use_is10 else None for f in folds]
    crop_sets = [epoch_crops(bank, cfg, f.seed) for bank, f in zip(banks, folds)]
    aux = cfg.aux_loss > 0

    def fold_step(p, b, x, y, is10):
        with autocast(device, cfg.precision):
            recon, logits, deep = functional_call(
                twin, (p, b), (x, y, is10), {"detach_latent": not cfg.classifier_grad_to_encoder}
            )
            aux_logits = F.linear(deep, p["classifier.aux.weight"], p["classifier.aux.bias"]) if aux else None
        loss, l_ae, l_ec = joint_loss(recon, x, logits, y, cfg.lam)
        if aux_logits is not None:
            loss = loss + cfg.aux_loss * F.cross_entropy(aux_logits.float(), y)
        return loss, torch.stack([l_ae.detach(), l_ec.detach(), (logits.detach().argmax(1) == y).sum().float()])

    # one functional step, vmapped over the folds' stacked weights, buffers and batches (IS10: when the row has it)
    stacked_step = vmap(fold_step, in_dims=(0, 0, 0, 0, 0 if model_cfg.use_is10 else None), randomness="different")

    lr_t = torch.tensor(cfg.lr, dtype=torch.float64, device=device)  # float64: the same numbers as a float
    all_rows = torch.arange(n_folds, device=device)

    def vmapped_step(x, y, is10, rows=all_rows):
        """One vmapped step of the folds ``rows`` and their Adam updates; their (L_AE, L_EC, #correct)."""
        full = len(rows) == n_folds
        for t in params.values():
            t.grad = None
        p = params if full else {k: v[rows] for k, v in params.items()}
        b = buffers if full else {k: v[rows] for k, v in buffers.items()}
        loss, stats = stacked_step(p, b, x, y, is10)
        loss.sum().backward()  # fold f's loss depends on fold f's weights only
        if not full:
            with torch.no_grad():
                for k, v in buffers.items():
                    v[rows] = b[k]  # batch-norm statistics updated on the gathered copy
        _adam_rows(params, {k: t.grad for k, t in params.items()}, state, rows, cfg, lr_t)
        return stats

    all_folds_step = (
        graphed.GraphedCall(
            vmapped_step,
            replayable=lambda x, *_: x.shape[1] == cfg.batch_size,
            backend=graphed.graph_backend(device, graph_backend),
        )
        if cuda_graphs
        else vmapped_step
    )

    # Not vectorized: each fold trains on leaf views of its slice of the stacked weights (shared storage, so
    # updating a view updates the stack; each view's .grad is that fold's own, not a stack-sized tensor).
    fold_weights = [{k: v[f].detach().requires_grad_() for k, v in params.items()} for f in range(n_folds)]
    fold_buffers = [{k: v[f] for k, v in buffers.items()} for f in range(n_folds)]  # BN updates the stack

    def steps_in_turn(group, x, y, is10, lr):
        """The folds' steps one after the other, each drawing its dropout masks from its own global stream
        (restored before, kept after) and taking its own Adam step: train_fold's step, fold by fold."""
        stats = []
        for i, f in enumerate(group):
            _set_rng_state(device, streams[f])
            for w in fold_weights[f].values():
                w.grad = None
            loss, stat = fold_step(fold_weights[f], fold_buffers[f], x[i], y[i], None if is10 is None else is10[i])
            loss.backward()
            streams[f] = _rng_state(device)
            _adam_fold(fold_weights[f], state, f, cfg, lr)
            stats.append(stat)
        return torch.stack(stats)

    last_save = time.monotonic()
    bar = epoch_bar(start_epoch, cfg, progress, desc=f"epochs ({n_folds} folds)")
    for epoch in bar:
        t_epoch = time.perf_counter()
        twin.train()
        lr = epoch_lr(cfg, epoch)
        lr_t.fill_(lr)
        batches = [epoch_batches(len(f.y), cs, cfg, gen, device) for cs, f, gen in zip(crop_sets, folds, gens)]
        sums = np.zeros((n_folds, 3))
        seen = np.zeros(n_folds, dtype=np.int64)
        steps = np.zeros(n_folds, dtype=np.int64)
        pending = []  # (folds, their batch sizes, their stats on the device): read once the epoch's steps are queued
        for s in range(max(len(b) for b in batches)):
            draws = {}  # fold -> (utterances, crops, IS10 rows), drawn in train_fold's order
            for f in range(n_folds):
                if s >= len(batches[f]):
                    continue
                pick = batches[f][s]
                if crop_sets[f] is None:
                    idx, x = pick, banks[f].random_crops(pick, gens[f])
                else:
                    idx = crop_sets[f][0][pick]
                    x = banks[f].gather(idx, crop_sets[f][1][pick])
                draws[f] = (idx, x, is10_for_step(is10s[f][idx] if is10s[f] is not None else None, cfg, epoch, gens[f]))
            by_size: dict[int, list[int]] = {}
            for f, (idx, _, _) in draws.items():
                by_size.setdefault(len(idx), []).append(f)
            for group in by_size.values():  # folds whose batches have one size step together
                full = len(group) == n_folds
                x = torch.stack([draws[f][1] for f in group])
                y = torch.stack([ys[f][draws[f][0]] for f in group])
                is10 = torch.stack([draws[f][2] for f in group]) if model_cfg.use_is10 else None
                if vectorize and full:
                    stats = all_folds_step(x, y, is10)
                elif vectorize:
                    stats = vmapped_step(x, y, is10, torch.tensor(group, device=device))
                else:
                    stats = steps_in_turn(group, x, y, is10, lr)
                pending.append((group, [len(draws[f][0]) for f in group], stats.detach()))
        for group, sizes, stats in pending:
            stats = stats.double().cpu().numpy()  # as float(): the sums below match train_fold's
            for i, (f, n) in enumerate(zip(group, sizes)):
                sums[f] += (stats[i, 0] * n, stats[i, 1] * n, stats[i, 2])
                seen[f] += n
                steps[f] += 1
        seconds = time.perf_counter() - t_epoch
        stacked = {**params, **buffers}
        for f in range(n_folds):
            prev = histories[f][-1] if histories[f] else {}
            record = {
                "epoch": epoch + 1,
                "loss_ae": float(sums[f, 0] / seen[f]),
                "loss_ec": float(sums[f, 1] / seen[f]),
                "loss_total": float((sums[f, 0] + cfg.lam * sums[f, 1]) / seen[f]),
                "train_crop_acc": float(100 * sums[f, 2] / seen[f]),
                "steps": int(steps[f]) + prev.get("steps", 0),
                "crops_seen": int(seen[f]) + prev.get("crops_seen", 0),
                "precision": precision,
                "seconds": round(seconds / n_folds, 2),  # this fold's share of the stacked epoch
                "batched_folds": n_folds,
                "vectorized": vectorize,
            }
            if cuda_graphs:
                record["cuda_graphs"] = True
            if on_epoch[f] is not None:
                record.update(on_epoch[f](epoch + 1, unstack(stacked, f, models[f])) or {})
            histories[f].append(record)
        bar.set_postfix(ec=f"{np.mean(sums[:, 1] / seen):.3f}")
        last = epoch + 1 == cfg.epochs
        if checkpoint is not None and (last or time.monotonic() - last_save >= checkpoint_every_s):
            _save_atomic(
                {
                    "params": {k: v.detach() for k, v in params.items()},
                    "buffers": buffers,
                    "adam": state,
                    "generators": [g.get_state() for g in gens],
                    "torch_rng": torch.get_rng_state(),
                    "cuda_rng": torch.cuda.get_rng_state() if device.type == "cuda" else None,
                    "histories": histories,
                    "streams": streams,
                    "epoch": epoch + 1,
                    "seeds": [fold.seed for fold in folds],
                    "sizes": [len(f.y) for f in folds],
                },
                Path(checkpoint),
            )
            last_save = time.monotonic()
        for f in range(n_folds):
            if after_epoch[f] is not None:
                after_epoch[f](histories[f])
    out = []
    stacked = {**params, **buffers}
    for f, fold in enumerate(folds):
        model = unstack(stacked, f, models[f])
        if cfg.bn_stats == "recalibrate":
            recalibrate_batch_norm(model, banks[f], cfg, fold.seed, device)
        out.append((model, histories[f]))
    return out
