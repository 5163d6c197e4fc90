"""The numbers the introduction and the choices page quote, computed from the results.

``book/intro.md`` and ``book/choices.md`` are prose, but their findings ("the spectrogram-only rows
lose ... UA points", "about ... Adam steps") come from runs. They name each such number as a MyST
substitution (``{{ name }}``); :func:`page_numbers` computes every one of them from the result files,
the corpora and the library's constants, and ``scripts/build_book.py`` writes them into the pages'
front matter (:func:`eesr_lib.book.write_substitutions`) each time it builds the EMODB chapters, as it
redraws the introduction's figure. So no number a run produced is typed by hand, and a rerun that
moves a number moves the sentence that quotes it. A number whose runs are missing reads "(not run)".
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np

from . import claims, paper, plan, readings
from .corpora import Corpus, load_corpus
from .errors import EESRError
from .protocols import folds, inner_split
from .report import load_folds, paired_gap
from .results import variant_folder
from .tables import PROPOSED, RERUN_TAG, finished_runs, rerun_noise, signed

MISSING = "(not run)"
ROOT = Path(__file__).resolve().parents[1]
NEMO_KEYS = (
    "nemo_utterances",
    "nemo_speakers",
    "nemo_svm_loso_ua",
    "nemo_mlp_loso_ua",
    "nemo_svm_kfold10_ua",
    "nemo_proposed_loso_ua",
    "nemo_proposed_reading",
)
EE_IN_PAIRS = readings.INGREDIENTS[readings.EE_ALONE] + readings.INGREDIENTS[readings.IN_ALONE]  # differ by EE or IN
(DEEP_PAIR,) = readings.INGREDIENTS[readings.EE_IN_DEEP]  # AE-OS,+EE,IN against AE-OS: both at once, no IS10


def _range(values: list[float], fmt: str = ".0f") -> str:
    lo, hi = min(values), max(values)
    return f"{lo:{fmt}}" if f"{lo:{fmt}}" == f"{hi:{fmt}}" else f"{lo:{fmt}} to {hi:{fmt}}"


def _guard(compute: Callable[[], str]) -> str:
    """``compute()``, or :data:`MISSING` where its runs (or a corpus) are not there."""
    try:
        return compute()
    except (EESRError, KeyError, TypeError, ValueError, IndexError, FileNotFoundError):
        return MISSING


def emodb_numbers(results_dir: str | Path, emodb: Corpus) -> dict[str, str]:
    """The EMODB findings the introduction quotes (chapter 4 prints the same numbers, table by table)."""
    variants = [PROPOSED, "ae", "ae+ee", "ae+in", "ae-os", "ae-os+ee+in", "is10+svm"]
    shown = finished_runs(emodb, results_dir, ["kfold5", "kfold10", "loso-speaker"], variants)

    def spectrogram_only_loss() -> str:
        gaps = [
            -shown.fold_gap(p, v, PROPOSED)[0] for p in ("kfold5", "loso-speaker") for v in ("ae-os", "ae-os+ee+in")
        ]
        return _range(gaps)

    def ee_in_largest_gap() -> str:
        return f"{max(abs(shown.fold_gap('kfold5', a, b)[0]) for a, b in EE_IN_PAIRS):.1f}"

    def deep_ee_in() -> str:
        noise, _ = rerun_noise(shown, results_dir, RERUN_TAG)

        def one(protocol: str, words: str) -> str:  # chapter 4's line for the pair, in the intro's words
            gap_sd = noise.get(protocol, {}).get("gap_sd")
            gaps, verdict = readings.ingredient_effects(shown, protocol, gap_sd)[readings.EE_IN_DEEP]
            ((gap, _),) = gaps.values()
            return f"{signed(gap)} UA {words} ({verdict})"

        paper_kfold, paper_loso = (paper.table4_gap(*DEEP_PAIR, p) for p in ("kfold10", "loso-speaker"))
        return (
            f"{one('kfold5', 'under 5-fold')} and {one('loso-speaker', 'with speakers held out')}, where the paper "
            f"has {paper_kfold:+.1f} (10-fold) and {paper_loso:+.1f} (leave one speaker out) on IEMOCAP"
        )

    def agreement() -> str:
        return _range([shown.comparison(p, "is10+svm").agree_pct for p in shown.protocols]) + " %"

    def svm_clear_gaps() -> str:
        rows = [(p, shown.comparison(p, "is10+svm")) for p in shown.protocols]
        if any(r is None for _, r in rows):
            raise KeyError("is10+svm")
        clear = [(p, r) for p, r in rows if not claims.interval_contains_zero((r.lo, r.hi))]
        if not clear:
            return "no gap between the two is larger than what resampling speakers gives"
        where = ", ".join(f"{p}: {signed(r.gap)} UA, 95 % interval {signed(r.lo)} to {signed(r.hi)}" for p, r in clear)
        ahead = {"SVM" if r.gap < 0 else "proposed model" for _, r in clear}
        one = "the one gap" if len(clear) == 1 else "the gaps"
        return (
            f"{one} between the two larger than what resampling speakers gives ({where}) "
            f"has the {' / '.join(sorted(ahead))} ahead"
        )

    return {
        "emodb_utterances": str(len(emodb)),
        "spectrogram_only_loss": _guard(spectrogram_only_loss),
        "ee_in_largest_gap": _guard(ee_in_largest_gap),
        "deep_ee_in": _guard(deep_ee_in),
        "svm_agreement": _guard(agreement),
        "svm_clear_gaps": _guard(svm_clear_gaps),
    }


def ravdess_numbers(results_dir: str | Path, ravdess: Corpus, emodb: Corpus) -> dict[str, str]:
    """RAVDESS beside EMODB: its size, and the proposed model against IS10+SVM on speaker-grouped 4-fold."""
    shown = finished_runs(ravdess, results_dir, ["speaker-kfold4"], [PROPOSED, "is10+svm"])

    def gap() -> str:
        return f"{signed(shown.fold_gap('speaker-kfold4', PROPOSED, 'is10+svm')[0])} UA points"

    def wins() -> str:
        svm = {r["fold"]: r["metrics"]["ua"] for r in shown.runs("speaker-kfold4", "is10+svm")}
        ours = shown.runs("speaker-kfold4", PROPOSED)
        won = sum(r["metrics"]["ua"] > svm[r["fold"]] for r in ours)
        return f"{won} of {len(ours)}"

    def loso_cpu_hours() -> str:
        # a leave-one-speaker-out fold trains on 23 of 24 actors; scale the 4-fold runs' time per utterance
        recs = shown.runs("speaker-kfold4", PROPOSED)
        if {r["provenance"]["hardware"]["device"] for r in recs} != {"cpu"}:
            raise ValueError("not measured on a CPU")
        per_utterance = np.mean([r["provenance"]["wall_time_s"] / r["train_size"] for r in recs]) / 3600
        n = ravdess.table["speaker"].nunique()
        return f"{n * per_utterance * len(ravdess) * (n - 1) / n:.0f}"

    return {
        "ravdess_utterances": str(len(ravdess)),
        "ravdess_size_ratio": f"{len(ravdess) / len(emodb):.1f}",
        "ravdess_gap": _guard(gap),
        "ravdess_folds_won": _guard(wins),
        "ravdess_loso_cpu_hours": _guard(loso_cpu_hours),
    }


def nemo_numbers(results_dir: str | Path, nemo: Corpus) -> dict[str, str]:
    """nEMO, standing in for the paper's IEMOCAP: leave-one-speaker-out UA of the baselines and of the
    proposed model, set beside the paper's IEMOCAP values (same four classes), and what is left to run."""
    variants = [PROPOSED, "is10+svm", "is10+mlp"]
    shown = finished_runs(nemo, results_dir, ["loso-speaker", "kfold10"], variants)

    def ua(protocol: str, variant: str) -> Callable[[], str]:
        def compute() -> str:
            value, lo, hi = shown.scores(protocol, variant)["UA"]
            return f"{value:.1f} (95 % interval {lo:.1f} to {hi:.1f})"

        return compute

    def proposed_ua() -> str:
        # "(not run)" would be untrue once some folds are in: the pooled UA waits for all nine
        if not shown.records["loso-speaker", PROPOSED] and shown.status["loso-speaker", PROPOSED] != "not run yet":
            return "(still running)"
        return ua("loso-speaker", PROPOSED)()

    def proposed_reading() -> str:
        # what the run adds to the verdict once its nine folds are in; until then, how far it got
        reading = readings.baseline_reading(shown, "loso-speaker")
        if reading is not None:
            paper_gap = paper.table4_gap(PROPOSED, "is10+svm", "loso-speaker")
            return (
                f"The paper's claim that its model beats IS10+SVM (by {paper_gap:+.1f} UA on IEMOCAP; our bar: "
                f"{claims.BEATS_BASELINE_UA:g} points or more), on nEMO's held-out speakers: ours {reading}"
            )
        row = plan.status(nemo, results_dir).set_index(["protocol", "variant"]).loc[("loso-speaker", PROPOSED)]
        done = shown.status["loso-speaker", PROPOSED]
        h = row.hours_left_est
        hours = "" if np.isnan(h) else f", about {h:.0f} worker-hour{'' if round(h) == 1 else 's'} of this CPU"
        return (
            f"Its run is under way ({done.replace('/', ' of ')} in; `eesr replicate --dataset nemo`{hours} for the "
            "rest); until all its folds are in, nEMO tests the paper's baseline, not its model."
            if done != "not run yet"
            else f"Its run comes next on the list (`eesr replicate --dataset nemo`{hours}); until it has run, nEMO "
            "tests the paper's baseline, not its model."
        )

    return {
        "nemo_utterances": str(len(nemo)),
        "nemo_speakers": str(nemo.table["speaker"].nunique()),
        "nemo_svm_loso_ua": _guard(ua("loso-speaker", "is10+svm")),
        "nemo_mlp_loso_ua": _guard(ua("loso-speaker", "is10+mlp")),
        "nemo_svm_kfold10_ua": _guard(ua("kfold10", "is10+svm")),
        "nemo_proposed_loso_ua": _guard(proposed_ua),
        "nemo_proposed_reading": _guard(proposed_reading),
    }


def training_numbers(results_dir: str | Path, emodb: Corpus) -> dict[str, str]:
    """The training budget and the validation split the choices page quotes."""

    def steps() -> str:
        recs = load_folds(results_dir, "emodb", "kfold5", PROPOSED)
        train = recs[0]["config"]["train"]
        per_fold = [-(-r["train_size"] // train["batch_size"]) * train["epochs"] for r in recs]
        return f"{round(float(np.mean(per_fold)), -1):.0f}"

    return {"steps_per_fold": _guard(steps)} | split_numbers(emodb)


def split_numbers(corpus: Corpus, protocol: str = "kfold5") -> dict[str, str]:
    """The size of the inner validation split of outer fold 0 (where configurations are compared), and
    what one utterance of it is worth in UA points: the resolution of every validation score."""
    train_idx = folds(corpus, protocol, 0)[0][0]
    n_val = len(inner_split(corpus, train_idx, protocol, 0)[1])
    return {"validation_utterances": str(n_val), "ua_points_per_utterance": f"{100 / n_val:.1f}"}


FIT_ACC = 99.0  # training-crop accuracy (%) at which a row counts as having fitted its training set


def budget_numbers(results_dir: str | Path, emodb: Corpus) -> dict[str, str]:
    """What chapter 8's opening says of today's budget, from the 5-fold EMODB runs: the optimizer steps,
    how far the spectrogram-only rows get on their training crops, and how soon the fused rows fit theirs."""

    def final_acc() -> str:
        recs = [r for v in ("ae-os", "ae-os+ee+in") for r in load_folds(results_dir, "emodb", "kfold5", v)]
        return _range([r["history"][-1]["train_crop_acc"] for r in recs]) + " %"

    def fit_epoch() -> str:
        recs = [r for v in (PROPOSED, "ae", "ae+ee", "ae+in") for r in load_folds(results_dir, "emodb", "kfold5", v)]
        return _range([next(h["epoch"] for h in r["history"] if h["train_crop_acc"] >= FIT_ACC) for r in recs])

    return training_numbers(results_dir, emodb) | {
        "spectrogram_only_train_acc": _guard(final_acc),
        "fused_fit_epoch": _guard(fit_epoch),
        "fit_acc": f"{FIT_ACC:g}",
    }


def curve_numbers(results_dir: str | Path) -> dict[str, str]:
    """What the learning curves (chapter 8) say, in the introduction's words: the proposed model's
    curve, the spectrogram-only rows' from today's budget to the chosen one, and how many outer folds
    at the chosen budget have run."""
    from . import budget

    curves = budget.load_curves(results_dir, "emodb", [PROPOSED, "ae-os", "ae-os+ee+in"])
    rows = budget.curve_summary(curves).set_index("variant") if not curves.empty else None

    def row(variant: str):
        if rows is None or variant not in rows.index:
            raise KeyError(variant)  # no curve of it yet: the sentence reads "(not run)"
        return rows.loc[variant]

    chosen = plan.CHOSEN_MULTIPLE

    def fused() -> str:
        r = row(PROPOSED)
        best = max(m for m in (2, 4, 8, 16) if not np.isnan(r[f"val_UA_{m}x"]))
        numbers = (
            f"validation UA {r.val_UA_1x:.1f} at today's budget, {r[f'val_UA_{best}x']:.1f} at {best}x, and "
            f"{signed(r.last_doubling_gain)} over the last doubling of its {r.reached_x:.1f}x run"
        )
        if r.plateau:
            return f"flat ({numbers}): on that split, more steps do not move the fused model"
        return f"still rising ({numbers}): the fused model, too, may gain from more steps"

    def deep() -> str:
        def one(v: str) -> str:
            return f"{paper.VARIANT_NAMES[v]} from {row(v)['val_UA_1x']:.1f} to {row(v)[f'val_UA_{chosen}x']:.1f}"

        return " and ".join(one(v) for v in ("ae-os", "ae-os+ee+in"))

    def fused_outer() -> str:
        t = budget.outer_folds(results_dir, "emodb", [PROPOSED], plan.BUDGET_TAG)
        if t.empty:
            raise KeyError(PROPOSED)  # no outer fold at the chosen budget yet: "(not run)"
        # the gain within each run (from its own epoch 40) where the 40-epoch run did other arithmetic
        gain = t["UA change"].where(t["same arithmetic"], t["UA gain in run"])
        n = len(t)
        done = "all 5 folds" if n == 5 else f"{n} of 5 folds so far"
        return f"{done}, UA {_range(list(gain), '+.1f')} over the extra steps" + (
            " (one fold: the five together decide)" if n == 1 else ""
        )

    def fused_vs_svm() -> str:
        at = load_folds(results_dir, "emodb", "kfold5", variant_folder(PROPOSED, plan.BUDGET_TAG))
        if not at or len(at) < at[0]["n_folds"]:
            raise KeyError(PROPOSED)  # the verdict waits for every fold: "(not run)"
        gap, n = paired_gap(at, load_folds(results_dir, "emodb", "kfold5", "is10+svm"))
        met = claims.beats_baseline(gap)[0] == claims.HOLDS
        return (
            f"{signed(gap)} UA points over IS10+SVM on average over the {n} folds, against the bar of "
            f"+{claims.BEATS_BASELINE_UA:g}: {'met' if met else 'not met'}"
        )

    def outer() -> str:
        done = sum(len(load_folds(results_dir, "emodb", "kfold5", f"{v}@{plan.BUDGET_TAG}")) for v in plan.DECISIVE)
        return f"{done} of {5 * len(plan.DECISIVE)}"

    return {
        "fused_curve": _guard(fused),
        "fused_outer": _guard(fused_outer),
        "fused_vs_svm_budget": _guard(fused_vs_svm),
        "deep_curves": _guard(deep),
        "chosen_multiple": f"{chosen}",
        "budget_outer_folds": _guard(outer),
    }


def budget_ingredient_numbers(results_dir: str | Path, emodb: Corpus) -> dict[str, str]:
    """The emotion embedding and instance norm at the chosen budget, in the introduction's words: each
    Table 4 pair that differs by one of them alone and has all its 5-fold folds at that budget, and the
    verdict chapters 4 and 8 print for it (the same rule, :func:`eesr_lib.claims.ingredient_effect`,
    against the training noise measured at 40 epochs: no row has been trained twice at the longer budget);
    then the spectrogram-only pair (:data:`DEEP_PAIR`), the one the learning curves left open, beside its
    verdict at 40 epochs."""
    variants = sorted({v for pairs in readings.INGREDIENTS.values() for pair in pairs for v in pair})
    at = finished_runs(emodb, results_dir, ["kfold5"], variants, tag=plan.BUDGET_TAG)
    noise, _ = rerun_noise(finished_runs(emodb, results_dir, ["kfold5"], [PROPOSED]), results_dir, RERUN_TAG)
    gap_sd = noise.get("kfold5", {}).get("gap_sd")
    effects = readings.ingredient_effects(at, "kfold5", gap_sd)

    def ingredient_verdicts() -> str:
        parts = [
            f"{ingredient.split(' (')[0].lower()} "
            + ", ".join(f"{readings.NAMES[a]} − {readings.NAMES[b]} {signed(g)} UA" for (a, b), (g, _) in gaps.items())
            + f": {verdict}"
            for ingredient, (gaps, verdict) in effects.items()
            if ingredient in (readings.EE_ALONE, readings.IN_ALONE)
        ]
        if not parts:
            raise KeyError("no Table 4 pair is whole at the chosen budget")
        return "; ".join(parts)

    def deep_pair() -> str:
        if readings.EE_IN_DEEP not in effects:
            waiting = ", ".join(f"{readings.NAMES[v]} {at.status['kfold5', v]}" for v in DEEP_PAIR)
            return (
                f"its outer folds at {plan.CHOSEN_MULTIPLE}x are not all in ({waiting}), and until they are, "
                "its verdict is the one at today's budget"
            )
        gaps, verdict = effects[readings.EE_IN_DEEP]
        ((gap, n),) = gaps.values()
        today = finished_runs(emodb, results_dir, ["kfold5"], list(DEEP_PAIR))
        before = readings.ingredient_effects(today, "kfold5", gap_sd)[readings.EE_IN_DEEP][1]
        a, b = (readings.NAMES[v] for v in DEEP_PAIR)
        return f"{a} − {b} {signed(gap)} UA over its {n} folds: {verdict}, " + (
            "as at today's budget" if verdict == before else f"where at today's budget it was: {before}"
        )

    return {"ee_in_budget": _guard(ingredient_verdicts), "deep_pair_budget": _guard(deep_pair)}


def flaw_numbers(results_dir: str | Path) -> dict[str, str]:
    """Chapter 8's demonstrations in the introduction's words."""
    from .demonstrations import choice_table, load

    flaws = load(results_dir, "emodb")

    def choice_gain() -> str:
        t = choice_table(flaws["a"]["results"])
        return _range(list(t["best seed and epoch per fold"] - t["last epoch (honest)"]), ".1f")

    return {
        "test_choice_gain": _guard(choice_gain),
        "crop_split_wa": _guard(lambda: f"{flaws['b']['results']['crop_level_flawed']['wa']:.1f}"),
    }


def constant_numbers() -> dict[str, str]:
    """Numbers the pages quote from the paper, the run plan, the verdict rules and the benchmarks."""
    t4 = paper.TABLE4_UA_IEMOCAP[PROPOSED]

    def gpu_figure(file: str, key: str) -> Callable[[], str]:
        return lambda: f"{json.loads((ROOT / 'benchmarks' / file).read_text())['figures'][key]:.2f}"

    return {
        "paper_ua_kfold10": f"{t4['kfold10']}",
        "paper_ua_loso": f"{t4['loso-speaker']}",
        "paper_svm_ua_loso": f"{paper.TABLE4_UA_IEMOCAP['is10+svm']['loso-speaker']}",
        "paper_wa_kfold5": f"{paper.EMODB_WA['kfold5']}",
        "paper_wa_kfold10": f"{paper.EMODB_WA['kfold10']}",
        "beats_baseline_ua": f"{claims.BEATS_BASELINE_UA:g}",
        "curve_multiple": f"{plan.CURVE_MULTIPLE}",
        "gpu_bf16_speed": _guard(gpu_figure("results_gpu.json", "train_speedup_vs_fp32")),
        "gpu_graphs_speed": _guard(gpu_figure("results_gpu_h200.json", "graphs_speedup_vs_eager")),
    }


def page_numbers(results_dir: str | Path = "results", data_root: str | Path | None = None) -> dict[str, str]:
    """Every number ``book/intro.md`` and ``book/choices.md`` quote, by substitution name."""
    emodb = load_corpus("emodb", data_root)
    out = emodb_numbers(results_dir, emodb) | training_numbers(results_dir, emodb)
    try:
        out |= ravdess_numbers(results_dir, load_corpus("ravdess", data_root), emodb)
    except EESRError:  # no RAVDESS here: its sentences say so
        keys = (
            "ravdess_utterances",
            "ravdess_size_ratio",
            "ravdess_gap",
            "ravdess_folds_won",
            "ravdess_loso_cpu_hours",
        )
        out |= dict.fromkeys(keys, MISSING)
    try:
        out |= nemo_numbers(results_dir, load_corpus("nemo", data_root))
    except EESRError:  # no nEMO here
        out |= dict.fromkeys(NEMO_KEYS, MISSING)
    out |= budget_ingredient_numbers(results_dir, emodb)
    return out | curve_numbers(results_dir) | flaw_numbers(results_dir) | constant_numbers()
