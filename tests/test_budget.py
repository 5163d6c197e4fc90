"""Learning-curve reading (eesr_lib.budget) on made-up records: the verdicts are functions of results."""

import json

import numpy as np
import pytest

from eesr_lib import budget


def _record(fold, ua_of_epoch, epochs, steps_per_epoch=11, every=10, partial_file=False):
    hist = []
    for e in range(1, epochs + 1):
        h = {
            "epoch": e,
            "steps": steps_per_epoch * e,
            "train_crop_acc": min(100.0, e),
            "loss_ec": 1 / e,
            "loss_ae": 0.1,
        }
        if e % every == 0:
            h["val_ua"] = ua_of_epoch(e)
        hist.append(h)
    return {"fold": fold, "history": hist}


def test_multiples_count_steps_against_todays_budget():
    df = budget.curve_frame([_record(0, lambda e: 50.0, 80)], "ae-os")
    assert df.multiple.iloc[39] == pytest.approx(1.0) and df.multiple.iloc[-1] == pytest.approx(2.0)
    assert df.val_ua.notna().sum() == 8


def test_a_rising_curve_gains_and_a_flat_one_is_a_plateau():
    rising = budget.curve_frame([_record(0, lambda e: 40 + 10 * np.log2(e / 10), 640)], "v")
    g = budget.doubling_gain(rising)
    assert g["reached"] == pytest.approx(16) and g["gain"] > 5 and g["plateau"] is False
    flat = budget.curve_frame([_record(0, lambda e: 60.0 + 0.1 * (e % 20 == 0), 640)], "v")
    assert budget.doubling_gain(flat)["plateau"] is True
    # the score "at 8x" averages the points within a quarter of 8x, not just one noisy point
    window = range(250, 401, 10)  # 6x < multiple <= 10x
    assert budget.ua_at_multiple(rising, 8) == pytest.approx(np.mean([40 + 10 * np.log2(e / 10) for e in window]))


def test_summary_leaves_budgets_not_reached_empty_and_reads_partial_curves(tmp_path):
    folder = tmp_path / "emodb" / "kfold5+inner" / "ae-os@budget"
    folder.mkdir(parents=True)
    (folder / "fold_0.curve.json").write_text(
        json.dumps({**_record(0, lambda e: 50.0 + e / 100, 200), "partial": True})
    )
    (folder / "fold_1.json").write_text(json.dumps(_record(1, lambda e: 55.0, 640)))
    curves = budget.load_curves(tmp_path, "emodb", ["ae-os", "ae-os+ee+in"])
    assert set(curves.variant) == {"ae-os"}  # no run of the other variant yet: no rows, no error
    s = budget.curve_summary(curves).set_index("fold")
    assert bool(s.loc[0, "partial"]) and not bool(s.loc[1, "partial"])
    assert s.loc[0, "reached_x"] == pytest.approx(5.0) and np.isnan(s.loc[0, "val_UA_8x"])
    assert s.loc[1, "val_UA_16x"] == pytest.approx(55.0) and bool(s.loc[1, "plateau"])


def test_the_chosen_budget_is_read_against_every_curve():
    import pandas as pd

    flat_after_4x = budget.curve_frame([_record(0, lambda e: min(60.0, 40 + e / 6), 640)], "a")  # flat from 3x
    rising = budget.curve_frame([_record(0, lambda e: 40 + 10 * np.log2(e / 10), 640)], "b")
    assert (
        budget.doubling_gain(flat_after_4x, at=8)["plateau"]
        and not budget.doubling_gain(flat_after_4x, at=2)["plateau"]
    )
    assert budget.chosen_budget_reading(flat_after_4x, 8) == budget.PLATEAU
    assert budget.chosen_budget_reading(pd.concat([flat_after_4x, rising]), 8) == budget.STILL_LEARNING
    # a curve that stopped short of 8x: it supports 8x only if it had already stopped gaining
    short_flat = budget.curve_frame([_record(0, lambda e: 50.0, 200)], "c")
    short_rising = budget.curve_frame([_record(0, lambda e: 40 + 10 * np.log2(e / 10), 200)], "d")
    assert budget.chosen_budget_reading(short_flat, 8) == budget.PLATEAU
    assert budget.chosen_budget_reading(pd.concat([short_flat, rising]), 8) == budget.STILL_LEARNING
    assert budget.chosen_budget_reading(pd.concat([short_flat, short_rising]), 8) == budget.NOT_REACHED
    assert budget.chosen_budget_reading(pd.concat([short_rising, rising]), 8) == budget.NOT_REACHED
    assert budget.chosen_budget_reading(pd.DataFrame(), 8) == budget.NOT_REACHED


def test_outer_folds_set_each_longer_fold_beside_the_same_fold_at_todays_budget(tmp_path):
    def write(tag, fold, wa, ua, epochs, threads=1):
        folder = tmp_path / "emodb" / "kfold5" / ("ae" + (f"@{tag}" if tag else ""))
        folder.mkdir(parents=True, exist_ok=True)
        hist = [
            {"epoch": e, "steps": 14 * e, "test_ua_not_for_selection": ua - (epochs - e) / 100}
            for e in range(1, epochs + 1)
        ]
        rec = {"fold": fold, "metrics": {"wa": wa, "ua": ua}, "history": hist}
        rec["provenance"] = {"hardware": {"device": "cpu", "torch_threads": threads}, "wall_time_s": 3600.0}
        (folder / f"fold_{fold}.json").write_text(json.dumps(rec))

    for k in range(3):
        write(None, k, 70.0 + k, 60.0 + k, 40)
    write("budget8x", 0, 75.0, 61.0, 320)
    write("budget8x", 2, 70.0, 66.0, 320, threads=2)
    t = budget.outer_folds(tmp_path, "emodb", ["ae", "ae+ee"], "budget8x").set_index("fold")
    assert list(t.index) == [0, 2]  # only the folds the longer run has finished; no error for ae+ee
    assert t.loc[0, "WA change"] == pytest.approx(5.0) and t.loc[0, "UA change"] == pytest.approx(1.0)
    assert t.loc[2, "WA change"] == pytest.approx(-2.0) and t.loc[2, "UA change"] == pytest.approx(4.0)
    assert t.loc[2, "steps"] == 14 * 320
    # the longer run's own test score at epoch 40, read at that fixed epoch: here 66.0 - 280/100
    assert t.loc[2, budget.AT_TODAY] == pytest.approx(63.2) and t.loc[2, "UA gain in run"] == pytest.approx(2.8)
    # fold 2's longer run used two threads: another order of sums, so the two runs part from the first step
    assert bool(t.loc[0, "same arithmetic"]) and not bool(t.loc[2, "same arithmetic"])
    assert t.loc[0, "hours"] == pytest.approx(1.0)


def test_the_outer_fold_reading_checks_that_a_longer_run_passed_through_todays_model():
    import pandas as pd

    from eesr_lib import readings

    row = {"variant": "ae", "fold": 0, "WA today": 70.0, "WA longer": 75.0, "WA change": 5.0}
    row |= {"UA today": 60.0, "UA longer": 61.0, "UA change": 1.0, budget.AT_TODAY: 60.0}
    row |= {"UA gain in run": 1.0, "same arithmetic": True}
    same = readings.outer_budget_reading(pd.DataFrame([row]))
    assert "(1 fold at 8x)" in same and "change WA +5.0, UA +1.0." in same and "mean" not in same
    assert "passed through today's model" in same
    two = readings.outer_budget_reading(pd.DataFrame([row, row | {"fold": 1, "UA change": 3.0, "WA change": 1.0}]))
    assert "(2 folds at 8x)" in two and "mean change WA +3.0, UA +2.0 (fold by fold +1.0 to +3.0)" in two
    moved = readings.outer_budget_reading(pd.DataFrame([row | {budget.AT_TODAY: 58.0, "UA gain in run": 3.0}]))
    assert "In ae fold 0" in moved and "premise fails" in moved
    # other threads or another device: the runs part from the first step; the gain is read within the run
    other = readings.outer_budget_reading(
        pd.DataFrame([row | {budget.AT_TODAY: 58.0, "UA gain in run": 3.0, "same arithmetic": False}])
    )
    assert "premise" not in other and "to its last" in other and ": ae +3.0 (mean +3.0) UA points." in other
    unknown = readings.outer_budget_reading(pd.DataFrame([row | {budget.AT_TODAY: float("nan")}]))
    assert "premise" not in unknown and "passed through" not in unknown and "within the run" not in unknown
    assert "No outer fold has finished" in readings.outer_budget_reading(pd.DataFrame())


def test_outer_test_curves_are_read_at_budgets_fixed_in_advance(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    from eesr_lib import figures

    key = "test_ua_not_for_selection"
    for variant, folds in (("ae", (0, 1)), ("ae+ee", (0,))):
        folder = tmp_path / "emodb" / "kfold5" / f"{variant}@budget8x"
        folder.mkdir(parents=True)
        for k in folds:
            hist = [{"epoch": e, "steps": 14 * e, key: 50.0 + k + e / 10} for e in range(1, 161)]
            hist[-1] = {"epoch": 160, "steps": 14 * 160}  # an epoch without a test score is skipped
            (folder / f"fold_{k}.json").write_text(json.dumps({"fold": k, "history": hist}))
    curves = budget.outer_test_curves(tmp_path, "emodb", ["ae", "ae+ee", "ae-os"], "budget8x")
    assert len(curves) == 3 * 159 and set(curves.variant) == {"ae", "ae+ee"}  # no run of ae-os: no rows
    assert curves.multiple.max() == pytest.approx(159 / 40)
    t = budget.at_budgets(curves, (1, 2, 4), flat={"is10+svm": {0: 60.0, 1: 70.0}}).set_index("variant")
    assert t.loc["is10+svm", "folds"] == "0, 1" and (t.loc["is10+svm", ["1x", "2x", "4x"]] == 65.0).all()
    # after epoch 40: folds 0 and 1 of ae score 54.0 and 55.0; after epoch 160 there is no score
    assert t.loc["ae", "1x"] == pytest.approx(54.5) and t.loc["ae", "folds"] == "0, 1"
    assert t.loc["ae+ee", "2x"] == pytest.approx(58.0) and np.isnan(t.loc["ae", "4x"])
    fig = figures.outer_test_curve_figure(curves, flat={"is10+svm": 65.0})
    # per fold and per variant's mean, the SVM's level and today's marker
    assert len(fig.axes[0].lines) == 2 + 1 + 1 + 1 + 1 + 1


def test_outer_test_curve_figure_smooths_over_epochs_not_points(tmp_path):
    """A batch-norm row scored every 4th epoch is smoothed over the scores within ``smooth`` epochs, as a row
    scored after each is: a spike at epoch 80 reaches the points within 4 epochs of it (smooth=9), not the
    four scored points on either side."""
    import matplotlib

    matplotlib.use("Agg")
    from eesr_lib import figures

    key = "test_ua_not_for_selection"
    folder = tmp_path / "emodb" / "kfold5" / "ae@budget8x"
    folder.mkdir(parents=True)
    hist = [{"epoch": e, "steps": 14 * e} for e in range(1, 161)]
    for h in hist[3::4]:
        h[key] = 90.0 if h["epoch"] == 80 else 50.0
    (folder / "fold_0.json").write_text(json.dumps({"fold": 0, "history": hist}))
    curves = budget.outer_test_curves(tmp_path, "emodb", ["ae"], "budget8x")
    assert list(curves.epoch) == list(range(4, 161, 4))
    assert budget.at_budgets(curves, (1, 2, 4)).set_index("variant").loc["ae", "2x"] == 90.0
    fig = figures.outer_test_curve_figure(curves, smooth=9)
    mean_line = fig.axes[0].lines[1]
    by_epoch = dict(zip(np.round(np.asarray(mean_line.get_xdata()) * 40).astype(int), mean_line.get_ydata()))
    assert by_epoch[76] == by_epoch[80] == by_epoch[84] == pytest.approx(190 / 3)  # (50 + 90 + 50) / 3
    assert by_epoch[72] == by_epoch[88] == 50.0
    assert fig.axes[0].get_legend_handles_labels()[1] == ["ae (fold 0)"]


def test_departures_are_read_against_the_papers_recipe_on_inner_splits_and_chosen_only_when_complete(tmp_path):
    from eesr_lib import plan, readings

    def write(tag, uas):
        folder = tmp_path / "emodb" / "kfold5+inner" / f"ae+ee+in@{tag}"
        folder.mkdir(parents=True, exist_ok=True)
        for k, ua in uas.items():
            (folder / f"fold_{k}.json").write_text(json.dumps({"fold": k, "metrics": {"ua": ua}}))

    empty = budget.departure_table(tmp_path, "emodb")
    assert empty.empty and "No departure has been trained yet" in readings.departures_reading(empty, 5)
    base = {0: 80.0, 1: 70.0, 2: 75.0, 3: 85.0, 4: 78.0}
    write(plan.BUDGET_TAG, base)
    write(f"{plan.BUDGET_TAG}-two-stage", {k: v + 3 + 0.5 * (k % 2) for k, v in base.items()})  # ahead on all 5
    write(f"{plan.BUDGET_TAG}-is10-dropout", {k: v + (1 if k % 2 else -1) for k, v in base.items()})  # level
    write(f"{plan.BUDGET_TAG}-aux", {0: base[0] + 9, 1: base[1] + 11})  # far ahead, but on 2 splits only
    t = budget.departure_table(tmp_path, "emodb").set_index("option")
    assert t.loc[budget.PAPER_RECIPE, "val UA"] == pytest.approx(77.6)
    assert t.loc["two-stage", "gain"] == pytest.approx(3.2) and t.loc["two-stage", "ahead"] == 5
    assert t.loc["two-stage", "p"] < budget.DEPARTURE_P < t.loc["is10-dropout", "p"]
    assert t.loc["aux", "paired splits"] == 2 and t.loc["aux", "gain"] == pytest.approx(10.0)
    table = t.reset_index()
    assert budget.adopted_departure(table, 5) is None  # aux has 2 of 5 splits: no choice yet
    assert "no departure is chosen from part of the evidence" in readings.departures_reading(table, 5)
    write(f"{plan.BUDGET_TAG}-aux", {k: base[k] - 1 for k in (2, 3, 4)})  # aux completes, mixed
    table = budget.departure_table(tmp_path, "emodb")
    assert budget.adopted_departure(table, 5) == "two-stage"
    assert "**two-stage beats the paper's recipe" in readings.departures_reading(table, 5)
    write(f"{plan.BUDGET_TAG}-two-stage", {k: v - 0.5 - 0.2 * k for k, v in base.items()})  # now behind everywhere
    table = budget.departure_table(tmp_path, "emodb")
    assert budget.adopted_departure(table, 5) is None
    assert "**No departure beats the paper's recipe" in readings.departures_reading(table, 5)
