"""A trained model as a folder anyone can load without running code: a *model bundle*.

What ``eesr train`` (and ``eesr run --keep-weights``, one per fold) writes::

    <name>.bundle/
        bundle.json           labels, model + training + spectrogram configs, the weights file's size
                              and SHA-256, what it was trained on (history included), provenance
        weights.safetensors   the encoder and classifier tensors (no decoder: it is not used to
                              classify), plus ``is10.mean`` / ``is10.std``, the IS10 standardization
                              of the training utterances (always fp32)

Weights are fp32 by default (about 67 MB for the paper's network): exact, so a bundle scores a
file as the model that was trained does. ``weights_dtype="bf16"`` (``eesr train --bf16``)
halves the size at the cost of rounding every weight to 8 significant bits; loading casts back to fp32.

Loading never executes code: JSON and safetensors only; no pickle, no ``torch.load``. A file
that is not what the bundle says it is (a pickle payload in place of the weights, a truncated or
modified file, a config whose classes, fields or tensor shapes do not fit) is refused with one
:class:`~eesr_lib.errors.EESRError` naming the file.

Test-time path (the same as :func:`eesr_lib.train.predict_utterances`): the file is read as
16 kHz mono (:func:`~eesr_lib.audio.read_audio` converts any rate and channel count), its
spectrogram and IS10 functionals are computed as in training (:mod:`eesr_lib.features`), IS10
is standardized with the training statistics, every 128-frame window (hop ``window_hop``; a
short utterance is padded like in training, ``pad_mode``) is classified, and the utterance's
probabilities are the mean of the windows' (``score_average="prob"``; with ``"logit"`` the
softmax of the mean logits). Inference always runs in fp32.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import shutil
import struct
import warnings
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn as nn

from .audio import read_audio
from .crops import window_starts, windows
from .errors import EESRError
from .features import SpectrogramParams, is10_functionals, log_magnitude_spectrogram
from .model import Classifier, Encoder, ModelConfig
from .train import TrainConfig

if TYPE_CHECKING:
    from .corpora import Corpus

FORMAT = "eesr-bundle"
VERSION = 1
CONFIG_FILE = "bundle.json"
WEIGHTS_FILE = "weights.safetensors"
WEIGHT_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}
STAT_KEYS = ("is10.mean", "is10.std")
_PARTS = ("encoder.", "classifier.")
MODELS_DIR = Path(__file__).resolve().parents[1] / "models"  # the models committed with a checkout


class EESRClassifier(nn.Module):
    """The test-time network: encoder + attention/IS10 classifier, i.e. :meth:`EESR.classify`
    without the decoder. Its state-dict keys are those of :class:`~eesr_lib.model.EESR`."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.encoder = Encoder(cfg)
        self.classifier = Classifier(cfg)

    def forward(self, x: torch.Tensor, is10: torch.Tensor | None = None) -> torch.Tensor:
        """Logits ``(B, n_classes)`` of crops ``(B, n_bins, crop_frames)`` and standardized IS10 ``(B, 1582)``."""
        return self.classifier(self.encoder(x), is10)[0]


def is10_statistics(train: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The mean and std that :func:`eesr_lib.train.standardize_is10` standardizes with."""
    mean = train.mean(axis=0)
    std = train.std(axis=0)
    std[std < 1e-8] = 1.0
    return mean.astype(np.float32), std.astype(np.float32)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax of ``(N, K)`` logits, in float32 like torch's."""
    z = np.asarray(logits, dtype=np.float32)
    z = np.exp(z - z.max(axis=-1, keepdims=True))
    return z / z.sum(axis=-1, keepdims=True)


# ------------------------------------------------------------------ save


def save_bundle(
    path: str | Path,
    model: nn.Module,
    labels: tuple[str, ...] | list[str],
    train_cfg: TrainConfig,
    is10_train: np.ndarray | None,
    *,
    spectrogram: SpectrogramParams = SpectrogramParams(),
    info: dict | None = None,
    weights_dtype: str = "fp32",
    device: str | torch.device = "cpu",
) -> Path:
    """Write ``model`` (an :class:`~eesr_lib.model.EESR` or :class:`EESRClassifier`) as a bundle.

    ``is10_train``: the *raw* IS10 matrix of the training utterances (its mean and std are
    stored), or None for a model without IS10. ``info``: what it was trained on (kept in
    ``bundle.json`` under ``training``). The folder is replaced atomically.
    """
    from .provenance import provenance

    cfg: ModelConfig = model.cfg
    labels = [str(x) for x in labels]
    if len(labels) != cfg.n_classes:
        raise EESRError(f"{len(labels)} labels for a model of {cfg.n_classes} classes")
    if weights_dtype not in WEIGHT_DTYPES:
        raise EESRError(f"weights_dtype must be one of {list(WEIGHT_DTYPES)}, got '{weights_dtype}'")
    from safetensors.torch import save_file

    tensors = {}
    for key, value in model.state_dict().items():
        if key.startswith(_PARTS):
            value = value.detach().to("cpu")
            if value.is_floating_point():
                value = value.to(WEIGHT_DTYPES[weights_dtype])
            tensors[key] = value.contiguous()
    if cfg.use_is10:
        if is10_train is None or np.ndim(is10_train) != 2 or np.shape(is10_train)[1] != cfg.is10_dim:
            raise EESRError(
                f"A model with IS10 needs the training IS10 matrix (N, {cfg.is10_dim}) to store its scaling"
            )
        mean, std = is10_statistics(np.asarray(is10_train))
        tensors[STAT_KEYS[0]], tensors[STAT_KEYS[1]] = torch.from_numpy(mean), torch.from_numpy(std)

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    save_file(tensors, str(tmp / WEIGHTS_FILE), metadata={"format": "pt", "eesr": FORMAT})
    os.chmod(tmp / WEIGHTS_FILE, 0o644)  # safetensors writes 0600; a bundle is meant to be shared
    meta = {
        "format": FORMAT,
        "version": VERSION,
        "labels": labels,
        "model": asdict(cfg),
        "train": asdict(train_cfg),
        "spectrogram": asdict(spectrogram),
        "weights": {
            "file": WEIGHTS_FILE,
            "dtype": weights_dtype,
            "bytes": (tmp / WEIGHTS_FILE).stat().st_size,
            "sha256": _sha256(tmp / WEIGHTS_FILE),
        },
        "training": info or {},
        "provenance": provenance(device),
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    (tmp / CONFIG_FILE).write_text(json.dumps(meta, indent=1))
    old = path.with_name(f".{path.name}.{os.getpid()}.old")
    if path.exists():
        os.replace(path, old)
    os.replace(tmp, path)
    shutil.rmtree(old, ignore_errors=True)
    return path


# ------------------------------------------------------------------ load


def _dataclass_from(cls, values, what: str, where: Path):
    if not isinstance(values, dict):
        raise EESRError(f"{where}: '{what}' must be a JSON object")
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise EESRError(f"{where}: unknown {what} setting(s) {unknown} (written by a newer eesr?)")
    try:
        return cls(**values)
    except (EESRError, TypeError, ValueError) as exc:
        raise EESRError(f"{where}: invalid {what} configuration: {exc}") from exc


def _check_weights_file(path: Path, record: dict) -> None:
    """Refuse anything but the safetensors file the bundle recorded, before parsing it."""
    if not path.is_file():
        raise EESRError(f"Model weights not found: {path}")
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(9)
    # safetensors: an 8-byte little-endian header length, then the JSON header ("{...")
    if len(head) < 9 or head[8:9] != b"{":
        if head[:1] == b"\x80" or head[:4] == b"PK\x03\x04":  # a pickle (protocol 2+), or torch.save's zip
            raise EESRError(
                f"{path} holds a pickle / torch.save payload, not safetensors: refused, since loading a pickle "
                f"can run arbitrary code"
            )
        raise EESRError(f"{path} is not a safetensors file ({size} bytes)")
    if struct.unpack("<Q", head[:8])[0] > size - 8:
        raise EESRError(f"{path} is truncated: its header alone is longer than the file ({size} bytes)")
    if "bytes" in record and size != record["bytes"]:
        raise EESRError(f"{path} has {size} bytes, the bundle recorded {record['bytes']}: truncated or replaced")
    if "sha256" in record and _sha256(path) != record["sha256"]:
        raise EESRError(f"{path} does not match the SHA-256 its bundle recorded: the file was modified or corrupted")


@dataclass
class Bundle:
    """A loaded model bundle: the network and everything needed to score a file with it."""

    path: Path
    network: EESRClassifier
    labels: tuple[str, ...]
    model_cfg: ModelConfig
    train_cfg: TrainConfig
    spectrogram: SpectrogramParams
    is10_mean: np.ndarray | None
    is10_std: np.ndarray | None
    meta: dict

    def features(self, path: str | Path) -> tuple[np.ndarray, np.ndarray | None, list[str]]:
        """``(spectrogram, standardized IS10 or None, notes)`` of one audio file.

        Any rate and channel count is converted; unreadable or empty files raise
        :class:`EESRError`. The rest is :meth:`signal_features`.
        """
        return self.signal_features(read_audio(path, self.spectrogram.sample_rate), str(path))

    def signal_features(self, wav: np.ndarray, name: str = "signal") -> tuple[np.ndarray, np.ndarray | None, list[str]]:
        """:meth:`features` of samples already in memory (mono, at the bundle's sample rate),
        e.g. one segment of a long recording (:mod:`eesr_lib.timeline`); ``name`` labels the notes.

        A signal shorter than one analysis window is padded with silence; IS10 functionals
        openSMILE cannot compute on a very short signal (NaN) take the training mean. Both are
        reported in ``notes``, since either makes the prediction less trustworthy.
        """
        p = self.spectrogram
        wav = np.asarray(wav, dtype=np.float32)
        notes = []
        if wav.ndim != 1 or wav.size == 0:
            raise EESRError(f"{name}: expected a non-empty mono signal, got shape {wav.shape}")
        if not np.isfinite(wav).all():
            raise EESRError(f"Audio file holds NaN or infinite samples: {name}")
        shortest = max(p.win_length, p.n_fft)
        if len(wav) < shortest:
            notes.append(
                f"{name}: {1000 * len(wav) / p.sample_rate:.0f} ms is shorter than one analysis window "
                f"({1000 * shortest / p.sample_rate:.0f} ms); padded with silence"
            )
            wav = np.pad(wav, (0, shortest - len(wav)))
        spec = log_magnitude_spectrogram(wav, p)
        if not self.model_cfg.use_is10:
            return spec, None, notes
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # openSMILE's "Segment too short, filling with NaN"
            raw = is10_functionals(wav, p.sample_rate)
        missing = ~np.isfinite(raw)
        if missing.any():
            notes.append(
                f"{name}: too short for {int(missing.sum())} of the {raw.size} IS10 features; they take the "
                f"training mean"
            )
            raw = np.where(missing, self.is10_mean, raw)
        return spec, ((raw - self.is10_mean) / self.is10_std).astype(np.float32), notes

    def scores(self, spec: np.ndarray, is10: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(utterance probabilities (K,), window probabilities (W, K), window starts in seconds (W,))``."""
        cfg, tc = self.model_cfg, self.train_cfg
        if spec.ndim != 2 or spec.shape[0] != cfg.n_bins:
            raise EESRError(f"Spectrogram of shape {spec.shape}; this model needs ({cfg.n_bins}, frames)")
        crops = windows(spec, cfg.crop_frames, tc.window_hop, tc.pad_mode)
        starts = window_starts(max(spec.shape[1], cfg.crop_frames), cfg.crop_frames, tc.window_hop)
        feats = None if is10 is None else np.repeat(np.reshape(is10, (1, -1)), len(crops), axis=0)
        logits = self.window_logits(crops, feats)
        start_s = starts * self.spectrogram.hop_length / self.spectrogram.sample_rate
        return self.average(logits), softmax(logits), start_s

    @torch.no_grad()
    def window_logits(self, crops: np.ndarray, is10: np.ndarray | None) -> np.ndarray:
        """Logits ``(W, K)`` of windows ``(W, n_bins, crop_frames)`` with one standardized IS10 row
        per window (``(W, 1582)``, or None for a model without IS10), in batches, in fp32."""
        tc = self.train_cfg
        self.network.eval()
        x_all = torch.from_numpy(np.ascontiguousarray(crops, dtype=np.float32))
        f_all = None if is10 is None else torch.from_numpy(np.ascontiguousarray(is10, dtype=np.float32))
        out = []
        for b in range(0, len(x_all), tc.eval_batch_size):
            feats = None if f_all is None else f_all[b : b + tc.eval_batch_size]
            out.append(self.network(x_all[b : b + tc.eval_batch_size], feats).float())
        return torch.cat(out).numpy()

    def average(self, logits: np.ndarray) -> np.ndarray:
        """One utterance's probabilities from its windows' logits ``(W, K)``: the mean of the
        windows' probabilities (``score_average="prob"``) or the softmax of their mean logits."""
        if self.train_cfg.score_average == "prob":
            return softmax(logits).mean(0)
        return softmax(logits.mean(0, keepdims=True))[0]

    @property
    def window_seconds(self) -> float:
        return self.model_cfg.crop_frames * self.spectrogram.hop_length / self.spectrogram.sample_rate

    @property
    def hop_seconds(self) -> float:
        """Seconds between the starts of two scoring windows (the window hop)."""
        return self.train_cfg.window_hop * self.spectrogram.hop_length / self.spectrogram.sample_rate

    def predict_file(self, path: str | Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
        """:meth:`features` then :meth:`scores`: ``(probabilities, window probabilities, starts_s, notes)``."""
        spec, is10, notes = self.features(path)
        return (*self.scores(spec, is10), notes)


def committed_models() -> list[str]:
    """Names of the bundles committed in the checkout's ``models/`` folder (e.g. ``emodb``)."""
    return sorted(p.name for p in MODELS_DIR.glob("*") if (p / CONFIG_FILE).is_file())


def resolve_bundle(path: str | Path) -> Path:
    """``path`` as given if it exists; otherwise a model committed with the checkout, so that
    ``--model emodb`` or ``--model models/emodb`` work from any folder, not only the checkout's root."""
    path = Path(path)
    if path.exists() or path.is_absolute():
        return path
    for candidate in (MODELS_DIR / path, MODELS_DIR.parent / path):
        if (candidate / CONFIG_FILE).is_file():
            return candidate
    return path


def load_bundle(path: str | Path) -> Bundle:
    """Load a bundle folder (or its ``bundle.json``; a committed model by name, :func:`resolve_bundle`);
    see the module for what is refused."""
    path = resolve_bundle(path)
    if path.is_file() and path.name == CONFIG_FILE:
        path = path.parent
    cfg_file = path / CONFIG_FILE
    if not cfg_file.is_file():
        known = committed_models()
        raise EESRError(
            f"Not a model bundle: {path} (expected a folder with {CONFIG_FILE}, as `eesr train` writes"
            + (f"; or a committed model: {', '.join(known)}" if known else "")
            + ")"
        )
    try:
        meta = json.loads(cfg_file.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise EESRError(f"{cfg_file} is not valid JSON: {exc}") from exc
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise EESRError(f"{cfg_file} is not an eesr model bundle (its 'format' is not '{FORMAT}')")
    if not isinstance(meta.get("version"), int) or meta["version"] > VERSION:
        raise EESRError(f"{cfg_file} has bundle version {meta.get('version')!r}; this eesr reads up to {VERSION}")
    labels = meta.get("labels")
    if (
        not isinstance(labels, list)
        or len(labels) < 2
        or not all(isinstance(x, str) and x for x in labels)
        or len(set(labels)) != len(labels)
    ):
        raise EESRError(f"{cfg_file}: 'labels' must be a list of at least 2 distinct class names, got {labels!r}")
    model_cfg = _dataclass_from(ModelConfig, meta.get("model"), "model", cfg_file)
    train_cfg = _dataclass_from(TrainConfig, meta.get("train"), "train", cfg_file)
    spectrogram = _dataclass_from(SpectrogramParams, meta.get("spectrogram", {}), "spectrogram", cfg_file)
    if model_cfg.n_classes != len(labels):
        raise EESRError(
            f"{cfg_file}: the model has n_classes={model_cfg.n_classes} but {len(labels)} labels are named {labels}"
        )
    if spectrogram.n_bins != model_cfg.n_bins:
        raise EESRError(f"{cfg_file}: spectrograms of {spectrogram.n_bins} bins for a model of {model_cfg.n_bins}")

    record = meta.get("weights")
    name = record.get("file") if isinstance(record, dict) else None
    if not isinstance(name, str) or not name or Path(name).name != name:
        raise EESRError(f"{cfg_file}: 'weights.file' must name a file inside the bundle, got {name!r}")
    weights_file = path / name
    _check_weights_file(weights_file, record)
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        tensors = load_file(str(weights_file), device="cpu")
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise EESRError(f"{weights_file} is not a readable safetensors file: {exc}") from exc

    mean = std = None
    stats = [tensors.pop(k, None) for k in STAT_KEYS]
    if model_cfg.use_is10:
        if any(s is None or tuple(s.shape) != (model_cfg.is10_dim,) for s in stats):
            raise EESRError(
                f"{weights_file}: the IS10 standardization ({', '.join(STAT_KEYS)}) is missing or mis-shaped"
            )
        mean, std = (s.float().numpy() for s in stats)
        if not (np.isfinite(mean).all() and np.isfinite(std).all() and (std > 0).all()):
            raise EESRError(f"{weights_file}: the IS10 standardization holds non-finite or non-positive values")

    network = EESRClassifier(model_cfg)
    expected = network.state_dict()
    missing, unexpected = sorted(set(expected) - set(tensors)), sorted(set(tensors) - set(expected))
    if missing or unexpected:
        raise EESRError(
            f"{weights_file} does not fit the model its bundle describes: missing {missing[:3]}"
            f"{' ...' if len(missing) > 3 else ''}, unexpected {unexpected[:3]}{' ...' if len(unexpected) > 3 else ''}"
        )
    for key, value in tensors.items():
        if value.shape != expected[key].shape:
            raise EESRError(
                f"{weights_file}: tensor '{key}' has shape {tuple(value.shape)}, the model described in "
                f"{CONFIG_FILE} needs {tuple(expected[key].shape)}"
            )
        if value.is_floating_point():
            tensors[key] = value.float()
    network.load_state_dict(tensors, strict=True)
    network.eval()
    return Bundle(path, network, tuple(labels), model_cfg, train_cfg, spectrogram, mean, std, meta)


# ------------------------------------------------------------------ train on a whole corpus


def train_bundle(
    dataset: str,
    variant: str,
    out: str | Path | None = None,
    *,
    data_root: str | Path | None = None,
    overrides: dict | None = None,
    seed: int = 0,
    device: str = "auto",
    weights_dtype: str = "fp32",
    progress: bool = True,
) -> Path:
    """Train ``variant`` on *every* utterance of ``dataset`` (no test set held out) and write a bundle.

    ``out`` defaults to ``<dataset>-<variant>.bundle`` in the working directory. ``overrides``
    as in :func:`eesr_lib.runner.configs` (``epochs``, ``batch_size``, any model/training field).
    """
    from .corpora import load_corpus
    from .features import corpus_features
    from .runner import VARIANTS, configs
    from .train import resolve_device, standardize_is10, train_fold

    corpus = load_corpus(dataset, data_root)
    model_cfg, train_cfg = configs(variant, len(corpus.labels), overrides)
    if "baseline" in VARIANTS[variant]:
        raise EESRError(f"Variant '{variant}' is a baseline without the network; a bundle holds one of {_networks()}")
    counts = corpus.table["label"].value_counts()
    empty = [lab for lab in corpus.labels if counts.get(lab, 0) == 0]
    if empty:
        raise EESRError(f"Corpus {corpus.name} has no utterance of class(es) {empty}")
    dev = resolve_device(device)
    specs, is10 = corpus_features(corpus, progress=progress)
    (is10_std,) = standardize_is10(is10)
    model, history = train_fold(
        model_cfg, train_cfg, specs, is10_std, corpus.y, seed=seed, device=dev, progress=progress
    )
    info = {
        "dataset": corpus.name,
        "variant": variant,
        "seed": seed,
        "utterances": len(corpus),
        "class_counts": {lab: int(counts.get(lab, 0)) for lab in corpus.labels},
        "held_out": "none: trained on every utterance of the corpus",
        "history": history,
    }
    out = Path(out) if out else Path(f"{corpus.name}-{variant}.bundle")
    return save_bundle(out, model, corpus.labels, train_cfg, is10, info=info, weights_dtype=weights_dtype, device=dev)


def untrained_bundle(corpus: Corpus, out: str | Path, seed: int = 0) -> Bundle:
    """A bundle of an *untrained* network with ``corpus``'s classes and IS10 scaling, written to
    ``out`` and loaded: where no trained model is at hand (a CI checkout), it runs the same code
    as a real one, and its answers are noise."""
    from .features import corpus_features

    torch.manual_seed(seed)
    _, is10 = corpus_features(corpus, progress=False)
    network = EESRClassifier(ModelConfig(n_classes=len(corpus.labels)))
    return load_bundle(save_bundle(Path(out), network, corpus.labels, TrainConfig(), is10))


def bundle_facts(bundle: Bundle) -> dict[str, str]:
    """What a bundle says about itself, in words: what it was trained on, with which recipe, for how
    long on what, its weights and scoring windows, and the code that wrote it. A model's answers
    mean little without these, so a page that uses one shows them first."""
    from .experiments import VARIANT_NAMES

    trained = bundle.meta.get("training", {})
    history = trained.get("history", [])
    hardware = bundle.meta.get("provenance", {}).get("hardware", {})
    size_mb = sum(f.stat().st_size for f in Path(bundle.path).iterdir()) / 1e6
    return {
        "trained on": f"{trained.get('dataset', '?')}, {trained.get('utterances', '?')} utterances "
        f"({trained.get('held_out', 'unknown')})",
        "model": VARIANT_NAMES.get(trained.get("variant"), trained.get("variant", "?")),
        "classes": ", ".join(bundle.labels),
        "epochs, optimizer steps": f"{len(history)}, {history[-1].get('steps', '?') if history else '?'}",
        "training time": f"{sum(h.get('seconds', 0) for h in history) / 60:.0f} min on {hardware.get('device', '?')} "
        f"({hardware.get('torch_threads', '?')} thread(s), {hardware.get('processor', '?')})",
        "weights": f"{bundle.meta['weights']['dtype']}, bundle {size_mb:.1f} MB",
        "scoring windows": f"{bundle.window_seconds:.2f} s ({bundle.model_cfg.crop_frames} frames), "
        f"hop {bundle.hop_seconds:.2f} s",
        "code": bundle.meta.get("provenance", {}).get("git_revision", "?"),
        "written": bundle.meta.get("created", "?"),
    }


def _networks() -> list[str]:
    from .runner import VARIANTS

    return [v for v, spec in VARIANTS.items() if "baseline" not in spec]


# ------------------------------------------------------------------ ONNX


class _OnnxGraph(nn.Module):
    """What the ONNX file computes: raw IS10 standardized inside, then logits and probabilities."""

    def __init__(self, bundle: Bundle):
        super().__init__()
        self.network = bundle.network
        self.use_is10 = bundle.model_cfg.use_is10
        if self.use_is10:
            self.register_buffer("mean", torch.from_numpy(bundle.is10_mean))
            self.register_buffer("std", torch.from_numpy(bundle.is10_std))

    def forward(self, spectrogram: torch.Tensor, is10: torch.Tensor | None = None):
        feats = (is10 - self.mean) / self.std if self.use_is10 else None
        logits = self.network(spectrogram, feats)
        return logits, logits.softmax(-1)


def export_onnx(bundle: Bundle | str | Path, out: str | Path | None = None, opset: int = 17) -> Path:
    """Write the test-time network of ``bundle`` as ONNX (dynamic batch); returns the file.

    Inputs: ``spectrogram`` ``(B, n_bins, crop_frames)`` float32, one window of the normalized
    log-magnitude spectrogram, and (models with IS10) ``is10`` ``(B, 1582)``, the *raw* openSMILE
    IS10 functionals (standardized inside the graph with the training statistics). Outputs:
    ``logits`` and ``probabilities`` ``(B, n_classes)``. An utterance's probabilities are the
    mean over its windows (see the module). Labels, spectrogram settings and the window hop are
    in the file's metadata. Where onnxruntime is installed the file is checked against PyTorch.
    """
    if not isinstance(bundle, Bundle):
        bundle = load_bundle(bundle)
    out = Path(out) if out else bundle.path.with_suffix(".onnx")
    cfg = bundle.model_cfg
    graph = _OnnxGraph(bundle).eval()
    x = torch.rand(2, cfg.n_bins, cfg.crop_frames)
    args, names = (x,), ["spectrogram"]
    if cfg.use_is10:
        args, names = (x, torch.from_numpy(bundle.is10_mean).expand(2, -1).contiguous()), names + ["is10"]
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation and constant-folding notes
        torch.onnx.export(
            graph,
            args,
            str(tmp),
            input_names=names,
            output_names=["logits", "probabilities"],
            dynamic_axes={n: {0: "batch"} for n in names + ["logits", "probabilities"]},
            opset_version=opset,
            dynamo=False,  # the TorchScript exporter: seconds, where the dynamo one takes ~20 s here
        )
    import onnx

    model = onnx.load(str(tmp))
    tc, sp = bundle.train_cfg, bundle.spectrogram
    meta = {
        "eesr_labels": json.dumps(list(bundle.labels)),
        "eesr_spectrogram": json.dumps(asdict(sp)),
        "eesr_window": json.dumps(
            {"frames": cfg.crop_frames, "hop": tc.window_hop, "pad_mode": tc.pad_mode, "average": tc.score_average}
        ),
        "eesr_inputs": "spectrogram: (B, n_bins, frames) windows of eesr_lib.features.log_magnitude_spectrogram; "
        "is10: (B, 1582) raw openSMILE IS10 functionals (standardized inside)",
        "eesr_bundle": json.dumps({k: bundle.meta.get(k) for k in ("created", "training")}, default=str)[:100_000],
    }
    for key, value in meta.items():
        model.metadata_props.add(key=key, value=value)
    model.doc_string = "eesr (Zhang & Xue 2021 replication): encoder + attention/IS10 classifier"
    onnx.save(model, str(tmp))
    os.replace(tmp, out)
    _check_onnx(out, graph, args, names)
    return out


def _check_onnx(path: Path, graph: nn.Module, args: tuple, names: list[str], tolerance: float = 1e-3) -> None:
    try:
        import onnxruntime as ort
    except ImportError:
        return
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(["probabilities"], {n: a.numpy() for n, a in zip(names, args)})[0]
    with torch.no_grad():
        want = graph(*args)[1].numpy()
    diff = float(np.abs(got - want).max())
    if diff > tolerance:
        raise EESRError(f"{path}: ONNX probabilities differ from PyTorch's by {diff:.2g} (> {tolerance})")
