"""One's own manifest just works: ids from relative paths, any column order, extra columns, any file names."""

import os

import pandas as pd
import pytest

from eesr_lib.audio import read_audio
from eesr_lib.corpora import load_corpus, load_manifest, read_manifest
from eesr_lib.errors import EESRError


def _link(data_root, name, target):
    target.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(data_root / "emodb" / "wav" / name, target)


def test_repeated_file_names_in_different_folders_get_distinct_ids(data_root, tmp_path):
    _link(data_root, "03a01Wa.wav", tmp_path / "spk1" / "001.wav")
    _link(data_root, "08a01Na.wav", tmp_path / "spk2" / "001.wav")
    # columns in another order, plus one the loader does not know
    (tmp_path / "mine.csv").write_text(
        "speaker,notes,label,path\nspk1,first take,angry,spk1/001.wav\nspk2,,calm,spk2/001.wav\n"
    )
    corpus = load_corpus(str(tmp_path / "mine.csv"))
    assert corpus.table["id"].tolist() == ["spk1/001.wav", "spk2/001.wav"]
    assert list(corpus.table.columns) == ["id", "path", "label", "speaker"]  # extra column ignored
    assert corpus.labels == ("angry", "calm") and corpus.y.tolist() == [0, 1]
    assert corpus.paths[0].endswith("03a01Wa.wav") and corpus.paths[1].endswith("08a01Na.wav")


def test_paths_with_spaces_and_non_ascii_letters(data_root, tmp_path):
    names = ["Sprecherin Ä/ärger 01 (take 2).wav", "ñandú/über Straße.wav", "日本語/声 1.wav"]
    for source, name in zip(["03a01Wa.wav", "03a01Fa.wav", "08a01Na.wav"], names):
        _link(data_root, source, tmp_path / name)
    table = pd.DataFrame({"path": names, "label": ["wütend", "fröhlich", "ruhig"], "speaker": ["Ä", "ñ", "声"]})
    table.to_csv(tmp_path / "eigene Aufnahmen.csv", index=False, encoding="utf-8-sig")  # as Excel writes it
    corpus = load_manifest(tmp_path / "eigene Aufnahmen.csv")
    assert corpus.name == "eigene Aufnahmen"
    assert corpus.table["id"].tolist() == names
    assert corpus.labels == ("fröhlich", "ruhig", "wütend")
    assert len(read_audio(corpus.paths[0])) > 16_000  # the audio itself reads through such paths


def test_explicit_ids_win_and_a_file_listed_twice_is_named(data_root, tmp_path):
    _link(data_root, "03a01Wa.wav", tmp_path / "a.wav")
    _link(data_root, "03a01Fa.wav", tmp_path / "b.wav")
    (tmp_path / "ids.csv").write_text("path,label,speaker,id\na.wav,x,s1,first\nb.wav,y,s1,\n")
    assert load_manifest(tmp_path / "ids.csv").table["id"].tolist() == ["first", "b.wav"]  # empty cell: path
    (tmp_path / "twice.csv").write_text("path,label,speaker\na.wav,x,s1\nb.wav,y,s2\n./a.wav,x,s1\n")
    with pytest.raises(EESRError, match=r"twice\.csv: lines 2 and 4 .*'a\.wav'"):
        load_manifest(tmp_path / "twice.csv")


def test_manifest_for_prediction_needs_only_paths(tmp_path):
    (tmp_path / "only.csv").write_text("path\nmissing one.wav\n")
    table = read_manifest(tmp_path / "only.csv", check_files=False)
    assert table["id"].tolist() == ["missing one.wav"] and table["path"][0].endswith("missing one.wav")
    with pytest.raises(EESRError, match="missing one.wav"):
        read_manifest(tmp_path / "only.csv")
    with pytest.raises(EESRError, match=r"only\.csv lacks column\(s\) \['label', 'speaker'\]"):
        load_manifest(tmp_path / "only.csv")
