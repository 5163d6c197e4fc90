"""Paired comparison of two runs: the gap, its speaker-resampled interval, McNemar's test."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from eesr_lib.stats import bootstrap_ua_gap, compare_runs, mcnemar_exact, paired_outcomes

LABELS = ["a", "b"]


def _records(preds_by_fold: dict[int, list[tuple[str, str, str]]]) -> list[dict]:
    return [
        {"fold": k, "labels": LABELS, "predictions": [{"id": i, "true": t, "pred": p} for i, t, p in rows]}
        for k, rows in preds_by_fold.items()
    ]


def test_paired_outcomes_uses_common_folds_and_aligns_by_id():
    a = _records({0: [("u1", "a", "a"), ("u2", "b", "a")], 1: [("u3", "a", "b")]})
    b = _records({0: [("u2", "b", "b"), ("u1", "a", "b")]})  # other order, fold 1 not finished
    p = paired_outcomes(a, b)
    assert list(p.index) == ["u1", "u2"]
    assert list(p.pred_a) == ["a", "a"] and list(p.pred_b) == ["b", "b"]
    with pytest.raises(ValueError, match="same utterances"):
        paired_outcomes(a, _records({0: [("u1", "a", "a"), ("u9", "b", "b")]}))


def test_identical_runs_have_no_gap_and_p_one():
    rows = [(f"u{i}", LABELS[i % 2], LABELS[(i // 3) % 2]) for i in range(60)]
    p = paired_outcomes(_records({0: rows}), _records({0: rows}))
    assert bootstrap_ua_gap(p, LABELS, n_boot=200) == {"gap": 0.0, "lo": 0.0, "hi": 0.0, "p_above_0": 0.0}
    assert mcnemar_exact(p) == {"only_a": 0, "only_b": 0, "p": 1.0}


def _synthetic(n_speakers=20, per=30, seed=0):
    """Run a is better on half the speakers, worse on the other half: no overall effect, but
    strong speaker-level correlation, which utterance resampling ignores."""
    rng = np.random.default_rng(seed)
    rows_a, rows_b, speakers = [], [], {}
    for s in range(n_speakers):
        good_a = s % 2 == 0
        for j in range(per):
            uid, true = f"s{s}_{j}", LABELS[j % 2]
            wrong = LABELS[1 - j % 2]
            rows_a.append((uid, true, true if (good_a or rng.random() < 0.5) else wrong))
            rows_b.append((uid, true, true if (not good_a or rng.random() < 0.5) else wrong))
            speakers[uid] = s
    return paired_outcomes(_records({0: rows_a}), _records({0: rows_b})), pd.Series(speakers)


def test_speaker_bootstrap_is_wider_than_utterance_bootstrap_when_speakers_differ():
    p, spk = _synthetic()
    by_utt = bootstrap_ua_gap(p, LABELS, None, n_boot=1000)
    by_spk = bootstrap_ua_gap(p, LABELS, spk.loc[p.index].to_numpy(), n_boot=1000)
    assert by_utt["gap"] == by_spk["gap"]
    assert by_utt["lo"] <= by_utt["gap"] <= by_utt["hi"]
    assert (by_spk["hi"] - by_spk["lo"]) > 1.5 * (by_utt["hi"] - by_utt["lo"])


def test_a_clearly_better_run_is_detected():
    rows_b = [(f"u{i}", LABELS[i % 2], LABELS[(i // 2) % 2]) for i in range(400)]  # about half right
    rows_a = [(u, t, t) for u, t, _ in rows_b]  # always right
    p = paired_outcomes(_records({0: rows_a}), _records({0: rows_b}))
    m = mcnemar_exact(p)
    assert m["only_b"] == 0 and m["only_a"] == 200 and m["p"] < 1e-10
    gap = bootstrap_ua_gap(p, LABELS, n_boot=500)
    assert gap["gap"] == pytest.approx(50.0) and gap["lo"] > 40 and gap["p_above_0"] == 1.0


def test_compare_runs_on_real_records(emodb):
    from eesr_lib.report import load_folds

    results = Path(__file__).resolve().parents[1] / "results"
    a = load_folds(results, "emodb", "kfold5", "ae+ee+in")
    b = load_folds(results, "emodb", "kfold5", "is10+svm")
    if not a or not b:
        pytest.skip("committed EMODB results not present")
    r = compare_runs(a, b, emodb.table.set_index("id")["speaker"], n_boot=300)
    assert r["n"] == len(emodb)
    assert r["lo"] <= r["gap"] <= r["hi"] and 0 <= r["p"] <= 1
    assert r["only_a"] + r["only_b"] <= len(emodb) * (100 - r["agree_pct"]) / 100 + 1e-9


def test_retraining_noise_pairs_folds_and_scales_the_fold_spread():
    from eesr_lib.stats import retraining_noise

    def runs(scores):
        return [{"fold": k, "metrics": {"ua": s}} for k, s in scores.items()]

    first = runs({0: 80.0, 1: 70.0, 2: 90.0, 3: 60.0})
    again = runs({1: 72.0, 0: 79.0, 2: 90.0, 3: 61.0, 4: 50.0})  # fold 4 only in one run: ignored
    r = retraining_noise(first, again)
    assert r["folds"] == [0, 1, 2, 3] and r["again"] == [79.0, 72.0, 90.0, 61.0]
    diffs = np.array([-1.0, 2.0, 0.0, 1.0])
    assert r["gap"] == pytest.approx(0.5) and r["mean_abs"] == 1.0 and r["max_abs"] == 2.0
    assert r["sd"] == pytest.approx(diffs.std(ddof=1)) and r["gap_sd"] == pytest.approx(diffs.std(ddof=1) / 2)
    assert retraining_noise(first, runs({7: 1.0})) is None


def test_bootstrap_scores_match_sklearn_and_speakers_widen_the_interval():
    from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score

    from eesr_lib.stats import bootstrap_scores

    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 600)
    speaker = np.repeat(np.arange(6), 100)
    good = np.isin(speaker, [0, 1, 2])  # half the speakers are easy, half hard: utterances are not independent
    pred = np.where(rng.random(600) < np.where(good, 0.95, 0.4), y, (y + 1) % 3)
    by_utt = bootstrap_scores(y, pred, 3, None, n_boot=500)
    by_spk = bootstrap_scores(y, pred, 3, speaker, n_boot=500)
    assert by_utt["wa"] == pytest.approx(100 * accuracy_score(y, pred))
    assert by_utt["ua"] == pytest.approx(100 * balanced_accuracy_score(y, pred))
    assert by_utt["macro_f1"] == pytest.approx(100 * f1_score(y, pred, average="macro"))
    for m in ("wa", "ua", "macro_f1"):
        assert by_spk[f"{m}_lo"] <= by_spk[m] <= by_spk[f"{m}_hi"]
        assert by_spk[f"{m}_hi"] - by_spk[f"{m}_lo"] > 2 * (by_utt[f"{m}_hi"] - by_utt[f"{m}_lo"])


def test_one_speaker_gets_no_interval_from_resampling_speakers():
    """A leave-one-speaker-out test fold is one voice: resampling it always gives the same set."""
    from eesr_lib import tables
    from eesr_lib.stats import bootstrap_scores

    rng = np.random.default_rng(1)
    y = rng.integers(0, 4, 200)
    pred = np.where(rng.random(200) < 0.6, y, (y + 1) % 4)
    one = bootstrap_scores(y, pred, 4, np.full(200, "SM0"), n_boot=300)
    two = bootstrap_scores(y, pred, 4, np.repeat(["SM0", "TP0"], 100), n_boot=300)
    assert np.isnan([one["wa_lo"], one["ua_hi"], one["macro_f1_lo"]]).all()
    assert one["ua"] == pytest.approx(two["ua"]) and two["ua_lo"] < two["ua"] < two["ua_hi"]
    scores = {"UA": (one["ua"], one["ua_lo"], one["ua_hi"]), "resampled": "speakers"}
    assert tables.with_interval(*scores["UA"]) == f"{one['ua']:.1f}"
    assert "no interval" in tables.interval_note(scores)
    scores["UA"] = (two["ua"], two["ua_lo"], two["ua_hi"])
    assert tables.with_interval(*scores["UA"]).endswith("]")
    assert tables.interval_note(scores) == "95 % intervals from resampling speakers"


def test_report_prints_intervals_and_macro_f1(tmp_path):
    from eesr_lib.report import format_summary, summary

    folder = tmp_path / "toy" / "kfold5" / "is10+svm"
    folder.mkdir(parents=True)
    labels = ["a", "b"]
    for k in range(2):
        preds = [{"id": f"{k}-{i}", "true": labels[i % 2], "pred": labels[(i // 3) % 2]} for i in range(12)]
        rec = {
            "fold": k, "n_folds": 2, "labels": labels, "predictions": preds,
            "metrics": {"wa": 50.0, "ua": 50.0},
            "config": {"dataset": "toy", "protocol": "kfold5", "variant": "is10+svm", "train": {"epochs": 1}},
            "provenance": {"wall_time_s": 1.0, "hardware": {"device": "cpu"}},
        }  # fmt: skip
        (folder / f"fold_{k}.json").write_text(json.dumps(rec))
    speakers = {"toy": pd.Series({f"{k}-{i}": f"s{i % 4}" for k in range(2) for i in range(12)})}
    df = summary(tmp_path, speakers=speakers, n_boot=200)
    row = df.iloc[0]
    assert row.resampled == "speakers" and row.UA_lo <= row.UA_pooled <= row.UA_hi and 0 <= row.F1 <= 100
    assert "macro-F1 [95 %]" in format_summary(df)
    assert summary(tmp_path, n_boot=200).iloc[0].resampled == "utterances"  # no speaker map: utterances
    assert "UA_lo" not in summary(tmp_path)  # the book's tables: no intervals unless asked


def test_the_experiment_log_gives_each_configuration_an_interval_on_split_0(emodb):
    from eesr_lib.report import experiment_log

    results = Path(__file__).resolve().parents[1] / "results"
    speakers = emodb.table.set_index("id")["speaker"]
    log = experiment_log(results, "emodb", speakers=speakers, n_boot=200)
    if log.empty:
        pytest.skip("no committed selection runs")
    done = log.dropna(subset=["split0_UA"])
    assert (done.split0_UA_lo <= done.split0_UA).all() and (done.split0_UA <= done.split0_UA_hi).all()
    assert (done.split0_UA_hi - done.split0_UA_lo > 1).all()  # a ~90-utterance split: never a point
