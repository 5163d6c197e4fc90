"""The results folder: config hashes stay what they were, old files are migrated once and otherwise
refused loudly, and the committed results are complete."""

import importlib.util
import json
import re
import shutil
from pathlib import Path

import pytest

from eesr_lib import plan, results, runner, variants
from eesr_lib.errors import EESRError

ROOT = Path(__file__).resolve().parents[1]
EMODB_LABELS = ["anger", "boredom", "disgust", "fear", "happiness", "neutral", "sadness"]
# config_hash of committed configs, computed before the migration and the move of config_hash to
# eesr_lib.variants (from each config completed as the runner's old compatibility table completed it):
# the name of the checkpoint a rerun of that run writes.
PINNED = {
    "emodb/kfold5/ae+ee+in/fold_0.json": "3c0ff550b6",
    "emodb/kfold5+inner/ae+ee+in@lam0.1/fold_0.json": "4c53793f67",
    "emodb/loso-speaker/ae-os/fold_3.json": "7ee8293767",
    "emodb/kfold5+inner/is10+mlp@mlp-cosine/fold_2.json": "1281dedb4c",
    "ravdess/speaker-kfold4/is10+svm/fold_1.json": "e93622be4a",
}
# The learning-curve runs' checkpoints, named before the change (fold_0.<hash>.ckpt.pt of the runs in progress).
BUDGET_CURVES = {"ae-os+ee+in": "2dce79a48d", "ae-os": "fddc96b574", "ae+ee+in": "2e57445890"}


def _migration():
    spec = importlib.util.spec_from_file_location("migrate_results", ROOT / "scripts" / "migrate_results.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("path", sorted(PINNED))
def test_committed_configs_keep_their_hash(path):
    config = json.loads((ROOT / "results" / path).read_text())["config"]
    assert variants.config_hash(config) == PINNED[path]


def test_the_budget_curves_config_names_the_checkpoints_they_resume():
    for run in plan.budget_runs(type("C", (), {"name": "emodb"})())[:3]:
        model_cfg, train_cfg = variants.configs(run.variant, len(EMODB_LABELS), dict(run.overrides))
        config = variants.config_record(
            "emodb", EMODB_LABELS, run.protocol, run.variant, run.tag, run.seed, model_cfg, train_cfg, run.selection
        )
        assert variants.config_hash(config) == BUDGET_CURVES[run.variant]


def test_committed_results_are_complete_and_built_as_today():
    """Nothing left to migrate (outside folders a run holds), and every untagged run's config is the one the
    code builds for it today: a rerun reuses its folds and names its checkpoints as before."""
    assert _migration().migrate(ROOT / "results", dry_run=True)["migrated"] == []
    checked = 0
    for rec in results.load_folds(ROOT / "results"):
        c = rec["config"]
        if c["tag"] is None:
            model_cfg, train_cfg = variants.configs(c["variant"], len(c["labels"]))
            built = variants.config_record(
                c["dataset"], c["labels"], c["protocol"], c["variant"], None, c["seed"], model_cfg, train_cfg, False
            )
            assert c == built, rec["fold"]
            checked += 1
    assert checked > 100


def test_migration_completes_old_files_once_and_skips_locked_folders(tmp_path):
    migration = _migration()
    src = ROOT / "results" / "emodb" / "kfold5" / "ae+ee+in" / "fold_0.json"
    old, locked = tmp_path / "emodb" / "kfold5" / "ae+ee+in", tmp_path / "emodb" / "kfold5+inner" / "ae@budget"
    for folder in (old, locked):
        folder.mkdir(parents=True)
        rec = json.loads(src.read_text())
        for part, names in migration.ADDED_LATER.items():
            rec["config"][part] = {k: v for k, v in rec["config"][part].items() if k not in names}
        (folder / "fold_0.json").write_text(json.dumps(rec, indent=1))
    (locked / "fold_1.lock").write_text("123\n")
    before = (locked / "fold_0.json").read_text()

    done = migration.migrate(tmp_path)
    assert [p for p, _ in done["migrated"]] == [old / "fold_0.json"]
    assert done["skipped"] == [(locked, [locked / "fold_1.lock"])]
    assert (old / "fold_0.json").read_text() == src.read_text()  # exactly what the committed file became
    assert (locked / "fold_0.json").read_text() == before
    again = migration.migrate(tmp_path)
    assert again["migrated"] == [] and again["complete"] == [old / "fold_0.json"]


def test_a_finished_fold_written_before_a_setting_existed_is_refused_not_guessed(mini, tmp_path):
    (rec,) = runner.run("emodb_mini", "kfold5", "is10+svm", corpus=mini, results_dir=tmp_path, folds_to_run=[0])
    path = results.fold_json(results.run_dir(tmp_path, "emodb_mini", "kfold5", "is10+svm"), 0)
    assert results.read_fold(path, rec["config"]) == rec
    old = json.loads(json.dumps(rec))
    del old["config"]["train"]["aux_loss"]
    path.write_text(json.dumps(old))
    with pytest.raises(EESRError, match=rf"{re.escape(str(path))}.*train\.aux_loss.*migrate_results"):
        runner.run("emodb_mini", "kfold5", "is10+svm", corpus=mini, results_dir=tmp_path, folds_to_run=[0])
    path.write_text(json.dumps(rec))
    changed = {**rec["config"], "train": {**rec["config"]["train"], "lam": 0.5}}
    with pytest.raises(EESRError, match="different configuration"):
        results.read_fold(path, changed)
    ignored = {**rec["config"], "train": {**rec["config"]["train"], "eval_batch_size": 8}}
    assert results.read_fold(path, ignored) == rec  # the eval batch size does not change the numbers


def test_fold_records_read_finished_folds_and_partial_curves(tmp_path):
    folder = results.run_dir(tmp_path, "x", "kfold5", "ae", "t", selection=True)
    assert folder == tmp_path / "x" / "kfold5+inner" / "ae@t"
    folder.mkdir(parents=True)
    results.write_json_atomic({"fold": 10, "history": [1, 2]}, results.fold_json(folder, 10))
    results.write_partial_curve(results.fold_curve(folder, 2), {"fold": 2}, [{"epoch": 1}])
    results.write_partial_curve(results.fold_curve(folder, 10), {"fold": 10}, [{"epoch": 1}])  # finished since
    assert list(results.fold_records(folder)) == [10]
    both = results.fold_records(folder, partial=True)
    assert list(both) == [2, 10] and both[2]["partial"] and not both[10]["partial"]
    assert [r["fold"] for r in results.load_folds(tmp_path, "x", "kfold5+inner", "ae@t")] == [10]
    shutil.rmtree(folder)
    assert results.fold_records(folder, partial=True) == {}
