"""Calibration of held-out predictions: reliability bins, ECE, its speaker interval, score ranking."""

import json

import numpy as np
import pandas as pd
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


# Chapter 9's summaries and readings, on made-up predictions


def _held(conf, correct, speakers=None, is_prob=True):
    conf = np.asarray(conf, dtype=float)
    speakers = np.zeros(len(conf)) if speakers is None else np.asarray(speakers)
    return cal.Held(conf, np.asarray(correct, dtype=bool), speakers, is_prob)


def _record(fold, rows, labels=("a", "b")):
    return {
        "labels": list(labels),
        "fold": fold,
        "predictions": [{"id": i, "true": t, "scores": s} for i, t, s in rows],
    }


def test_held_out_reads_confidence_correctness_and_speakers():
    records = [
        _record(1, [("u3", "a", [0.2, 0.8])]),
        _record(0, [("u1", "b", [0.6, 0.4]), ("u2", "b", [0.1, 0.9])]),
    ]
    speaker_of = pd.Series({"u1": "s1", "u2": "s2", "u3": "s1", "other": "s9"})
    held = cal.held_out(records, speaker_of)
    assert held.confidence.tolist() == [0.6, 0.9, 0.8]  # fold order: u1, u2 (fold 0), u3
    assert held.correct.tolist() == [False, True, False]
    assert held.speakers.tolist() == ["s1", "s2", "s1"] and held.is_probability
    svm = cal.held_out([_record(0, [("u1", "b", [-1.5, 2.0]), ("u2", "a", [0.3, -0.2])])], speaker_of)
    assert not svm.is_probability and svm.correct.tolist() == [True, True]


def test_summary_row_with_and_without_probabilities():
    conf = np.full(10, 0.9)
    held = _held(conf, [1] * 6 + [0] * 4, speakers=np.arange(10) % 5)
    row, (lo, hi) = cal.summary_row(held, seed=0)
    assert list(row) == ["utterances", "accuracy (%)", "mean confidence (%)", "ECE (points)", "ECE 95 % interval"]
    assert row["utterances"] == 10 and row["accuracy (%)"] == pytest.approx(60)
    assert row["mean confidence (%)"] == pytest.approx(90) and row["ECE (points)"] == pytest.approx(30)
    assert lo <= 0.3 <= hi and row["ECE 95 % interval"] == f"{100 * lo:.1f} to {100 * hi:.1f}"
    assert cal.summary_row(held, seed=0) == (row, (lo, hi))  # seeded: the page prints the same interval
    row, interval = cal.summary_row(held._replace(is_probability=False))
    assert interval is None and "ECE (points)" not in row
    assert row["ECE 95 % interval"] == "scores are not probabilities"


def test_above_threshold_and_overconfidence():
    held = _held([0.95, 0.9, 0.5, 0.4], [1, 0, 1, 0])
    assert cal.above_threshold(held) == pytest.approx((50.0, 50.0))  # 0.9 itself counts as sure
    assert cal.above_threshold(held, 0.92) == pytest.approx((25.0, 100.0))
    share, acc = cal.above_threshold(held, 0.99)
    assert share == 0 and np.isnan(acc)
    assert cal.overconfidence(held) == pytest.approx(100 * (0.6875 - 0.5))
    assert cal.overconfidence(_held([0.5, 0.5], [1, 1])) == pytest.approx(-50)


def test_panels_put_protocols_first_then_cross_corpus():
    h = _held([0.9], [1])
    held = {("loso-speaker", "ae+ee+in"): h, ("kfold5", "is10+svm"): h, ("x (cross-corpus)", "bundle"): h}
    held[("kfold5", "ae+ee+in")] = h
    assert cal.panels(held, ["kfold5", "kfold10", "loso-speaker"]) == ["kfold5", "loso-speaker", "x (cross-corpus)"]
    assert cal.panels({("kfold5", "is10+svm"): h}, ["kfold5"]) == []


def test_confidence_lines_read_the_numbers_and_the_interval_overlap():
    full = _held([0.95] * 8 + [0.6] * 2, [1] * 7 + [0] * 3)  # 80 % sure of 8, right on 7 of them
    spectrogram = _held([0.7] * 10, [1] * 5 + [0] * 5)
    held = {("kfold5", "ae+ee+in"): full, ("kfold5", "ae-os"): spectrogram, ("r (cross-corpus)", "bundle"): full}
    overlapping = {("kfold5", "ae+ee+in"): (0.1, 0.3), ("kfold5", "ae-os"): (0.2, 0.4)}
    lines = cal.confidence_lines(held, ["kfold5", "r (cross-corpus)"], overlapping)
    assert len(lines) == 3
    assert "is at least 90 % sure of 80 % of the utterances and right on 88 % of those" in lines[0]
    assert "AE+EE,IN" in lines[0] and "the bundle" in lines[1]
    gap = cal.overconfidence(full)
    assert f"{abs(gap):.1f} points {'above' if gap > 0 else 'below'}" in lines[0]
    assert "right on 50 % against 70 %" in lines[2] and "intervals overlap" in lines[2]
    apart = {("kfold5", "ae+ee+in"): (0.3, 0.4), ("kfold5", "ae-os"): (0.0, 0.1)}
    ece_os = 100 * cal.expected_calibration_error(spectrogram.confidence, spectrogram.correct)
    ece_full = 100 * cal.expected_calibration_error(full.confidence, full.correct)
    last = cal.confidence_lines(held, ["kfold5"], apart)[-1]
    assert "overlap" not in last and f"{ece_os:.1f} points against {ece_full:.1f}" in last
    assert last.endswith("knows it better.") == (ece_os < ece_full)
    never = cal.confidence_lines({("kfold5", "ae+ee+in"): _held([0.5, 0.6], [1, 0])}, ["kfold5"], {})
    assert len(never) == 1 and "is never 90 % sure" in never[0] and "below" not in never[0]


def test_selective_curves_and_their_reading():
    ranks = _held([0.9, 0.8, 0.3, 0.2], [1, 1, 0, 0])
    flat = _held([0.9, 0.8, 0.3, 0.2], [0, 1, 1, 0])
    held = {("kfold5", "ae+ee+in"): ranks, ("kfold5", "is10+svm"): flat, ("loso-speaker", "ae+ee+in"): flat}
    held[("r (cross-corpus)", "bundle")] = flat
    curves = cal.selective_curves(held, "kfold5", [0.5, 1.0])
    assert list(curves) == ["AE+EE,IN (proposed)", "IS10+SVM", "the bundle on r (cross-corpus)"]
    assert curves["AE+EE,IN (proposed)"].tolist() == [100.0, 50.0]
    text = cal.selective_reading(curves["AE+EE,IN (proposed)"], "kfold5")
    assert "right on 100 % of them, against 50 % of all" in text and "ranks its own errors" in text
    assert "hardly separates" in cal.selective_reading(curves["IS10+SVM"], "kfold5")


def test_recording_advice_prefers_speaker_held_out_and_reads_the_cross_corpus_set():
    loso = _held([0.99] * 4, [1, 0, 1, 1])  # overconfident by 24 points
    kfold = _held([0.5] * 4, [1, 1, 1, 1])
    cross = _held([0.95, 0.95, 0.6, 0.5], [0, 1, 1, 0])
    held = {("kfold5", "ae+ee+in"): kfold, ("loso-speaker", "ae+ee+in"): loso, ("r (cross-corpus)", "bundle"): cross}
    points = cal.recording_advice(held, "RAVDESS")
    assert len(points) == 4
    assert "(loso-speaker), the recipe is right on 75 % and overconfident by 24.0 points" in points[0]
    assert "means less than 95 in 100" in points[0]
    assert (
        "on RAVDESS" in points[1]
        and "right on 50 %" in points[1]
        and "mean confidence of 75 %: overconfident by 25 points" in points[1]
    )
    assert "Of the answers it gives with confidence 0.9 or more (50 % of them) 50 % are right." in points[1]
    assert "hardly ranks" in points[2]  # all equally sure: the first half (50 %) is right less than all (75 %)
    assert "most confident half is right on 50 % against 50 % of all" in points[3] and "says little" in points[3]
    only_kfold = cal.recording_advice({("kfold5", "ae+ee+in"): kfold}, "RAVDESS")
    assert len(only_kfold) == 2 and "(kfold5)" in only_kfold[0] and "underconfident by 50.0" in only_kfold[0]
    assert cal.recording_advice({}, "RAVDESS") == []


def test_reliability_and_selective_figures_draw_what_they_are_given():
    from eesr_lib import figures

    rng = np.random.default_rng(0)
    conf = rng.uniform(0.3, 1.0, 200)
    held = {
        ("kfold5", "ae+ee+in"): _held(conf, rng.uniform(size=200) < conf),
        ("kfold5", "is10+svm"): _held(conf * 5 - 2, conf > 0.5, is_prob=False),  # no reliability curve
        ("r (cross-corpus)", "bundle"): _held(conf, rng.uniform(size=200) < 0.3),
    }
    fig = figures.reliability_panels(held, ["kfold5", "r (cross-corpus)"])
    assert len(fig.axes) == 4  # two panels over two histograms
    labels = [[line.get_label() for line in ax.get_lines()] for ax in (fig.axes[0], fig.axes[1])]
    assert labels == [["calibrated", "AE+EE,IN (proposed)"], ["calibrated", "the bundle"]]
    curves = cal.selective_curves(held, "kfold5", [0.5, 1.0])
    fig = figures.selective_figure(curves, "kfold5")
    assert [line.get_label() for line in fig.axes[0].get_lines()] == list(curves)
    assert fig.axes[0].get_lines()[0].get_xdata().tolist() == [50.0, 100.0]
