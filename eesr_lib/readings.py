"""The book's readings in words, written from measured numbers each time a page is built.

A chapter's "Reading" section says which of the paper's claims hold on its corpus. Its sentences
are generated here from the tables of :mod:`eesr_lib.tables` and the verdict rules of
:mod:`eesr_lib.claims`, so that no number in them is typed by hand and the wording of each
verdict sits next to the rule that gives it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from . import budget, claims, paper, plan
from .corpora import Corpus
from .experiments import VARIANT_NAMES as NAMES
from .plan import ABLATIONS, runs_for
from .tables import PROPOSED, RERUN_TAG, Shown, finished_runs, rerun_noise, signed

# Table 4's pairs, (with, without), grouped by what they differ by: one ingredient, or (the spectrogram-only
# rows, the only pair Table 4 has without IS10) the emotion embedding and instance norm at once
EE_ALONE = "Emotion embedding (EE)"
IN_ALONE = "Instance normalization (IN)"
IS10_BESIDE = "IS10 beside the deep feature"
EE_IN_DEEP = "Emotion embedding with instance normalization, spectrogram only (no IS10)"
INGREDIENTS = {
    EE_ALONE: [("ae+ee", "ae"), ("ae+ee+in", "ae+in")],
    IN_ALONE: [("ae+in", "ae"), ("ae+ee+in", "ae+ee")],
    IS10_BESIDE: [("ae", "ae-os"), ("ae+ee+in", "ae-os+ee+in")],
    EE_IN_DEEP: [("ae-os+ee+in", "ae-os")],
}


def _interval(shown: Shown, protocol: str, variant: str) -> tuple[float, float] | None:
    r = shown.comparison(protocol, variant)
    return None if r is None else (r.lo, r.hi)


def _interval_text(shown: Shown, protocol: str, variant: str) -> str:
    r = shown.comparison(protocol, variant)
    if r is None:
        return ""
    return f" (pooled {signed(r.gap)}, 95% interval over speakers {signed(r.lo)} to {signed(r.hi)})"


def table14_lines(shown: Shown) -> list[str]:
    """Table 14: the proposed model's WA on EMODB against the paper's."""
    out = []
    for protocol, paper_wa in paper.EMODB_WA.items():
        wa = shown.cell(protocol, PROPOSED, "WA") if shown.corpus.name == "emodb" else None
        if wa is None:
            continue
        n = len(shown.runs(protocol, PROPOSED))
        out.append(
            f"- **Table 14, EMODB {paper.SETTING_NAMES[protocol]}:** the paper reports WA {paper_wa}; ours is "
            f"{wa[0]:.1f} ± {wa[1]:.1f}{shown.folds_note(protocol, PROPOSED, n)}, "
            f"{paper_wa - wa[0]:.1f} points lower. **Does not hold** at the paper's level."
            if not claims.table14_holds(wa[0], paper_wa)
            else f"- **Table 14, {paper.SETTING_NAMES[protocol]}:** ours {wa[0]:.1f} vs the paper's {paper_wa}: holds."
        )
    return out


def baseline_reading(shown: Shown, protocol: str) -> str | None:
    """The proposed model against IS10+SVM under ``protocol``, fold-paired, with its verdict in words
    (chapter 4's line and the introduction's nEMO sentence), or None until both runs are whole."""
    gap = shown.fold_gap(protocol, PROPOSED, "is10+svm")
    if gap is None:
        return None
    mlp = shown.fold_gap(protocol, PROPOSED, "is10+mlp")
    verdict, reason = claims.beats_baseline(gap[0], _interval(shown, protocol, "is10+svm"))
    return (
        f"{gap[0]:+.1f} UA{shown.folds_note(protocol, PROPOSED, gap[1])}"
        + _interval_text(shown, protocol, "is10+svm")
        + (f"; over the same head on IS10 alone (IS10+MLP) {mlp[0]:+.1f}" if mlp else "")
        + (
            ". **Holds.**"
            if verdict == claims.HOLDS
            else ". **Does not hold**: "
            + {
                "above": f"above it by less than {claims.BEATS_BASELINE_UA:g} points.",
                "no clear difference": "slightly below the baseline, within the speaker-resampling noise "
                "(no clear difference).",
                "below": "below the baseline.",
            }[reason]
        )
    )


def baseline_lines(shown: Shown) -> list[str]:
    """The proposed model beats IS10+SVM (Table 4: by 8.1 UA on IEMOCAP LOSO)."""
    paper_gap = paper.table4_gap(PROPOSED, "is10+svm", "loso-speaker")
    return [
        f"- **AE+EE,IN above IS10+SVM** (the paper: {paper_gap:+.1f} UA on IEMOCAP LOSO), {protocol}: ours {reading}"
        for protocol in shown.protocols
        if (reading := baseline_reading(shown, protocol)) is not None
    ]


def ordering_lines(shown: Shown, gap_sd: dict[str, float]) -> list[str]:
    """Each ingredient adds (Table 4's ordering): every ablation row below AE+EE,IN."""
    out = []
    planned = set(runs_for(shown.corpus))
    for protocol in shown.protocols:
        rows, gaps, clear = [], {}, 0
        for variant in ABLATIONS:
            gap = shown.fold_gap(protocol, variant, PROPOSED)
            if gap is None:
                continue
            rows.append(f"{NAMES[variant]} {gap[0]:+.1f}{shown.folds_note(protocol, variant, gap[1])}")
            gaps[NAMES[variant]] = gap[0]
            ci = _interval(shown, protocol, variant)
            clear += ci is not None and not claims.interval_contains_zero(ci)
        if rows:
            left = len(ABLATIONS) - len(rows)
            order_verdict, above, tiny = claims.ordering(gaps, gap_sd.get(protocol))
            verdict = {
                claims.HOLDS: "**Holds**: every row run so far is below AE+EE,IN",
                claims.HOLDS_IN_SIGN: "**Holds in sign only**: every row is below AE+EE,IN, but "
                + ", ".join(tiny)
                + " by no more than a second training of the same model moves it (see *Training noise*)",
                claims.DOES_NOT_HOLD: f"**Does not hold**: {', '.join(above)} at or above AE+EE,IN",
            }[order_verdict]
            out.append(
                f"- **Each ingredient adds**, {protocol} (ablation minus AE+EE,IN, UA points): "
                + ", ".join(rows)
                + f". {verdict}; {clear} of {len(rows)} gaps outside the speaker-resampling noise"
                + (f" ({left} row(s) not run yet)." if left else ".")
            )
        elif shown.runs(protocol, PROPOSED):
            in_plan = any((protocol, v) in planned for v in ABLATIONS)
            where = (
                "rebuilds Table 4 on this corpus under " + ", ".join(shown.ablated) + ", not this one."
                if shown.ablated
                else "does not rebuild Table 4 on this corpus."
            )
            out.append(
                f"- **Each ingredient adds**, {protocol}: "
                + (
                    "the ablation rows are not run yet (commands above)."
                    if in_plan
                    else "the replication's list (`eesr_lib/plan.py`) " + where
                )
            )
    return out


def ingredient_effects(
    shown: Shown, protocol: str, gap_sd: float | None
) -> dict[str, tuple[dict[tuple[str, str], tuple[float, int]], str]]:
    """{ingredient: ({(with, without): (gap, folds)}, verdict)} for every ingredient of :data:`INGREDIENTS` with
    at least one pair run under ``protocol``: the rule (:func:`eesr_lib.claims.ingredient_effect`) applied in
    one place, for chapter 4's lines and the introduction's words alike."""
    out = {}
    for ingredient, pairs in INGREDIENTS.items():
        gaps = {pair: shown.fold_gap(protocol, *pair) for pair in pairs}
        gaps = {pair: g for pair, g in gaps.items() if g is not None}
        if gaps:
            out[ingredient] = gaps, claims.ingredient_effect([g for g, _ in gaps.values()], gap_sd)
    return out


def ingredient_lines(shown: Shown, gap_sd: dict[str, float]) -> list[str]:
    """Each ingredient on its own (the pairs of Table 4 that differ by exactly that ingredient), then the
    emotion embedding and instance norm together on the spectrogram branch alone (:data:`EE_IN_DEEP`)."""
    out = []
    verdicts = {
        claims.NO_EFFECT: "**No measurable effect**: every gap is within training noise (see *Training noise*)",
        claims.HOLDS: "**Holds**",
        claims.DOES_NOT_HOLD: "**Does not hold**",
        claims.MIXED: "**Mixed**",
    }
    for protocol in shown.protocols:
        paper_protocol = "loso-speaker" if protocol == "loso-speaker" else "kfold10"
        for ingredient, (gaps, verdict) in ingredient_effects(shown, protocol, gap_sd.get(protocol)).items():
            parts = [
                f"{NAMES[with_]} − {NAMES[without]} = {signed(gap)}"
                f"{shown.folds_note(protocol, with_, n)} "
                f"(paper {paper.table4_gap(with_, without, paper_protocol):+.1f})"
                for (with_, without), (gap, n) in gaps.items()
            ]
            out.append(f"- **{ingredient} adds**, {protocol}: " + "; ".join(parts) + f". {verdicts[verdict]}.")
    return out


def held_out_lines(shown: Shown) -> list[str]:
    """How much of the k-fold result survives held-out speakers."""
    out = []
    for variant in (PROPOSED, "is10+svm"):
        kf, lo = shown.cell("kfold5", variant, "UA"), shown.cell("loso-speaker", variant, "UA")
        if kf is None or lo is None:
            continue
        kf, lo = kf[0], lo[0]
        n = len(shown.runs("loso-speaker", variant))
        out.append(
            f"- **Held-out speakers**, {NAMES[variant]}: UA {kf:.1f} with stratified 5-fold, {lo:.1f} "
            f"leaving each speaker out{shown.folds_note('loso-speaker', variant, n)}: {kf - lo:.1f} points of the "
            "5-fold score are lost when the test speaker is not in the training set."
        )
    return out


def noise_lines(shown: Shown, noise: dict[str, dict]) -> list[str]:
    """Where a gap is no larger than a second training of the same model gives."""
    out = []
    for protocol, r in noise.items():
        small = []
        for variant in [*ABLATIONS, "is10+svm"]:
            gap = shown.fold_gap(protocol, variant, PROPOSED)
            if gap is not None and claims.within_training_noise(gap[0], r["gap_sd"]):
                small.append(f"{NAMES[variant]} ({signed(gap[0])})")
        times = "twice" if claims.NOISE_SDS == 2 else f"{claims.NOISE_SDS:g} times"
        out.append(
            f"- **Training noise**, {protocol}: AE+EE,IN trained a second time, unchanged, moved single folds by "
            f"{r['mean_abs']:.1f} UA on average (up to {r['max_abs']:.1f}) and the fold-paired mean by "
            f"{signed(r['gap'])}; a paired gap between two equally good models would have a standard deviation of "
            f"about {r['gap_sd']:.1f}. "
            + (
                f"Gaps to AE+EE,IN within {times} that: " + ", ".join(small) + ": retraining alone could produce them."
                if small
                else "Every gap to AE+EE,IN above is larger than twice that."
            )
        )
    return out


def claims_reading(shown: Shown, noise: dict[str, dict]) -> str:
    """Chapter 4's reading, claim by claim, as one Markdown list (``noise``: :func:`eesr_lib.tables.rerun_noise`)."""
    gap_sd = {p: r["gap_sd"] for p, r in noise.items()}
    lines = (
        table14_lines(shown)
        + baseline_lines(shown)
        + ordering_lines(shown, gap_sd)
        + ingredient_lines(shown, gap_sd)
        + held_out_lines(shown)
        + noise_lines(shown, noise)
    )
    return "\n".join(lines) if lines else "*Not enough finished runs for a reading yet.*"


def budget_claims_reading(shown: Shown, noise: dict[str, dict]) -> str:
    """Chapters 4 and 8: chapter 4's reading, claim by claim, at the chosen budget. ``shown``: the runs that
    have all their folds at it (:func:`eesr_lib.tables.finished_runs` with ``plan.BUDGET_TAG``);
    ``noise``: the training noise measured at 40 epochs (:func:`eesr_lib.tables.rerun_noise`), the only
    one there is: no row has been trained twice at the longer budget."""
    gap_sd = {p: r["gap_sd"] for p, r in noise.items()}
    x = f"{plan.CHOSEN_MULTIPLE}x"
    lines = table14_lines(shown) + baseline_lines(shown)
    if any(shown.runs(p, v) for p in shown.protocols for v in ABLATIONS):
        lines += ordering_lines(shown, gap_sd) + ingredient_lines(shown, gap_sd)
    waiting = [f"{NAMES[v]} {s}" for (p, v), s in shown.status.items() if not shown.runs(p, v)]
    wait = f" Not yet whole at {x}: {', '.join(waiting)}." if waiting else ""
    if not lines:
        return f"No claim can be read at {x} yet: it needs AE+EE,IN with all its folds.{wait}"
    noise_note = (
        f" The training-noise band is the one measured at 40 epochs (a second training of AE+EE,IN), "
        f"since no row has been trained twice at {x}."
        if noise
        else ""
    )
    return (
        f"**The same claims at {x} today's optimizer steps** (runs tagged `{plan.BUDGET_TAG}`, chapter 8), from the "
        "rows that have all their folds at that budget, "
        f"beside the IS10 baselines as they are (their training does not depend on it).{noise_note}{wait}\n\n"
        + "\n".join(lines)
    )


def claims_at_budget(corpus: Corpus, results_dir: str | Path) -> str | None:
    """:func:`budget_claims_reading` of ``corpus``'s results at the chosen budget (chapters 4 and 8), or
    None where the budget run list does not cover the corpus."""
    if not plan.budget_runs(corpus):
        return None
    variants = [*plan.DECISIVE, "ae+in", *plan.BASELINES]
    at_budget = finished_runs(corpus, results_dir, ["kfold5"], variants, tag=plan.BUDGET_TAG)
    noise, _ = rerun_noise(finished_runs(corpus, results_dir, ["kfold5"], [PROPOSED]), results_dir, RERUN_TAG)
    return budget_claims_reading(at_budget, noise)


def verdict_at_budget(corpus: Corpus, results_dir: str | Path) -> str | None:
    """Chapter 7: :func:`verdict_line` (the bar against IS10+SVM) for the proposed model trained at the chosen
    budget, once all its 5-fold runs are in; None where the budget run list does not cover the corpus."""
    if not plan.budget_runs(corpus):
        return None
    x = f"{plan.CHOSEN_MULTIPLE}x"
    shown = finished_runs(corpus, results_dir, ["kfold5"], [PROPOSED, "is10+svm"], tag=plan.BUDGET_TAG)
    pair = {v: shown.runs("kfold5", v) for v in (PROPOSED, "is10+svm")}
    if not all(pair.values()):
        return (
            f"At {x} today's optimizer steps (chapter 8) the verdict waits for every fold: AE+EE,IN "
            f"{shown.status['kfold5', PROPOSED]}."
        )
    line = verdict_line(f"kfold5 at {x}", pair, shown.comparison("kfold5", "is10+svm").to_dict())
    return f"At {x} today's optimizer steps (chapter 8; IS10+SVM is the same run):\n\n{line}"


def search_reading(log: pd.DataFrame) -> str:
    """Chapter 7: the recipe search on split 0, per protocol, against the IS10 baselines."""
    lines = []
    for protocol, part in log.groupby("protocol"):
        fused = part[part.variant.str.startswith("ae+")]
        deep = part[part.variant.str.startswith("ae-os")]
        svm = part[part.variant.str.startswith("is10+svm")]
        mlp = part[part.variant.str.startswith("is10+mlp")]
        if fused.empty or svm.empty:
            continue
        best = fused.loc[fused.split0_score.idxmax()]
        worst = fused.loc[fused.split0_score.idxmin()]
        gap = best.split0_score - svm.split0_score.max()
        lines.append(
            f"- **{protocol}**: {len(fused)} configurations of the full model (with IS10) were tried on split 0. "
            f"They span {worst.split0_score:.1f} (`{worst.variant}`) to {best.split0_score:.1f} "
            f"(`{best.variant}`: {best.changes}), the best {'above' if gap > 0 else 'below'} IS10+SVM's "
            f"{svm.split0_score.max():.1f} by {abs(gap):.1f} points"
            + (
                f" and {'above' if best.split0_score > mlp.split0_score.max() else 'below'} the IS10+MLP head's "
                f"{mlp.split0_score.max():.1f}"
                if not mlp.empty
                else ""
            )
            + "."
        )
        if not deep.empty:
            d = deep.loc[deep.split0_score.idxmax()]
            lines.append(
                f"- The deep feature alone (no IS10) reached at best {d.split0_score:.1f} UA (`{d.variant}`) in "
                f"{len(deep)} tries: on this corpus the fused model leans on IS10; the autoencoder's share is small."
            )
    return "\n".join(lines) if lines else "Not enough runs to compare yet."


def verdict_line(protocol: str, runs: dict, comparison: dict | None = None) -> str:
    """Chapter 7's verdict on the bar for one protocol: fold-paired gap AE+EE,IN − IS10+SVM, folds won,
    and (where given, :func:`eesr_lib.stats.compare_runs`) the pooled gap's speaker-resampled interval.
    ``runs`` maps a variant to its fold records under ``protocol``."""
    from .report import paired_gap

    proposed, svm = runs[PROPOSED], runs["is10+svm"]
    gap, n = paired_gap(proposed, svm)
    total = svm[0]["n_folds"]
    svm_ua = {s["fold"]: s["metrics"]["ua"] for s in svm}
    wins = sum(a["metrics"]["ua"] > svm_ua[a["fold"]] for a in proposed if a["fold"] in svm_ua)
    interval = (
        f" (pooled {signed(comparison['gap'])}, 95 % interval over speakers {signed(comparison['lo'])} to "
        f"{signed(comparison['hi'])})"
        if comparison
        else ""
    )
    met = claims.beats_baseline(gap)[0] == claims.HOLDS
    return (
        f"- **{protocol}** ({n} of {total} folds): AE+EE,IN minus IS10+SVM = **{gap:+.1f}** UA points on average"
        f"{interval}, AE+EE,IN ahead on {wins} of {n} folds; the bar is +{claims.BEATS_BASELINE_UA:g}: "
        + ("**met**" if met else "**not met**")
        + ("." if n == total else f" so far ({total - n} folds still to run).")
    )


def fold_gap_range(values: list[float]) -> str:
    """A list of gaps as the intro words it: "-31.2" or "from -34.0 to -28.9"."""
    lo, hi = float(np.min(values)), float(np.max(values))
    return signed(lo) if round(lo, 1) == round(hi, 1) else f"{signed(lo)} to {signed(hi)}"


def epoch_reading(budget_table: pd.DataFrame, lengths: np.ndarray) -> str:
    """Chapter 8: what 40 epochs are under the most literal reading of an epoch
    (``budget_table``: :func:`eesr_lib.tables.epoch_table`)."""
    x_hop1 = budget_table.iloc[-1]["40 epochs = x today"]
    return (
        f"The {len(lengths)} training utterances are {np.median(lengths):.0f} frames long at the median. Read "
        f"literally, with every start frame a sample, 40 epochs would be **{x_hop1:.0f}x** today's budget; with "
        "overlapping windows at hop 16 or 64, a few times it. The paper's budget is unknown, but any reading "
        "that makes an epoch a pass over a data set of crops gives more steps than ours."
    )


def curves_reading(summary: pd.DataFrame) -> str:
    """Chapter 8: each learning curve in words (``summary``: :func:`eesr_lib.budget.curve_summary`)."""
    out = []
    for r in summary.itertuples():
        at1 = r.val_UA_1x
        best_m = max((m for m in (2, 4, 8, 16) if not np.isnan(getattr(r, f"val_UA_{m}x"))), default=None)
        status = "partial run, " if r.partial else ""
        line = f"- **{r.variant}** ({status}{r.reached_x:.1f}x reached): "
        line += "not yet at today's budget" if np.isnan(at1) else f"validation UA {at1:.1f} at today's budget"
        if best_m:
            line += f", {getattr(r, f'val_UA_{best_m}x'):.1f} at {best_m}x"
        if np.isnan(r.last_doubling_gain):
            line += "."
        elif r.plateau:
            line += (
                f"; the last doubling of steps changed it by {r.last_doubling_gain:+.1f} (less than "
                f"+{budget.NO_GAIN_UA:g} point): **no gain from more steps**."
            )
        else:
            line += (
                f"; the last doubling still bought {r.last_doubling_gain:+.1f} points: **still learning** "
                "at the end of the run."
            )
        line += f" Training-crop accuracy at the end: {r.train_crop_acc_end:.0f} %."
        out.append(line)
    return "\n".join(out)


def budget_reading(curves: pd.DataFrame) -> str:
    """Chapter 8: what the learning curves say about the budget of the outer runs
    (``eesr_lib.plan.CHOSEN_MULTIPLE``), curve by curve."""
    chosen = plan.CHOSEN_MULTIPLE
    verdict = budget.chosen_budget_reading(curves, chosen)
    text = (
        f"**The budget of the outer runs.** The budget run list (`eesr_lib.plan.CHOSEN_MULTIPLE`) trains "
        f"{chosen}x today's steps ({chosen * plan.PAPER_EPOCHS} epochs of one random crop per utterance); it was "
        f"set ahead of the curves, as half of the {plan.CURVE_MULTIPLE}x they run to. "
        + {
            budget.NOT_REACHED: "The curves cannot yet support that number: at least one stopped short of it "
            "while still gaining.",
            budget.PLATEAU: "Every curve had stopped gaining by then (less than "
            f"{budget.NO_GAIN_UA:g} point of validation UA over the doubling of steps that ends there, or earlier): "
            "more steps would not change the verdicts.",
            budget.STILL_LEARNING: "At least one curve still gained on the doubling that ends there: for the rows "
            f"still gaining, {chosen}x is a lower bound on what the deep branch needs, not a budget at which it has "
            "converged.",
        }[verdict]
    )
    if curves.empty:
        return text
    lines = []
    for r in budget.budget_readings(curves, chosen).itertuples():
        where = f"where its run ended ({r.at:.1f}x)" if r.short else f"ending at {r.at:g}x"
        lines.append(f"- {r.variant}: {r.gain:+.1f} UA points over the doubling {where}: {r.reading}")
    return text + "\n\n" + "\n".join(lines)


def departures_reading(table: pd.DataFrame, n_splits: int) -> str:
    """Chapter 8: the departures from the paper's recipe on inner validation (``table``:
    :func:`eesr_lib.budget.departure_table`; ``n_splits``: the protocol's inner splits), and which one, if
    any, that evidence supports adopting (:func:`eesr_lib.budget.adopted_departure`)."""
    tags = ", ".join(f"`{plan.BUDGET_TAG}-{d}`" for d in plan.DEPARTURES)
    if table.empty:
        return (
            f"No departure has been trained yet. They are in the budget run list ({tags}, each beside the paper's "
            f"recipe `{plan.BUDGET_TAG}` on the same {n_splits} inner splits), after the decisive outer folds; "
            "until they run, the book reports the paper's recipe only."
        )
    lines = []
    for _, r in table.iterrows():
        line = f"- **{r.option}** ({r.splits} of {n_splits} inner splits): validation UA {r['val UA']:.1f}"
        if r.option != budget.PAPER_RECIPE and r["paired splits"]:
            p = "" if np.isnan(r.p) else f", one-sided paired p = {r.p:.2f}"
            line += f"; over the {r['paired splits']} splits both have, {r.gain:+.1f} on the paper's recipe, "
            line += f"ahead on {r.ahead}{p}"
        lines.append(line + ".")
    chosen = budget.adopted_departure(table, n_splits)
    if chosen:
        verdict = (
            f"**{chosen} beats the paper's recipe on inner validation** (p < {budget.DEPARTURE_P:g}). It is a "
            "departure from the paper: its outer folds would be reported beside the paper's recipe, never in its place."
        )
    elif budget.departures_complete(table, n_splits):
        verdict = (
            "**No departure beats the paper's recipe on inner validation** (one-sided paired "
            f"p < {budget.DEPARTURE_P:g} over all splits): none of these ways of keeping the deep branch "
            "learning lifts validation UA measurably, and the book's verdicts stay those of the paper's recipe."
        )
    else:
        verdict = "Not every option has all its splits yet: no departure is chosen from part of the evidence."
    return "\n".join(lines) + "\n\n" + verdict


def outer_budget_reading(table: pd.DataFrame) -> str:
    """Chapter 8: the outer folds finished at the chosen budget (``table``:
    :func:`eesr_lib.budget.outer_folds`), in words; no verdict until a pair has all its folds."""
    if table.empty:
        return (
            f"No outer fold has finished at {plan.CHOSEN_MULTIPLE}x yet: they are the budget run list's "
            f"`{plan.BUDGET_TAG}` rows, each about {plan.CHOSEN_MULTIPLE} times a {plan.PAPER_EPOCHS}-epoch fold."
        )
    out = []
    for variant, rows in table.groupby("variant", sort=False):
        ua, several = rows["UA change"], len(rows) > 1
        # one fold has no mean and no range to state
        change = (
            f"mean change WA {rows['WA change'].mean():+.1f}, UA {ua.mean():+.1f} "
            f"(fold by fold {fold_gap_range(list(ua))})"
            if several
            else f"change WA {rows['WA change'].iloc[0]:+.1f}, UA {ua.iloc[0]:+.1f}"
        )
        out.append(
            f"- **{variant}** ({len(rows)} fold{'s' if several else ''} at {plan.CHOSEN_MULTIPLE}x): against "
            f"the {plan.PAPER_EPOCHS}-epoch run of the same fold, {change}."
        )
    return (
        "\n".join(out)
        + _premise_check(table)
        + (
            "\n\nEach change is one training run against another on one test fold, within the training noise "
            "until shown otherwise; chapter 4's gaps, noise band and verdicts at this budget are read below, "
            "from the rows that have all their folds."
        )
    )


def _premise_check(table: pd.DataFrame) -> str:
    """What each longer run's own score after epoch 40 says (:func:`eesr_lib.budget.outer_folds`): with the
    same arithmetic, whether it passed through the 40-epoch run's model; with another, what the extra
    steps bought within the run."""
    known = table[table[budget.AT_TODAY].notna()] if budget.AT_TODAY in table else table.iloc[:0]
    out = []
    same = known[known["same arithmetic"]]
    if not same.empty:
        off = same[(same[budget.AT_TODAY] - same["UA today"]).abs() >= 0.05]
        out.append(
            f"Where both runs did the same arithmetic, the longer run's own test UA after epoch {plan.PAPER_EPOCHS} "
            f"equals the {plan.PAPER_EPOCHS}-epoch run's final UA: it passed through today's model, as the learning "
            "curves assume (a constant learning rate)."
            if off.empty
            else f"In {', '.join(f'{r.variant} fold {r.fold}' for r in off.itertuples())} the longer run's test UA "
            f"after epoch {plan.PAPER_EPOCHS} differs from the {plan.PAPER_EPOCHS}-epoch run's, with the same "
            "arithmetic: it did not pass through today's model, and the learning curves' premise fails there."
        )
    other = known[~known["same arithmetic"]]
    if not other.empty:
        parts = "; ".join(
            f"{variant} {fold_gap_range(list(rows['UA gain in run']))} (mean {signed(rows['UA gain in run'].mean())})"
            for variant, rows in other.groupby("variant", sort=False)
        )
        out.append(
            f"The {plan.PAPER_EPOCHS}-epoch runs and the longer ones did not do the same arithmetic (another number of "
            "CPU threads or another device changes the order of floating-point sums), so they part from the "
            f"first step, and their scores after epoch {plan.PAPER_EPOCHS} differ by a rerun's noise; what the extra "
            "steps bought is read within the longer run, from its own test UA after epoch "
            f"{plan.PAPER_EPOCHS} to its last (*{budget.AT_TODAY}* and *UA gain in run* in the table): "
            f"{parts} UA points."
        )
    return "".join(f"\n\n{o}" for o in out)


# How a stand-in corpus differs from the corpus it stands in for (eesr_lib.paper.STAND_INS), in words.
STAND_IN_DIFFERENCES = {
    "nemo": "Polish rather than English, read sentences rather than improvised and scripted dialogues, "
    "one studio, and fewer utterances than IEMOCAP's usual four-class set (about 5,500)",
}


def stand_in_note(corpus: Corpus) -> str | None:
    """For a corpus standing in for one of the paper's, what may and may not be compared (else None)."""
    reference = paper.reference_corpus(corpus.name)
    if reference == corpus.name:
        return None
    speakers = corpus.table["speaker"].nunique()
    return (
        f"**This page is on {corpus.name}, standing in for {reference.upper()}.** It has {reference.upper()}'s "
        f"classes in the same order ({', '.join(corpus.labels)}; {len(corpus)} utterances, {speakers} speakers), "
        f"so the paper's {reference.upper()} values are set beside ours value by value (the *ours − paper* "
        f"columns), not only by the gaps between variants. It is not {reference.upper()}: "
        f"{STAND_IN_DIFFERENCES.get(corpus.name, 'another corpus')}. A difference to the paper's value is "
        "a difference between two corpora as much as between two implementations."
    )
