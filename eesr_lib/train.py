"""The joint-loss training loop (§III, eq. 2-4) and utterance-level evaluation.

    L_Total = L_AE + λ·L_EC,   L_AE = |x' - x|_1,   L_EC = -log P(y | encoder(x))

Choices the paper leaves open, all fields of :class:`TrainConfig`:
- λ (``lam``): not given; default 1.
- L_AE is the *mean* absolute error per spectrogram value and L_EC the mean
  cross-entropy per crop (the paper writes sums; means keep λ independent of batch size).
- "40 epochs" on "the dataset" of 128-frame training samples: what an epoch is, i.e. the
  training budget, is ``crop_set`` (see :data:`CROP_SETS` and book/choices.md): by default
  ``crops_per_epoch`` (1) fresh random crop(s) of every training utterance per epoch, in
  shuffled batches of ``batch_size`` (default 32; not given). Each epoch record counts the
  optimizer steps and crops seen, so budgets compare across definitions.
- Adam with lr 1e-4, β = (0.9, 0.999) as in the paper; no weight decay, no schedule.
- Does L_EC train the encoder? Eq. 3 names only the attention and classifier
  parameters, but the joint objective of eq. 4 is minimized end to end in the usual
  reading; ``classifier_grad_to_encoder`` (default True) makes this a switch.
- Departures from the paper's single-stage recipe, all off by default, to keep the deep
  branch learning once IS10 has fitted the training set: ``two_stage_epochs`` (the first
  epochs without IS10), ``is10_dropout`` (modality dropout) and ``aux_loss`` (a deep-only
  auxiliary classifier). See :func:`is10_for_step`.
- Test time: every 128-frame window (hop ``window_hop``) of an utterance is classified
  without the decoder and without the label; the utterance's scores are the mean of the
  windows' softmax probabilities (``score_average="prob"``) or logits (``"logit"``).
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from .crops import CropBank, window_starts
from .errors import EESRError
from .model import EESR, ModelConfig

PRECISIONS = ("auto", "fp32", "bf16")
BN_STATS = ("recalibrate", "running")
LR_SCHEDULES = ("constant", "cosine")
# What one epoch passes over. "random": ``crops_per_epoch`` fresh uniform crops of every utterance,
# drawn anew each epoch (the paper's Fig. 2 sampling; today's default). "fixed": ``crops_per_epoch``
# crops per utterance drawn once before training and reused (a data set of training samples, as
# Chou et al.'s pipeline indexes segments up front). "windows": every window with hop ``crop_hop``
# of every utterance, the literal "data set" of 128-frame samples.
CROP_SETS = ("random", "fixed", "windows")


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 40
    batch_size: int = 32
    lr: float = 1e-4
    beta1: float = 0.9
    beta2: float = 0.999
    weight_decay: float = 0.0
    lr_schedule: str = "constant"  # "constant" (Adam at lr throughout) or "cosine" (lr -> 0 over the epochs)
    lam: float = 1.0  # λ in eq. 4
    crops_per_epoch: int = 1  # crop_set "random" and "fixed": crops of every utterance per epoch
    crop_set: str = "random"  # what an epoch is: see CROP_SETS
    crop_hop: int = 64  # crop_set "windows": hop between training windows
    classifier_grad_to_encoder: bool = True
    pad_mode: str = "zero"
    window_hop: int = 64
    score_average: str = "prob"
    precision: str = "auto"  # "auto", "fp32" or "bf16" (autocast); see resolved_precision and benchmarks/
    eval_batch_size: int = 64
    # Batch-norm rows of Table 4 only: the statistics BN uses at test time. "recalibrate": estimated
    # after training over the training crops with dropout off (see recalibrate_batch_norm);
    # "running": PyTorch's running averages from the training steps. No effect on IN models.
    bn_stats: str = "recalibrate"
    # Departures from the paper (all 0 = its single-stage recipe); no effect on rows without IS10.
    two_stage_epochs: int = 0  # (a) the first epochs train the deep branch alone (IS10 zeroed), then fused
    is10_dropout: float = 0.0  # (b) probability that a training crop's IS10 vector is zeroed
    aux_loss: float = 0.0  # (c) weight of a cross-entropy on the deep feature alone (its own linear head)

    def __post_init__(self):
        if self.epochs < 1 or self.batch_size < 2 or self.crops_per_epoch < 1:
            raise EESRError("epochs and crops_per_epoch must be >= 1 and batch_size >= 2")
        if self.score_average not in ("prob", "logit"):
            raise EESRError(f"score_average must be 'prob' or 'logit', got '{self.score_average}'")
        if self.lr_schedule not in LR_SCHEDULES:
            raise EESRError(f"lr_schedule must be one of {LR_SCHEDULES}, got '{self.lr_schedule}'")
        if self.precision not in PRECISIONS:
            raise EESRError(f"precision must be one of {PRECISIONS}, got '{self.precision}'")
        if self.bn_stats not in BN_STATS:
            raise EESRError(f"bn_stats must be one of {BN_STATS}, got '{self.bn_stats}'")
        if self.crop_set not in CROP_SETS:
            raise EESRError(f"crop_set must be one of {CROP_SETS}, got '{self.crop_set}'")
        if self.crop_hop < 1:
            raise EESRError(f"crop_hop must be >= 1, got {self.crop_hop}")
        if not 0 <= self.is10_dropout < 1:
            raise EESRError(f"is10_dropout must be in [0, 1), got {self.is10_dropout}")
        if not 0 <= self.two_stage_epochs < self.epochs:
            raise EESRError(f"two_stage_epochs must be in [0, epochs), got {self.two_stage_epochs}")
        if self.aux_loss < 0:
            raise EESRError(f"aux_loss must be >= 0, got {self.aux_loss}")


def resolve_device(device: str = "auto") -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise EESRError("--device cuda was asked for, but torch sees no CUDA GPU")
    return torch.device(device)


@functools.cache
def cpu_has_bf16() -> bool:
    """Whether this CPU computes bf16 natively (AVX512-BF16 or AMX), i.e. bf16 autocast pays off on it."""
    for probe in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"):
        try:
            if getattr(torch.cpu, probe)():
                return True
        except (AttributeError, RuntimeError):
            pass
    return False


def _resolve(precision: str, device: torch.device) -> str:
    if precision != "auto":
        return precision
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    return "bf16" if device.type == "cpu" and cpu_has_bf16() else "fp32"


def resolved_precision(cfg: TrainConfig, device: str | torch.device) -> str:
    """What ``cfg.precision`` means on ``device``: "auto" is bf16 autocast on CUDA GPUs with bf16 and on CPUs
    with native bf16 (faster at the same losses: benchmarks/README.md), fp32 elsewhere."""
    return _resolve(cfg.precision, torch.device(device))


def autocast(device: torch.device, precision: str, cache: bool = True) -> contextlib.AbstractContextManager:
    """bf16 autocast where ``precision`` resolves to it. ``cache=False`` inside a CUDA graph capture: the
    cast-weight cache would hold tensors from the capture's private memory pool beyond it."""
    if _resolve(precision, device) == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16, cache_enabled=cache)
    return contextlib.nullcontext()


def standardize_is10(train: np.ndarray, *others: np.ndarray) -> list[np.ndarray]:
    """z-score IS10 with the *training* utterances' statistics only (no test leakage)."""
    mean = train.mean(axis=0)
    std = train.std(axis=0)
    std[std < 1e-8] = 1.0  # constant features (a few IS10 functionals) stay 0
    return [((a - mean) / std).astype(np.float32) for a in (train, *others)]


def joint_loss(
    recon: torch.Tensor, x: torch.Tensor, logits: torch.Tensor, y: torch.Tensor, lam: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(total, L_AE, L_EC)`` of eq. 4 (means, see the module docstring)."""
    l_ae = F.l1_loss(recon.float(), x)
    l_ec = F.cross_entropy(logits.float(), y)
    return l_ae + lam * l_ec, l_ae, l_ec


def step_stats(
    model: EESR, opt, x, y, is10, cfg: TrainConfig, device: torch.device, cache: bool = True
) -> torch.Tensor:
    """One optimizer step on a batch of crops; returns ``(L_AE, L_EC, #correct)`` as one tensor on the
    device, so that a caller may collect them without waiting for the device after every step (a CUDA
    graph replays exactly this, :mod:`eesr_lib.graphed`). ``cache``: see :func:`autocast`.

    With ``cfg.aux_loss`` > 0 the deep feature alone is classified too (``model.classifier.aux``)
    and ``aux_loss`` times its cross-entropy joins the total: a departure from eq. 4."""
    with autocast(device, cfg.precision, cache):
        recon, logits, deep = model(x, y, is10, detach_latent=not cfg.classifier_grad_to_encoder)
        aux_logits = model.classifier.aux(deep) if cfg.aux_loss > 0 else None
    loss, l_ae, l_ec = joint_loss(recon, x, logits, y, cfg.lam)
    if aux_logits is not None:
        loss = loss + cfg.aux_loss * F.cross_entropy(aux_logits.float(), y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return torch.stack([l_ae.detach(), l_ec.detach(), (logits.detach().argmax(1) == y).sum().float()])


def train_step(model: EESR, opt, x, y, is10, cfg: TrainConfig, device: torch.device) -> tuple[float, float, float]:
    """:func:`step_stats` as Python numbers: (L_AE, L_EC, #correct)."""
    l_ae, l_ec, correct = step_stats(model, opt, x, y, is10, cfg, device).tolist()
    return l_ae, l_ec, correct


def is10_for_step(is10: torch.Tensor | None, cfg: TrainConfig, epoch: int, gen: torch.Generator):
    """The IS10 rows a training step sees (0-based ``epoch``): zeroed throughout the first
    ``two_stage_epochs`` (stage one: the classifier must use the deep feature), and afterwards
    each row zeroed with probability ``is10_dropout`` (modality dropout). Zero is the training
    mean of the standardized features, i.e. "no information". At test time IS10 is always there.

    Why: with IS10 the fused rows fit the training set by about epoch 25 and the encoder then
    receives almost no classification gradient; both options keep the deep branch learning.
    Random draws come from ``gen`` only when ``is10_dropout`` > 0, so the default recipe's
    random stream is unchanged."""
    if is10 is None:
        return None
    if epoch < cfg.two_stage_epochs:
        return torch.zeros_like(is10)
    if cfg.is10_dropout > 0:
        keep = torch.rand(len(is10), generator=gen) >= cfg.is10_dropout
        return is10 * keep.to(is10.device, is10.dtype).unsqueeze(1)
    return is10


def epoch_crops(bank: CropBank, cfg: TrainConfig, seed: int) -> tuple[torch.Tensor, torch.Tensor] | None:
    """The fixed crop set of ``crop_set`` "fixed" or "windows" as (utterance index, start frame)
    tensors, or None for "random" (crops drawn each epoch). "fixed" draws with its own generator
    (``seed + 2``), so the set does not depend on where training stands."""
    if cfg.crop_set == "random":
        return None
    lengths = bank.lengths.cpu().numpy()
    if cfg.crop_set == "windows":
        starts = [window_starts(int(length), bank.frames, cfg.crop_hop) for length in lengths]
    else:
        rng = np.random.default_rng(seed + 2)
        starts = [rng.integers(0, int(length) - bank.frames + 1, size=cfg.crops_per_epoch) for length in lengths]
    utt = np.concatenate([np.full(len(s), i) for i, s in enumerate(starts)])
    device = bank.data.device
    return torch.from_numpy(utt).to(device), torch.from_numpy(np.concatenate(starts).astype(np.int64)).to(device)


def crops_per_epoch(lengths: np.ndarray, cfg: TrainConfig, frames: int = 128) -> int:
    """How many training crops one epoch passes over, for utterances of ``lengths`` frames
    (after padding to ``frames``): the budget of an epoch in crops, whatever ``crop_set`` is."""
    if cfg.crop_set == "windows":
        return int(sum(len(window_starts(max(int(n), frames), frames, cfg.crop_hop)) for n in lengths))
    return int(len(lengths) * cfg.crops_per_epoch)


def epoch_batches(n: int, crop_set, cfg: TrainConfig, gen: torch.Generator, device) -> list[torch.Tensor]:
    """One epoch's batches: shuffled indices of the ``n`` training utterances (``crops_per_epoch`` passes)
    or of the fixed ``crop_set``, drawn from ``gen``, in batches of ``cfg.batch_size``. A last batch of
    one is dropped: it would break batch norm in the BN rows."""
    if crop_set is None:
        order = torch.cat([torch.randperm(n, generator=gen) for _ in range(cfg.crops_per_epoch)]).to(device)
    else:
        order = torch.randperm(len(crop_set[0]), generator=gen).to(device)
    batches = (order[b : b + cfg.batch_size] for b in range(0, len(order), cfg.batch_size))
    return [pick for pick in batches if len(pick) >= 2]


def epoch_bar(start_epoch: int, cfg: TrainConfig, progress: bool, desc: str = "epochs") -> tqdm:
    """The progress bar over a training run's epochs (starting where a resumed run starts)."""
    return tqdm(
        range(start_epoch, cfg.epochs),
        desc=desc,
        unit="ep",
        disable=not progress,
        initial=start_epoch,
        total=cfg.epochs,
    )


def _save_atomic(obj, path: Path) -> None:
    tmp = path.with_suffix(path.suffix + f".{os.getpid()}.tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def epoch_lr(cfg: TrainConfig, epoch: int) -> float:
    """Learning rate of 0-based ``epoch``: the paper's constant 1e-4, or a cosine decay from it
    (half-cosine over the epochs, evaluated at the epoch's start)."""
    if cfg.lr_schedule == "cosine":
        return cfg.lr * 0.5 * (1 + math.cos(math.pi * epoch / cfg.epochs))
    return cfg.lr


def set_epoch_lr(opt: torch.optim.Optimizer, cfg: TrainConfig, epoch: int) -> None:
    """Set every parameter group to :func:`epoch_lr`: a function of the epoch alone, so resuming
    from a checkpoint needs no scheduler state."""
    for group in opt.param_groups:
        if torch.is_tensor(group["lr"]):  # a CUDA graph's optimizer reads its rate from one fixed tensor
            group["lr"].fill_(epoch_lr(cfg, epoch))
        else:
            group["lr"] = epoch_lr(cfg, epoch)


# One fold's checkpoint is ~325 MB (27 M weights and Adam's two moments): written every epoch it cost 0.3-1 s
# of a ~11 s CPU epoch (benchmarks/README.md), more of a GPU's. An interruption loses at most this much training.
CHECKPOINT_EVERY_S = 120.0


def train_fold(
    model_cfg: ModelConfig,
    cfg: TrainConfig,
    specs: list[np.ndarray],
    is10: np.ndarray | None,
    y: np.ndarray,
    seed: int = 0,
    device: str | torch.device = "cpu",
    checkpoint: str | Path | None = None,
    progress: bool = True,
    on_epoch=None,
    after_epoch=None,
    cuda_graphs: bool = False,
    graph_backend=None,
    checkpoint_every_s: float | None = None,
) -> tuple[EESR, list[dict]]:
    """Train a fresh model on one fold's training utterances; resumes from ``checkpoint``.

    ``is10`` must already be standardized (see :func:`standardize_is10`). At the end of an epoch, when
    ``checkpoint_every_s`` (None: :data:`CHECKPOINT_EVERY_S`, read at the call) have passed since the last
    write, and after the last epoch, the full state (model, optimizer, RNGs, loss history) is written
    atomically to ``checkpoint``, so an interrupted fold continues after the last epoch written with the
    same random stream it would have had. ``on_epoch(epoch, model)`` may return entries to add to
    the epoch's history record (e.g. a validation score); ``after_epoch(history)`` sees the
    history once the epoch is recorded (and checkpointed, when it is; e.g. to write a partial learning curve).
    Each record counts the optimizer ``steps`` and training ``crops_seen`` since the start of
    training: the budget in units that do not depend on what an "epoch" was taken to mean.

    ``cuda_graphs``: replay each full batch's step from a CUDA graph (:mod:`eesr_lib.graphed`; CUDA only,
    or any device with ``graph_backend``, the tests' :class:`~eesr_lib.graphed.RerunGraphs`).
    """
    device = torch.device(device)
    torch.manual_seed(seed)
    model = EESR(model_cfg).to(device)
    if cuda_graphs:
        from . import graphed  # here, not at the top: graphed imports this module
    on_cuda_graphs = cuda_graphs and graph_backend is None  # not the tests' stand-in
    if on_cuda_graphs:
        graphed.check_device(device)
        opt = graphed.capturable_adam(model, cfg, device)
    else:
        opt = torch.optim.Adam(
            model.parameters(), lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), weight_decay=cfg.weight_decay
        )
    gen = torch.Generator(device="cpu").manual_seed(seed)
    history: list[dict] = []
    start_epoch = 0
    if checkpoint is not None and Path(checkpoint).exists():
        state = torch.load(checkpoint, map_location=device, weights_only=False)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        # map_location moved the RNG states to `device` too; the setters want CPU byte tensors
        gen.set_state(state["generator"].cpu())
        torch.set_rng_state(state["torch_rng"].cpu())
        if device.type == "cuda" and state.get("cuda_rng") is not None:
            torch.cuda.set_rng_state(state["cuda_rng"].cpu())
        history = state["history"]
        start_epoch = state["epoch"]
        if on_cuda_graphs:
            graphed.make_capturable(opt, device)  # load_state_dict brought back the saved run's settings

    precision = resolved_precision(cfg, device)  # recorded in each epoch's history
    bank = CropBank(specs, model_cfg.crop_frames, cfg.pad_mode, device)
    y_t = torch.as_tensor(y, dtype=torch.long, device=device)
    is10_t = torch.as_tensor(is10, device=device) if model_cfg.use_is10 else None
    n = len(specs)
    crop_set = epoch_crops(bank, cfg, seed)  # None: fresh random crops each epoch
    step = graphed.graphed_train_step(model, opt, cfg, device, graph_backend) if cuda_graphs else None
    every_s = CHECKPOINT_EVERY_S if checkpoint_every_s is None else checkpoint_every_s
    last_save = time.monotonic()
    bar = epoch_bar(start_epoch, cfg, progress)
    for epoch in bar:
        t_epoch = time.perf_counter()
        model.train()
        set_epoch_lr(opt, cfg, epoch)
        sums = np.zeros(3)
        seen = steps = 0
        pending = []  # a graphed step's (L_AE, L_EC, #correct) stays on the device until the epoch ends
        for pick in epoch_batches(n, crop_set, cfg, gen, device):
            if crop_set is None:
                idx = pick
                x = bank.random_crops(idx, gen)
            else:
                idx = crop_set[0][pick]
                x = bank.gather(idx, crop_set[1][pick])
            is10_b = is10_for_step(is10_t[idx] if is10_t is not None else None, cfg, epoch, gen)
            if step is None:
                l_ae, l_ec, correct = train_step(model, opt, x, y_t[idx], is10_b, cfg, device)
                sums += (l_ae * len(idx), l_ec * len(idx), correct)
            else:
                pending.append((step(x, y_t[idx], is10_b), len(idx)))
            seen += len(idx)
            steps += 1
        if pending:
            read = torch.stack([st for st, _ in pending]).cpu().tolist()  # one wait for the device per epoch
            for (l_ae, l_ec, correct), (_, n_b) in zip(read, pending):
                sums += (l_ae * n_b, l_ec * n_b, correct)
        record = {
            "epoch": epoch + 1,
            "loss_ae": float(sums[0] / seen),
            "loss_ec": float(sums[1] / seen),
            "loss_total": float((sums[0] + cfg.lam * sums[1]) / seen),
            "train_crop_acc": float(100 * sums[2] / seen),
            "steps": steps + (history[-1].get("steps", 0) if history else 0),
            "crops_seen": seen + (history[-1].get("crops_seen", 0) if history else 0),
            "precision": precision,
            "seconds": round(time.perf_counter() - t_epoch, 2),  # kept across resumes: the fold's true cost
        }
        if step is not None:
            record["cuda_graphs"] = True
        if on_epoch is not None:
            record.update(on_epoch(epoch + 1, model) or {})
        history.append(record)
        bar.set_postfix(ae=f"{record['loss_ae']:.4f}", ec=f"{record['loss_ec']:.3f}")
        if checkpoint is not None and (epoch + 1 == cfg.epochs or time.monotonic() - last_save >= every_s):
            last_save = time.monotonic()
            _save_atomic(
                {
                    "model": model.state_dict(),
                    "optimizer": opt.state_dict(),
                    "generator": gen.get_state(),
                    "torch_rng": torch.get_rng_state(),
                    "cuda_rng": torch.cuda.get_rng_state() if device.type == "cuda" else None,
                    "history": history,
                    "epoch": epoch + 1,
                },
                Path(checkpoint),
            )
        if after_epoch is not None:
            after_epoch(history)
    if cfg.bn_stats == "recalibrate":
        recalibrate_batch_norm(model, bank, cfg, seed, device)
    return model, history


RECALIBRATION_PASSES = 2  # random crops of every training utterance, averaged into the BN statistics


def recalibrates(model_cfg: ModelConfig, cfg: TrainConfig) -> bool:
    """Whether scoring the model needs its batch-norm statistics re-estimated first (:func:`recalibrate_batch_norm`)."""
    return cfg.bn_stats == "recalibrate" and model_cfg.norm == "batch"


@torch.no_grad()
def recalibrate_batch_norm(model: EESR, bank: CropBank, cfg: TrainConfig, seed: int, device: torch.device) -> bool:
    """Replace the encoder's batch-norm running statistics by their average over training crops,
    computed with dropout off, i.e. in the state the model is tested in. Returns False (and does
    nothing) for a model without batch norm.

    Why: with PyTorch's running averages the BN rows of Table 4 (AE-OS, AE, AE+EE) classify at
    chance level in eval mode (AE-OS, EMODB 5-fold, 40 epochs: UA 18.7, predictions on one or two
    classes; after 8 epochs on fold 0 even its own training utterances: 16.2), while the same
    weights do far better with statistics re-estimated after training (AE-OS fold 0 after 8
    epochs: 14.3 -> 29.8 UA). The running averages (momentum 0.1) follow weights that changed
    under them; the network learned with batch statistics and is tested with whatever the last
    steps left behind. Dropout off makes the statistics those of the test-time network (Li et
    al., 2019, on the dropout/BN variance shift); on that fold it made little difference (30.7
    with dropout on). BN here is always ``BatchNorm1d`` (``model.make_norm``). Only the encoder
    is recalibrated: the decoder's BN is never used at test time.
    """
    bns = [m for m in model.encoder.modules() if isinstance(m, torch.nn.BatchNorm1d)]
    if not bns:
        return False
    gen = torch.Generator(device="cpu").manual_seed(seed + 1)
    model.eval()  # dropout off ...
    momenta = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # a cumulative (equal-weight) average over the batches below
        m.train()  # ... but BN in training mode, so that it accumulates statistics
    n = len(bank)
    for _ in range(RECALIBRATION_PASSES):
        order = torch.randperm(n, generator=gen).to(bank.data.device)
        for b in range(0, n, cfg.batch_size):
            idx = order[b : b + cfg.batch_size]
            if len(idx) < 2:
                continue
            with autocast(device, cfg.precision):
                model.encoder(bank.random_crops(idx, gen))
    for m, momentum in zip(bns, momenta):
        m.momentum = momentum
    model.eval()
    return True


@torch.no_grad()
def predict_utterances(
    model: EESR,
    specs: list[np.ndarray],
    is10: np.ndarray | None,
    cfg: TrainConfig,
    device: str | torch.device = "cpu",
    scorer=None,
) -> tuple[np.ndarray, np.ndarray]:
    """Utterance scores ``(N, K)`` (mean over windows) and mean deep features ``(N, D)``.

    Only the encoder and classifier run; labels are not an input here. ``scorer(crops, is10)`` replaces
    ``model.classify`` under autocast, e.g. :func:`eesr_lib.graphed.graphed_scorer` of the same model.
    """
    device = torch.device(device)
    model.eval()
    bank = CropBank(specs, model.cfg.crop_frames, cfg.pad_mode, device)
    utt, starts = [], []
    for i, length in enumerate(bank.lengths.tolist()):
        s = window_starts(length, model.cfg.crop_frames, cfg.window_hop)
        utt.append(np.full(len(s), i))
        starts.append(s)
    utt_t = torch.from_numpy(np.concatenate(utt)).to(device)
    starts_t = torch.from_numpy(np.concatenate(starts)).to(device)
    is10_t = torch.as_tensor(is10, device=device) if model.cfg.use_is10 else None
    n, k = len(specs), model.cfg.n_classes
    scores = torch.zeros(n, k, device=device)
    deep = torch.zeros(n, model.cfg.deep_dim, device=device)
    for b in range(0, len(utt_t), cfg.eval_batch_size):
        u = utt_t[b : b + cfg.eval_batch_size]
        crops = bank.gather(u, starts_t[b : b + cfg.eval_batch_size])
        rows = is10_t[u] if is10_t is not None else None
        if scorer is None:
            with autocast(device, cfg.precision):
                logits, d = model.classify(crops, rows)
        else:
            logits, d = scorer(crops, rows)
        s = logits.float().softmax(1) if cfg.score_average == "prob" else logits.float()
        scores.index_add_(0, u, s)
        deep.index_add_(0, u, d.float())
    counts = torch.bincount(utt_t, minlength=n).unsqueeze(1).float()
    return (scores / counts).cpu().numpy(), (deep / counts).cpu().numpy()
