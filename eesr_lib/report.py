"""Reading result files back: one table per (dataset, protocol, variant), as the book shows it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .metrics import classification_metrics, mean_std
from .results import RESULTS_DIR, load_folds, run_of
from .stats import bootstrap_scores
from .variants import configs


def paired_gap(a: list[dict], b: list[dict], metric: str = "ua") -> tuple[float, int] | None:
    """Mean over the folds both runs have of (a - b) in ``metric``, and how many folds that is.

    Why: while a run is unfinished its mean covers fewer folds than the baseline's, and EMODB's
    folds differ by more than the effect being measured, so gaps are taken fold by fold.
    """
    fa = {r["fold"]: r["metrics"][metric] for r in a}
    fb = {r["fold"]: r["metrics"][metric] for r in b}
    common = sorted(fa.keys() & fb.keys())
    if not common:
        return None
    return float(np.mean([fa[k] - fb[k] for k in common])), len(common)


def pooled_metrics(records: list[dict]) -> dict:
    """Metrics over all folds' test predictions together (each utterance tested once)."""
    labels = records[0]["labels"]
    index = {lab: i for i, lab in enumerate(labels)}
    y_true = [index[p["true"]] for r in records for p in r["predictions"]]
    y_pred = [index[p["pred"]] for r in records for p in r["predictions"]]
    return classification_metrics(np.array(y_true), np.array(y_pred), labels)


def summary(
    results_dir: str | Path = RESULTS_DIR, speakers: dict[str, pd.Series] | None = None, n_boot: int = 0
) -> pd.DataFrame:
    """One row per experiment: folds done, epochs, WA and UA mean ± std over folds, pooled WA/UA.

    With ``n_boot`` > 0 each pooled WA, UA and macro-F1 gets a 95 % interval from resampling
    speakers (:func:`eesr_lib.stats.bootstrap_scores`); ``speakers[dataset]`` maps utterance id to
    speaker, and a dataset without it resamples utterances (column ``resampled``)."""
    groups: dict[tuple, list[dict]] = {}
    for rec in load_folds(results_dir):
        groups.setdefault(run_of(rec["config"]), []).append(rec)
    rows = []
    for (ds, proto, var), recs in sorted(groups.items()):
        recs = sorted(recs, key=lambda r: r["fold"])
        wa = mean_std([r["metrics"]["wa"] for r in recs])
        ua = mean_std([r["metrics"]["ua"] for r in recs])
        pooled = pooled_metrics(recs)
        is_baseline = var.startswith("is10+svm")
        row = pooled_intervals(recs, (speakers or {}).get(ds), n_boot) if n_boot > 0 else {}
        rows.append(
            row
            | {
                "dataset": ds,
                "protocol": proto,
                "variant": var,
                "folds": f"{len(recs)}/{recs[0]['n_folds']}",
                "epochs": None if is_baseline else recs[0]["config"]["train"]["epochs"],
                "WA_mean": wa[0],
                "WA_std": wa[1],
                "UA_mean": ua[0],
                "UA_std": ua[1],
                "WA_pooled": pooled["wa"],
                "UA_pooled": pooled["ua"],
                "wall_min": sum(r["provenance"]["wall_time_s"] for r in recs) / 60,
                "device": recs[0]["provenance"]["hardware"]["device"],
            }
        )
    return pd.DataFrame(rows)


def pooled_intervals(records: list[dict], speakers: pd.Series | None, n_boot: int) -> dict:
    """Pooled WA / UA / macro-F1 with speaker-resampled 95 % intervals (:func:`summary`, the book's
    tables); ``speakers`` maps utterance id to speaker, None (or an unknown id) resamples utterances."""
    labels = records[0]["labels"]
    index = {lab: i for i, lab in enumerate(labels)}
    preds = [p for r in records for p in r["predictions"]]
    ids = [p["id"] for p in preds]
    known = speakers is not None and all(i in speakers.index for i in ids)
    clusters = speakers.loc[ids].to_numpy() if known else None
    b = bootstrap_scores(
        np.array([index[p["true"]] for p in preds]),
        np.array([index[p["pred"]] for p in preds]),
        len(labels),
        clusters,
        n_boot,
    )
    return {
        "WA_pooled": b["wa"],
        "UA_pooled": b["ua"],
        "WA_lo": b["wa_lo"],
        "WA_hi": b["wa_hi"],
        "UA_lo": b["ua_lo"],
        "UA_hi": b["ua_hi"],
        "F1": b["macro_f1"],
        "F1_lo": b["macro_f1_lo"],
        "F1_hi": b["macro_f1_hi"],
        "resampled": "speakers" if known else "utterances",
    }


def _split0_interval(split0: dict | None, speakers: pd.Series | None, n_boot: int) -> dict:
    if split0 is None or n_boot <= 0 or not split0.get("predictions"):
        return {"split0_UA_lo": np.nan, "split0_UA_hi": np.nan}
    iv = pooled_intervals([split0], speakers, n_boot)
    return {"split0_UA_lo": iv["UA_lo"], "split0_UA_hi": iv["UA_hi"]}


def format_summary(df: pd.DataFrame) -> str:
    if df.empty:
        return "No results found."
    if "UA_lo" in df:
        shown = df.assign(
            WA=[f"{m:5.1f} [{lo:4.1f}, {hi:5.1f}]" for m, lo, hi in zip(df.WA_pooled, df.WA_lo, df.WA_hi)],
            UA=[f"{m:5.1f} [{lo:4.1f}, {hi:5.1f}]" for m, lo, hi in zip(df.UA_pooled, df.UA_lo, df.UA_hi)],
            F1=[f"{m:5.1f} [{lo:4.1f}, {hi:5.1f}]" for m, lo, hi in zip(df.F1, df.F1_lo, df.F1_hi)],
            folds_UA=[f"{m:5.1f} ± {s:4.1f}" for m, s in zip(df.UA_mean, df.UA_std)],
        )[["dataset", "protocol", "variant", "folds", "epochs", "WA", "UA", "F1", "folds_UA", "resampled"]]
        head = "pooled over folds, 95 % interval from resampling speakers (or utterances, where named) in brackets;"
        head += " F1 = macro-F1; folds_UA = mean ± std of the folds' UA\n"
        return head + shown.rename(columns={"WA": "WA [95 %]", "UA": "UA [95 %]", "F1": "macro-F1 [95 %]"}).to_string(
            index=False
        )
    shown = df.assign(
        WA=[f"{m:5.1f} ± {s:4.1f}" for m, s in zip(df.WA_mean, df.WA_std)],
        UA=[f"{m:5.1f} ± {s:4.1f}" for m, s in zip(df.UA_mean, df.UA_std)],
        pooled=[f"{w:5.1f} / {u:5.1f}" for w, u in zip(df.WA_pooled, df.UA_pooled)],
    )[["dataset", "protocol", "variant", "folds", "epochs", "WA", "UA", "pooled", "wall_min", "device"]]
    return shown.rename(columns={"pooled": "pooled WA / UA"}).to_string(index=False, float_format=lambda v: f"{v:.1f}")


def config_changes(config: dict) -> dict:
    """The settings of a run that differ from the runner's defaults for its variant."""
    from dataclasses import asdict

    model_cfg, train_cfg = configs(config["variant"], len(config["labels"]))
    out = {}
    for part, default in (("model", asdict(model_cfg)), ("train", asdict(train_cfg))):
        for key, value in config[part].items():
            if default.get(key) != value:
                out[key] = value
    return out


PLATEAU_EPOCHS = (16, 20)


def plateau_ua(history: list[dict], epochs: tuple[int, int] = PLATEAU_EPOCHS) -> float | None:
    """Mean inner-validation UA over ``epochs`` (inclusive), or None without a validation curve.

    Why: one epoch's UA on a ~90-utterance split moves by a point or two from epoch to epoch
    (one utterance is ~1.2 points), so the search compares a five-epoch average. Epochs 16-20
    sit on the plateau of every curve of the first round, and with a constant learning rate
    a 20-epoch proxy follows the first 20 epochs of a 40-epoch run of the same seed (up to
    floating-point rounding, which differs with the thread count).
    """
    vals = [h["val_ua"] for h in history if "val_ua" in h and epochs[0] <= h["epoch"] <= epochs[1]]
    return float(np.mean(vals)) if len(vals) == epochs[1] - epochs[0] + 1 else None


def experiment_log(
    results_dir: str | Path = RESULTS_DIR,
    dataset: str | None = None,
    speakers: pd.Series | None = None,
    n_boot: int = 0,
) -> pd.DataFrame:
    """Every configuration tried: what changed, its inner-validation UA, and (once run) the
    outer test result of the same configuration. Negative results stay in.

    With ``n_boot`` > 0, split 0's UA gets a 95 % interval (``split0_UA_lo`` / ``_hi``) from resampling
    its speakers (``speakers``: utterance id -> speaker; :func:`pooled_intervals`): two configurations
    whose intervals overlap widely were not told apart by one validation split of this size."""
    df = summary(results_dir)
    if df.empty:
        return df
    if dataset:
        df = df[df.dataset == dataset]
    inner = df[df.protocol.str.endswith("+inner")]
    outer = df[~df.protocol.str.endswith("+inner")].set_index(["dataset", "protocol", "variant"])
    rows = []
    for _, r in inner.iterrows():
        protocol = r.protocol.removesuffix("+inner")
        recs = load_folds(results_dir, r.dataset, r.protocol, r.variant)
        changes = config_changes(recs[0]["config"])
        # the outer run of the same configuration: same variant, or the untagged default run when the
        # tried configuration is the runner's default for its variant
        key = (r.dataset, protocol, r.variant if changes else r.variant.split("@")[0])
        test = outer.loc[key] if key in outer.index else None
        plateau = [plateau_ua(rec.get("history", [])) for rec in recs]
        split0 = next((rec for rec in recs if rec["fold"] == 0), None)
        rows.append(
            {
                "dataset": r.dataset,
                "protocol": protocol,
                "variant": r.variant,
                "changes": ", ".join(f"{k}={v}" for k, v in changes.items()) or "defaults",
                "inner_folds": r.folds,
                "inner_UA": r.UA_mean,
                "inner_UA_std": r.UA_std,
                "inner_UA_ep16_20": float(np.mean(plateau)) if plateau and None not in plateau else None,
                # split 0 (the inner split of outer fold 0) is the one every configuration was run on
                "split0_UA": split0["metrics"]["ua"] if split0 else None,
                "split0_UA_ep16_20": plateau_ua(split0.get("history", [])) if split0 else None,
                **_split0_interval(split0, speakers, n_boot),
                "test_UA": None if test is None else test.UA_mean,
                "test_WA": None if test is None else test.WA_mean,
                "test_folds": None if test is None else test.folds,
            }
        )
    return pd.DataFrame(rows)
