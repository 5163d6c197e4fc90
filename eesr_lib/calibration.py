"""What a model's confidence means: reliability (calibration) on held-out predictions.

A bundle answers "anger 0.93". Whether 0.93 means "right 93 times in 100" is an empirical
question about the model, answered on utterances it was not trained on: the pooled outer test
folds of a committed run, whose fold files keep every test utterance's class probabilities
(``predictions[*].scores``) and true label.

- :func:`top_label` reduces probabilities to the *confidence* of the predicted class and
  whether that prediction was right (top-label calibration: the question a user of
  ``eesr predict`` asks of its one answer).
- :func:`reliability_table` bins the confidence (scikit-learn's :func:`~sklearn.calibration.calibration_curve`
  computes each bin's accuracy and mean confidence; the counts come from the same binning) and
  :func:`expected_calibration_error` is the count-weighted mean gap between the two, the ECE.
- :func:`ece_interval` resamples whole speakers (:func:`eesr_lib.stats.cluster_weights`, as every
  interval of the book): an ECE from a few hundred utterances of ten speakers is noisy, and it is
  biased upward when bins hold few utterances, so the interval matters more than the digits.
- Scores that are not probabilities (IS10 + SVM keeps the SVM's decision values) have no
  calibration; :func:`is_probability` tells them apart, and :func:`selective_accuracy` (accuracy of
  the utterances a model is most confident about) compares how well any score *ranks* its own errors.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.calibration import calibration_curve

from .errors import EESRError
from .stats import cluster_weights

N_BINS = 10


def load_scores(
    results_dir: str | Path, dataset: str, protocol: str, variant: str
) -> tuple[pd.DataFrame, np.ndarray, list[str]]:
    """:func:`prediction_scores` of a run's finished folds in ``results_dir``; raises if there are none."""
    from .report import load_folds

    records = load_folds(results_dir, dataset, protocol, variant)
    if not records:
        raise EESRError(f"No finished fold in {Path(results_dir) / dataset / protocol / variant}")
    return prediction_scores(records)


def prediction_scores(records: list[dict]) -> tuple[pd.DataFrame, np.ndarray, list[str]]:
    """Every test prediction of some fold records (each utterance tested once a protocol): a table
    (``id``, ``fold``, ``true`` as a class index), the score matrix ``(N, K)`` and the labels.
    Raises if there is no record or a fold kept no scores."""
    if not records:
        raise EESRError("No fold records to read scores from")
    records = sorted(records, key=lambda r: r["fold"])
    labels = list(records[0]["labels"])
    index = {lab: i for i, lab in enumerate(labels)}
    rows, scores = [], []
    for r in records:
        for p in r["predictions"]:
            if "scores" not in p:
                name = "/".join(str(r.get("config", {}).get(k, "?")) for k in ("dataset", "protocol", "variant"))
                raise EESRError(f"{name} fold {r['fold']} kept no scores")
            rows.append((p["id"], r["fold"], index[p["true"]]))
            scores.append(p["scores"])
    table = pd.DataFrame(rows, columns=["id", "fold", "true"])
    return table, np.asarray(scores, dtype=np.float64), labels


def is_probability(scores: np.ndarray, tolerance: float = 1e-3) -> bool:
    """Whether every row is a probability distribution (in [0, 1], summing to 1 up to the rounding
    of the stored scores). An SVM's decision values are not, and have no calibration to measure."""
    scores = np.asarray(scores, dtype=np.float64)
    return bool(
        scores.ndim == 2
        and (scores >= -tolerance).all()
        and (scores <= 1 + tolerance).all()
        and np.allclose(scores.sum(axis=1), 1.0, atol=tolerance * scores.shape[1])
    )


def top_label(scores: np.ndarray, true: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(confidence, correct)``: the largest score of each row and whether its class is the true one."""
    scores = np.asarray(scores)
    pred = scores.argmax(axis=1)
    return scores[np.arange(len(scores)), pred], pred == np.asarray(true)


def _bin_ids(confidence: np.ndarray, n_bins: int) -> np.ndarray:
    """The bin of each confidence under ``calibration_curve(strategy="uniform")``'s rule."""
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    return np.searchsorted(edges[1:-1], confidence)


def reliability_table(confidence: np.ndarray, correct: np.ndarray, n_bins: int = N_BINS) -> pd.DataFrame:
    """One row per non-empty bin of equal width on [0, 1]: ``lower``, ``upper``, ``n``,
    ``confidence`` (mean) and ``accuracy``. A calibrated model has accuracy = confidence in every bin."""
    confidence = np.asarray(confidence, dtype=np.float64)
    correct = np.asarray(correct, dtype=bool)
    if confidence.shape != correct.shape or confidence.ndim != 1 or not len(confidence):
        raise EESRError(f"confidence {confidence.shape} and correct {correct.shape} must be equal, non-empty 1-D")
    if (confidence < 0).any() or (confidence > 1).any():
        raise EESRError("confidences must lie in [0, 1]: calibration needs probabilities (see is_probability)")
    accuracy, mean_conf = calibration_curve(correct.astype(int), confidence, n_bins=n_bins, strategy="uniform")
    counts = np.bincount(_bin_ids(confidence, n_bins), minlength=n_bins)
    used = np.flatnonzero(counts)
    return pd.DataFrame(
        {
            "lower": used / n_bins,
            "upper": (used + 1) / n_bins,
            "n": counts[used],
            "confidence": mean_conf,
            "accuracy": accuracy,
        }
    )


def expected_calibration_error(confidence: np.ndarray, correct: np.ndarray, n_bins: int = N_BINS) -> float:
    """ECE: sum over bins of (share of utterances in the bin) x |accuracy - mean confidence|, a
    fraction in [0, 1]. 0.05 reads "on average the stated confidence is 5 points off"."""
    table = reliability_table(confidence, correct, n_bins)
    return float((table["n"] / table["n"].sum() * (table["accuracy"] - table["confidence"]).abs()).sum())


def ece_interval(
    confidence: np.ndarray,
    correct: np.ndarray,
    clusters: np.ndarray | None,
    n_bins: int = N_BINS,
    n_boot: int = 2000,
    seed: int = 0,
    level: float = 0.95,
) -> tuple[float, float]:
    """Percentile bootstrap interval of the ECE, resampling ``clusters`` (speakers) whole; None: utterances."""
    confidence = np.asarray(confidence, dtype=np.float64)
    correct = np.asarray(correct, dtype=np.float64)
    weights = cluster_weights(len(confidence), clusters, n_boot, seed)  # (n_boot, N)
    onehot = np.eye(n_bins)[_bin_ids(confidence, n_bins)]  # (N, n_bins)
    n = weights @ onehot
    gap = np.abs(weights @ (onehot * correct[:, None]) - weights @ (onehot * confidence[:, None]))
    ece = gap.sum(axis=1) / n.sum(axis=1)  # sum_b n_b/N |acc_b - conf_b| = sum_b |hits_b - conf_sum_b| / N
    alpha = (1 - level) / 2
    return float(np.quantile(ece, alpha)), float(np.quantile(ece, 1 - alpha))


def selective_accuracy(score: np.ndarray, correct: np.ndarray, coverages: np.ndarray | list[float]) -> pd.Series:
    """Accuracy (%) of the ``coverage`` share of utterances with the highest ``score``, per coverage.

    It needs no probabilities, only an order, so it also compares an SVM's decision values with a
    network's probabilities: a score that ranks its own errors last gains most when the least sure
    predictions are set aside (for a person to check, say)."""
    score = np.asarray(score, dtype=np.float64)
    correct = np.asarray(correct, dtype=bool)
    order = np.argsort(-score, kind="stable")
    out = {}
    for c in coverages:
        if not 0 < c <= 1:
            raise EESRError(f"coverage must lie in (0, 1], got {c}")
        k = max(1, int(round(c * len(score))))
        out[float(c)] = 100.0 * correct[order[:k]].mean()
    return pd.Series(out, name="accuracy").rename_axis("coverage")
