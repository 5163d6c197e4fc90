"""The result chapters' tables, readings and figures, on made-up fold records (no run, no corpus on disk)."""

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score

from eesr_lib import figures, paper, readings, tables
from eesr_lib.corpora import Corpus

LABELS = ["anger", "boredom", "sadness"]
N_FOLDS, PER_FOLD = 3, 30


def _corpus() -> Corpus:
    ids = [f"u{k}-{i}" for k in range(N_FOLDS) for i in range(PER_FOLD)]
    table = pd.DataFrame(
        {
            "id": ids,
            "path": ids,
            "label": [LABELS[i % 3] for i in range(len(ids))],
            "speaker": [f"s{i % 6}" for i in range(len(ids))],
        }
    )
    return Corpus("toy", tuple(LABELS), table)


def _records(correct_share: float, seed: int) -> list[dict]:
    rng = np.random.default_rng(seed)
    out = []
    for k in range(N_FOLDS):
        preds = []
        for i in range(PER_FOLD):
            true = LABELS[i % 3]
            pred = true if rng.random() < correct_share else LABELS[(i + 1) % 3]
            preds.append({"id": f"u{k}-{i}", "true": true, "pred": pred})
        y = [p["true"] for p in preds]
        p_ = [p["pred"] for p in preds]
        metrics = {"wa": 100 * accuracy_score(y, p_), "ua": 100 * balanced_accuracy_score(y, p_)}
        for name in ("precision", "recall", "f1"):
            metrics[name] = dict.fromkeys(LABELS, 50.0)
        out.append(
            {
                "fold": k,
                "n_folds": N_FOLDS,
                "labels": LABELS,
                "predictions": preds,
                "metrics": metrics,
                "config": {"train": {"epochs": 40}},
                "provenance": {"wall_time_s": 60.0, "hardware": {"device": "cpu"}},
            }
        )
    return out


@pytest.fixture()
def shown() -> tables.Shown:
    share = {"ae+ee+in": 0.8, "is10+svm": 0.85, "ae": 0.8, "ae-os": 0.4}
    records = {("kfold5", v): _records(s, seed=i) for i, (v, s) in enumerate(share.items())}
    status = {key: f"{N_FOLDS}/{N_FOLDS} folds" for key in records}
    return tables.Shown(_corpus(), ["kfold5"], list(share), records, status, n_boot=200)


def test_scores_table_prints_pooled_scores_with_speaker_intervals_and_macro_f1(shown):
    table = tables.scores_table(shown, "kfold5")
    assert list(table.index) == ["IS10+SVM", "AE-OS", "AE", "AE+EE,IN (proposed)"]  # Table 4's order
    recs = shown.runs("kfold5", "ae-os")
    y = [p["true"] for r in recs for p in r["predictions"]]
    pred = [p["pred"] for r in recs for p in r["predictions"]]
    s = shown.scores("kfold5", "ae-os")
    assert s["WA"][0] == pytest.approx(100 * accuracy_score(y, pred))
    assert s["UA"][0] == pytest.approx(100 * balanced_accuracy_score(y, pred))
    assert s["F1"][0] == pytest.approx(100 * f1_score(y, pred, average="macro"))
    for metric in ("WA", "UA", "F1"):
        value, lo, hi = s[metric]
        assert lo <= value <= hi and hi - lo > 0
    assert table.loc["AE-OS", "UA pooled [95 %]"] == tables.with_interval(*s["UA"])
    assert table.loc["IS10+SVM", "epochs"] == "—" and table.loc["AE", "epochs"] == 40
    assert tables.scores_table(shown, "loso-speaker") is None


def test_table4_gaps_and_table14_say_what_is_missing(shown):
    t4 = tables.table4(shown)
    assert list(t4.index) == ["IS10+SVM", "AE-OS", "AE", "AE+EE,IN (proposed)"]  # the variants shown
    assert t4.loc["AE", "ours UA, toy kfold5"] == tables.mean_pm(shown.cell("kfold5", "ae", "UA"))
    assert t4.loc["AE", "paper UA, IEMOCAP LOSO"] == paper.TABLE4_UA_IEMOCAP["ae"]["loso-speaker"]
    gaps = tables.gap_table(shown)
    assert gaps.loc["AE+EE,IN (proposed)", "ours, kfold5"] == "+0.0"
    best = paper.TABLE4_UA_IEMOCAP["ae+ee+in"]["kfold10"]
    assert gaps.loc["AE", "paper, IEMOCAP 10-fold"] == round(paper.TABLE4_UA_IEMOCAP["ae"]["kfold10"] - best, 2)
    t14 = tables.table14(shown)
    assert len(t14) == 2  # the proposed model and IS10+SVM under 5-fold; IS10+MLP is not shown
    wa = shown.cell("kfold5", "ae+ee+in", "WA")[0]
    assert t14.iloc[0]["ours − paper"] == round(wa - paper.EMODB_WA["kfold5"], 2)
    assert tables.signed(-0.04) == "0.0" and tables.signed(1.26) == "+1.3"


def test_reading_words_each_claim_from_the_numbers(shown):
    text = readings.claims_reading(shown, noise={})
    assert "**AE+EE,IN above IS10+SVM**" in text and "**Does not hold**" in text
    gap = shown.fold_gap("kfold5", "ae+ee+in", "is10+svm")[0]
    assert f"ours {gap:+.1f} UA" in text
    assert "(3 row(s) not run yet)" in text  # AE-OS and AE are two of the five ablation rows
    assert "IS10 beside the deep feature adds**, kfold5: AE − AE-OS" in text
    empty = tables.Shown(shown.corpus, ["kfold5"], ["ae"], {}, {}, n_boot=200)
    assert readings.claims_reading(empty, {}) == "*Not enough finished runs for a reading yet.*"


def test_comparisons_and_agreement(shown):
    t = tables.comparison_table(shown)
    assert len(t) == 3 and t.index.names == ["protocol", "vs"]
    assert "same answer on" in tables.agreement_markdown(shown)
    line = readings.verdict_line("kfold5", {v: shown.runs("kfold5", v) for v in ("ae+ee+in", "is10+svm")})
    assert "**not met**" in line and f"of {N_FOLDS} folds" in line


def test_per_class_table_and_confusions(shown):
    recs = shown.runs("kfold5", "ae-os")
    table, pooled = tables.per_class_table(recs, ("toy", "kfold5"))
    assert list(table.index) == LABELS and ("", "support") in table.columns
    assert table[("", "support")].sum() == N_FOLDS * PER_FOLD
    text = tables.most_confused(pooled, LABELS)
    assert text.startswith("Highest recall here:") and "taken for" in text


def test_figures_of_the_result_chapters(shown):
    fig = figures.fold_spread(shown, "kfold5", paper_wa=92.2)
    assert len(fig.axes) == 2 and figures.fold_spread(shown, "loso-speaker") is None
    assert len(figures.gap_intervals(shown.comparisons, "toy").axes) == 1
    pooled = tables.per_class_table(shown.runs("kfold5", "ae"), ("toy", "kfold5"))[1]
    ref = {"rows": np.eye(3) * 100, "table": 11}
    assert len(figures.confusion_panels(pooled, LABELS, "t", ref).axes) == 3
    assert len(figures.confusion_panels(pooled, LABELS, "t").axes) == 1
    noise = {"kfold5": {"folds": [0, 1], "first": [80.0, 70.0], "again": [81.0, 69.0]}}
    assert len(figures.rerun_scatter(noise, "toy").axes) == 1


def _write_runs(root, dataset, runs):
    """Fold records as ``eesr run`` leaves them: ``runs`` maps a run folder to its records."""
    import json

    for folder, recs in runs.items():
        path = root / dataset / "kfold5" / folder
        path.mkdir(parents=True, exist_ok=True)
        for r in recs:
            (path / f"fold_{r['fold']}.json").write_text(json.dumps(r))


def test_runs_at_a_longer_budget_are_read_whole_beside_the_untagged_baselines(tmp_path, shown):
    from eesr_lib import plan

    tag = plan.BUDGET_TAG
    proposed, ae, svm = (shown.runs("kfold5", v) for v in ("ae+ee+in", "ae", "is10+svm"))
    _write_runs(tmp_path, "toy", {f"ae+ee+in@{tag}": proposed, f"ae@{tag}": ae[:2], "is10+svm": svm, "ae": ae})
    variants = ["ae+ee+in", "ae", "ae+ee", "is10+svm"]
    at = tables.finished_runs(shown.corpus, tmp_path, ["kfold5"], variants, tag=tag)
    assert at.runs("kfold5", "is10+svm") == svm  # the SVM has no budget: read untagged
    assert at.runs("kfold5", "ae") == [] and at.status["kfold5", "ae"] == "2/3 folds"  # not whole: left out
    assert at.status["kfold5", "ae+ee"] == "not run yet" and len(at.runs("kfold5", "ae+ee+in")) == N_FOLDS
    text = readings.budget_claims_reading(at, noise={})
    gap = at.fold_gap("kfold5", "ae+ee+in", "is10+svm")[0]
    assert f"The same claims at {plan.CHOSEN_MULTIPLE}x" in text and f"ours {gap:+.1f} UA" in text
    x = f"{plan.CHOSEN_MULTIPLE}x"
    assert f"Not yet whole at {x}: AE 2/3 folds, AE+EE not run yet." in text and "Each ingredient" not in text
    assert "training-noise band" not in text  # no noise measured: no band claimed
    _write_runs(tmp_path, "toy", {f"ae@{tag}": ae})  # the last fold lands: the ablation is read
    at = tables.finished_runs(shown.corpus, tmp_path, ["kfold5"], variants, tag=tag)
    text = readings.budget_claims_reading(at, noise={"kfold5": {"gap_sd": 1.0}})
    assert "**Each ingredient adds**, kfold5 (ablation minus AE+EE,IN, UA points): AE " in text
    assert "measured at 40 epochs" in text and "AE 2/3" not in text
    nothing = tables.finished_runs(shown.corpus, tmp_path / "none", ["kfold5"], variants, tag=tag)
    assert readings.budget_claims_reading(nothing, {}).startswith(f"No claim can be read at {x} yet")


def test_the_introduction_reads_the_bar_at_the_chosen_budget_only_from_every_fold(tmp_path, shown):
    from eesr_lib import claims, plan
    from eesr_lib.findings import MISSING, curve_numbers

    proposed, svm = shown.runs("kfold5", "ae+ee+in"), shown.runs("kfold5", "is10+svm")
    _write_runs(tmp_path, "emodb", {f"ae+ee+in@{plan.BUDGET_TAG}": proposed[:2], "is10+svm": svm})
    assert curve_numbers(tmp_path)["fused_vs_svm_budget"] == MISSING  # two of three folds: no verdict yet
    _write_runs(tmp_path, "emodb", {f"ae+ee+in@{plan.BUDGET_TAG}": proposed})
    gap = shown.fold_gap("kfold5", "ae+ee+in", "is10+svm")[0]
    text = curve_numbers(tmp_path)["fused_vs_svm_budget"]
    assert text.startswith(f"{tables.signed(gap)} UA points over IS10+SVM on average over the 3 folds")
    assert text.endswith("not met" if gap < claims.BEATS_BASELINE_UA else ": met")


def test_the_introduction_reads_an_ingredient_at_the_chosen_budget_from_whole_pairs_only(tmp_path, shown):
    from dataclasses import replace

    from eesr_lib import claims, plan
    from eesr_lib.findings import MISSING, budget_ingredient_numbers
    from eesr_lib.report import paired_gap

    emodb = replace(shown.corpus, name="emodb")
    tag = plan.BUDGET_TAG
    ae, proposed = shown.runs("kfold5", "ae"), shown.runs("kfold5", "ae+ee+in")
    ee = _records(0.9, seed=7)  # AE+EE well above AE
    _write_runs(tmp_path, "emodb", {f"ae@{tag}": ae, f"ae+ee@{tag}": ee[:2]})
    assert budget_ingredient_numbers(tmp_path, emodb)["ee_in_budget"] == MISSING  # AE+EE not whole yet
    _write_runs(tmp_path, "emodb", {f"ae+ee@{tag}": ee})
    ee_gap = paired_gap(ee, ae)[0]
    text = budget_ingredient_numbers(tmp_path, emodb)["ee_in_budget"]
    # no rerun of the proposed model here: no noise band, so the sign decides
    assert text == f"emotion embedding AE+EE − AE {tables.signed(ee_gap)} UA: {claims.HOLDS}"
    _write_runs(tmp_path, "emodb", {f"ae+ee+in@{tag}": proposed})  # AE+EE,IN − AE+EE now reads instance norm
    text = budget_ingredient_numbers(tmp_path, emodb)["ee_in_budget"]
    in_gap = paired_gap(proposed, ee)[0]
    verdict = claims.HOLDS if in_gap > 0 else claims.DOES_NOT_HOLD
    pair = f"{paper.VARIANT_NAMES['ae+ee+in']} − AE+EE"
    assert text.endswith(f"; instance normalization {pair} {tables.signed(in_gap)} UA: {verdict}")


def test_the_introduction_reads_the_spectrogram_only_pair_at_the_chosen_budget_beside_today(tmp_path, shown):
    from dataclasses import replace

    from eesr_lib import claims, plan
    from eesr_lib.findings import budget_ingredient_numbers
    from eesr_lib.report import paired_gap

    emodb = replace(shown.corpus, name="emodb")
    tag, x = plan.BUDGET_TAG, plan.CHOSEN_MULTIPLE
    os_, both = shown.runs("kfold5", "ae-os"), _records(0.2, seed=9)  # EE and IN together well below AE-OS
    today = {"ae-os": os_, "ae-os+ee+in": both}
    _write_runs(tmp_path, "emodb", today | {f"ae-os+ee+in@{tag}": both, f"ae-os@{tag}": os_[:2]})
    text = budget_ingredient_numbers(tmp_path, emodb)["deep_pair_budget"]
    assert text.startswith(f"its outer folds at {x}x are not all in (AE-OS,+EE,IN 3/3 folds, AE-OS 2/3 folds)")
    _write_runs(tmp_path, "emodb", {f"ae-os@{tag}": os_})  # the pair is whole: its verdict is read
    gap = tables.signed(paired_gap(both, os_)[0])
    expected = f"AE-OS,+EE,IN − AE-OS {gap} UA over its 3 folds: {claims.DOES_NOT_HOLD}"
    assert budget_ingredient_numbers(tmp_path, emodb)["deep_pair_budget"] == f"{expected}, as at today's budget"
    _write_runs(tmp_path, "emodb", {"ae-os+ee+in": _records(0.9, seed=9)})  # at 40 epochs the pair had held
    text = budget_ingredient_numbers(tmp_path, emodb)["deep_pair_budget"]
    assert text == f"{expected}, where at today's budget it was: {claims.HOLDS}"
    assert "spectrogram" not in budget_ingredient_numbers(tmp_path, emodb)["ee_in_budget"]  # its own sentence


def test_chapter_4_reads_the_spectrogram_only_pair_beside_the_single_ingredients(shown):
    records = dict(shown.records) | {("kfold5", "ae-os+ee+in"): _records(0.2, seed=9)}
    status = dict(shown.status) | {("kfold5", "ae-os+ee+in"): f"{N_FOLDS}/{N_FOLDS} folds"}
    both = tables.Shown(shown.corpus, ["kfold5"], [*shown.variants, "ae-os+ee+in"], records, status, n_boot=200)
    gap = both.fold_gap("kfold5", "ae-os+ee+in", "ae-os")[0]
    paper_gap = paper.TABLE4_UA_IEMOCAP["ae-os+ee+in"]["kfold10"] - paper.TABLE4_UA_IEMOCAP["ae-os"]["kfold10"]
    line = f"**{readings.EE_IN_DEEP} adds**, kfold5: AE-OS,+EE,IN − AE-OS = {tables.signed(gap)}"
    assert f"{line} (paper {paper_gap:+.1f})" in readings.claims_reading(both, noise={})
    assert readings.EE_IN_DEEP not in readings.claims_reading(shown, noise={})  # one row of the pair missing


def test_chapters_read_the_budget_claims_only_where_the_budget_runs_are_planned(tmp_path, shown):
    from dataclasses import replace

    from eesr_lib import plan

    assert readings.claims_at_budget(shown.corpus, tmp_path) is None  # the budget list covers EMODB only
    emodb = replace(shown.corpus, name="emodb")
    proposed, svm = shown.runs("kfold5", "ae+ee+in"), shown.runs("kfold5", "is10+svm")
    _write_runs(tmp_path, "emodb", {f"ae+ee+in@{plan.BUDGET_TAG}": proposed, "is10+svm": svm})
    text = readings.claims_at_budget(emodb, tmp_path)
    assert "**AE+EE,IN above IS10+SVM**" in text and "training-noise band" not in text  # no rerun: no band


def test_the_bar_at_the_chosen_budget_waits_for_every_fold(tmp_path, shown):
    from dataclasses import replace

    from eesr_lib import plan

    emodb = replace(shown.corpus, name="emodb")
    proposed, svm = shown.runs("kfold5", "ae+ee+in"), shown.runs("kfold5", "is10+svm")
    assert readings.verdict_at_budget(shown.corpus, tmp_path) is None
    _write_runs(tmp_path, "emodb", {f"ae+ee+in@{plan.BUDGET_TAG}": proposed[:1], "is10+svm": svm})
    assert readings.verdict_at_budget(emodb, tmp_path).endswith("verdict waits for every fold: AE+EE,IN 1/3 folds.")
    _write_runs(tmp_path, "emodb", {f"ae+ee+in@{plan.BUDGET_TAG}": proposed})
    text = readings.verdict_at_budget(emodb, tmp_path)
    gap = shown.fold_gap("kfold5", "ae+ee+in", "is10+svm")[0]
    assert f"**kfold5 at {plan.CHOSEN_MULTIPLE}x** (3 of 3 folds): AE+EE,IN minus IS10+SVM = **{gap:+.1f}**" in text
    assert "95 % interval over speakers" in text and "**not met**" in text  # the toy model is below the SVM
