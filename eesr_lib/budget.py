"""Learning curves against the training budget, and what they say (book chapter 8).

The question: were the book's verdicts at "40 epochs" those of an undertrained deep branch?
A learning-curve run (``eesr replicate --budget``, tag ``budget``) trains one inner split for
16x today's optimizer steps and scores the inner validation split every few epochs. With the
paper's constant learning rate (Adam, 1e-4, no schedule) the model after *s* steps of a long run
is the model a run of budget *s* would have ended with, so one long run gives the whole curve.
(With a decaying schedule this would not hold.)

Budgets are counted in optimizer steps and expressed as a multiple of today's: 40 epochs of one
random crop of every training utterance. Everything here reads result files; nothing trains.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .plan import BUDGET_TAG, DEPARTURES, PAPER_EPOCHS, PROPOSED
from .results import SCORE_KEYS, fold_records, run_dir

# A curve "gains nothing over the last doubling" when the validation UA of its last quarter of
# steps beats that of the quarter ending at half the steps by less than this (UA points). One
# inner validation split of EMODB holds ~86 utterances: one utterance is ~1.2 points of UA.
NO_GAIN_UA = 1.0
# :func:`outer_folds`' column: a longer run's own test UA after today's epochs (the curves' premise check)
AT_TODAY = f"UA at epoch {PAPER_EPOCHS} (longer run)"


def load_curve_records(results_dir: str | Path, dataset: str, protocol: str, variant: str, tag: str) -> list[dict]:
    """Every fold of one selection run: the finished record, else the partial curve an unfinished run
    leaves after each epoch (marked ``partial``)."""
    return list(fold_records(run_dir(results_dir, dataset, protocol, variant, tag, selection=True), True).values())


def curve_frame(records: list[dict], variant: str) -> pd.DataFrame:
    """One row per epoch of each record: steps, the budget multiple, training and validation scores.

    ``multiple`` is steps divided by the steps of the first :data:`PAPER_EPOCHS` epochs of the same
    fold, i.e. how many times today's budget the model has had at that point."""
    rows = []
    for rec in records:
        hist = rec["history"]
        steps_per_epoch = hist[0]["steps"] if hist and "steps" in hist[0] else None
        for h in hist:
            steps = h.get("steps", steps_per_epoch * h["epoch"] if steps_per_epoch else np.nan)
            rows.append(
                {
                    "variant": variant,
                    "fold": rec["fold"],
                    "partial": rec.get("partial", False),
                    "epoch": h["epoch"],
                    "steps": steps,
                    "multiple": steps / (steps_per_epoch * PAPER_EPOCHS) if steps_per_epoch else np.nan,
                    "train_crop_acc": h["train_crop_acc"],
                    "loss_ec": h["loss_ec"],
                    "loss_ae": h["loss_ae"],
                    "val_ua": h.get("val_ua", np.nan),
                }
            )
    return pd.DataFrame(rows)


def load_curves(
    results_dir: str | Path, dataset: str, variants: list[str], protocol: str = "kfold5", tag: str = "budget"
) -> pd.DataFrame:
    """:func:`curve_frame` of every variant's learning-curve run (empty where none has run)."""
    frames = [curve_frame(load_curve_records(results_dir, dataset, protocol, v, tag), v) for v in variants]
    frames = [f for f in frames if not f.empty]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def mean_val_ua(points: pd.DataFrame, lo: float, hi: float) -> float:
    """Mean validation UA of the scored points with ``lo < multiple <= hi`` (NaN if none)."""
    sel = points[(points.multiple > lo) & (points.multiple <= hi)].val_ua.dropna()
    return float(sel.mean()) if len(sel) else float("nan")


def doubling_gain(points: pd.DataFrame, at: float | None = None) -> dict:
    """What the doubling of steps that ends at ``at`` x today's budget bought one curve (one variant,
    one fold); ``at`` defaults to the last point the run reached.

    Compares the mean validation UA over the last quarter of the steps up to ``at`` (multiples in
    ``(3at/4, at]``) with the quarter that ends at half of them (``(3at/8, at/2]``). Averaging several
    scored points damps the jitter of a small validation split. ``plateau`` is True when the gain is
    below :data:`NO_GAIN_UA`.
    """
    scored = points.dropna(subset=["val_ua"])
    if scored.empty:
        return {"reached": float("nan"), "ua_half": float("nan"), "ua_end": float("nan"), "gain": float("nan")}
    reached = float(scored.multiple.max())
    m = reached if at is None else float(at)
    half, end = mean_val_ua(scored, 3 * m / 8, m / 2), mean_val_ua(scored, 3 * m / 4, m)
    gain = end - half
    return {"reached": reached, "ua_half": half, "ua_end": end, "gain": gain, "plateau": bool(gain < NO_GAIN_UA)}


def ua_at_multiple(points: pd.DataFrame, multiple: float) -> float:
    """Validation UA around ``multiple`` x today's steps: the mean of the scored points within a
    quarter of it on either side (a budget's score, damped like :func:`doubling_gain`)."""
    return mean_val_ua(points.dropna(subset=["val_ua"]), 0.75 * multiple, 1.25 * multiple)


def curve_summary(curves: pd.DataFrame, multiples: tuple[float, ...] = (1, 2, 4, 8, 16)) -> pd.DataFrame:
    """One row per variant and fold: validation UA at each budget multiple reached, and the last doubling."""
    rows = []
    for (variant, fold), pts in curves.groupby(["variant", "fold"], sort=False):
        g = doubling_gain(pts)
        row = {"variant": variant, "fold": fold, "partial": bool(pts.partial.any()), "reached_x": g["reached"]}
        for m in multiples:
            row[f"val_UA_{m:g}x"] = ua_at_multiple(pts, m) if m <= g["reached"] * 1.0001 else float("nan")
        row |= {"last_doubling_gain": g["gain"], "plateau": g.get("plateau")}
        row["train_crop_acc_end"] = float(pts.train_crop_acc.iloc[-5:].mean())
        rows.append(row)
    return pd.DataFrame(rows)


def outer_folds(
    results_dir: str | Path, dataset: str, variants: list[str], tag: str, protocol: str = "kfold5"
) -> pd.DataFrame:
    """The outer folds finished at a longer budget (runs tagged ``tag``) beside the same fold of the
    paper-budget run (untagged: 40 epochs, the same seed and folds), one row per fold: WA and UA at each
    budget and what the longer one changed. Folds of the longer run only; those it has not reached yet
    are absent, so the table grows as folds land.

    :data:`AT_TODAY`: the longer run's own test score after epoch :data:`PAPER_EPOCHS`, from the curve it
    records for the test-fold-selection demonstration (NaN without one), read at that fixed epoch, never
    chosen. Two uses. With a constant learning rate a long run passes through the model a short run ends
    with, so where both runs did the same arithmetic (``same arithmetic``: device, CPU threads and
    processor; the order of floating-point sums depends on them) it must equal ``UA today``: a check of
    the learning curves' premise. Where the arithmetic differs, the two runs part from the first step and
    are two draws of training noise; the longer run's own gain from epoch 40 (``UA gain in run``) is then
    what the extra steps bought without a second run's noise."""
    rows = []
    for v in variants:
        longer = fold_records(run_dir(results_dir, dataset, protocol, v, tag))
        today = fold_records(run_dir(results_dir, dataset, protocol, v))
        for k, rec in longer.items():
            base = today.get(k)
            last = rec["history"][-1]
            row = {"variant": v, "fold": k, "epochs": last["epoch"], "steps": last["steps"]}
            row["hours"] = rec.get("provenance", {}).get("wall_time_s", np.nan) / 3600
            for m in ("wa", "ua"):
                row[f"{m.upper()} today"] = base["metrics"][m] if base else np.nan
                row[f"{m.upper()} longer"] = rec["metrics"][m]
                row[f"{m.upper()} change"] = row[f"{m.upper()} longer"] - row[f"{m.upper()} today"]
            at_today = next((h for h in rec["history"] if h["epoch"] == PAPER_EPOCHS), {})
            row[AT_TODAY] = at_today.get(SCORE_KEYS["test"]["ua"], np.nan)
            row["UA gain in run"] = row["UA longer"] - row[AT_TODAY]
            row["same arithmetic"] = bool(base) and _arithmetic(base) == _arithmetic(rec)
            rows.append(row)
    return pd.DataFrame(rows)


def outer_test_curves(
    results_dir: str | Path, dataset: str, variants: list[str], tag: str, protocol: str = "kfold5"
) -> pd.DataFrame:
    """The test-fold UA after every epoch of the outer runs tagged ``tag`` (recorded for the test-fold-
    selection demonstration), one row per variant, fold and epoch, with the budget multiple it stands for.

    Why read it at all: with a constant learning rate the model after epoch *e* of a long run is the model
    a run of *e* epochs would have ended with, so one run gives its test score at every budget. It is read
    at budgets fixed in advance (:func:`at_budgets`), never searched for the best one."""
    key = SCORE_KEYS["test"]["ua"]
    rows = []
    for v in variants:
        for k, rec in fold_records(run_dir(results_dir, dataset, protocol, v, tag)).items():
            per_epoch = rec["history"][0]["steps"]
            rows += [
                {
                    "variant": v,
                    "fold": k,
                    "epoch": h["epoch"],
                    "multiple": h["steps"] / (per_epoch * PAPER_EPOCHS),
                    "test_ua": h[key],
                }
                for h in rec["history"]
                if key in h
            ]
    return pd.DataFrame(rows, columns=["variant", "fold", "epoch", "multiple", "test_ua"])


def at_budgets(
    curves: pd.DataFrame,
    multiples: tuple[float, ...] = (1, 2, 4, 8),
    flat: dict[str, dict[int, float]] | None = None,
) -> pd.DataFrame:
    """:func:`outer_test_curves` read after the epochs that make each of ``multiples`` x today's budget: per
    variant, the mean over its folds (``folds``: which; rows with other folds are not paired) of the test
    UA at that epoch. ``flat``: rows whose score has no budget (name -> {fold: UA}), e.g. IS10+SVM's."""
    rows = []
    for v, pts in curves.groupby("variant", sort=False):
        folds = sorted(pts.fold.unique())
        row = {"variant": v, "folds": ", ".join(map(str, folds))}
        for m in multiples:
            at = pts[pts.epoch == round(m * PAPER_EPOCHS)]
            row[f"{m:g}x"] = at.test_ua.mean() if at.fold.nunique() == len(folds) else np.nan
        rows.append(row)
    for name, by_fold in (flat or {}).items():  # a row without a training budget (IS10+SVM): the same in each column
        mean = float(np.mean(list(by_fold.values())))
        rows.append(
            {"variant": name, "folds": ", ".join(map(str, sorted(by_fold)))} | {f"{m:g}x": mean for m in multiples}
        )
    return pd.DataFrame(rows)


def _arithmetic(record: dict) -> tuple:
    """What fixes the order of a run's floating-point sums: device, CPU threads, processor."""
    hw = record.get("provenance", {}).get("hardware", {})
    return hw.get("device"), hw.get("torch_threads"), hw.get("processor")


# Verdicts of :func:`chosen_budget_reading`.
NOT_REACHED, STILL_LEARNING, PLATEAU = "not reached", "still learning", "plateau"


def budget_readings(curves: pd.DataFrame, multiple: float) -> pd.DataFrame:
    """Each curve (one variant, one fold) against a budget of ``multiple`` x today's steps: where the
    doubling is read (``at``: the multiple, or the curve's end where it stopped short of it), what it
    gained there, and the curve's verdict (:data:`PLATEAU`, :data:`STILL_LEARNING`, :data:`NOT_REACHED`).

    A curve that stopped short of ``multiple`` supports it only if it had already stopped gaining (the
    issue's own stopping rule: a curve runs "until it gains nothing over the last doubling of steps").
    """
    rows = []
    for (variant, fold), pts in curves.groupby(["variant", "fold"], sort=False):
        at_end = doubling_gain(pts)
        short = at_end["reached"] < multiple * 0.999
        g = at_end if short else doubling_gain(pts, at=multiple)
        if short:
            verdict = PLATEAU if g["plateau"] else NOT_REACHED
        else:
            verdict = PLATEAU if g["plateau"] else STILL_LEARNING
        at = g["reached"] if short else float(multiple)
        rows.append({"variant": variant, "fold": fold, "at": at, "short": short, "gain": g["gain"], "reading": verdict})
    return pd.DataFrame(rows, columns=["variant", "fold", "at", "short", "gain", "reading"])


def chosen_budget_reading(curves: pd.DataFrame, multiple: float) -> str:
    """What the learning curves (:func:`load_curves`) say about a budget of ``multiple`` x today's steps,
    from :func:`budget_readings`: ``not reached`` if some curve stopped short of it while still gaining
    (the curves cannot yet support it); else ``still learning`` if some curve still gained on the doubling
    that ends at it (a lower bound on what the deep branch needs, not a budget at which it has stopped
    improving); else ``plateau``.
    """
    readings = set(budget_readings(curves, multiple).reading) if not curves.empty else {NOT_REACHED}
    for verdict in (NOT_REACHED, STILL_LEARNING):
        if verdict in readings:
            return verdict
    return PLATEAU


# --------------------------------------------------------------- departures from the paper's recipe
PAPER_RECIPE = "paper's recipe"  # :func:`departure_table`'s name for the single-stage recipe of eq. 4
# A departure is adopted only if, compared with the paper's recipe on every inner split, it is ahead on
# average with a one-sided paired t-test over the splits below this p-value (scipy.stats.ttest_rel).
DEPARTURE_P = 0.05


def departure_table(results_dir: str | Path, dataset: str, protocol: str = "kfold5") -> pd.DataFrame:
    """The departures from the paper's single-stage recipe (``plan.DEPARTURES``) beside that recipe, each
    trained at the chosen budget on the inner splits of ``protocol`` and scored on their validation parts
    (the outer test folds are never read): one row per option that has a finished split, with its mean
    validation UA and, over the splits both have finished, its paired gain on the paper's recipe, on how
    many splits it is ahead, and the one-sided paired t-test's p-value (NaN under two splits)."""
    from scipy.stats import ttest_rel

    def scores(tag: str) -> dict[int, float]:
        recs = fold_records(run_dir(results_dir, dataset, protocol, PROPOSED, tag, selection=True))
        return {k: r["metrics"]["ua"] for k, r in recs.items()}

    base = scores(BUDGET_TAG)
    columns = ["option", "splits", "val UA", "paired splits", "gain", "ahead", "p"]
    rows = []
    if base:
        rows.append({"option": PAPER_RECIPE, "splits": len(base), "val UA": float(np.mean(list(base.values())))})
    for name in DEPARTURES:
        ua = scores(f"{BUDGET_TAG}-{name}")
        if not ua:
            continue
        common = sorted(set(ua) & set(base))
        gains = [ua[k] - base[k] for k in common]
        paired = ([ua[k] for k in common], [base[k] for k in common])
        p = ttest_rel(*paired, alternative="greater").pvalue if len(common) >= 2 else np.nan
        rows.append(
            {
                "option": name,
                "splits": len(ua),
                "val UA": float(np.mean(list(ua.values()))),
                "paired splits": len(common),
                "gain": float(np.mean(gains)) if gains else np.nan,
                "ahead": sum(g > 0 for g in gains),
                "p": float(p),
            }
        )
    return pd.DataFrame(rows, columns=columns)


def departures_complete(table: pd.DataFrame, n_splits: int) -> bool:
    """Whether :func:`departure_table` holds the paper's recipe and every departure on all ``n_splits`` splits."""
    return len(table) == len(DEPARTURES) + 1 and bool((table.splits == n_splits).all())


def adopted_departure(table: pd.DataFrame, n_splits: int) -> str | None:
    """The departure :func:`departure_table` supports adopting, or None: once every option has all ``n_splits``
    inner splits (a choice from part of the evidence could change with the next split), the largest mean gain
    on the paper's recipe with ``p`` < :data:`DEPARTURE_P`."""
    if not departures_complete(table, n_splits):
        return None
    ok = table[(table.gain > 0) & (table.p < DEPARTURE_P)]
    return None if ok.empty else str(ok.sort_values("gain", ascending=False).option.iloc[0])
