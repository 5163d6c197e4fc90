"""scripts/device_kit.py: what travels to a lent GPU is the corpus itself (losslessly), carries the IS10
vectors computed here under the keys the device will look them up by, and lists only the folds missing
here; what comes back lands without touching a finished fold."""

import importlib.util
import json
import shutil
import tarfile
from pathlib import Path

import numpy as np
import pytest

from eesr_lib import features, plan
from eesr_lib.audio import read_audio
from eesr_lib.corpora import load_corpus
from eesr_lib.errors import EESRError

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def kit_module():
    spec = importlib.util.spec_from_file_location("device_kit", ROOT / "scripts" / "device_kit.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_packed_corpus_gives_the_same_utterances_samples_and_is10_vectors(
    kit_module, data_root, emodb, tmp_cache, tmp_path, monkeypatch
):
    kit = tmp_path / "kit"
    assert kit_module.pack_corpus(kit, "emodb", str(data_root), limit=3) == 3
    flacs = sorted((kit / "data" / "emodb" / "wav").glob("*.flac"))
    assert [f.stem for f in flacs] == list(emodb.table.id[:3])
    packed = load_corpus("emodb", kit / "data")
    assert packed.table[["id", "label", "speaker"]].equals(emodb.table[["id", "label", "speaker"]].iloc[:3])
    for flac, wav in zip(flacs, emodb.paths[:3]):
        assert flac.stat().st_size < Path(wav).stat().st_size
        assert np.array_equal(read_audio(flac), read_audio(wav))  # lossless: the same spectrograms there
    # on the device: the IS10 vectors are found under the FLAC files' keys, never computed (no opensmile)
    monkeypatch.setenv("EESR_CACHE", str(kit / "cache"))
    monkeypatch.setattr(features, "_compute", lambda args: pytest.fail(f"computed {args[0]}"))
    there = features.extract([str(f) for f in flacs], "is10", progress=False)
    monkeypatch.setenv("EESR_CACHE", str(tmp_cache))
    here = features.extract(emodb.paths[:3], "is10", progress=False)
    assert all(np.array_equal(a, b) for a, b in zip(there, here))


def test_emodb_with_an_utterance_both_as_wav_and_flac_is_refused(kit_module, emodb, tmp_path):
    wav_dir = tmp_path / "emodb" / "wav"
    wav_dir.mkdir(parents=True)
    src = Path(emodb.paths[0])
    shutil.copy(src, wav_dir / src.name)
    kit_module.flac_copy(src, wav_dir / (src.stem + ".flac"))
    with pytest.raises(EESRError, match=f"{src.stem} is there twice"):
        load_corpus("emodb", tmp_path)


def test_only_the_folds_missing_here_are_listed(kit_module, data_root, emodb, tmp_path):
    runs = plan.budget_runs(emodb)
    first = runs[0]  # a learning curve: one inner fold
    folder = tmp_path / "emodb" / "kfold5+inner" / first.name
    folder.mkdir(parents=True)
    (folder / "fold_0.json").write_text(json.dumps({"fold": 0}))
    outer = next(r for r in runs if r.tag == plan.BUDGET_TAG and not r.selection)
    folder = tmp_path / "emodb" / "kfold5" / outer.name
    folder.mkdir(parents=True)
    for k in (0, 3):
        (folder / f"fold_{k}.json").write_text(json.dumps({"fold": k}))
    left = kit_module.runs_left("emodb", str(data_root), tmp_path)
    names = [(r["protocol"], r["variant"], r["tag"], r["selection"]) for r in left]
    assert (first.protocol, first.variant, first.tag, True) not in names  # finished: not sent
    listed = left[names.index((outer.protocol, outer.variant, outer.tag, False))]
    assert listed["folds_to_run"] == [1, 2, 4] and listed["overrides"]["epochs"] == plan.CHOSEN_MULTIPLE * 40
    assert len(left) == len(runs) - 1


def test_device_packs_finished_folds_and_land_never_overwrites_one(kit_module, tmp_path):
    kit = tmp_path / "kit"
    run = kit / "results" / "emodb" / "kfold5" / "ae@budget8x"
    run.mkdir(parents=True)
    (kit / "runs.json").write_text("[]")
    (run / "fold_0.json").write_text('{"from": "device"}')
    (run / "fold_0.npz").write_bytes(b"npz")
    (run / "fold_1.json").write_text('{"from": "device"}')
    (run / "fold_2.curve.json").write_text("{}")  # unfinished: stays behind
    out = tmp_path / "out"
    out.mkdir()
    kit_module.main(["--kit", str(kit), "device", "--out", str(out)])
    with tarfile.open(out / "results.tgz") as tar:
        names = sorted(tar.getnames())
    assert names == [f"emodb/kfold5/ae@budget8x/{f}" for f in ("fold_0.json", "fold_0.npz", "fold_1.json")]
    results = tmp_path / "results"
    here = results / "emodb" / "kfold5" / "ae@budget8x"
    here.mkdir(parents=True)
    (here / "fold_1.json").write_text('{"from": "here"}')
    kit_module.main(["land", str(out / "results.tgz"), "--results", str(results)])
    assert json.loads((here / "fold_0.json").read_text()) == {"from": "device"}
    assert json.loads((here / "fold_1.json").read_text()) == {"from": "here"}


def test_device_trains_each_listed_run_fold_by_fold_and_packs_them(kit_module, mini_manifest, tmp_path, monkeypatch):
    """The device's own path, on the CPU: runs.json's folds trained in a worker process (one epoch of the
    35-utterance subset), packed with the fold files the runner writes."""
    monkeypatch.syspath_prepend(str(ROOT / "scripts"))  # the spawned worker imports the script by name
    monkeypatch.setitem(__import__("sys").modules, "device_kit", kit_module)
    kit = tmp_path / "kit"
    kit.mkdir()
    run = {"dataset": str(mini_manifest), "protocol": "kfold5", "variant": "ae+ee+in", "tag": plan.BUDGET_TAG}
    run |= {"overrides": {"epochs": 1}, "selection": False, "folds_to_run": [0, 2], "curve_every": 1}
    run |= {"test_curve": True, "seed": 0}
    (kit / "runs.json").write_text(json.dumps([run]))
    out = tmp_path / "out"
    out.mkdir()
    kit_module.main(["--kit", str(kit), "device", "--device", "cpu", "--parallel", "1", "--out", str(out)])
    folder = f"emodb_mini/kfold5/ae+ee+in@{plan.BUDGET_TAG}"
    with tarfile.open(out / "results.tgz") as tar:
        names = sorted(tar.getnames())
        record = json.loads(tar.extractfile(f"{folder}/fold_2.json").read())
    assert names == [f"{folder}/fold_{k}.{ext}" for k in (0, 2) for ext in ("json", "npz")]
    assert "stacked_with_folds" not in record["provenance"] and record["history"][-1]["epoch"] == 1
    assert record["fold"] == 2
