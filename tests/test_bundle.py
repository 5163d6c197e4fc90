"""Model bundles: eesr train / run --keep-weights write them, loading runs no code and refuses
broken files, eesr predict scores any audio, eesr export --onnx matches PyTorch."""

import json
import os
import pickle
import shutil

import numpy as np
import pytest
import soundfile as sf
import torch

from eesr_lib import runner
from eesr_lib.bundle import CONFIG_FILE, WEIGHTS_FILE, is10_statistics, load_bundle
from eesr_lib.cli import main
from eesr_lib.errors import EESRError
from eesr_lib.features import corpus_features
from eesr_lib.train import standardize_is10

FAST = {"batch_size": 14, "precision": "fp32", "crop_frames": 32}  # 32-frame crops: 4x faster


@pytest.fixture(scope="session")
def bundle_dir(mini_manifest, tmp_path_factory):
    """``eesr train`` on the 35-utterance corpus, one epoch: a real (if untrained) bundle."""
    out = tmp_path_factory.mktemp("bundle") / "mini.bundle"
    argv = ["train", "--dataset", str(mini_manifest), "--variant", "ae+ee+in", "--epochs", "1"]
    assert main(argv + ["--batch-size", "14", "--fp32", "--set", "crop_frames=32", "--out", str(out)]) == 0
    return out


@pytest.fixture()
def no_unpickling(monkeypatch):
    """Fail the test if anything tries to unpickle."""

    def refuse(*a, **k):
        raise AssertionError("a bundle was loaded through pickle")

    for mod, name in ((torch, "load"), (pickle, "load"), (pickle, "loads")):
        monkeypatch.setattr(mod, name, refuse)


def test_train_writes_a_bundle_without_decoder(bundle_dir, mini, no_unpickling):
    from safetensors import safe_open

    meta = json.loads((bundle_dir / CONFIG_FILE).read_text())
    assert meta["labels"] == list(mini.labels) and meta["model"]["n_classes"] == 7
    assert meta["train"]["epochs"] == 1 and meta["training"]["utterances"] == 35
    assert {"git_revision", "versions", "hardware"} <= set(meta["provenance"])
    with safe_open(str(bundle_dir / WEIGHTS_FILE), "pt") as f:
        keys = list(f.keys())
    assert not [k for k in keys if k.startswith("decoder.")] and any(k.startswith("encoder.") for k in keys)
    bundle = load_bundle(bundle_dir)
    assert not bundle.network.training and bundle.labels == mini.labels
    # the stored standardization is the one training used
    _specs, is10 = corpus_features(mini, progress=False)
    mean, std = is10_statistics(is10)
    np.testing.assert_array_equal(bundle.is10_mean, mean)
    np.testing.assert_allclose((is10 - bundle.is10_mean) / bundle.is10_std, standardize_is10(is10)[0], atol=1e-6)


def test_bf16_weights_halve_the_bundle(bundle_dir, mini, tmp_path):
    from eesr_lib.bundle import save_bundle

    fp32 = load_bundle(bundle_dir)
    _specs, is10 = corpus_features(mini, progress=False)
    out = save_bundle(tmp_path / "half.bundle", fp32.network, fp32.labels, fp32.train_cfg, is10, weights_dtype="bf16")
    size = (out / WEIGHTS_FILE).stat().st_size
    assert size < 0.55 * (bundle_dir / WEIGHTS_FILE).stat().st_size
    half = load_bundle(out)
    np.testing.assert_array_equal(half.is10_std, fp32.is10_std)  # the standardization stays fp32
    path = mini.paths[0]
    np.testing.assert_allclose(half.predict_file(path)[0], fp32.predict_file(path)[0], atol=2e-2)


def _variant_of(bundle_dir, tmp_path, edit=None, weights=None):
    """A copy of the bundle with its JSON edited and/or other weights (the real ones linked)."""
    out = tmp_path / "edited.bundle"
    out.mkdir(parents=True)
    meta = json.loads((bundle_dir / CONFIG_FILE).read_text())
    if edit:
        edit(meta)
    (out / CONFIG_FILE).write_text(json.dumps(meta))
    if weights is None:
        os.symlink(bundle_dir / WEIGHTS_FILE, out / WEIGHTS_FILE)
    else:
        (out / WEIGHTS_FILE).write_bytes(weights)
    return out


def test_loading_refuses_pickles_truncation_and_configs_that_do_not_fit(bundle_dir, tmp_path, no_unpickling):
    real = (bundle_dir / WEIGHTS_FILE).read_bytes()
    pickled = tmp_path / "payload.pt"
    with open(pickled, "wb") as f:  # what torch.save writes (a zip of pickles), without calling torch.save
        f.write(b"PK\x03\x04" + pickle.dumps({"encoder.conv2.weight": [0.0]}))
    cases = [
        ({"weights": pickled.read_bytes()}, "pickle"),
        ({"weights": pickle.dumps({"x": 1}, protocol=4)}, "pickle"),
        ({"weights": real[: len(real) // 2]}, "truncated"),
        ({"edit": lambda m: m.update(labels=m["labels"][:-1])}, "n_classes=7 but 6 labels"),
        ({"edit": lambda m: m.update(labels=["a", "a", "b", "c", "d", "e", "f"])}, "distinct class names"),
        ({"edit": lambda m: (m.update(labels=m["labels"][:-1]), m["model"].update(n_classes=6))}, "has shape"),
        ({"edit": lambda m: m["model"].update(heads=2)}, r"unknown model setting\(s\) \['heads'\]"),
        ({"edit": lambda m: m["model"].update(norm="group")}, "norm must be one of"),
        ({"edit": lambda m: m["weights"].update(file="../x.safetensors")}, "inside the bundle"),
    ]
    for i, (kw, message) in enumerate(cases):
        folder = _variant_of(bundle_dir, tmp_path / str(i), **kw)
        with pytest.raises(EESRError, match=message) as err:
            load_bundle(folder)
        assert str(folder) in str(err.value), str(err.value)  # names the file at fault
    with pytest.raises(EESRError, match="Not a model bundle"):
        load_bundle(tmp_path)


def test_run_keep_weights_bundle_reproduces_the_fold_scores(mini, tmp_path):
    with pytest.raises(EESRError, match="is10\\+svm"):
        runner.run("emodb_mini", "kfold5", "is10+svm", corpus=mini, results_dir=tmp_path, keep_weights=True)
    (rec,) = runner.run(
        "emodb_mini", "kfold5", "ae+ee+in", corpus=mini, results_dir=tmp_path, folds_to_run=[0], epochs=1,
        overrides=FAST, progress=False, keep_weights=True,
    )  # fmt: skip
    folder = tmp_path / "emodb_mini" / "kfold5" / "ae+ee+in" / "fold_0.bundle"
    assert rec["bundle"] == folder.name and json.loads((folder / CONFIG_FILE).read_text())["training"]["fold"] == 0
    bundle = load_bundle(folder)
    path_of = dict(zip(mini.table["id"], mini.table["path"]))
    for p in rec["predictions"]:  # from the audio files, through the bundle: the fold's own scores
        probs = bundle.predict_file(path_of[p["id"]])[0]
        np.testing.assert_allclose(probs, p["scores"], atol=1e-5)


@pytest.fixture(scope="session")
def odd_audio(emodb, tmp_path_factory):
    """A folder with a wav, a stereo 44.1 kHz wav, a flac and a text file named .wav."""
    import librosa

    folder = tmp_path_factory.mktemp("odd") / "my recordings"
    (folder / "sub").mkdir(parents=True)
    paths = emodb.paths
    shutil.copy(paths[0], folder / "plain.wav")
    wav, sr = sf.read(paths[1], dtype="float32")
    stereo = librosa.resample(wav, orig_sr=sr, target_sr=44_100)
    sf.write(folder / "sub" / "stereo 44k.wav", np.stack([stereo, 0.5 * stereo], axis=1), 44_100)
    sf.write(folder / "sub" / "take.flac", sf.read(paths[2], dtype="float32")[0], sr, format="FLAC")
    (folder / "notes.wav").write_text("not audio, despite the name\n")
    return folder


def _skipped(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("eesr: skipped")]


def test_predict_folder_skips_the_bad_file_and_predicts_the_rest(bundle_dir, odd_audio, capsys):
    assert main(["predict", "--model", str(bundle_dir), str(odd_audio), "--json"]) == 0
    out, err = capsys.readouterr()
    preds = json.loads(out)["predictions"]
    assert sorted(os.path.basename(p["id"]) for p in preds) == ["plain.wav", "stereo 44k.wav", "take.flac"]
    for p in preds:
        assert abs(sum(p["probabilities"].values()) - 1) < 1e-3 and p["prediction"] in p["probabilities"]
    (line,) = _skipped(err)
    assert "notes.wav" in line

    bad = odd_audio.parent / "only bad"
    bad.mkdir()
    shutil.copy(odd_audio / "notes.wav", bad / "notes.wav")
    assert main(["predict", "--model", str(bundle_dir), str(bad)]) != 0
    _out, err = capsys.readouterr()
    assert len(_skipped(err)) == 1 and "nothing could be predicted" in err


def test_predict_timeline_csv_table_manifest_and_short_files(bundle_dir, odd_audio, tmp_path, capsys):
    flac = odd_audio / "sub" / "take.flac"
    assert main(["predict", "--model", str(bundle_dir), str(flac), "--csv", "--timeline"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split(",")[:5] == ["id", "path", "start_s", "end_s", "prediction"]
    starts = [float(row.split(",")[2]) for row in lines[1:]]
    assert starts[0] == 0 and len(starts) >= 2 and np.allclose(np.diff(starts[:-1]), 0.8)  # hop 64 frames

    wav, sr = sf.read(odd_audio / "plain.wav", dtype="float32")
    sf.write(tmp_path / "short.wav", wav[: sr // 2], sr)  # 0.5 s: under one 1.6 s window, padded
    sf.write(tmp_path / "tiny.wav", wav[:400], sr)  # 25 ms: under one analysis window
    (tmp_path / "empty.wav").write_bytes(b"")
    (tmp_path / "list.csv").write_text("path,id\nshort.wav,s\ntiny.wav,t\nempty.wav,e\nnowhere.wav,n\n")
    assert main(["predict", "--model", str(bundle_dir), str(tmp_path / "list.csv")]) == 0
    out, err = capsys.readouterr()
    table = out.splitlines()
    assert table[0].split()[:3] == ["file", "prediction", "anger"] and [r.split()[0] for r in table[1:]] == ["s", "t"]
    skipped = _skipped(err)
    assert len(skipped) == 2 and "empty.wav" in skipped[0] and "nowhere.wav" in skipped[1]
    assert "tiny.wav" in err and "padded" in err  # a note, not a failure


def test_export_onnx_matches_pytorch(bundle_dir, emodb, tmp_path):
    import onnxruntime as ort

    from eesr_lib.audio import read_audio
    from eesr_lib.crops import windows
    from eesr_lib.features import is10_functionals, log_magnitude_spectrogram

    out = tmp_path / "model.onnx"
    assert main(["export", "--onnx", str(bundle_dir), "--out", str(out)]) == 0
    bundle = load_bundle(bundle_dir)
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    meta = session.get_modelmeta().custom_metadata_map
    assert json.loads(meta["eesr_labels"]) == list(bundle.labels)
    wav = read_audio(emodb.paths[3])
    crops = windows(log_magnitude_spectrogram(wav), 32, 64)  # (W, 513, 32): a batch size never exported
    raw = np.repeat(is10_functionals(wav)[None], len(crops), axis=0)
    got = session.run(["probabilities"], {"spectrogram": crops, "is10": raw})[0]
    with torch.no_grad():
        std = torch.from_numpy((raw - bundle.is10_mean) / bundle.is10_std)
        want = bundle.network(torch.from_numpy(crops), std).softmax(1).numpy()
    assert got.shape == (len(crops), 7) and np.abs(got - want).max() < 1e-3
    np.testing.assert_allclose(got.mean(0), bundle.predict_file(emodb.paths[3])[0], atol=1e-3)
