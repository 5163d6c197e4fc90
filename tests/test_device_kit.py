"""scripts/device_kit.py: what travels to a lent GPU is the corpus itself (losslessly), carries the IS10
vectors computed here under the keys the device will look them up by, and lists only the folds missing
here; what comes back lands without touching a finished fold."""

import importlib.util
import json
import os
import shutil
import subprocess
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


# ------------------------------------------------------------------ a corpus over one call's limit, in parts


@pytest.fixture()
def mini_nemo(data_root, tmp_path) -> Path:
    """Eight real nEMO utterances (two speakers, the four classes) in the shared copy's layout."""
    src = data_root / "nemo"
    lines = (src / "data.tsv").read_text(encoding="utf-8").splitlines(keepends=True)
    keep, seen = [lines[0]], set()
    for line in lines[1:]:
        cols = line.split("\t")
        key = (cols[4].strip(), cols[1])  # speaker, emotion
        if key[0] in ("EB0", "MP0") and key[1] in ("anger", "happiness", "neutral", "sadness") and key not in seen:
            seen.add(key)
            keep.append(line)
    root = tmp_path / "src" / "nemo"
    (root / "samples").mkdir(parents=True)
    (root / "data.tsv").write_text("".join(keep), encoding="utf-8")
    for line in keep[1:]:
        name = Path(line.split("\t")[0]).with_suffix(".flac").name
        shutil.copy(src / "samples" / name, root / "samples" / name)
    return root.parent


def test_a_corpus_in_parts_stages_back_into_the_same_corpus_and_vectors(
    kit_module, mini_nemo, tmp_cache, tmp_path, monkeypatch
):
    groups = kit_module.part_files("nemo", str(mini_nemo))
    sizes = sorted(sum(f.stat().st_size for f, _ in g) for g in groups)
    first, per_call = sizes[-1] + 10, sum(sizes[-3:])  # room for one utterance beside the kit, three alone
    parts = kit_module.pack_parts(tmp_path / ".kit-nemo", "nemo", first, per_call, data_root=str(mini_nemo))
    infos = [json.loads((p / "PART.json").read_text()) for p in parts]
    assert len(parts) >= 3 and [i["part"] for i in infos] == list(range(1, len(parts) + 1))
    assert [i["with_kit"] for i in infos] == [False] * (len(parts) - 1) + [True]  # the last goes with .kit
    for part, info in zip(parts, infos):
        packed = sum(f.stat().st_size for f in part.rglob("*") if f.is_file() and f.name != "PART.json")
        assert packed == info["bytes"] <= (first if info["with_kit"] else per_call)
    assert sum(i["files"] for i in infos) == sum(len(g) for g in groups)

    # the device: each part staged by the script, in a call of its own, then joined to the kit
    stage = tmp_path / "stage"
    for part in parts:
        subprocess.run(
            ["bash", str(ROOT / "scripts" / "device_kit.sh"), "stage", str(part)],
            env={**os.environ, "EESR_STAGE": str(stage)},
            check=True,
            capture_output=True,
        )
    here = load_corpus("nemo", mini_nemo)
    there = load_corpus("nemo", stage / "data")
    assert there.table[["id", "label", "speaker"]].equals(here.table[["id", "label", "speaker"]])
    assert all(Path(a).read_bytes() == Path(b).read_bytes() for a, b in zip(there.paths, here.paths))
    want = features.extract(here.paths, "is10", progress=False)
    monkeypatch.setenv("EESR_CACHE", str(stage / "cache"))
    monkeypatch.setattr(features, "_compute", lambda args: pytest.fail(f"computed {args[0]}"))
    got = features.extract(there.paths, "is10", progress=False)
    assert all(np.array_equal(a, b) for a, b in zip(got, want))

    # whole only once every part's PART.json was staged
    kit = tmp_path / ".kit"
    kit.mkdir()
    (kit / "parts.json").write_text(json.dumps({"nemo": [p.name for p in parts]}))
    shutil.copytree(stage / "staged", kit / "staged")
    assert kit_module.unstaged(kit) == {}
    (kit / "staged" / f"{parts[1].name}.json").unlink()
    assert kit_module.unstaged(kit) == {"nemo": [parts[1].name]}

    calls = kit_module.device_calls(kit, parts)
    assert [carry for carry, _ in calls] == [[p.name] for p in parts[:-1]] + [[".kit", parts[-1].name]]
    assert calls[0][1] == f"bash scripts/device_kit.sh stage {parts[0].name}"
    assert calls[-1][1].startswith(f"bash scripts/device_kit.sh stage {parts[-1].name} && ")
    assert "device_kit.sh runs" in calls[-1][1]


def test_device_skips_the_runs_of_a_corpus_whose_parts_are_not_all_staged(kit_module, tmp_path, capsys):
    kit = tmp_path / "kit"
    kit.mkdir()
    run = {"dataset": "nemo", "protocol": "loso-speaker", "variant": "ae+ee+in", "folds_to_run": [0]}
    (kit / "runs.json").write_text(json.dumps([run]))
    (kit / "parts.json").write_text(json.dumps({"nemo": [".kit-nemo-1", ".kit-nemo-2"]}))
    (kit / "staged").mkdir()
    (kit / "staged" / ".kit-nemo-1.json").write_text("{}")
    out = tmp_path / "out"
    out.mkdir()
    kit_module.main(["--kit", str(kit), "device", "--device", "cpu", "--out", str(out)])
    assert "nemo: .kit-nemo-2 not staged" in capsys.readouterr().out
    with tarfile.open(out / "results.tgz") as tar:
        assert tar.getnames() == []  # nothing was trained


def test_the_gpu_list_of_a_corpus_without_a_budget_list_is_its_network_runs(kit_module, data_root):
    nemo = load_corpus("nemo", data_root)
    runs = kit_module.device_runs(nemo)
    assert [(r.protocol, r.variant) for r in runs] == [
        (p, v) for p, v in plan.runs_for(nemo) if v not in plan.BASELINES
    ] and runs[0].variant == plan.PROPOSED
    assert kit_module.device_runs(load_corpus("emodb", data_root)) == plan.budget_runs(load_corpus("emodb", data_root))
