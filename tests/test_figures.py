"""The introduction's claims figure is drawn from result records only, and leaves out what has not run."""

import json

import numpy as np
import pandas as pd
import pytest

from eesr_lib import figures, paper


def _write(root, protocol, variant, correct_share, n_folds=2, per_fold=40, written=None):
    labels = ["anger", "boredom"]
    folder = root / "emodb" / protocol / variant
    folder.mkdir(parents=True)
    rng = np.random.default_rng(len(variant))
    for k in range(n_folds if written is None else written):
        preds = []
        for i in range(per_fold):
            true = labels[i % 2]
            ok = rng.random() < correct_share
            preds.append({"id": f"u{k}-{i}", "true": true, "pred": true if ok else labels[1 - i % 2]})
        config = {"protocol": protocol, "variant": variant, "tag": None, "selection": False}
        rec = {"fold": k, "n_folds": n_folds, "labels": labels, "predictions": preds, "config": config}
        (folder / f"fold_{k}.json").write_text(json.dumps(rec))


def test_claim_rows_come_from_finished_runs_only(tmp_path):
    _write(tmp_path, "kfold5", "ae+ee+in", 0.9)
    _write(tmp_path, "kfold5", "is10+svm", 0.8)
    _write(tmp_path, "kfold5", "ae+ee", 0.7, n_folds=3, written=2)  # unfinished: 2 of 3 folds written
    _write(tmp_path, "kfold5", "ae", 0.7)
    speakers = pd.Series({f"u{k}-{i}": f"s{i % 5}" for k in range(3) for i in range(40)})
    rows = figures.claim_rows(tmp_path, "emodb", speakers, n_boot=200)
    wa = rows[rows.panel == "wa"].iloc[0]
    assert wa.protocol == "kfold5" and wa.paper == paper.EMODB_WA["kfold5"] and wa.lo <= wa.ours <= wa.hi
    gaps = rows[rows.panel == "gap"]
    assert list(gaps.label) == ["AE+EE,IN − IS10+SVM"]  # AE+EE is unfinished: its claim is left out
    assert gaps.iloc[0].ours > 0 and np.isnan(gaps.iloc[0].paper)  # the paper has no 10-fold SVM row
    fig = figures.claims_figure(rows)
    assert len(fig.axes) == 2
    out = figures.write_claims_figure(tmp_path, "emodb", speakers, tmp_path / "fig" / "claims.png")
    assert out.read_bytes().startswith(b"\x89PNG")
    assert figures.write_claims_figure(tmp_path / "none", "emodb", speakers, tmp_path / "x.png") is None


@pytest.mark.parametrize("protocol", ["kfold5", "loso-speaker"])
def test_the_papers_gap_is_its_iemocap_table4_gap(protocol):
    ref = figures.PAPER_PROTOCOL[protocol]
    expected = paper.TABLE4_UA_IEMOCAP["ae+ee"][ref] - paper.TABLE4_UA_IEMOCAP["ae"][ref]
    assert expected == pytest.approx(1.02 if ref == "kfold10" else 1.0)
