"""Chapter 8's tables and readings of the evaluation-flaw demonstrations, on the committed results."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from eesr_lib import demonstrations, paper, readings, tables

RESULTS = Path(__file__).resolve().parents[1] / "results"


@pytest.fixture(scope="module")
def flaws() -> dict:
    found = demonstrations.load(RESULTS, "emodb")
    if not found:
        pytest.skip("no committed demonstrations (python scripts/evaluation_flaws.py)")
    return found


def test_every_demonstration_turns_into_its_table_and_reading(flaws):
    a = demonstrations.choice_table(flaws["a"]["results"])
    assert list(a.index) == ["kfold5", "kfold10"] and (a["paper (Table 14)"] == list(paper.EMODB_WA.values())).all()
    gain = a["best seed and epoch per fold"] - a["last epoch (honest)"]
    assert f"adds {gain.min():.1f} to {gain.max():.1f} points" in demonstrations.choice_reading(a)
    b = flaws["b"]["results"]
    assert f"| {b['crop_level_flawed']['wa']:.1f} |" in demonstrations.crop_split_markdown(b)
    c = flaws["c"]["results"]
    assert len(demonstrations.hypotheses_table(c).data) == len(demonstrations.HYPOTHESES)
    assert str(c["table_11"]["wa_check"]["printed_wa"]) in demonstrations.hypotheses_reading(c)
    d = flaws["d"]["results"]
    assert len(demonstrations.fold_kind_table(d)) == len(d)
    assert demonstrations.fold_kind_reading(d).startswith("Random folds move WA by")
    assert len(demonstrations.overview_figure(flaws).axes) == 1
    assert demonstrations.load(RESULTS, "no-such-corpus") == {}


def test_epoch_table_counts_steps_under_each_reading_of_an_epoch():
    lengths = np.array([128, 192, 256])
    table = tables.epoch_table(lengths)
    assert table["crops per epoch"].tolist()[0] == 3 and table["40 epochs = x today"].iloc[0] == 1
    assert table["crops per epoch"].iloc[-1] == 1 + 65 + 129  # hop 1: every start frame
    assert "**65x** today's budget" in readings.epoch_reading(table, lengths)


def test_curves_reading_words_plateau_and_learning():
    summary = pd.DataFrame(
        [
            {"variant": "ae-os", "partial": True, "reached_x": 7.5, "val_UA_1x": 40.0, "val_UA_2x": 45.0}
            | {"val_UA_4x": 50.0, "val_UA_8x": np.nan, "val_UA_16x": np.nan, "last_doubling_gain": 5.0}
            | {"plateau": False, "train_crop_acc_end": 80.0},
            {"variant": "ae", "partial": False, "reached_x": 16.0, "val_UA_1x": 80.0, "val_UA_2x": 81.0}
            | {"val_UA_4x": 81.0, "val_UA_8x": 81.0, "val_UA_16x": 81.2, "last_doubling_gain": 0.2}
            | {"plateau": True, "train_crop_acc_end": 99.0},
        ]
    )
    text = readings.curves_reading(summary).splitlines()
    assert (
        text[0].startswith("- **ae-os** (partial run, 7.5x reached): validation UA 40.0")
        and "**still learning**" in text[0]
    )
    assert "50.0 at 4x" in text[0] and "81.2 at 16x" in text[1] and "**no gain from more steps**" in text[1]


def test_network_choice_table_reads_complete_seeds_at_each_budget(emodb, tmp_path):
    """(a) on the network from made-up test curves: a seed counts once all its folds ran; the chosen
    budget gets its own row; the honest column is the last epoch, the chosen ones the best epochs."""
    import json

    from eesr_lib import plan
    from eesr_lib.protocols import folds

    sizes = [len(test) for _, test in folds(emodb, "kfold5", 0)]

    def write(tag: str, fold_ids, epochs: int, last: float, peak: float):
        folder = tmp_path / "emodb" / "kfold5" / f"{plan.PROPOSED}@{tag}"
        folder.mkdir(parents=True)
        for k in fold_ids:
            hist = [{"epoch": e, "test_wa_not_for_selection": last} for e in range(1, epochs + 1)]
            hist[epochs // 2]["test_wa_not_for_selection"] = peak  # a better epoch midway, seen only on the test fold
            rec = {"fold": k, "history": hist, "metrics": {"n": sizes[k]}}
            (folder / f"fold_{k}.json").write_text(json.dumps(rec))

    assert demonstrations.network_choice_table(emodb, tmp_path).empty
    write("test-curve-s0", range(5), 4, 80.0, 84.0)
    write("test-curve-s1", range(4), 4, 90.0, 95.0)  # a fold short: not a seed yet
    write(plan.BUDGET_TAG, range(5), 6, 82.0, 83.0)
    t = demonstrations.network_choice_table(emodb, tmp_path)
    paper_budget, chosen = t.index
    assert paper_budget == ("kfold5", "40 epochs") and chosen[0] == "kfold5" and chosen[1].startswith("8x")
    assert t.loc[paper_budget, "seeds"] == 1
    assert t.loc[paper_budget, "last epoch (honest)"] == pytest.approx(80.0)
    assert t.loc[paper_budget, "best epoch per fold"] == pytest.approx(84.0)
    assert t.loc[chosen, "last epoch (honest)"] == pytest.approx(82.0)
    assert t.loc[chosen, "best seed and epoch per fold"] == pytest.approx(83.0)
    # a complete seed dealt to other folds (the runner's --seed seeds the folds too) is not compared fold by fold
    write("test-curve-s2", range(5), 4, 90.0, 95.0)

    def dealt_with(**config):  # the config the runner records: its seed, and fold_seed where that differs
        for path in (tmp_path / "emodb" / "kfold5" / f"{plan.PROPOSED}@test-curve-s2").glob("fold_*.json"):
            path.write_text(json.dumps(json.loads(path.read_text()) | {"config": config}))

    dealt_with(seed=2)
    assert demonstrations.network_choice_table(emodb, tmp_path).loc[paper_budget, "seeds"] == 1
    dealt_with(seed=2, fold_seed=0)  # training seed 2 on seed 0's folds counts
    both = demonstrations.network_choice_table(emodb, tmp_path).loc[paper_budget]
    assert both["seeds"] == 2 and both["best seed and epoch per fold"] == pytest.approx(95.0)


def test_network_seed_spread_separates_training_seeds_from_partitions(emodb, tmp_path):
    import json

    from eesr_lib import plan
    from eesr_lib.protocols import folds

    labels = list(emodb.labels)

    def write(tag: str, n_folds: int, seed: int, fold_seed: int, right: int, epochs: int = plan.PAPER_EPOCHS):
        folder = tmp_path / "emodb" / "kfold5" / f"{plan.PROPOSED}@{tag}"
        folder.mkdir(parents=True)
        config = {"seed": seed, "train": {"epochs": epochs}} | ({"fold_seed": fold_seed} if fold_seed != seed else {})
        for k in range(n_folds):  # 10 test utterances a fold, `right` of them classified correctly
            preds = [{"true": labels[0], "pred": labels[0] if i < right else labels[1]} for i in range(10)]
            rec = {"fold": k, "labels": labels, "config": config, "predictions": preds}
            (folder / f"fold_{k}.json").write_text(json.dumps(rec))

    n = len(folds(emodb, "kfold5"))
    empty = demonstrations.network_seed_spread(emodb, tmp_path)
    assert empty.empty and demonstrations.seed_spread_reading(empty).startswith("No test-curve run")
    write("test-curve-s0", n, 0, 0, 8)
    assert demonstrations.seed_spread_reading(demonstrations.network_seed_spread(emodb, tmp_path)).startswith("One")
    write("test-curve-s1", n, 1, 0, 9)  # another training seed, same folds
    write("test-curve-s1-folds1", n, 1, 1, 6)  # another partition
    write("test-curve-s2", n - 1, 2, 0, 10)  # a fold short: left out
    write("test-curve-long", n, 0, 0, 10, epochs=8 * plan.PAPER_EPOCHS)  # another budget: left out
    t = demonstrations.network_seed_spread(emodb, tmp_path)
    assert t["run"].tolist() == [f"{plan.PROPOSED}@test-curve-{s}" for s in ("s0", "s1", "s1-folds1")]
    assert t["fold seed"].tolist() == [0, 0, 1] and t["WA"].tolist() == pytest.approx([80.0, 90.0, 60.0])
    reading = demonstrations.seed_spread_reading(t)
    assert "over 2 training seeds on the same folds its WA spans 80.0 to 90.0" in reading
    assert "over 2 partitions" in reading and "60.0 to 80.0" in reading
