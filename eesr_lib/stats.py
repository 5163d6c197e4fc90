"""How sure is a difference between two runs? Paired, utterance by utterance, speakers resampled.

The paper reports single numbers; a replication that compares its variants needs to say which
differences are larger than the noise. Two runs under the same protocol test the same
utterances, so they are compared *paired*:

- the UA difference on the pooled test predictions (each utterance tested once a protocol),
  with a percentile bootstrap interval. Utterances of one speaker are not independent (a model
  that suits a voice suits all its sentences), so the default bootstrap resamples *speakers*,
  with all their utterances: with EMODB's 10 speakers the interval is wide, and that width is
  the honest uncertainty of a 10-speaker corpus.
- McNemar's exact test on per-utterance correctness: of the utterances exactly one run gets
  right, is the split further from 50/50 than chance allows? It treats utterances as
  independent, so it is the optimistic companion of the speaker bootstrap.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import binomtest


def paired_outcomes(a: list[dict], b: list[dict]) -> pd.DataFrame:
    """One row per test utterance of the folds both runs finished: id, true label, both predictions."""
    common = {r["fold"] for r in a} & {r["fold"] for r in b}

    def table(records):
        rows = [(p["id"], p["true"], p["pred"]) for r in records if r["fold"] in common for p in r["predictions"]]
        return pd.DataFrame(rows, columns=["id", "true", "pred"]).set_index("id")

    ta, tb = table(a).sort_index(), table(b).sort_index()
    if not ta.index.equals(tb.index) or not (ta["true"] == tb["true"]).all():
        raise ValueError("the two runs did not test the same utterances with the same labels")
    return pd.DataFrame({"true": ta["true"], "pred_a": ta["pred"], "pred_b": tb["pred"]})


def _weighted_ua(weights: np.ndarray, correct: np.ndarray, y: np.ndarray, n_classes: int) -> np.ndarray:
    """UA (%) for each row of ``weights`` (resample counts per utterance); absent classes are skipped."""
    recalls = []
    for c in range(n_classes):
        in_c = y == c
        total = weights[:, in_c].sum(axis=1)
        hits = weights[:, in_c & correct].sum(axis=1)
        recalls.append(np.where(total > 0, hits / np.where(total > 0, total, 1), np.nan))
    return 100.0 * np.nanmean(np.stack(recalls, axis=1), axis=1)


def cluster_weights(n: int, clusters: np.ndarray | None, n_boot: int, seed: int) -> np.ndarray:
    """``(n_boot, n)`` resample counts of ``n`` utterances: whole ``clusters`` (e.g. speakers) drawn
    with replacement, each utterance weighing as often as its cluster was drawn; ``None``: single
    utterances. One resampling scheme for every interval of the book."""
    groups = np.arange(n) if clusters is None else pd.factorize(np.asarray(clusters))[0]
    n_groups = groups.max() + 1
    rng = np.random.default_rng(seed)
    drawn = rng.integers(0, n_groups, size=(n_boot, n_groups))
    counts = np.zeros((n_boot, n_groups))
    np.add.at(counts, (np.arange(n_boot)[:, None], drawn), 1)
    return counts[:, groups]


def _weighted_macro_f1(weights: np.ndarray, y: np.ndarray, pred: np.ndarray, n_classes: int) -> np.ndarray:
    """Macro-F1 (%) for each row of ``weights``, over the classes that occur as truth or prediction
    (scikit-learn's ``f1_score(average="macro")`` on the resampled utterances)."""
    f1s, present = [], []
    for c in range(n_classes):
        tp = weights[:, (y == c) & (pred == c)].sum(axis=1)
        fp = weights[:, (y != c) & (pred == c)].sum(axis=1)
        fn = weights[:, (y == c) & (pred != c)].sum(axis=1)
        denom = 2 * tp + fp + fn
        f1s.append(np.where(denom > 0, 2 * tp / np.where(denom > 0, denom, 1), 0.0))
        present.append(denom > 0)
    f1s, present = np.stack(f1s, axis=1), np.stack(present, axis=1)
    return 100.0 * (f1s * present).sum(axis=1) / np.maximum(present.sum(axis=1), 1)


def bootstrap_scores(
    y: np.ndarray,
    pred: np.ndarray,
    n_classes: int,
    clusters: np.ndarray | None = None,
    n_boot: int = 2000,
    level: float = 0.95,
    seed: int = 0,
) -> dict:
    """Pooled WA, UA and macro-F1 (%) of one run's test predictions, each with a percentile bootstrap
    interval from resampling ``clusters`` (speakers, as :func:`bootstrap_ua_gap` does; ``None``: utterances).

    Why speakers: a 10-speaker corpus is 10 draws of a voice, not 535 independent utterances, and an
    interval that pretends otherwise is too narrow. One speaker (a leave-one-speaker-out test fold)
    gets no interval (NaN bounds): every resample of it is the same set, and a zero-width interval
    would claim a certainty that one voice cannot give."""
    y, pred = np.asarray(y), np.asarray(pred)
    ok = y == pred
    if clusters is not None and pd.unique(np.asarray(clusters)).size < 2:
        n_boot = 0
    weights = np.vstack([np.ones((1, len(y))), cluster_weights(len(y), clusters, n_boot, seed)])
    scores = {
        "wa": 100.0 * (weights * ok).sum(axis=1) / weights.sum(axis=1),
        "ua": _weighted_ua(weights, ok, y, n_classes),
        "macro_f1": _weighted_macro_f1(weights, y, pred, n_classes),
    }
    out = {}
    for name, values in scores.items():
        lo, hi = np.nanpercentile(values[1:], [50 * (1 - level), 50 * (1 + level)]) if n_boot else (np.nan, np.nan)
        out |= {name: float(values[0]), f"{name}_lo": float(lo), f"{name}_hi": float(hi)}
    return out


def bootstrap_ua_gap(
    paired: pd.DataFrame,
    labels: list[str] | tuple[str, ...],
    clusters: np.ndarray | None = None,
    n_boot: int = 2000,
    level: float = 0.95,
    seed: int = 0,
) -> dict:
    """UA(a) - UA(b) on ``paired`` (:func:`paired_outcomes`) with a percentile bootstrap interval.

    ``clusters`` (one value per row, e.g. the speaker) are resampled whole; ``None`` resamples
    single utterances. Returns gap, lo, hi (UA points) and the share of resamples with gap > 0.
    """
    index = {lab: i for i, lab in enumerate(labels)}
    y = paired["true"].map(index).to_numpy()
    ok_a = (paired["pred_a"] == paired["true"]).to_numpy()
    ok_b = (paired["pred_b"] == paired["true"]).to_numpy()
    weights = cluster_weights(len(paired), clusters, n_boot, seed)
    ones = np.ones((1, len(paired)))
    gap = float(_weighted_ua(ones, ok_a, y, len(labels))[0] - _weighted_ua(ones, ok_b, y, len(labels))[0])
    boot = _weighted_ua(weights, ok_a, y, len(labels)) - _weighted_ua(weights, ok_b, y, len(labels))
    lo, hi = np.nanpercentile(boot, [50 * (1 - level), 50 * (1 + level)])
    return {"gap": gap, "lo": float(lo), "hi": float(hi), "p_above_0": float(np.mean(boot > 0))}


def mcnemar_exact(paired: pd.DataFrame) -> dict:
    """Utterances only a gets right, only b gets right, and McNemar's exact two-sided p-value."""
    ok_a = paired["pred_a"] == paired["true"]
    ok_b = paired["pred_b"] == paired["true"]
    only_a, only_b = int((ok_a & ~ok_b).sum()), int((ok_b & ~ok_a).sum())
    p = 1.0 if only_a + only_b == 0 else binomtest(only_a, only_a + only_b, 0.5).pvalue
    return {"only_a": only_a, "only_b": only_b, "p": float(p)}


def compare_runs(a: list[dict], b: list[dict], speakers: pd.Series, n_boot: int = 2000, seed: int = 0) -> dict:
    """Everything above for two runs' fold records; ``speakers`` maps utterance id to speaker.

    ``agree_pct`` is the share of utterances on which both runs predict the same class: two
    models with similar scores can still decide differently, or be nearly the same classifier.
    """
    paired = paired_outcomes(a, b)
    labels = a[0]["labels"]
    by_speaker = bootstrap_ua_gap(paired, labels, speakers.loc[paired.index].to_numpy(), n_boot, seed=seed)
    agree = 100.0 * float((paired["pred_a"] == paired["pred_b"]).mean())
    return {"n": len(paired), "agree_pct": agree, **by_speaker, **mcnemar_exact(paired)}


def retraining_noise(first: list[dict], again: list[dict], metric: str = "ua") -> dict | None:
    """How far a second training of the *same* configuration lands from the first, fold by fold.

    Why: every gap in Table 4 compares two trainings, and even two trainings of one model differ
    (a GPU sums in another order than a CPU, and 40 epochs amplify it). If the per-fold
    differences ``again - first`` have standard deviation ``sd``, a fold-paired gap between two
    equally good models over ``n`` folds has standard deviation about ``sd / sqrt(n)``
    (``gap_sd``): gaps within about two of those are what retraining alone produces.
    None when the runs share no fold.
    """
    a = {r["fold"]: r["metrics"][metric] for r in first}
    b = {r["fold"]: r["metrics"][metric] for r in again}
    common = sorted(a.keys() & b.keys())
    if not common:
        return None
    diff = np.array([b[k] - a[k] for k in common])
    sd = float(diff.std(ddof=1)) if len(diff) > 1 else float("nan")
    return {
        "folds": common,
        "first": [a[k] for k in common],
        "again": [b[k] for k in common],
        "gap": float(diff.mean()),
        "mean_abs": float(np.abs(diff).mean()),
        "max_abs": float(np.abs(diff).max()),
        "sd": sd,
        "gap_sd": sd / np.sqrt(len(diff)),
    }
