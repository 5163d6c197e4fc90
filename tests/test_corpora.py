"""Corpus tables from the real EMODB and RAVDESS, the data-root rules, and manifest CSVs."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from eesr_lib.corpora import (
    EMODB_LABELS,
    PROJECT_ROOT,
    RAVDESS_LABELS,
    corpus_dir,
    load_corpus,
    load_emodb,
    load_manifest,
    resolve_data_root,
)
from eesr_lib.errors import EESRError

EMODB_COUNTS = {
    "anger": 127,
    "boredom": 81,
    "disgust": 46,
    "fear": 69,
    "happiness": 71,
    "sadness": 62,
    "neutral": 79,
}


# ------------------------------------------------------------------ real corpora


def test_emodb_counts(emodb):
    assert len(emodb) == 535
    assert emodb.labels == EMODB_LABELS
    assert emodb.table["label"].value_counts().to_dict() == EMODB_COUNTS
    assert sorted(emodb.table["speaker"].unique()) == ["03", "08", "09", "10", "11", "12", "13", "14", "15", "16"]
    assert (emodb.table["speaker"] == emodb.table["id"].str[:2]).all()
    assert emodb.table["id"].is_unique
    # y follows the label order
    y = emodb.y
    assert y.dtype == np.int64 and y.min() == 0 and y.max() == len(EMODB_LABELS) - 1
    assert [EMODB_LABELS[i] for i in y[:5]] == emodb.table["label"].tolist()[:5]
    assert emodb.summary().loc["total", "total"] == 535


def test_ravdess_counts(data_root):
    corpus = load_corpus("ravdess", data_root)
    assert len(corpus) == 1440
    assert corpus.labels == RAVDESS_LABELS and len(RAVDESS_LABELS) == 8
    assert corpus.table["speaker"].nunique() == 24
    counts = corpus.table["label"].value_counts().to_dict()
    assert counts == {lab: (96 if lab == "neutral" else 192) for lab in RAVDESS_LABELS}
    assert (corpus.table["speaker"] == corpus.table["id"].str[-2:]).all()
    assert (corpus.table["intensity"][corpus.table["label"] == "neutral"] == "normal").all()


# ------------------------------------------------------------------ data root


def test_resolve_data_root_precedence(tmp_path, monkeypatch):
    arg, env = tmp_path / "arg", tmp_path / "env"
    monkeypatch.setenv("EESR_DATA", str(env))
    assert resolve_data_root(arg) == arg
    assert resolve_data_root(str(arg)) == arg
    assert resolve_data_root() == env
    monkeypatch.delenv("EESR_DATA")
    assert resolve_data_root() == PROJECT_ROOT / "data"


def test_missing_root_names_path(tmp_path):
    missing = tmp_path / "no_such_root"
    with pytest.raises(EESRError, match="EESR_DATA") as err:
        load_corpus("emodb", missing)
    assert str(missing) in str(err.value)


def test_unknown_dataset():
    with pytest.raises(EESRError, match="Unknown dataset"):
        load_corpus("tess")


def test_corpus_dir_accepts_corpus_folder_itself(data_root):
    assert corpus_dir("emodb", data_root) == data_root / "emodb"
    assert corpus_dir("emodb", data_root / "emodb") == data_root / "emodb"


def _emodb_copy(data_root: Path, folder: Path, names: dict[str, str]) -> Path:
    """A tiny EMODB folder: ``{source name: name in the copy}``, symlinked."""
    (folder / "wav").mkdir(parents=True)
    for src, dst in names.items():
        os.symlink(data_root / "emodb" / "wav" / src, folder / "wav" / dst)
    return folder


def test_unknown_emodb_code_names_file(data_root, tmp_path):
    root = _emodb_copy(data_root, tmp_path / "emodb", {"03a01Fa.wav": "03a01Fa.wav", "03a01Wa.wav": "03a01Xa.wav"})
    with pytest.raises(EESRError, match="'X'") as err:
        load_emodb(root)
    assert "03a01Xa.wav" in str(err.value)


def test_bad_emodb_name_names_file(data_root, tmp_path):
    root = _emodb_copy(data_root, tmp_path / "emodb", {"03a01Fa.wav": "recording.wav"})
    with pytest.raises(EESRError, match="recording.wav"):
        load_emodb(root)


def test_emodb_without_wav_folder(tmp_path):
    with pytest.raises(EESRError, match="wav/"):
        load_emodb(tmp_path)


# ------------------------------------------------------------------ manifest CSV


@pytest.fixture()
def manifest_dir(data_root, tmp_path) -> Path:
    """Real wavs linked under tmp_path/audio, with a CSV next to them naming relative paths."""
    audio = tmp_path / "audio"
    audio.mkdir()
    rows = []
    for name, label, speaker, session in [
        ("03a01Wa.wav", "loud", "s1", 1),
        ("03a01Fa.wav", "bright", "s1", 1),
        ("08a01Na.wav", "calm", "s2", 2),
        ("03a01Nc.wav", "calm", "s1", 2),
    ]:
        os.symlink(data_root / "emodb" / "wav" / name, audio / name)
        rows.append({"path": f"audio/{name}", "label": label, "speaker": speaker, "session": session})
    pd.DataFrame(rows).to_csv(tmp_path / "mine.csv", index=False)
    return tmp_path


def test_manifest_loads(manifest_dir):
    corpus = load_manifest(manifest_dir / "mine.csv")
    assert corpus.name == "mine"
    assert corpus.labels == ("bright", "calm", "loud")  # sorted: reproducible class indices
    assert len(corpus) == 4
    assert all(Path(p).is_absolute() and Path(p).is_file() for p in corpus.paths)
    assert corpus.table["id"].tolist() == [
        "audio/03a01Wa.wav",
        "audio/03a01Fa.wav",
        "audio/08a01Na.wav",
        "audio/03a01Nc.wav",
    ]
    assert corpus.table["session"].tolist() == [1, 1, 2, 2]
    assert corpus.y.tolist() == [2, 0, 1, 1]
    # through load_corpus, from another working directory: paths stay relative to the CSV
    cwd = os.getcwd()
    try:
        os.chdir(PROJECT_ROOT)
        assert load_corpus(str(manifest_dir / "mine.csv")).paths == corpus.paths
    finally:
        os.chdir(cwd)


def test_manifest_explicit_label_order(manifest_dir):
    corpus = load_manifest(manifest_dir / "mine.csv", labels=("loud", "calm", "bright", "unused"))
    assert corpus.labels == ("loud", "calm", "bright", "unused")
    assert corpus.y.tolist() == [0, 2, 1, 1]
    with pytest.raises(EESRError, match="bright"):
        load_manifest(manifest_dir / "mine.csv", labels=("loud", "calm"))


def test_manifest_missing_columns(manifest_dir):
    table = pd.read_csv(manifest_dir / "mine.csv")
    table.drop(columns=["speaker", "label"]).to_csv(manifest_dir / "bad.csv", index=False)
    with pytest.raises(EESRError) as err:
        load_manifest(manifest_dir / "bad.csv")
    msg = str(err.value)
    assert "speaker" in msg and "label" in msg and "bad.csv" in msg


def test_manifest_missing_audio(manifest_dir):
    (manifest_dir / "audio" / "08a01Na.wav").unlink()
    with pytest.raises(EESRError, match="08a01Na.wav"):
        load_manifest(manifest_dir / "mine.csv")


def test_manifest_duplicate_ids(manifest_dir):
    table = pd.read_csv(manifest_dir / "mine.csv")
    table["id"] = ["u0", "u1", "u2", "u1"]  # an explicit id column wins, and must be unique
    table.to_csv(manifest_dir / "dup.csv", index=False)
    with pytest.raises(EESRError, match="lines 3 and 5 .*'u1'") as err:
        load_manifest(manifest_dir / "dup.csv")
    assert "03a01Fa.wav" in str(err.value) and "03a01Nc.wav" in str(err.value)  # both rows named
    table["id"] = [f"u{i}" for i in range(len(table))]
    table.to_csv(manifest_dir / "dup.csv", index=False)
    assert load_manifest(manifest_dir / "dup.csv").table["id"].tolist() == ["u0", "u1", "u2", "u3"]


def test_manifest_not_found(tmp_path):
    with pytest.raises(EESRError, match="nope.csv"):
        load_manifest(tmp_path / "nope.csv")
