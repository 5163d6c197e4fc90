"""Calibration of held-out predictions: reliability bins, ECE, its speaker interval, score ranking."""

import json

import numpy as np
import pytest
from sklearn.calibration import calibration_curve

from eesr_lib import calibration as cal
from eesr_lib.errors import EESRError


def test_reliability_table_bins_like_sklearn_and_counts_every_utterance():
    conf = np.array([0.05, 0.1, 0.15, 0.55, 0.6, 0.95, 1.0, 0.97])  # 0.1 and 0.6 sit on edges: lower bin
    correct = np.array([0, 0, 1, 1, 0, 1, 1, 0], dtype=bool)
    table = cal.reliability_table(conf, correct, n_bins=10)
    assert table["lower"].tolist() == pytest.approx([0.0, 0.1, 0.5, 0.9])  # empty bins left out
    assert table["n"].tolist() == [2, 1, 2, 3] and table["n"].sum() == len(conf)
    assert table["accuracy"].tolist() == pytest.approx([0.0, 1.0, 0.5, 2 / 3])
    assert table["confidence"].tolist() == pytest.approx([0.075, 0.15, 0.575, (0.95 + 1.0 + 0.97) / 3])
    acc, mean_conf = calibration_curve(correct.astype(int), conf, n_bins=10)
    np.testing.assert_allclose(table["accuracy"], acc)
    np.testing.assert_allclose(table["confidence"], mean_conf)


def test_ece_of_known_cases():
    # always 90 % sure, right 60 % of the time: 30 points overconfident
    conf = np.full(10, 0.9)
    correct = np.array([1] * 6 + [0] * 4, dtype=bool)
    assert cal.expected_calibration_error(conf, correct) == pytest.approx(0.3)
    # two bins, each off by a different amount, weighted by their counts
    conf = np.array([0.35] * 4 + [0.85] * 6)
    correct = np.array([1, 0, 0, 0] + [1] * 6, dtype=bool)  # acc 0.25 (gap 0.10) and 1.0 (gap 0.15)
    assert cal.expected_calibration_error(conf, correct) == pytest.approx(0.4 * 0.10 + 0.6 * 0.15)
    # a calibrated model: correct with probability equal to its confidence
    rng = np.random.default_rng(0)
    conf = rng.uniform(0.2, 1.0, 20_000)
    assert cal.expected_calibration_error(conf, rng.uniform(size=conf.size) < conf) < 0.015


def test_reliability_refuses_what_is_not_a_probability():
    with pytest.raises(EESRError, match="probabilities"):
        cal.reliability_table(np.array([0.5, 3.2]), np.array([True, False]))
    with pytest.raises(EESRError, match="equal"):
        cal.reliability_table(np.array([0.5, 0.7]), np.array([True]))


def test_is_probability_tells_softmax_from_decision_values():
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(50, 7)) * 3
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    assert cal.is_probability(np.round(probs, 6))  # as fold files store them
    assert not cal.is_probability(logits)  # an SVM's decision values
    assert not cal.is_probability(probs * 0.5)  # rows that do not sum to 1


def test_top_label_confidence_and_correctness():
    scores = np.array([[0.1, 0.7, 0.2], [0.5, 0.3, 0.2], [0.2, 0.2, 0.6]])
    conf, correct = cal.top_label(scores, np.array([1, 2, 2]))
    assert conf.tolist() == [0.7, 0.5, 0.6] and correct.tolist() == [True, False, True]


def test_ece_interval_resamples_speakers():
    rng = np.random.default_rng(2)
    conf = rng.uniform(0.5, 1.0, 400)
    correct = rng.uniform(size=400) < conf - 0.1
    ece = cal.expected_calibration_error(conf, correct)
    lo, hi = cal.ece_interval(conf, correct, None, n_boot=500)
    assert lo < ece < hi and hi - lo < 0.2
    # one speaker only: every resample is the whole set, so the interval collapses onto the ECE
    lo1, hi1 = cal.ece_interval(conf, correct, np.zeros(400), n_boot=50)
    assert lo1 == pytest.approx(ece) and hi1 == pytest.approx(ece)
    # speakers whose calibration differs: resampling them is wider than resampling utterances
    speakers = np.repeat(np.arange(4), 100)
    off = np.where(speakers < 2, 0.0, 0.4)
    skewed = rng.uniform(size=400) < conf - off
    lo_u, hi_u = cal.ece_interval(conf, skewed, None, n_boot=500)
    lo_s, hi_s = cal.ece_interval(conf, skewed, speakers, n_boot=500)
    assert hi_s - lo_s > 1.5 * (hi_u - lo_u)


def test_selective_accuracy_keeps_the_most_confident():
    score = np.array([0.9, 0.2, 0.8, 0.4, 0.6])
    correct = np.array([1, 0, 1, 0, 0], dtype=bool)
    acc = cal.selective_accuracy(score, correct, [0.4, 0.6, 1.0])
    assert acc.tolist() == pytest.approx([100.0, 200 / 3, 40.0])
    # any order-preserving transform (an SVM's decision values) gives the same curve
    assert cal.selective_accuracy(np.log(score) * 7 - 3, correct, [0.4, 0.6, 1.0]).tolist() == acc.tolist()
    with pytest.raises(EESRError):
        cal.selective_accuracy(score, correct, [0.0])


def _fold(path, fold, predictions):
    path.mkdir(parents=True, exist_ok=True)
    record = {"labels": ["a", "b"], "fold": fold, "predictions": predictions, "metrics": {}}
    (path / f"fold_{fold}.json").write_text(json.dumps(record))


def test_load_scores_pools_the_folds(tmp_path):
    run = tmp_path / "toy" / "kfold5" / "net"
    _fold(run, 1, [{"id": "u3", "true": "a", "pred": "a", "scores": [0.8, 0.2]}])
    _fold(run, 0, [{"id": "u1", "true": "b", "pred": "a", "scores": [0.6, 0.4]}, {"id": "u2", "true": "b"}])
    with pytest.raises(EESRError, match="fold 0 kept no scores"):
        cal.load_scores(tmp_path, "toy", "kfold5", "net")
    _fold(run, 0, [{"id": "u1", "true": "b", "pred": "a", "scores": [0.6, 0.4]}])
    table, scores, labels = cal.load_scores(tmp_path, "toy", "kfold5", "net")
    assert labels == ["a", "b"] and table["id"].tolist() == ["u1", "u3"] and table["true"].tolist() == [1, 0]
    np.testing.assert_allclose(scores, [[0.6, 0.4], [0.8, 0.2]])
    with pytest.raises(EESRError, match="No finished fold"):
        cal.load_scores(tmp_path, "toy", "kfold5", "other")
    with pytest.raises(EESRError, match="No fold records"):
        cal.prediction_scores([])
