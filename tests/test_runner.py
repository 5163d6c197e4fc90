"""The runner writes complete, atomic, resumable fold results, and never mixes configurations."""

import dataclasses
import json

import numpy as np
import pytest

import eesr_lib.train as train_mod
from eesr_lib import results, runner, variants
from eesr_lib.cli import main
from eesr_lib.errors import EESRError
from eesr_lib.report import format_summary, plateau_ua, summary

FAST = {"batch_size": 14, "precision": "fp32"}


def _run(mini, results_dir, variant="ae+ee+in", **kw):
    kw.setdefault("overrides", FAST)
    return runner.run("emodb_mini", "kfold5", variant, corpus=mini, results_dir=results_dir, progress=False, **kw)


def test_svm_baseline_all_folds_and_skip_on_rerun(mini, tmp_path, monkeypatch):
    res = _run(mini, tmp_path, "is10+svm")
    files = sorted((tmp_path / "emodb_mini" / "kfold5" / "is10+svm").glob("fold_*.json"))
    assert len(res) == 5 and len(files) == 5
    assert sum(r["metrics"]["n"] for r in res) == len(mini)  # each utterance tested once
    assert res[0]["svm_C"] in (1e-3, 1e-2, 1e-1, 1.0)

    def boom(*a, **k):
        raise AssertionError("a finished fold was recomputed")

    monkeypatch.setattr(runner, "_run_fold", boom)
    again = _run(mini, tmp_path, "is10+svm")
    assert [r["metrics"] for r in again] == [r["metrics"] for r in res]
    with pytest.raises(EESRError, match="different configuration"):
        _run(mini, tmp_path, "is10+svm", overrides={**FAST, "lam": 0.5})


def test_ae_fold_result_has_everything(mini, tmp_path):
    (rec,) = _run(mini, tmp_path, folds_to_run=[0], epochs=1)
    out = tmp_path / "emodb_mini" / "kfold5" / "ae+ee+in"
    on_disk = json.loads((out / "fold_0.json").read_text())
    assert on_disk == json.loads(json.dumps(rec))
    for key in ("metrics", "predictions", "history", "config", "provenance", "labels", "fold_name", "n_folds"):
        assert key in on_disk
    m = on_disk["metrics"]
    assert {"wa", "ua", "precision", "recall", "f1", "confusion", "confusion_pct"} <= set(m)
    assert len(on_disk["predictions"]) == m["n"] == 7
    p = on_disk["predictions"][0]
    assert set(p) == {"id", "true", "pred", "scores"} and len(p["scores"]) == 7
    assert on_disk["config"]["train"]["epochs"] == 1 and on_disk["config"]["seed"] == 0
    assert {"git_revision", "versions", "hardware", "wall_time_s"} <= set(on_disk["provenance"])
    assert {"loss_ae", "loss_ec"} <= set(on_disk["history"][0])
    npz = np.load(out / "fold_0.npz")
    assert npz["deep"].dtype == np.float16 and npz["deep"].shape == (7, 512)
    assert npz["emotion_embeddings"].shape == (5, 7, 512)
    assert list(npz["ids"]) == [p["id"] for p in on_disk["predictions"]]
    assert not list(out.glob("*.ckpt.pt")) and not list(out.glob("*.tmp*"))  # checkpoint cleaned up


def test_interrupted_fold_resumes_and_matches_an_uninterrupted_run(mini, tmp_path, monkeypatch):
    (straight,) = _run(mini, tmp_path / "a", folds_to_run=[1], epochs=2)

    real_step, calls = train_mod.train_step, {"n": 0}

    def dying_step(*a, **k):
        calls["n"] += 1
        if calls["n"] == 3:  # 28 training utterances / batch 14 = 2 steps per epoch: dies in epoch 2
            raise KeyboardInterrupt
        return real_step(*a, **k)

    monkeypatch.setattr(train_mod, "train_step", dying_step)
    monkeypatch.setattr(train_mod, "CHECKPOINT_EVERY_S", 0.0)  # a checkpoint after every epoch
    with pytest.raises(KeyboardInterrupt):
        _run(mini, tmp_path / "b", folds_to_run=[1], epochs=2)
    out = tmp_path / "b" / "emodb_mini" / "kfold5" / "ae+ee+in"
    assert not (out / "fold_1.json").exists() and len(list(out.glob("fold_1.*.ckpt.pt"))) == 1

    monkeypatch.setattr(train_mod, "train_step", real_step)
    (resumed,) = _run(mini, tmp_path / "b", folds_to_run=[1], epochs=2)
    assert calls["n"] == 3  # the patched step was not used again
    untimed = [{k: v for k, v in h.items() if k != "seconds"} for h in straight["history"]]
    assert [{k: v for k, v in h.items() if k != "seconds"} for h in resumed["history"]] == untimed
    assert resumed["metrics"] == straight["metrics"]
    # the epoch trained before the interruption counts in the fold's wall time
    assert resumed["provenance"]["resumed_after_epoch"] == 1
    assert resumed["provenance"]["wall_time_s"] >= resumed["history"][0]["seconds"]


def test_report_and_cli(mini_manifest, tmp_path, capsys):
    rc = main(["run", "--dataset", str(mini_manifest), "--variant", "is10+svm", "--results", str(tmp_path)])
    assert rc == 0
    df = summary(tmp_path)
    assert list(df["variant"]) == ["is10+svm"] and df["folds"][0] == "5/5"
    assert "is10+svm" in format_summary(df)
    capsys.readouterr()
    assert main(["report", "--results", str(tmp_path)]) == 0
    assert "is10+svm" in capsys.readouterr().out
    assert main(["run", "--dataset", str(mini_manifest), "--folds", "9", "--results", str(tmp_path)]) == 2
    assert "Fold 9 does not exist" in capsys.readouterr().err
    assert main(["corpus", "--dataset", "nope"]) == 2
    with pytest.raises(SystemExit):
        main(["run", "--variant", "ae+xyz"])


def test_variants_configure_what_they_name():
    m, _ = variants.configs("ae+ee+in", 7)
    assert (m.emotion_embedding, m.norm, m.use_is10) == (True, "instance", True)
    m, _ = variants.configs("ae", 7)
    assert (m.emotion_embedding, m.norm, m.use_is10) == (False, "batch", True)
    m, _ = variants.configs("ae-os", 7, {"norm_without_in": "none"})
    assert (m.emotion_embedding, m.norm, m.use_is10) == (False, "none", False)
    m, t = variants.configs("ae+in", 4, {"lam": 0.3, "pooling": "max"})
    assert (m.n_classes, m.pooling, t.lam) == (4, "max", 0.3)
    with pytest.raises(EESRError, match="Unknown setting"):
        variants.configs("ae", 7, {"lamda": 1})


def test_selection_mode_never_sees_the_outer_test_fold(mini, tmp_path, monkeypatch):
    from eesr_lib.protocols import folds

    seen = {}
    real = runner._run_fold

    def spy(corpus, specs, is10, train_idx, test_idx, *a, **k):
        seen["train"], seen["scored"] = set(train_idx), set(test_idx)
        return real(corpus, specs, is10, train_idx, test_idx, *a, **k)

    monkeypatch.setattr(runner, "_run_fold", spy)
    (rec,) = _run(mini, tmp_path, "is10+svm", folds_to_run=[2], selection=True)
    outer_test = set(folds(mini, "kfold5")[2][1])
    assert not (seen["train"] | seen["scored"]) & outer_test
    assert (tmp_path / "emodb_mini" / "kfold5+inner" / "is10+svm" / "fold_2.json").exists()
    assert rec["config"]["selection"] is True and rec["fold_name"].startswith("validation inside")


def test_selection_run_records_a_validation_curve(mini, tmp_path):
    (rec,) = _run(mini, tmp_path, folds_to_run=[0], epochs=1, selection=True)
    assert 0 <= rec["history"][0]["val_ua"] <= 100
    assert rec["history"][0]["val_ua"] == rec["metrics"]["ua"]  # the last epoch's curve point is the result


def test_plateau_ua_needs_the_whole_window():
    hist = [{"epoch": e, "val_ua": float(e)} for e in range(1, 21)]
    assert plateau_ua(hist) == 18.0  # mean of epochs 16..20
    assert plateau_ua(hist[:19]) is None  # a run that stopped at epoch 19 has no plateau score
    assert plateau_ua([{"epoch": e} for e in range(1, 21)]) is None  # no validation curve


def test_paired_gap_uses_common_folds_only():
    from eesr_lib.report import paired_gap

    rec = lambda k, ua: {"fold": k, "metrics": {"ua": ua}}  # noqa: E731
    a = [rec(0, 80.0), rec(1, 90.0)]
    b = [rec(0, 85.0), rec(1, 88.0), rec(2, 10.0)]  # fold 2 is missing from a: ignored
    assert paired_gap(a, b) == (-1.5, 2)
    assert paired_gap(a, [rec(3, 50.0)]) is None


def test_a_fold_claimed_by_another_process_is_skipped_then_computed_once_free(mini, tmp_path):
    out = tmp_path / "emodb_mini" / "kfold5" / "is10+svm"
    out.mkdir(parents=True)
    with results.fold_claim(out, 2) as mine:
        assert mine
        with results.fold_claim(out, 2) as theirs:  # a second open file = another claimant
            assert not theirs
        assert results.fold_busy(out, 2) and not results.fold_busy(out, 3)
        res = _run(mini, tmp_path, "is10+svm")
        assert sorted(r["fold"] for r in res) == [0, 1, 3, 4]
        assert not (out / "fold_2.json").exists()
    res = _run(mini, tmp_path, "is10+svm")
    assert sorted(r["fold"] for r in res) == [0, 1, 2, 3, 4]
    assert not list(out.glob("*.lock"))  # a finished fold leaves no lock behind


def test_replicate_plan_status_and_ray_run(mini, mini_manifest, tmp_path, capsys):
    from eesr_lib import plan

    runs = plan.runs_for(mini)
    assert ("kfold5", "ae+ee+in") in runs and ("kfold5", "is10+svm") in runs
    assert ("loso-speaker", "ae+ee+in") in runs and "kfold10" not in {p for p, _ in runs}  # 5 a class: no 10-fold
    assert plan.runs_for(type("C", (), {"name": "emodb"})())[0] == ("kfold5", "ae+ee+in")
    assert {v for _, v in plan.REPLICATION["emodb"]} == set(variants.VARIANTS)  # every row of Table 4

    df = plan.status(mini, tmp_path)
    assert (df.done == 0).all() and df.hours_left_est.isna().all()  # nothing to estimate from yet
    _run(mini, tmp_path, folds_to_run=[0], epochs=1)
    with results.fold_claim(tmp_path / "emodb_mini" / "kfold5" / "ae+ee+in", 3):
        row = plan.status(mini, tmp_path).set_index(["protocol", "variant"]).loc[("kfold5", "ae+ee+in")]
    assert row.done == 1 and row.left == "1,2,3,4" and row.running == "3" and row.hours_left_est > 0
    loso = plan.status(mini, tmp_path).set_index(["protocol", "variant"]).loc[("loso-speaker", "ae+ee+in")]
    assert loso.done == 0 and loso.hours_left_est > 0  # estimated from the other run's pace
    other = dataclasses.replace(mini, name="a_corpus_with_no_fold")  # estimated from every corpus's pace
    assert (plan.status(other, tmp_path).query("variant == 'ae+ee+in'").hours_left_est > 0).all()

    args = ["replicate", "--dataset", str(mini_manifest), "--results", str(tmp_path), "--variant", "is10+svm"]
    assert main([*args, "--protocol", "kfold5", "--run", "--cpus-per-fold", "1"]) == 0  # folds as Ray tasks, here
    out = capsys.readouterr().out
    assert "1 of 1 runs finished." in out
    assert len(list((tmp_path / "emodb_mini" / "kfold5" / "is10+svm").glob("fold_*.json"))) == 5
    assert "host " in (tmp_path / "emodb_mini" / "kfold5" / "is10+svm" / "fold_3.log").read_text()  # each fold's log
    assert main([*args, "--run", "--device", "cuda"]) == 2  # a GPU fold must reserve GPU
    assert main(args) == 0
    assert "loso-speaker" in capsys.readouterr().out
    assert not list((tmp_path / "emodb_mini" / "kfold5" / "is10+svm").glob("*.lock"))


def test_git_revision_named_in_the_environment_wins(monkeypatch, tmp_path):
    """A copy of the tree on another machine records the commit it was sent from, not its own .git's."""
    from eesr_lib import provenance

    here = provenance.git_revision()
    assert here not in ("unknown", "abc123")
    monkeypatch.setenv("EESR_GIT_REVISION", "abc123")
    assert provenance.git_revision() == "abc123"
    monkeypatch.delenv("EESR_GIT_REVISION")
    monkeypatch.setattr(provenance, "PROJECT_ROOT", tmp_path)  # no git here
    assert provenance.git_revision() == "unknown"


def test_a_resumed_fold_counts_the_epochs_trained_before_the_interruption(tmp_path):
    import torch

    from eesr_lib.runner import _checkpoint_history, _wall_time

    assert _checkpoint_history(tmp_path / "none.ckpt.pt") == [] and _wall_time(5.0, []) == {"wall_time_s": 5.0}
    ckpt = tmp_path / "fold_0.ckpt.pt"
    torch.save({"history": [{"epoch": 1, "seconds": 30.0}, {"epoch": 2, "seconds": 31.5}]}, ckpt)
    assert _wall_time(10.0, _checkpoint_history(ckpt)) == {"wall_time_s": 71.5, "resumed_after_epoch": 2}
    old = _wall_time(10.0, [{"epoch": 1}])
    assert old["wall_time_s"] == 10.0 and "undercounts" in old["wall_time_note"]


def test_learning_curve_scores_sparsely_counts_steps_and_leaves_a_partial_curve(mini, tmp_path, monkeypatch):
    """A long selection run scores validation every `curve_every` epochs (and after the last), re-estimates
    BN statistics before each score, and leaves fold_<k>.curve.json after every epoch until it finishes."""
    seen_partial, calls = [], []
    real_write, real_recal = results.write_json_atomic, runner.recalibrate_batch_norm

    def spy_write(obj, path):
        if path.name.endswith(".curve.json"):
            seen_partial.append((obj["partial"], len(obj["history"]), obj["fold"]))
        real_write(obj, path)

    def spy_recal(*a, **k):
        calls.append(1)
        return real_recal(*a, **k)

    monkeypatch.setattr(results, "write_json_atomic", spy_write)
    monkeypatch.setattr(runner, "recalibrate_batch_norm", spy_recal)
    (rec,) = _run(mini, tmp_path, "ae-os", folds_to_run=[0], epochs=3, selection=True, curve_every=2)
    hist = rec["history"]
    assert [("val_ua" in h) for h in hist] == [False, True, True]  # epochs 2 and 3 (the last)
    assert seen_partial == [(True, 1, 0), (True, 2, 0), (True, 3, 0)]
    assert len(calls) == 2  # before each of the two scores (train_fold re-estimates once more at the end)
    steps_per_epoch = hist[0]["steps"]
    assert [h["steps"] for h in hist] == [steps_per_epoch * e for e in (1, 2, 3)]
    assert hist[-1]["crops_seen"] == 3 * hist[0]["crops_seen"]
    assert not list((tmp_path / "emodb_mini" / "kfold5+inner" / "ae-os").glob("*.curve.json"))
    with pytest.raises(EESRError, match="curve_every"):
        _run(mini, tmp_path, "ae-os", folds_to_run=[0], epochs=3, selection=True, curve_every=0)


def test_outer_test_curve_is_recorded_but_changes_nothing(mini, tmp_path):
    """The test score of every epoch is kept for the test-fold-selection demonstration; training and the
    final scores are those of the same run without it, and a selection run refuses it."""
    (plain,) = _run(mini, tmp_path / "a", folds_to_run=[1], epochs=2)
    (curve,) = _run(mini, tmp_path / "b", folds_to_run=[1], epochs=2, test_curve=True)
    keys = results.SCORE_KEYS["test"]
    assert all(k in h for h in curve["history"] for k in keys.values())
    assert curve["history"][-1][keys["ua"]] == curve["metrics"]["ua"]  # the last epoch is the fold's score
    assert [p["scores"] for p in curve["predictions"]] == [p["scores"] for p in plain["predictions"]]
    drop = ("seconds", *keys.values())
    assert [{k: v for k, v in h.items() if k not in drop} for h in curve["history"]] == [
        {k: v for k, v in h.items() if k != "seconds"} for h in plain["history"]
    ]
    with pytest.raises(EESRError, match="test_curve"):
        _run(mini, tmp_path, folds_to_run=[1], epochs=1, test_curve=True, selection=True)


def test_batch_norm_rows_score_their_test_curve_every_few_epochs(mini, tmp_path, monkeypatch):
    """Each test score of a BN row first re-estimates its statistics over the training crops, so its test
    curve is scored every TEST_CURVE_EVERY_BN epochs and after the last; that changes neither training nor
    the fold's scores, and the rows without BN keep a score after every epoch."""
    k = len(mini.labels)
    assert runner.epochs_between_test_scores(*variants.configs("ae", k)) == runner.TEST_CURVE_EVERY_BN > 1
    assert runner.epochs_between_test_scores(*variants.configs("ae+ee+in", k)) == 1
    assert runner.epochs_between_test_scores(*variants.configs("ae", k, {"bn_stats": "running"})) == 1
    monkeypatch.setattr(runner, "TEST_CURVE_EVERY_BN", 2)
    (plain,) = _run(mini, tmp_path / "a", "ae", folds_to_run=[1], epochs=3)
    (curve,) = _run(mini, tmp_path / "b", "ae", folds_to_run=[1], epochs=3, test_curve=True)
    key = results.SCORE_KEYS["test"]["ua"]
    assert [h["epoch"] for h in curve["history"] if key in h] == [2, 3]  # every 2nd epoch, and the last
    assert curve["history"][-1][key] == curve["metrics"]["ua"]
    assert [p["scores"] for p in curve["predictions"]] == [p["scores"] for p in plain["predictions"]]
    assert [h["loss_total"] for h in curve["history"]] == [h["loss_total"] for h in plain["history"]]


def test_budget_run_list_curves_on_inner_splits_then_outer_folds(mini, tmp_path):
    from eesr_lib import plan

    runs = plan.budget_runs(type("C", (), {"name": "emodb"})())
    curves = [r for r in runs if r.tag == "budget"]
    assert [r.variant for r in curves] == ["ae-os+ee+in", "ae-os", "ae+ee+in"] and all(r.selection for r in curves)
    assert {r.epochs for r in curves} == {plan.CURVE_MULTIPLE * plan.PAPER_EPOCHS}
    selection = [r for r in runs if r.selection]
    assert {r.tag for r in selection} >= {f"budget{plan.CHOSEN_MULTIPLE}x-{d}" for d in plan.DEPARTURES}
    outer = [r for r in runs if not r.selection]
    assert all(r.test_curve for r in outer)  # every outer run records its test curve, none chooses on it
    assert runs.index(curves[-1]) < runs.index(outer[0])  # the budget is chosen on the curves first
    assert [r.variant for r in outer[:5]] == ["ae+ee+in", "ae", "ae+ee", "ae-os", "ae-os+ee+in"]
    assert plan.budget_runs(mini) == []
    # status of any run list: a selection run's folds live under <protocol>+inner/<variant>@<tag>
    run = plan.Run("kfold5", "is10+svm", "t", selection=True, folds=(1, 2))
    runner.run(
        "emodb_mini", "kfold5", "is10+svm", corpus=mini, results_dir=tmp_path, progress=False, **run.run_kwargs()
    )
    (row,) = plan.status(mini, tmp_path, runs=[run]).itertuples()
    assert (row.protocol, row.variant, row.done, row.folds, row.left) == ("kfold5+inner", "is10+svm@t", 2, 2, "-")


def test_fold_seed_deals_the_folds_apart_from_the_training_seed(mini, tmp_path):
    from eesr_lib import plan

    def test_sets(**kw):
        _, jobs = runner.plan_experiment("emodb_mini", "kfold5", "is10+svm", corpus=mini, results_dir=tmp_path, **kw)
        return [job.test_idx.tolist() for job in jobs], jobs[0].config

    base, base_cfg = test_sets(seed=0)
    seed1, seed1_cfg = test_sets(seed=1)
    fixed, fixed_cfg = test_sets(seed=1, fold_seed=0)
    assert seed1 != base and fixed == base  # --seed alone deals other folds; a fixed fold seed keeps them
    assert "fold_seed" not in base_cfg and "fold_seed" not in seed1_cfg  # records as before the option existed
    assert (fixed_cfg["seed"], fixed_cfg["fold_seed"]) == (1, 0)
    assert [variants.fold_seed_of(c) for c in (base_cfg, seed1_cfg, fixed_cfg, {})] == [0, 1, 0, 0]
    _, same_cfg = test_sets(seed=1, fold_seed=1)
    assert same_cfg == seed1_cfg and variants.config_hash(same_cfg) == variants.config_hash(seed1_cfg)
    # a run folder computed on fold seed 1 is not reused (nor called a file to migrate) for fold seed 0
    _run(mini, tmp_path, "is10+svm", folds_to_run=[0], seed=1)
    with pytest.raises(EESRError, match="different configuration"):
        _run(mini, tmp_path, "is10+svm", folds_to_run=[0], seed=1, fold_seed=0)
    # the plan's runs deal by their fold seed, and every test-curve seed is on the folds of seed 0
    run = plan.Run("kfold5", "is10+svm", seed=1, fold_seed=0)
    assert [te.tolist() for _, te in run.splits(mini)] == base
    curves = [r for r in plan.budget_runs(type("C", (), {"name": "emodb"})()) if r.tag.startswith("test-curve")]
    assert {r.seed for r in curves} == {0, 1, 2} and {r.deal_seed for r in curves} == {0}


def test_a_restarted_curve_does_not_replace_a_longer_committed_one(tmp_path):
    path = tmp_path / "fold_0.curve.json"
    long = [{"epoch": e} for e in range(1, 271)]
    assert results.write_partial_curve(path, {"fold": 0}, long)
    assert not results.write_partial_curve(path, {"fold": 0}, long[:1])  # a fresh restart at epoch 1
    assert len(json.loads(path.read_text())["history"]) == 270
    assert results.write_partial_curve(path, {"fold": 0}, long + [{"epoch": 271}])  # passes it: replaced
    assert json.loads(path.read_text())["history"][-1]["epoch"] == 271


def test_stacked_folds_write_what_folds_one_at_a_time_write(mini, tmp_path):
    """`stack_folds` on a CPU (the folds' steps in turn, eesr_lib.batched): the same files and, dropout
    included, the same numbers as folds one at a time; the records say they were stacked."""
    kw = {"folds_to_run": [0, 1, 3], "epochs": 2, "test_curve": True}
    alone = _run(mini, tmp_path / "alone", **kw)
    stacked = _run(mini, tmp_path / "stacked", stack_folds=2, **kw)
    assert [r["fold"] for r in stacked] == [0, 1, 3]
    extra = {"seconds", "batched_folds", "vectorized"}
    for a, b in zip(alone, stacked):
        assert a["predictions"] == b["predictions"] and a["metrics"] == b["metrics"]
        assert [{k: v for k, v in h.items() if k not in extra} for h in b["history"]] == [
            {k: v for k, v in h.items() if k != "seconds"} for h in a["history"]
        ]
        assert "test_ua_not_for_selection" in b["history"][-1]
    assert stacked[0]["provenance"]["stacked_with_folds"] == [0, 1]
    assert "stacked_with_folds" not in stacked[2]["provenance"]  # the group's last fold was alone
    out = tmp_path / "stacked" / "emodb_mini" / "kfold5" / "ae+ee+in"
    assert sorted(p.name for p in out.glob("fold_*.json")) == ["fold_0.json", "fold_1.json", "fold_3.json"]
    assert (out / "fold_1.npz").exists() and not list(out.glob("*.ckpt.pt")) and not list(out.glob("*.lock"))
    again = _run(mini, tmp_path / "stacked", stack_folds=2, **kw)  # finished folds are read, not recomputed
    assert [r["metrics"] for r in again] == [r["metrics"] for r in stacked]
