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
from typing import NamedTuple

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


# Chapter 9 ("Your own recording") in numbers and words: the held-out runs and the committed
# model on another corpus, each reduced to its top-label confidences, summarized and read out.


class Held(NamedTuple):
    """One set of held-out predictions reduced to what calibration needs: the confidence of each
    predicted class, whether it was right, each utterance's speaker (for intervals) and whether the
    scores were probabilities at all (an SVM's decision values are not)."""

    confidence: np.ndarray
    correct: np.ndarray
    speakers: np.ndarray
    is_probability: bool


def held_out(records: list[dict], speaker_of: pd.Series) -> Held:
    """:class:`Held` of a run's fold records (each test utterance once); ``speaker_of`` maps id to speaker."""
    table, scores, _ = prediction_scores(records)
    conf, correct = top_label(scores, table["true"].to_numpy())
    return Held(conf, correct, speaker_of.reindex(table["id"]).to_numpy(), is_probability(scores))


def summary_row(held: Held, seed: int = 0) -> tuple[dict, tuple[float, float] | None]:
    """A row of the chapter's calibration table (utterances, accuracy and, for probabilities, mean
    confidence, ECE and its 95 % speaker interval, all in %) and that interval as fractions (None
    without probabilities): the interval says whether two ECEs differ at all."""
    conf, correct, speakers, is_prob = held
    row: dict = {"utterances": len(conf), "accuracy (%)": 100 * correct.mean()}
    if not is_prob:
        return row | {"ECE 95 % interval": "scores are not probabilities"}, None
    lo, hi = ece_interval(conf, correct, speakers, seed=seed)
    row |= {
        "mean confidence (%)": 100 * conf.mean(),
        "ECE (points)": 100 * expected_calibration_error(conf, correct),
        "ECE 95 % interval": f"{100 * lo:.1f} to {100 * hi:.1f}",
    }
    return row, (lo, hi)


def above_threshold(held: Held, threshold: float = 0.9) -> tuple[float, float]:
    """(share of utterances with confidence >= ``threshold``, their accuracy), both in %; the
    accuracy is NaN when none reaches it. "When it says 0.9, how often is it right?" in two numbers."""
    sure = held.confidence >= threshold
    return 100 * sure.mean(), 100 * held.correct[sure].mean() if sure.any() else np.nan


def overconfidence(held: Held) -> float:
    """Mean confidence minus accuracy, in points: > 0 overconfident, < 0 underconfident."""
    return 100 * (held.confidence.mean() - held.correct.mean())


def panels(held: dict[tuple[str, str], Held], protocols: list[str]) -> list[str]:
    """The test sets a reliability figure shows: each protocol with AE+EE,IN predictions, then the
    cross-corpus sets (``variant == "bundle"``)."""
    return [p for p in protocols if (p, "ae+ee+in") in held] + [w for w, v in held if v == "bundle"]


def _name(variant: str) -> str:
    from .experiments import VARIANT_NAMES

    return VARIANT_NAMES.get(variant, "the bundle")


def confidence_lines(
    held: dict[tuple[str, str], Held], shown: list[str], intervals: dict[tuple[str, str], tuple[float, float] | None]
) -> list[str]:
    """Bullets: per test set in ``shown``, how often the model is at least 90 % sure and how right it
    then is, and its mean over/underconfidence; then whether the spectrogram-only model's ECE differs
    from AE+EE,IN's on 5-fold (by their ``intervals``: overlapping intervals cannot tell them apart)."""
    lines = []
    for where in shown:
        for variant in ("ae+ee+in", "bundle"):
            if (where, variant) not in held:
                continue
            share, acc = above_threshold(held[(where, variant)])
            gap = overconfidence(held[(where, variant)])
            sure = (
                f"is at least 90 % sure of {share:.0f} % of the utterances and right on {acc:.0f} % of those"
                if share > 0
                else "is never 90 % sure"
            )
            lines.append(
                f"- **{where}**: {_name(variant)} {sure}; on average its confidence is "
                f"{abs(gap):.1f} points {'above' if gap > 0 else 'below'} its accuracy "
                f"({'over' if gap > 0 else 'under'}confident)."
            )
    os_key, full_key = ("kfold5", "ae-os"), ("kfold5", "ae+ee+in")
    if os_key in held and full_key in held and intervals.get(os_key) and intervals.get(full_key):
        (ece_os, acc_os), (ece_full, acc_full) = (
            (100 * expected_calibration_error(h.confidence, h.correct), 100 * h.correct.mean())
            for h in (held[os_key], held[full_key])
        )
        (lo_os, hi_os), (lo_full, hi_full) = intervals[os_key], intervals[full_key]
        overlap = lo_os <= hi_full and lo_full <= hi_os
        lines.append(
            f"- Calibration is not accuracy: {_name('ae-os')} (spectrogram only) is right on {acc_os:.0f} % against "
            f"{acc_full:.0f} %, and its ECE is {ece_os:.1f} points against {ece_full:.1f}"
            + (
                "; their intervals overlap, so ten speakers cannot tell which of the two is better calibrated."
                if overlap
                else (": it is less often right but knows it better." if ece_os < ece_full else ".")
            )
        )
    return lines


def selective_curves(
    held: dict[tuple[str, str], Held], where: str | None, coverages: np.ndarray | list[float]
) -> dict[str, pd.Series]:
    """:func:`selective_accuracy` of every run on test set ``where`` and of every cross-corpus set,
    by display name: any score, probability or not, can rank its own errors."""
    curves = {}
    for (w, variant), h in held.items():
        if w == where or variant == "bundle":
            name = _name(variant) + ("" if w == where else f" on {w}")
            curves[name] = selective_accuracy(h.confidence, h.correct, coverages)
    return curves


def selective_reading(best: pd.Series, where: str) -> str:
    """What AE+EE,IN's selective-accuracy curve ``best`` says: is its most confident half more often
    right than all of its answers (by more than 2 points)?"""
    return (
        f"Answering only the most confident half of the {where} test utterances, "
        f"{_name('ae+ee+in')} is right on {best.loc[0.5]:.0f} % of them, against {best.loc[1.0]:.0f} % of all: "
        + (
            "its confidence ranks its own errors, whatever its calibration."
            if best.loc[0.5] > best.loc[1.0] + 2
            else "its confidence hardly separates its errors from its right answers."
        )
    )


def recording_advice(held: dict[tuple[str, str], Held], other: str) -> list[str]:
    """Bullets on how far to trust a timeline of one's own recording: the recipe's calibration and
    ranking on held-out EMODB (leave-one-speaker-out if run, else 5-fold) and the committed model's
    on the ``other`` corpus."""
    points = []
    emodb_key = next((k for k in (("loso-speaker", "ae+ee+in"), ("kfold5", "ae+ee+in")) if k in held), None)
    cross_key = next((k for k in held if k[1] == "bundle"), None)
    if emodb_key:
        conf, correct = held[emodb_key][:2]
        gap = overconfidence(held[emodb_key])
        points.append(
            f"- on EMODB utterances it did not train on ({emodb_key[0]}), the recipe is right on "
            f"{100 * correct.mean():.0f} % and {'over' if gap > 0 else 'under'}confident by {abs(gap):.1f} points on "
            f"average: a stated 0.95 means {'less' if gap > 0 else 'more'} than 95 in 100;"
        )
    if cross_key:
        conf, correct = held[cross_key][:2]
        gap = overconfidence(held[cross_key])
        share, acc = above_threshold(held[cross_key])
        points.append(
            f"- on {other} (another language and studio) the committed model is right on "
            f"{100 * correct.mean():.0f} % of the utterances of the classes it knows, with a mean confidence of "
            f"{100 * conf.mean():.0f} %: {'over' if gap > 0 else 'under'}confident by {abs(gap):.0f} points. "
            + (
                f"Of the answers it gives with confidence 0.9 or more ({share:.0f} % of them) {acc:.0f} % are right. "
                if share > 0
                else "It never reaches a confidence of 0.9. "
            )
            + "That is one corpus; a recording of yours may transfer better or worse;"
        )
    if emodb_key:
        sel = selective_accuracy(*held[emodb_key][:2], [0.5, 1.0])
        ranks = sel.loc[0.5] > sel.loc[1.0] + 2
        points.append(
            f"- on EMODB its confidence {'ranks' if ranks else 'hardly ranks'} its answers: on {emodb_key[0]}, the "
            f"most confident half is right on {sel.loc[0.5]:.0f} % against {sel.loc[1.0]:.0f} % of all"
            + (", so the answers it is most sure of are the ones most worth a look;" if ranks else ";")
        )
    if cross_key:
        conf, correct = held[cross_key][:2]
        half = selective_accuracy(conf, correct, [0.5]).loc[0.5]
        whole_acc = 100 * correct.mean()
        points.append(
            f"- on {other} its most confident half is right on {half:.0f} % against {whole_acc:.0f} % of all: "
            + (
                "across the corpus gap its confidence says little about which answers are right."
                if half < whole_acc + 10
                else "its confidence still points to the better answers, though far from their stated level."
            )
        )
    return points
