"""Metrics the paper reports (§IV-C): WA, UA, per-class precision/recall/F1, confusion.

WA ("weighted accuracy") is plain accuracy over test utterances; UA ("unweighted
accuracy") is the mean of per-class recalls, i.e. scikit-learn's balanced accuracy.
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.metrics import accuracy_score, balanced_accuracy_score, confusion_matrix, precision_recall_fscore_support

SCORE_DECIMALS = 6  # result files store each class score rounded to this many decimals


def classification_metrics(y_true: np.ndarray, y_pred: np.ndarray, labels: tuple[str, ...] | list[str]) -> dict:
    """WA, UA (both in %), per-class P/R/F1 (%), confusion counts and row-normalized %."""
    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred)
    k = range(len(labels))
    cm = confusion_matrix(y_true, y_pred, labels=list(k))
    p, r, f, support = precision_recall_fscore_support(y_true, y_pred, labels=list(k), zero_division=0)
    rows = cm.sum(axis=1, keepdims=True)
    pct = np.divide(100.0 * cm, rows, out=np.zeros(cm.shape), where=rows > 0)
    present = np.unique(y_true)
    return {
        "wa": 100.0 * accuracy_score(y_true, y_pred),
        # UA over the classes present in this fold (balanced_accuracy_score's definition).
        "ua": 100.0 * _balanced_accuracy(y_true, y_pred) if len(present) > 0 else float("nan"),
        "precision": {lab: 100.0 * float(v) for lab, v in zip(labels, p)},
        "recall": {lab: 100.0 * float(v) for lab, v in zip(labels, r)},
        "f1": {lab: 100.0 * float(v) for lab, v in zip(labels, f)},
        "support": {lab: int(v) for lab, v in zip(labels, support)},
        "confusion": cm.tolist(),
        "confusion_pct": pct.round(4).tolist(),
        "n": int(len(y_true)),
    }


def _balanced_accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """scikit-learn's balanced accuracy, without its warning when a prediction names a class absent
    from this fold's truth (a held-out speaker may lack a class): UA is, by definition here, the mean
    recall over the classes present, which is what it computes either way."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="y_pred contains classes not in y_true")
        return float(balanced_accuracy_score(y_true, y_pred))


def mean_std(values: list[float] | np.ndarray) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof=1; 0 for a single fold)."""
    v = np.asarray(values, dtype=float)
    return float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else 0.0
