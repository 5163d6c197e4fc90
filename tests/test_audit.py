"""The result audit passes on a real run and catches each kind of bug it is meant to catch."""

import copy

import numpy as np

from eesr_lib import runner
from eesr_lib.audit import CHECKS, audit, audit_experiment
from eesr_lib.train import standardize_is10


def test_audit_passes_on_a_run_and_fails_on_each_tampering(mini, tmp_path):
    recs = runner.run("emodb_mini", "kfold5", "is10+svm", corpus=mini, results_dir=tmp_path, progress=False)
    assert all(audit_experiment(recs, mini, "kfold5").values())
    table = audit({("kfold5", "is10+svm"): recs}, mini)
    assert table.loc[0, "folds"] == 5 and table[list(CHECKS)].all(axis=None)

    def failing(edit):
        bad = copy.deepcopy(recs)
        edit(bad)
        return {k for k, ok in audit_experiment(bad, mini, "kfold5").items() if not ok}

    def swap_true(b):
        p = b[0]["predictions"][0]
        p["true"] = next(lab for lab in mini.labels if lab != p["true"])

    def flip_pred(b):
        p = b[0]["predictions"][0]
        p["pred"] = next(lab for lab in mini.labels if lab != p["pred"])

    def wrong_fold(b):
        b[0]["fold"] = 1

    def label_order(b):
        for r in b:
            r["labels"] = list(reversed(r["labels"]))

    assert "labels from file names" in failing(swap_true)
    assert "labels from file names" in failing(label_order)
    assert {"prediction = argmax of scores", "metrics follow from predictions"} <= failing(flip_pred)
    assert failing(wrong_fold) == {"test fold = protocol's fold"}
    assert failing(lambda b: b.append(b[0])) == {"each utterance tested once"}

    def near_tie(b):  # two classes equal after rounding: either may be the prediction
        p = b[0]["predictions"][0]
        other = next(lab for lab in mini.labels if lab != p["pred"])
        p["scores"] = [0.0] * len(mini.labels)
        p["scores"][mini.labels.index(p["pred"])] = p["scores"][mini.labels.index(other)] = 0.5

    assert failing(near_tie) == set()


def test_is10_standardization_uses_training_statistics_only():
    rng = np.random.default_rng(0)
    train, test = rng.normal(3, 2, (50, 6)), rng.normal(3, 2, (10, 6))
    a_train, a_test = standardize_is10(train, test)
    b_train, b_test = standardize_is10(train, test * 100 + 7)  # a very different test set
    np.testing.assert_allclose(a_train, b_train)  # the training side does not see the test set
    np.testing.assert_allclose(a_train.mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(a_test, (test - train.mean(0)) / train.std(0), rtol=1e-5)
