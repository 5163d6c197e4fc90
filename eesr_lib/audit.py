"""Checks on finished result files for the bugs that usually sit behind a surprising number.

Our EMODB results are below the paper's. Before explaining a gap, look for a bug: labels in
the wrong order, a test fold that is not the protocol's, a slip between the stored window
scores and the stored prediction, metrics that do not follow from the predictions, an
utterance tested twice. Each check below compares what a run *wrote* with what the corpus
loader (labels from the corpus's own file-naming scheme) and the protocol give *now*, so
each can fail. Leakage of test statistics into the IS10 normalization cannot be seen in a
result file; ``tests/test_audit.py`` checks :func:`eesr_lib.train.standardize_is10` for it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .corpora import Corpus
from .metrics import SCORE_DECIMALS
from .protocols import folds
from .report import pooled_metrics

CHECKS = (
    "labels from file names",
    "test fold = protocol's fold",
    "prediction = argmax of scores",
    "metrics follow from predictions",
    "each utterance tested once",
)


def audit_experiment(records: list[dict], corpus: Corpus, protocol: str) -> dict[str, bool]:
    """Each of :data:`CHECKS` for the finished folds ``records`` of one outer experiment."""
    label_of = dict(zip(corpus.table["id"], corpus.table["label"]))
    ids = corpus.table["id"].to_numpy()
    seed = records[0]["config"]["seed"]
    protocol_folds = folds(corpus, protocol, seed)
    ok = dict.fromkeys(CHECKS, True)
    tested: list[str] = []
    for rec in records:
        preds = rec["predictions"]
        labels = rec["labels"]
        tested += [p["id"] for p in preds]
        ok["labels from file names"] &= list(labels) == list(corpus.labels) and all(
            label_of.get(p["id"]) == p["true"] for p in preds
        )
        train_idx, test_idx = protocol_folds[rec["fold"]]
        ok["test fold = protocol's fold"] &= sorted(p["id"] for p in preds) == sorted(ids[test_idx]) and rec[
            "train_size"
        ] == len(train_idx)
        ok["prediction = argmax of scores"] &= all("scores" in p and _is_argmax(p, labels) for p in preds)
        again = pooled_metrics([rec])  # recomputed from this fold's stored predictions
        ok["metrics follow from predictions"] &= all(abs(again[m] - rec["metrics"][m]) < 1e-6 for m in ("wa", "ua"))
    ok["each utterance tested once"] = len(tested) == len(set(tested))
    return ok


def audit(experiments: dict[tuple[str, str], list[dict]], corpus: Corpus) -> pd.DataFrame:
    """One row per (protocol, variant) with finished folds: the folds checked and each check's outcome."""
    rows = []
    for (protocol, variant), records in experiments.items():
        outer = [r for r in records if not r["config"].get("selection")]
        if outer:
            rows.append(
                {"protocol": protocol, "variant": variant, "folds": len(outer)}
                | audit_experiment(outer, corpus, protocol)
            )
    return pd.DataFrame(rows, columns=["protocol", "variant", "folds", *CHECKS])


def _is_argmax(pred: dict, labels: list[str]) -> bool:
    """The predicted class has the top stored score. Why a tolerance: scores are stored rounded, so
    two classes within 1e-6 of each other (a near tie: one utterance among the EMODB results) read
    as equal, and np.argmax would name the first of them whichever one the model actually chose."""
    scores = np.asarray(pred["scores"])
    return pred["pred"] in labels and scores[labels.index(pred["pred"])] >= scores.max() - 10**-SCORE_DECIMALS
