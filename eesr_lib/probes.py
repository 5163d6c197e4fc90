"""What the *untrained* encoder lets through: linear probes on its output at initialisation.

Why this exists: in the search for a recipe (book chapter 7) the deep feature of the proposed
model, trained alone, sat at the class prior for ten epochs on EMODB and ended far below IS10.
A probe separates two explanations, "too few steps" and "the information is not there to
begin with". Instance normalization removes, per channel, the mean and scale over the crop:
in a spectrogram that is loudness and spectral balance, which carry much of the emotion.
A logistic regression on the time-averaged encoder output of a freshly initialised network
shows how much of that survives each normalization, before any training.

The probe is cross-validated (5 stratified folds, scaler and classifier fitted inside each
training fold), and every utterance contributes one 128-frame crop from its start.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from .crops import CROP_FRAMES, pad_to
from .model import EESR, NORMS, ModelConfig


def first_crops(specs: list[np.ndarray], frames: int = CROP_FRAMES, pad_mode: str = "zero") -> np.ndarray:
    """``(N, F, frames)``: the first ``frames`` frames of each utterance (padded if shorter)."""
    return np.stack([pad_to(s, frames, pad_mode)[:, :frames] for s in specs]).astype(np.float32)


@torch.no_grad()
def encoder_features(crops: np.ndarray, norm: str, seed: int = 0, batch: int = 32) -> dict[str, np.ndarray]:
    """Pooled outputs of a freshly initialised encoder (eval mode, so no dropout).

    ``"encoder"``: the latent ``(512, 16)`` averaged over its 16 frames; ``"attention"``: the
    classifier's input, i.e. the untrained self-attention over those frames, mean-pooled.
    """
    torch.manual_seed(seed)
    model = EESR(ModelConfig(norm=norm, use_is10=False)).eval()
    enc, att = [], []
    for b in range(0, len(crops), batch):
        z = model.encoder(torch.as_tensor(crops[b : b + batch]))  # (B, 512, 16)
        _, deep = model.classifier(z, None)  # (B, 512)
        enc.append(z.mean(dim=2).numpy())
        att.append(deep.numpy())
    return {"encoder": np.concatenate(enc), "attention": np.concatenate(att)}


def probe_ua(features: np.ndarray, y: np.ndarray, seed: int = 0, folds: int = 5) -> tuple[float, float]:
    """Mean and std over folds of the balanced accuracy (UA, %) of a standardized logistic regression."""
    pipe = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=3000))
    cv = StratifiedKFold(folds, shuffle=True, random_state=seed)
    scores = 100 * cross_val_score(pipe, features, y, cv=cv, scoring="balanced_accuracy")
    return float(scores.mean()), float(scores.std())


def encoder_probe(specs: list[np.ndarray], y: np.ndarray, seed: int = 0, norms=NORMS) -> list[dict]:
    """Probe UA of the input spectrogram's time average and of the untrained encoder per norm."""
    crops = first_crops(specs)
    rows = []
    ua, sd = probe_ua(crops.mean(axis=2), y, seed)
    rows.append({"features": "spectrogram, time-averaged (513)", "norm": None, "ua": ua, "ua_std": sd})
    for norm in norms:
        for where, feats in encoder_features(crops, norm, seed).items():
            ua, sd = probe_ua(feats, y, seed)
            label = "encoder output, time-averaged (512)" if where == "encoder" else "attention, mean-pooled (512)"
            rows.append({"features": label, "norm": norm, "ua": ua, "ua_std": sd})
    return rows
