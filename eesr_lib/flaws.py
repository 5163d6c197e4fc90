"""How could the paper's EMODB numbers arise? Measured demonstrations of evaluation flaws.

Nothing here is a result of this replication. Each function *demonstrates a flaw*: it computes
what a number would be if an evaluation were done wrongly, so that the size of each possible
flaw can be set beside the gap between the paper (EMODB WA 92.2 % 5-fold, 95.6 % 10-fold) and
our honest numbers (about 85 %). That a flaw *can* produce a number does not show that the
paper committed it; the confusion-matrix arithmetic of part (c) is the one piece that reads
evidence from the paper itself.

(a) Choosing on the test folds. :func:`choose_on_test` takes per-epoch test-fold scores (plain
    arrays: seeds x folds x epochs) and returns the honest number (a fixed final epoch) beside
    flawed ones: the best epoch of each fold chosen on that fold's test score, one epoch count
    chosen on the pooled test score, the best seed of each fold or overall. The network runs that
    record a test curve (history keys ``test_wa_not_for_selection``, ``test_ua_not_for_selection``)
    feed it through :func:`curves_from_histories`; :func:`mlp_test_curve` records such a curve
    for the cheap IS10+MLP baseline.
(b) Crop-level splits. The paper trains on 128-frame crops ("a training sample"). If crops, not
    utterances, are dealt to folds, crops of one utterance sit in training and test at once,
    each carrying its utterance's IS10 vector: :func:`crop_level_svm` measures what that gives
    an IS10+SVM (an upper bracket of the leak: the test crop's IS10 vector is *in* training).
(c) The paper's own EMODB confusion matrices (Tables 11, 12). A per-fold row-normalized matrix
    averaged over K folds has entries (100/K) * sum_k e_k / n_k, where n_k is the number of the
    class's utterances in fold k and e_k the errors there; which n_k fit the printed values
    says how the folds were made. :func:`explain_confusion` enumerates the error counts that fit
    each entry (to the printed two decimals) under several hypotheses about the n_k, and
    :func:`chance_rate` how often a value picked at random would fit as well, since a
    hypothesis that fits every number explains none.
(d) Random, non-stratified k-fold (:func:`random_kfold`), beside the stratified one, to show how
    much the protocol alone moves an IS10+SVM.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from fractions import Fraction

import numpy as np
from scipy.stats import hypergeom
from sklearn.model_selection import KFold, StratifiedKFold

from .baselines import mlp_scores, svm_scores
from .crops import CROP_FRAMES, window_starts
from .metrics import classification_metrics
from .model import ModelConfig
from .results import SCORE_KEYS
from .train import TrainConfig, standardize_is10

TEST_CURVE_KEYS = SCORE_KEYS["test"]  # where an outer run with test_curve records each epoch's test score


# ------------------------------------------------------------ (a) choosing on the test folds


def _mean_sd(values: np.ndarray) -> dict:
    v = np.asarray(values, dtype=float)
    return {
        "mean": float(v.mean()),
        "sd": float(v.std(ddof=1)) if len(v) > 1 else 0.0,
        "per_seed": [float(x) for x in v],
    }


def choose_on_test(scores: np.ndarray | Sequence, weights: np.ndarray | Sequence | None = None) -> dict:
    """Honest and test-chosen numbers from per-epoch *test-fold* scores.

    Why: a number chosen by looking at the test folds (the epoch, the seed) is an optimistic
    estimate; this measures by how much, from curves that were recorded only to measure it.

    ``scores``: ``(n_seeds, n_folds, n_epochs)`` (or ``(n_folds, n_epochs)`` for one seed), the
    test score (WA or UA, %) of each fold after each epoch; the last epoch is the fixed budget.
    ``weights``: one per fold. With the test-fold sizes, the weighted mean of fold WAs *is* the
    WA pooled over folds; ``None`` averages folds equally (what a fold-mean UA is).

    Returns, each a weighted mean over folds:

    - ``final_epoch``: the last epoch, every fold (honest), mean and sd over seeds;
    - ``best_common_epoch``: one epoch count for all folds, the one with the best pooled test
      score (flawed: the budget tuned on the test folds), per seed;
    - ``best_epoch_per_fold``: each fold at its own best test epoch (flawed), per seed;
    - ``best_seed_per_fold``: each fold's best seed at the last epoch (flawed);
    - ``best_seed_overall``: the seed with the best pooled last-epoch score (flawed: report
      the best of several runs);
    - ``best_seed_and_epoch_per_fold``: both choices at once (flawed).

    Epoch numbers in the output are 1-based positions along the epoch axis.
    """
    s = np.asarray(scores, dtype=float)
    if s.ndim == 2:
        s = s[None]
    if s.ndim != 3 or 0 in s.shape:
        raise ValueError(f"scores must be (n_seeds, n_folds, n_epochs) or (n_folds, n_epochs), got {s.shape}")
    if np.isnan(s).any():
        raise ValueError("scores contain NaN: every fold needs a score at every epoch")
    n_seeds, n_folds, n_epochs = s.shape
    w = np.ones(n_folds) if weights is None else np.asarray(weights, dtype=float)
    if w.shape != (n_folds,) or (w <= 0).any():
        raise ValueError(f"weights must be {n_folds} positive numbers, got {w.tolist()}")
    w = w / w.sum()
    final = s[:, :, -1] @ w  # (n_seeds,)
    pooled_curve = np.einsum("sfe,f->se", s, w)  # (n_seeds, n_epochs)
    best_epoch = s.max(axis=2) @ w
    best_seed = s[:, :, -1].max(axis=0) @ w
    best_both = s.max(axis=(0, 2)) @ w
    return {
        "n_seeds": n_seeds,
        "n_folds": n_folds,
        "n_epochs": n_epochs,
        "final_epoch": _mean_sd(final),
        "best_common_epoch": {**_mean_sd(pooled_curve.max(axis=1)), "epoch": (pooled_curve.argmax(1) + 1).tolist()},
        "best_epoch_per_fold": {**_mean_sd(best_epoch), "epochs": (s.argmax(axis=2) + 1).tolist()},
        "best_seed_per_fold": {"value": float(best_seed), "seeds": s[:, :, -1].argmax(axis=0).tolist()},
        "best_seed_overall": {"value": float(final.max()), "seed": int(final.argmax())},
        "best_seed_and_epoch_per_fold": {"value": float(best_both)},
    }


def curves_from_histories(histories: Sequence, key: str) -> tuple[np.ndarray, list[int]]:
    """``(n_seeds, n_folds, n_epochs)`` array of ``key`` from fold histories, and those epochs.

    ``histories``: per seed, per fold, the fold's history (a list of epoch records with an
    ``"epoch"`` field), or per fold only (one seed). Only epochs where every fold of every seed
    recorded ``key`` are kept (a curve recorded every few epochs gives those epochs). Feed the
    array to :func:`choose_on_test`; ``key`` is e.g. ``TEST_CURVE_KEYS["wa"]``.
    """
    if histories and histories[0] and isinstance(histories[0][0], dict):
        histories = [histories]  # one seed: [fold][epoch]
    tables = [[{r["epoch"]: r[key] for r in fold if key in r} for fold in seed] for seed in histories]
    n_folds = {len(t) for t in tables}
    if len(n_folds) != 1:
        raise ValueError(f"every seed needs the same folds; got fold counts {sorted(n_folds)}")
    common = set.intersection(*[set(f) for t in tables for f in t]) if tables and tables[0] else set()
    if not common:
        raise ValueError(f"no epoch has '{key}' in every fold")
    epochs = sorted(common)
    return np.array([[[f[e] for e in epochs] for f in t] for t in tables], dtype=float), epochs


def mlp_test_curve(
    train_x: np.ndarray,
    train_y: np.ndarray,
    test_x: np.ndarray,
    test_y: np.ndarray,
    labels: Sequence[str],
    model_cfg: ModelConfig | None = None,
    cfg: TrainConfig | None = None,
    seed: int = 0,
) -> dict:
    """IS10+MLP trained exactly as the runner trains it, scored on the test fold after every epoch.

    Why: to measure (a) on a cheap model. ``train_x``/``test_x`` are raw IS10; they are
    standardized with training statistics, as the runner does. The per-epoch scores come from
    :func:`~eesr_lib.baselines.mlp_scores`'s ``on_epoch`` hook, which does not change the
    training: the last epoch's predictions equal the runner's.
    Returns ``wa``, ``ua`` (one per epoch, %) and ``pred`` (epochs x test utterances).
    """
    import torch

    model_cfg = model_cfg or ModelConfig(n_classes=len(labels))
    cfg = cfg or TrainConfig()
    tr, te = standardize_is10(train_x, test_x)
    x_test = model_cfg.is10_scale * torch.as_tensor(te)
    curve: dict[str, list] = {"wa": [], "ua": [], "pred": []}

    def on_epoch(epoch: int, head: torch.nn.Module) -> dict:
        with torch.no_grad():
            pred = head(x_test).argmax(1).numpy()
        m = classification_metrics(test_y, pred, labels)
        curve["wa"].append(m["wa"])
        curve["ua"].append(m["ua"])
        curve["pred"].append(pred.tolist())
        return {}

    scores, _ = mlp_scores(tr, train_y, te, model_cfg, cfg, seed, "cpu", False, on_epoch=on_epoch)
    curve["final_pred_matches"] = bool((scores.argmax(1) == np.asarray(curve["pred"][-1])).all())
    return curve


# ------------------------------------------------------------ (b) crop-level splits


def crop_counts(n_frames: Sequence[int], frames: int = CROP_FRAMES, hop: int = 64) -> np.ndarray:
    """Number of ``frames``-long windows (hop ``hop``) of each utterance, as the scoring windows."""
    return np.array([len(window_starts(int(t), frames, hop)) for t in n_frames], dtype=np.int64)


def crop_dataset(
    is10: np.ndarray, y: np.ndarray, n_frames: Sequence[int], frames: int = CROP_FRAMES, hop: int = 64
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(x, y, utterance)`` with one row per crop: each crop carries its utterance's IS10 and label."""
    utt = np.repeat(np.arange(len(y)), crop_counts(n_frames, frames, hop))
    return is10[utt], np.asarray(y)[utt], utt


def crop_level_svm(
    is10: np.ndarray,
    y: np.ndarray,
    n_frames: Sequence[int],
    labels: Sequence[str],
    k: int = 5,
    seed: int = 0,
    frames: int = CROP_FRAMES,
    hop: int = 64,
) -> dict:
    """IS10+SVM with *crops* split by stratified k-fold (flawed: crops of one utterance leak).

    Why: it brackets what a crop-level split can add. Every crop carries its utterance's IS10
    vector, so a test crop whose utterance has another crop in training has an exact twin
    there. The SVM is :func:`~eesr_lib.baselines.svm_scores` (C tuned by an inner CV on the
    training crops, itself leaky). WA/UA are over test crops; ``wa_leaked`` / ``wa_unleaked``
    split them by whether a twin was in training.
    """
    x, yc, utt = crop_dataset(is10, y, n_frames, frames, hop)
    pred = np.empty(len(yc), dtype=np.int64)
    leaked = np.zeros(len(yc), dtype=bool)
    per_fold = []
    for tr, te in StratifiedKFold(n_splits=k, shuffle=True, random_state=seed).split(x, yc):
        scores, extra = svm_scores(x[tr], yc[tr], x[te], seed=seed)
        pred[te] = scores.argmax(1)
        leaked[te] = np.isin(utt[te], utt[tr])
        m = classification_metrics(yc[te], pred[te], labels)
        per_fold.append({"wa": m["wa"], "ua": m["ua"], "n_test": int(len(te)), "svm_C": extra["svm_C"]})
    m = classification_metrics(yc, pred, labels)
    ok = pred == yc
    return {
        "n_crops": int(len(yc)),
        "n_utterances": int(len(y)),
        "wa": m["wa"],
        "ua": m["ua"],
        "leaked_share": 100.0 * float(leaked.mean()),
        "wa_leaked": 100.0 * float(ok[leaked].mean()) if leaked.any() else None,
        "wa_unleaked": 100.0 * float(ok[~leaked].mean()) if (~leaked).any() else None,
        "per_fold": per_fold,
    }


def utterance_svm(
    is10: np.ndarray,
    y: np.ndarray,
    folds: Sequence[tuple[np.ndarray, np.ndarray]],
    labels: Sequence[str],
    seed: int = 0,
) -> dict:
    """IS10+SVM on utterance-level ``folds``, exactly as the runner's baseline: pooled WA/UA and per fold.

    Also returns ``class_counts_per_fold`` (test utterances of each class in each fold), which
    show whether the folds were stratified, and ``wa_check`` (:func:`fold_mean_recall_wa`).
    """
    y = np.asarray(y)
    pred = np.empty(len(y), dtype=np.int64)
    tested = np.zeros(len(y), dtype=bool)
    per_fold, counts = [], []
    for tr, te in folds:
        scores, extra = svm_scores(is10[tr], y[tr], is10[te], seed=seed)
        pred[te] = scores.argmax(1)
        tested[te] = True
        m = classification_metrics(y[te], pred[te], labels)
        per_fold.append({"wa": m["wa"], "ua": m["ua"], "n_test": int(len(te)), "svm_C": extra["svm_C"]})
        counts.append(np.bincount(y[te], minlength=len(labels)).tolist())
    m = classification_metrics(y[tested], pred[tested], labels)
    return {
        "wa": m["wa"],
        "ua": m["ua"],
        "fold_mean_wa": float(np.mean([f["wa"] for f in per_fold])),
        "fold_mean_ua": float(np.mean([f["ua"] for f in per_fold])),
        "per_fold": per_fold,
        "class_counts_per_fold": counts,
        "wa_check": fold_mean_recall_wa(y, pred, folds, len(labels)),
    }


# ------------------------------------------------------------ (d) random, non-stratified k-fold


def random_kfold(n: int, k: int, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """scikit-learn ``KFold(k, shuffle=True)``: folds of equal size, class counts left to chance.

    Why: "5-fold cross-validation" without more words is often this; the per-fold class counts
    then vary, and so do per-fold percentages (see part (c)).
    """
    idx = np.arange(n)
    return list(KFold(n_splits=k, shuffle=True, random_state=seed).split(idx))


# ------------------------------------------------------------ (c) the paper's confusion matrices


def stratified_fold_sizes(n: int, k: int) -> list[int]:
    """Utterances of a class of ``n`` in each of ``k`` stratified folds (scikit-learn's
    ``StratifiedKFold`` deals each class so that its fold counts differ by at most one)."""
    base, extra = divmod(n, k)
    return [base + 1] * extra + [base] * (k - extra)


def random_fold_size_range(n_class: int, n_total: int, k: int, tail: float = 5e-4) -> tuple[int, int]:
    """Plausible counts of a class in one fold of a random (non-stratified) k-fold.

    A fold of ``n_total // k`` (or one more) utterances drawn without replacement holds a
    hypergeometric number of the class's ``n_class``; the range is its ``tail`` .. ``1 - tail``
    quantiles (at least 1: a per-fold percentage needs the class in the fold).
    """
    small, large = n_total // k, -(-n_total // k)
    lo = int(hypergeom.ppf(tail, n_total, n_class, small))
    hi = int(hypergeom.ppf(1 - tail, n_total, n_class, large))
    return max(lo, 1), hi


def _target(printed: float, k: int, decimals: int = 2) -> tuple[Fraction, Fraction]:
    """Interval of ``t = sum_k e_k / n_k`` whose ``100 t / k`` prints as ``printed`` (ends included)."""
    half = Fraction(1, 2 * 10**decimals)
    p = Fraction(str(printed))
    return (p - half) * k / 100, (p + half) * k / 100


def fixed_size_witness(printed: float, sizes: Sequence[int], k: int | None = None, decimals: int = 2) -> dict | None:
    """Fewest errors that make ``printed`` with per-fold class counts ``sizes`` (exact).

    The entry is ``(100 / k) * sum_f e_f / n_f`` (per-fold percentages averaged over ``k``
    folds; ``sizes=[n]``, ``k=1`` is the pooled ``100 e / n``). Folds of equal size are
    interchangeable, so only the total errors per size matter. Returns ``None`` if no error
    counts fit, else ``{"errors": {size: total errors over the folds of that size}, ...}``.
    """
    k = len(sizes) if k is None else k
    lo, hi = _target(printed, k, decimals)
    groups = sorted({s: sizes.count(s) for s in sizes}.items())
    best = None
    ranges = [range(0, min(cnt * size, math.floor(hi * size)) + 1) for size, cnt in groups]
    for combo in _product(ranges):
        t = sum(Fraction(e, size) for e, (size, _) in zip(combo, groups))
        if lo <= t <= hi and (best is None or sum(combo) < sum(best)):
            best = combo
    if best is None:
        return None
    return {
        "errors": {str(size): int(e) for (size, _), e in zip(groups, best) if e},
        "total_errors": int(sum(best)),
        "value": float(100 * sum(Fraction(e, size) for e, (size, _) in zip(best, groups)) / k),
    }


def _product(ranges: list[range]):
    if not ranges:
        yield ()
        return
    for e in ranges[0]:
        for rest in _product(ranges[1:]):
            yield (e, *rest)


def fixed_size_values(sizes: Sequence[int], k: int | None = None, t_max: float = 1.0) -> np.ndarray:
    """Every value ``(100/k) sum_f e_f / n_f`` reachable with per-fold class counts ``sizes``, up to
    ``100 t_max / k`` (floats, for :func:`chance_rate`)."""
    k = len(sizes) if k is None else k
    groups = sorted({s: sizes.count(s) for s in sizes}.items())
    t = np.zeros(1)
    for size, cnt in groups:
        e = np.arange(0, min(cnt * size, math.floor(t_max * size + 1e-9)) + 1)
        t = (t[:, None] + e[None, :] / size).ravel()
        t = np.unique(t[t <= t_max + 1e-12])
    return 100.0 * t / k


def free_size_witness(
    printed: float,
    k: int,
    size_range: tuple[int, int],
    n_class: int | None = None,
    decimals: int = 2,
    max_nodes: int = 2_000_000,
) -> dict | None:
    """Error counts fitting ``printed`` when each fold's class count may be anything in ``size_range``.

    Why: random, non-stratified folds give each fold its own class count. The search is exact
    and exhaustive: by increasing number ``m`` of folds with errors (1..k), every multiset of
    (class count ``n``, errors ``e``) pairs, keeping at the smallest ``m`` that fits the one with
    fewest errors. With ``n_class`` given, the class counts of the ``m`` folds must leave the
    other ``k - m`` folds counts inside ``size_range`` that sum to ``n_class``.
    Returns ``None`` when nothing fits, ``{"undecided": True}`` when ``max_nodes`` ran out.
    """
    lo_t, hi_t = _target(printed, k, decimals)
    s_lo, s_hi = size_range
    pairs = sorted(
        (Fraction(e, n), n, e) for n in range(s_lo, s_hi + 1) for e in range(1, n + 1) if Fraction(e, n) <= hi_t
    )
    if lo_t <= 0:
        return {"folds": [], "total_errors": 0, "value": 0.0}
    budget = [max_nodes]
    for m in range(1, k + 1):
        try:
            best = _best_multiset(
                pairs, m, lo_t, hi_t, lambda chosen: _sizes_ok(chosen, k, s_lo, s_hi, n_class), budget
            )
        except _Budget:
            return {"undecided": True}
        if best is not None:
            return {
                "folds": [{"size": n, "errors": e} for _, n, e in best],
                "total_errors": int(sum(e for _, _, e in best)),
                "value": float(100 * sum(f for f, _, _ in best) / k),
            }
    return None


def _best_multiset(pairs: list, m: int, lo_t: Fraction, hi_t: Fraction, accept, budget: list[int]) -> list | None:
    """Among multisets of ``m`` items of the sorted ``pairs`` (fraction, n, e) whose fractions sum
    into ``[lo_t, hi_t]`` and that ``accept``, the one with fewest errors; exhaustive with
    pruning, spending ``budget[0]`` nodes (raises :class:`_Budget` when it runs out)."""
    best: list | None = None
    chosen: list = []

    def dfs(start: int, total: Fraction) -> None:
        nonlocal best
        budget[0] -= 1
        if budget[0] < 0:
            raise _Budget
        left = m - len(chosen)
        if left == 0:
            if lo_t <= total <= hi_t and accept(chosen):
                if best is None or sum(c[2] for c in chosen) < sum(c[2] for c in best):
                    best = list(chosen)
            return
        if total + left * pairs[-1][0] < lo_t:
            return  # even the largest fractions fall short
        for i in range(start, len(pairs)):
            f = pairs[i][0]
            if total + left * f > hi_t:
                break  # pairs are sorted: every later one is larger
            chosen.append(pairs[i])
            dfs(i, total + f)
            chosen.pop()

    if pairs:
        dfs(0, Fraction(0))
    return best


class _Budget(Exception):
    pass


def _sizes_ok(chosen: list, k: int, s_lo: int, s_hi: int, n_class: int | None) -> bool:
    if n_class is None:
        return True
    rest = n_class - sum(n for _, n, _ in chosen)
    return (k - len(chosen)) * s_lo <= rest <= (k - len(chosen)) * s_hi


def free_size_values(k: int, size_range: tuple[int, int], t_max: float, resolution: float = 1e-6) -> np.ndarray:
    """Every ``t = sum_f e_f / n_f`` over ``k`` folds with class counts in ``size_range``, up to
    ``t_max``, on a grid of ``resolution``; returns the reachable values of ``100 t / k``.

    A sum-set computed by ``k`` FFT convolutions of 0/1 indicator arrays (thresholded after each,
    so the float error stays far below 1/2). Each term is rounded to the grid, so a value may be
    off by ``k * resolution / 2``. The counts need not sum to the class size here, so the set is a
    superset: it can only overstate how much random folds explain, never understate it.
    """
    from scipy.signal import fftconvolve

    s_lo, s_hi = size_range
    size = int(round(t_max / resolution)) + 1
    one_fold = np.zeros(size)
    one_fold[0] = 1.0  # no error in this fold
    for n in range(s_lo, s_hi + 1):
        q = np.round(np.arange(1, n + 1) / n / resolution).astype(np.int64)
        one_fold[q[q < size]] = 1.0
    reach = one_fold.copy()
    for _ in range(k - 1):
        reach = (fftconvolve(reach, one_fold)[:size] > 0.5).astype(float)
    return 100.0 * np.flatnonzero(reach) * resolution / k


def printable(values: np.ndarray, lo: float, hi: float, slack: float = 1e-9, decimals: int = 2) -> np.ndarray:
    """Which printed values ``lo, lo + 0.01, .., hi`` some value in ``values`` rounds to.

    A value ``v`` can print as ``p`` when ``|v - p| <= 0.005 (+ slack)``, ties either way.
    """
    scale = 10**decimals
    g0, g1 = round(lo * scale), round(hi * scale)
    v = np.asarray(values, dtype=float) * scale
    first = np.clip(np.ceil(v - 0.5 - slack * scale).astype(np.int64), g0, g1 + 1) - g0
    last = np.clip(np.floor(v + 0.5 + slack * scale).astype(np.int64), g0 - 1, g1) - g0
    keep = first <= last
    diff = np.zeros(g1 - g0 + 2, dtype=np.int64)
    np.add.at(diff, first[keep], 1)
    np.add.at(diff, last[keep] + 1, -1)
    ok = np.cumsum(diff)[:-1] > 0
    return ok


def chance_rate(values: np.ndarray, printed: float, band: float = 0.5, slack: float = 1e-9) -> float:
    """Share of two-decimal values within ``printed * (1 +- band)`` that ``values`` can print as.

    Why: a hypothesis with fine-grained reachable values fits any number; this is the rate at
    which it would "explain" a number picked at random near the printed one.
    """
    lo, hi = max(0.01, printed * (1 - band)), printed * (1 + band)
    return float(printable(values, lo, hi, slack).mean())


def smallest_denominator(printed: float, k: int, d_max: int = 5000, decimals: int = 2) -> int | None:
    """Smallest ``d`` such that ``(100 / k) * e / d`` prints as ``printed`` for some ``e``.

    Why: one error in one fold of ``d`` utterances gives ``100 / (k d)``. Small ``d`` (about
    the class count of one fold) points to utterances; if every entry needed hundreds, the
    denominators would be crops or frames.
    """
    lo, hi = _target(printed, k, decimals)
    for d in range(1, d_max + 1):
        e = math.ceil(lo * d)
        if Fraction(e, d) <= hi:
            return d
    return None


def denominator_chance(printed: float, k: int, band: float = 0.5) -> float:
    """Share of two-decimal values within ``printed * (1 +- band)`` whose
    :func:`smallest_denominator` is no larger than ``printed``'s: how unusual a small one is."""
    d = smallest_denominator(printed, k)
    lo, hi = max(1, round(100 * printed * (1 - band))), round(100 * printed * (1 + band))
    others = [smallest_denominator(j / 100, k) for j in range(lo, hi + 1)]
    return float(np.mean([o is not None and d is not None and o <= d for o in others]))


def at_least_by_chance(rates: Sequence[float], observed: int) -> float:
    """P(at least ``observed`` successes) for independent trials with success ``rates``
    (Poisson-binomial), i.e. how likely a hypothesis fits that many random values."""
    dist = np.zeros(len(rates) + 1)
    dist[0] = 1.0
    for r in rates:
        dist[1:] = dist[1:] * (1 - r) + dist[:-1] * r
        dist[0] *= 1 - r
    return float(dist[observed:].sum())


HYPOTHESES = {
    "stratified_fold_mean": "per-fold row %, averaged over k stratified utterance-level folds",
    "pooled": "errors over all folds / class size (100 e / n)",
    "random_fold_mean": "per-fold row %, averaged over k random (non-stratified) utterance-level folds",
    "crop_stratified_fold_mean": "per-fold row %, averaged over k stratified folds of crops",
    "crop_random_fold_mean": "per-fold row %, averaged over k random folds of crops",
}


def explain_confusion(
    rows: Sequence[Sequence[float]],
    labels: Sequence[str],
    class_counts: Sequence[int],
    k: int,
    crop_counts_per_class: Sequence[int] | None = None,
    band: float = 0.5,
    resolution: float = 1e-6,
) -> dict:
    """Which fold structures fit each non-zero off-diagonal entry of a printed confusion matrix.

    Hypotheses (:data:`HYPOTHESES`; rows are true classes, entries % of the row):

    - ``stratified_fold_mean``: per-fold row-normalized, averaged over ``k`` stratified
      utterance-level folds (class counts per fold from :func:`stratified_fold_sizes`);
    - ``pooled``: errors over all folds / class size (``100 e / n``);
    - ``random_fold_mean``: per-fold row-normalized, averaged over ``k`` random folds whose class
      counts may be anything in :func:`random_fold_size_range` (summing to the class size);
    - with ``crop_counts_per_class``: the first and the third with crops in place of utterances.

    For each entry and hypothesis: the fitting errors with fewest errors (``witness``, ``None`` if
    none fits; an exact, exhaustive search) and the ``chance`` rate (:func:`chance_rate`) at
    which the hypothesis fits a random value near the printed one. The summary counts fitted
    entries, those a single error in a single fold explains, the number expected by chance and
    the probability of fitting at least as many by chance (entries taken as independent). Also:
    the row sums, and each entry's :func:`smallest_denominator` with :func:`denominator_chance`.
    """
    n_total = int(sum(class_counts))
    crops_total = int(sum(crop_counts_per_class)) if crop_counts_per_class is not None else 0
    hyps = list(HYPOTHESES) if crop_counts_per_class is not None else list(HYPOTHESES)[:3]
    entries, cache = [], {}
    for i, row in enumerate(rows):
        n = int(class_counts[i])
        setups = {
            "stratified_fold_mean": ("fixed", stratified_fold_sizes(n, k), k),
            "pooled": ("fixed", [n], 1),
            "random_fold_mean": ("free", random_fold_size_range(n, n_total, k), k, n),
        }
        if crop_counts_per_class is not None:
            m = int(crop_counts_per_class[i])
            setups["crop_stratified_fold_mean"] = ("fixed", stratified_fold_sizes(m, k), k)
            setups["crop_random_fold_mean"] = ("free", random_fold_size_range(m, crops_total, k), k, m)
        t_max = max([v for j, v in enumerate(row) if j != i] + [0.0]) * (1 + band) * k / 100 + 1e-3
        for j, printed in enumerate(row):
            if j == i or printed == 0:
                continue
            result = {}
            for name, setup in setups.items():
                kind, sizes, kk = setup[:3]
                if (name, i) not in cache:
                    cache[name, i] = (
                        fixed_size_values(list(sizes), kk, t_max * kk / k)
                        if kind == "fixed"
                        else free_size_values(kk, sizes, t_max, resolution)
                    )
                if kind == "fixed":
                    witness = fixed_size_witness(printed, list(sizes), kk)
                    info, slack = {"fold_sizes": sorted(set(sizes))}, 1e-9
                else:
                    witness = free_size_witness(printed, kk, sizes, n_class=setup[3])
                    info, slack = {"fold_size_range": list(sizes)}, 100 * resolution / 2 + 1e-9
                undecided = bool(witness and witness.get("undecided"))
                result[name] = {
                    **info,
                    "explained": witness is not None and not undecided,
                    "undecided": undecided,
                    "witness": witness,
                    "chance": chance_rate(cache[name, i], printed, band, slack),
                }
            entries.append(
                {
                    "true": labels[i],
                    "pred": labels[j],
                    "printed": printed,
                    "smallest_denominator": smallest_denominator(printed, k),
                    "denominator_chance": denominator_chance(printed, k, band),
                    "hypotheses": result,
                }
            )
    summary = {}
    for h in hyps:
        got = sum(e["hypotheses"][h]["explained"] for e in entries)
        rates = [e["hypotheses"][h]["chance"] for e in entries]
        summary[h] = {
            "explained": got,
            "of": len(entries),
            "undecided": sum(e["hypotheses"][h]["undecided"] for e in entries),
            "one_error_in_one_fold": sum(
                bool(e["hypotheses"][h]["explained"] and e["hypotheses"][h]["witness"]["total_errors"] == 1)
                for e in entries
            ),
            "expected_by_chance": round(float(sum(rates)), 2),
            "p_at_least_as_many_by_chance": at_least_by_chance(rates, got),
        }
    return {
        "k": k,
        "band": band,
        "class_counts": {lab: int(c) for lab, c in zip(labels, class_counts)},
        "crop_counts": (
            {lab: int(c) for lab, c in zip(labels, crop_counts_per_class)}
            if crop_counts_per_class is not None
            else None
        ),
        "row_sums": {lab: round(float(sum(r)), 2) for lab, r in zip(labels, rows)},
        "stratified_fold_sizes": {
            lab: sorted(set(stratified_fold_sizes(int(c), k))) for lab, c in zip(labels, class_counts)
        },
        "random_fold_size_ranges": {
            lab: list(random_fold_size_range(int(c), n_total, k)) for lab, c in zip(labels, class_counts)
        },
        "entries": entries,
        "summary": summary,
    }


def implied_wa(diagonal: Sequence[float], class_counts: Sequence[int]) -> float:
    """WA (%) implied by per-class recalls ``diagonal`` weighted by ``class_counts``.

    Why: with utterance counts this is the pooled WA when the recalls are pooled; the paper's
    recalls are fold means, so this is an estimate. Weighted by crop counts instead, it is
    what a crop-level WA would be.
    """
    d, n = np.asarray(diagonal, dtype=float), np.asarray(class_counts, dtype=float)
    return float((d * n).sum() / n.sum())


def fold_mean_recall_wa(
    y: np.ndarray, pred: np.ndarray, folds: Sequence[tuple[np.ndarray, np.ndarray]], n_classes: int
) -> dict:
    """Pooled WA, fold-mean WA, and the WA implied by fold-mean per-class recalls weighted by
    class counts (:func:`implied_wa`), for one cross-validated run's predictions.

    Why: it measures how far the implied-WA estimate lands from the WA actually computed, so
    that a gap between a paper's printed WA and its confusion matrix can be judged.
    """
    y, pred = np.asarray(y), np.asarray(pred)
    recalls = []
    for _, te in folds:
        cm = np.zeros((n_classes, n_classes))
        np.add.at(cm, (y[te], pred[te]), 1)
        rows = cm.sum(1)
        recalls.append(np.where(rows > 0, np.diag(cm) / np.where(rows > 0, rows, 1), np.nan))
    mean_recall = 100 * np.nanmean(np.array(recalls), axis=0)
    return {
        "pooled_wa": 100 * float((y == pred).mean()),
        "fold_mean_wa": 100 * float(np.mean([(y[te] == pred[te]).mean() for _, te in folds])),
        "implied_wa": implied_wa(mean_recall, np.bincount(y, minlength=n_classes)),
    }
