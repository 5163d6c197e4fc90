"""Demonstrations of evaluation flaws (eesr_lib/flaws.py): selection on test folds, crop-level
splits, the arithmetic of fold-averaged confusion matrices, random k-fold. Fast: synthetic data
and closed-form cases, plus EMODB's labels and cached IS10 features where they matter."""

import itertools
from fractions import Fraction

import numpy as np
import pytest
from sklearn.model_selection import StratifiedKFold

from eesr_lib import flaws
from eesr_lib.baselines import mlp_scores
from eesr_lib.crops import window_starts
from eesr_lib.model import ModelConfig
from eesr_lib.paper import CONFUSION_PCT
from eesr_lib.train import TrainConfig

# ------------------------------------------------------------ (a) choosing on the test folds


def test_choose_on_test_by_hand():
    # 2 seeds x 2 folds x 3 epochs; fold 0 weighs 3, fold 1 weighs 1
    s = np.array(
        [
            [[50, 90, 70], [60, 40, 80]],
            [[80, 60, 60], [20, 90, 50]],
        ],
        dtype=float,
    )
    r = flaws.choose_on_test(s, weights=[3, 1])
    # final epoch: seed 0 -> (3*70 + 80)/4 = 72.5, seed 1 -> (3*60 + 50)/4 = 57.5
    assert r["final_epoch"]["per_seed"] == [72.5, 57.5]
    assert r["final_epoch"]["mean"] == pytest.approx(65.0)
    assert r["final_epoch"]["sd"] == pytest.approx(np.std([72.5, 57.5], ddof=1))
    # best epoch per fold: seed 0 -> (3*90 + 80)/4 = 87.5 (epochs 2, 3); seed 1 -> (3*80 + 90)/4 = 82.5
    assert r["best_epoch_per_fold"]["per_seed"] == [87.5, 82.5]
    assert r["best_epoch_per_fold"]["epochs"] == [[2, 3], [1, 2]]
    # one epoch count for all folds: seed 0 pooled curve (57.5, 77.5, 72.5) -> epoch 2
    # seed 1 (65, 67.5, 57.5) -> epoch 2
    assert r["best_common_epoch"]["epoch"] == [2, 2]
    assert r["best_common_epoch"]["per_seed"] == [77.5, 67.5]
    # best seed per fold at the last epoch: fold 0 max(70, 60) = 70 (seed 0), fold 1 max(80, 50) = 80
    assert r["best_seed_per_fold"] == {"value": 72.5, "seeds": [0, 0]}
    assert r["best_seed_overall"] == {"value": 72.5, "seed": 0}
    assert r["best_seed_and_epoch_per_fold"]["value"] == pytest.approx((3 * 90 + 90) / 4)


def test_choose_on_test_orders_and_validates():
    rng = np.random.default_rng(0)
    s = rng.uniform(40, 90, size=(4, 5, 20))
    r = flaws.choose_on_test(s)
    honest = r["final_epoch"]["mean"]
    assert honest <= r["best_common_epoch"]["mean"] <= r["best_epoch_per_fold"]["mean"]
    assert r["best_epoch_per_fold"]["mean"] <= r["best_seed_and_epoch_per_fold"]["value"]
    assert r["best_seed_per_fold"]["value"] <= r["best_seed_and_epoch_per_fold"]["value"]
    one = flaws.choose_on_test(s[0])  # 2-D: one seed
    assert one["n_seeds"] == 1 and one["final_epoch"]["sd"] == 0.0
    with pytest.raises(ValueError, match="weights"):
        flaws.choose_on_test(s, weights=[1, 2])
    with pytest.raises(ValueError, match="NaN"):
        flaws.choose_on_test(np.full((2, 3), np.nan))


def test_curves_from_histories_keeps_common_epochs():
    key = flaws.TEST_CURVE_KEYS["wa"]
    fold_a = [{"epoch": 1, key: 10.0}, {"epoch": 2}, {"epoch": 3, key: 30.0}]
    fold_b = [{"epoch": 1, key: 11.0}, {"epoch": 2, key: 21.0}, {"epoch": 3, key: 31.0}]
    arr, epochs = flaws.curves_from_histories([fold_a, fold_b], key)  # one seed
    assert epochs == [1, 3] and arr.shape == (1, 2, 2)
    assert arr[0].tolist() == [[10.0, 30.0], [11.0, 31.0]]
    arr2, _ = flaws.curves_from_histories([[fold_a, fold_b], [fold_b, fold_a]], key)
    assert arr2.shape == (2, 2, 2)
    with pytest.raises(ValueError, match="no epoch"):
        flaws.curves_from_histories([[{"epoch": 1}]], key)
    with pytest.raises(ValueError, match="same folds"):
        flaws.curves_from_histories([[fold_a, fold_b], [fold_a]], key)


def test_mlp_hook_leaves_training_unchanged():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(60, 12)).astype(np.float32)
    y = np.arange(60) % 3  # every class in training and test
    x[np.arange(60), y] += 2.0
    cfg, mcfg = TrainConfig(epochs=3, batch_size=16), ModelConfig(n_classes=3)
    plain, _ = mlp_scores(x[:45], y[:45], x[45:], mcfg, cfg, seed=3, progress=False)
    calls = []
    hooked, hist = mlp_scores(
        x[:45], y[:45], x[45:], mcfg, cfg, seed=3, progress=False, on_epoch=lambda e, h: calls.append(e) or {"k": e}
    )
    assert calls == [1, 2, 3] and [h["k"] for h in hist] == [1, 2, 3]
    np.testing.assert_array_equal(plain, hooked)
    curve = flaws.mlp_test_curve(x[:45], y[:45], x[45:], y[45:], ["a", "b", "c"], mcfg, cfg, seed=3)
    assert len(curve["wa"]) == 3 and curve["final_pred_matches"]


# ------------------------------------------------------------ (b) crop-level splits


def test_crop_dataset_repeats_each_utterance_vector():
    lengths = [99, 128, 129, 192, 300]
    counts = flaws.crop_counts(lengths)
    assert counts.tolist() == [len(window_starts(t)) for t in lengths] == [1, 1, 2, 2, 4]
    is10 = np.arange(5 * 3, dtype=float).reshape(5, 3)
    x, yc, utt = flaws.crop_dataset(is10, np.array([0, 1, 0, 1, 2]), lengths)
    assert utt.tolist() == [0, 1, 2, 2, 3, 3, 4, 4, 4, 4]
    np.testing.assert_array_equal(x, is10[utt])
    assert yc.tolist() == [0, 1, 0, 0, 1, 1, 2, 2, 2, 2]


def test_crop_level_split_leaks_twins():
    # labels unrelated to features: an honest split can only guess, a crop split memorizes twins
    rng = np.random.default_rng(0)
    n = 60
    is10 = rng.normal(size=(n, 200))  # more dimensions than utterances: a linear SVM can memorize
    y = np.arange(n) % 3
    lengths = np.full(n, 64 * 5 + 128)  # 6 crops each
    r = flaws.crop_level_svm(is10, y, lengths, ["a", "b", "c"], k=5)
    assert r["n_crops"] == 6 * n
    assert r["leaked_share"] > 95.0  # 6 crops per utterance in 5 folds: a twin is nearly always in training
    assert r["wa"] > 90.0  # chance is 33 %
    honest = flaws.utterance_svm(
        is10, y, list(StratifiedKFold(5, shuffle=True, random_state=0).split(is10, y)), ["a", "b", "c"]
    )
    assert honest["wa"] < 60.0
    assert honest["class_counts_per_fold"][0] == [4, 4, 4]


# ------------------------------------------------------------ (d) random k-fold


def test_random_kfold_sizes_and_class_counts(emodb):
    fs = flaws.random_kfold(len(emodb), 5, seed=0)
    assert sorted(len(te) for _, te in fs) == [107] * 5
    assert np.array_equal(np.sort(np.concatenate([te for _, te in fs])), np.arange(len(emodb)))
    per_fold = np.array([np.bincount(emodb.y[te], minlength=7) for _, te in fs])
    assert (per_fold.max(0) - per_fold.min(0)).max() > 1  # not stratified: counts spread by more than one


def test_fold_mean_recall_wa_by_hand():
    y = np.array([0, 0, 1, 1, 0, 1, 1, 1])
    pred = np.array([0, 1, 1, 1, 0, 0, 1, 1])
    folds = [(None, np.array([0, 1, 2, 3])), (None, np.array([4, 5, 6, 7]))]
    r = flaws.fold_mean_recall_wa(y, pred, folds, 2)
    assert r["pooled_wa"] == pytest.approx(75.0)
    assert r["fold_mean_wa"] == pytest.approx(75.0)
    # recalls: class 0 (1/2, 1/1) -> 75 %, class 1 (2/2, 2/3) -> 83.3 %; weights 3 and 5
    assert r["implied_wa"] == pytest.approx((3 * 75 + 5 * 250 / 3) / 8)


# ------------------------------------------------------------ (c) confusion-matrix arithmetic


def test_stratified_fold_sizes_match_sklearn(emodb):
    for k in (5, 10):
        counts = np.array(
            [np.bincount(emodb.y[te], minlength=7) for _, te in StratifiedKFold(k).split(emodb.y, emodb.y)]
        )
        for c, n in enumerate(np.bincount(emodb.y)):
            assert sorted(counts[:, c]) == sorted(flaws.stratified_fold_sizes(int(n), k))
    assert flaws.stratified_fold_sizes(127, 5) == [26, 26, 25, 25, 25]


def test_fixed_size_witness_by_brute_force():
    # anger (127) in 5 stratified folds: 0.77 is one error in a fold of 26; 0.83 fits nothing
    w = flaws.fixed_size_witness(0.77, [26, 26, 25, 25, 25])
    assert w["errors"] == {"26": 1} and w["total_errors"] == 1
    assert flaws.fixed_size_witness(0.83, [26, 26, 25, 25, 25]) is None
    # pooled: 100 e / n
    assert flaws.fixed_size_witness(1.57, [127], k=1)["total_errors"] == 2
    assert flaws.fixed_size_witness(0.77, [127], k=1) is None
    # brute force over per-fold error vectors for a small case
    sizes = [4, 4, 5]
    for printed in (2.5, 6.67, 8.33, 15.0, 15.56, 1.0):
        found = any(
            abs(Fraction(str(printed)) - Fraction(100, 3) * sum(Fraction(e, n) for e, n in zip(es, sizes)))
            <= Fraction(1, 200)
            for es in itertools.product(*[range(n + 1) for n in sizes])
        )
        assert (flaws.fixed_size_witness(printed, sizes) is not None) == found, printed


def test_free_size_witness_and_values():
    # 3.33 over 5 folds: one error in a fold of 6
    w = flaws.free_size_witness(3.33, 5, (2, 18), n_class=46)
    assert w["folds"] == [{"size": 6, "errors": 1}]
    # fold sizes 9..10 only: t = a/9 + b/10 = (10a + 9b)/90 would need 10a + 9b = 15: impossible
    assert flaws.free_size_witness(3.33, 5, (9, 10)) is None
    # the sum constraint: one error in a fold of 12 (2.78 = 100/36) needs the two other folds (10..12) to hold 18
    assert flaws.free_size_witness(2.78, 3, (10, 12), n_class=30) is None  # 12 + 2*10 > 30
    assert flaws.free_size_witness(2.78, 3, (10, 12), n_class=32)["folds"] == [{"size": 12, "errors": 1}]
    # the bitset sum-set agrees with brute force on a small case
    v = flaws.free_size_values(2, (3, 5), t_max=0.6, resolution=1e-5)
    exact = sorted(
        {
            round(100 * (a + b) / 2, 6)
            for a in [0] + [e / n for n in range(3, 6) for e in range(1, n + 1)]
            for b in [0] + [e / n for n in range(3, 6) for e in range(1, n + 1)]
            if a + b <= 0.6
        }
    )
    for x in exact:
        assert np.abs(v - x).min() < 1e-3
    for x in v:
        assert np.abs(np.array(exact) - x).min() < 1e-3


def test_printable_and_chance_rate():
    ok = flaws.printable(np.array([1.0 / 3 * 10]), 3.30, 3.36)  # 3.3333 prints as 3.33 only
    assert ok.tolist() == [False, False, False, True, False, False, False]
    assert flaws.printable(np.array([0.125]), 0.11, 0.14).tolist() == [False, True, True, False]  # a tie: 0.12 or 0.13
    assert flaws.chance_rate(np.arange(0, 10, 0.001), 2.0) == 1.0
    assert flaws.chance_rate(np.array([2.0]), 2.0, band=0.5) == pytest.approx(1 / 201)


def test_smallest_denominator_and_poisson_binomial():
    assert flaws.smallest_denominator(3.33, 5) == 6  # 100 * (1/6) / 5
    assert flaws.smallest_denominator(1.67, 10) == 6
    assert flaws.smallest_denominator(0.77, 5) == 26
    assert flaws.at_least_by_chance([0.5, 0.5], 2) == pytest.approx(0.25)
    assert flaws.at_least_by_chance([0.2, 0.5, 1.0], 0) == pytest.approx(1.0)
    assert flaws.at_least_by_chance([0.2, 0.5], 1) == pytest.approx(1 - 0.8 * 0.5)


def test_explain_confusion_on_the_papers_table_12(emodb):
    table = CONFUSION_PCT[("emodb", "kfold10")]
    counts = np.bincount(emodb.y, minlength=7).tolist()
    r = flaws.explain_confusion(table["rows"], table["labels"], counts, 10, resolution=1e-5)
    assert r["summary"]["pooled"]["explained"] == 0
    assert r["summary"]["random_fold_mean"]["explained"] == r["summary"]["random_fold_mean"]["of"] == 13
    assert r["summary"]["stratified_fold_mean"]["explained"] == 2
    assert r["summary"]["random_fold_mean"]["one_error_in_one_fold"] == 10  # 1.11 = 10 * 1/9, 1.43 = 10 * 1/7, ...
    by = {(e["true"], e["pred"]): e for e in r["entries"]}
    # disgust (46: stratified 10-fold gives folds of 4 or 5) -> boredom 1.67 = one error in a fold of 6 disgust
    e = by["disgust", "boredom"]
    assert not e["hypotheses"]["stratified_fold_mean"]["explained"]
    assert e["hypotheses"]["random_fold_mean"]["witness"]["folds"] == [{"size": 6, "errors": 1}]
    assert r["row_sums"]["sadness"] == 100.0
