"""nEMO: the real data.tsv in the shared data (labels, speakers, folds; no audio decoded), fixtures in the
release's exact layout (malformed data.tsv), and `eesr download nemo` from a local HTTP server.

The release (GitHub amu-cai/nEMO) is ``data.tsv`` (tab-separated: file_id, emotion, raw_text,
normalized_text, speaker_id left-padded with spaces, gender, age) and ``samples/<file_id>``;
GitHub's zip of a commit wraps it in ``nEMO-<commit>/`` next to README.md and LICENSE.
"""

from __future__ import annotations

import functools
import hashlib
import io
import zipfile
from pathlib import Path

import numpy as np
import pytest
from test_download import _Server  # the local HTTP server of the EMODB download tests

from eesr_lib.cli import main
from eesr_lib.corpora import IEMOCAP_LABELS, NEMO6_LABELS, NEMO_LABELS, load_corpus, load_nemo
from eesr_lib.download import NEMO_COMMIT, download_nemo, nemo_is_complete, nemo_listing
from eesr_lib.errors import EESRError
from eesr_lib.protocols import book_protocols, fold_names, folds

SPEAKERS = ["EB0", "IC0", "KD0", "KS0", "MK0", "MP0", "SM0", "TP0", "WR0"]
# class x speaker counts of the real corpus's four classes (data.tsv of amu-cai/nEMO at NEMO_COMMIT)
COUNTS = {
    "anger": [90, 90, 90, 90, 90, 29, 90, 90, 90],
    "happiness": [90, 90, 90, 90, 90, 30, 89, 90, 90],
    "neutral": [90, 90, 90, 90, 90, 90, 90, 90, 89],
    "sadness": [90, 90, 90, 90, 90, 49, 90, 90, 90],
}
HEADER = "file_id\temotion\traw_text\tnormalized_text\tspeaker_id\tgender\tage\n"


# ------------------------------------------------------------------ the real corpus


@pytest.fixture(scope="module")
def nemo(data_root):
    return load_corpus("nemo", data_root)


def test_real_nemo_labels_and_speakers(nemo, data_root):
    assert nemo.name == "nemo" and nemo.labels == IEMOCAP_LABELS == NEMO_LABELS
    assert len(nemo) == 3076
    summary = nemo.summary()
    assert list(summary.columns) == SPEAKERS + ["total"]  # padding stripped
    for label, per_speaker in COUNTS.items():
        assert summary.loc[label, SPEAKERS].tolist() == per_speaker
    assert summary.loc["total", "total"] == 3076
    assert nemo.table["label"].value_counts().to_dict() == {k: sum(v) for k, v in COUNTS.items()}
    assert nemo.table["id"].is_unique
    assert (nemo.table["speaker"] == nemo.table["id"].str.split("_").str[0]).all()
    assert (nemo.table["label"] == nemo.table["id"].str.split("_").str[1]).all()
    assert all(Path(p).is_file() and p.endswith(".flac") for p in nemo.paths)  # the shared copy's FLAC
    genders = nemo.table.groupby("speaker")["gender"].first().to_dict()
    assert [s for s in SPEAKERS if genders[s] == "female"] == ["EB0", "IC0", "KD0", "MK0"]
    assert np.bincount(nemo.y).tolist() == [749, 749, 809, 769]


def test_real_nemo_folds(nemo):
    assert book_protocols(nemo) == ["loso-speaker", "kfold10"]  # the paper's IEMOCAP protocols
    loso = folds(nemo, "loso-speaker")
    assert len(loso) == 9
    speakers = nemo.table["speaker"].to_numpy()
    for k, (tr, te) in enumerate(loso):
        assert set(speakers[te]) == {SPEAKERS[k]} and SPEAKERS[k] not in set(speakers[tr])
        assert len(tr) + len(te) == len(nemo)
    assert fold_names(nemo, "loso-speaker") == [f"speaker {s}" for s in SPEAKERS]
    k10 = folds(nemo, "kfold10")
    assert len(k10) == 10
    tests = np.concatenate([te for _, te in k10])
    assert sorted(tests.tolist()) == list(range(len(nemo)))  # a partition
    for _, te in k10:  # stratified: every class in every fold, within one utterance of its share
        share = np.bincount(nemo.y, minlength=4) / 10
        assert (np.abs(np.bincount(nemo.y[te], minlength=4) - share) <= 1).all()
    assert [len(te) for _, te in folds(nemo, "kfold10")] == [len(te) for _, te in k10]  # fixed for a seed


def test_nemo6_needs_all_six_classes(data_root):
    with pytest.raises(EESRError, match="fear, surprised.*eesr download nemo") as err:
        load_corpus("nemo6", data_root)  # the shared copy holds only the four classes
    assert str(data_root / "nemo" / "data.tsv") in str(err.value)


# ------------------------------------------------------------------ fixtures in the release's layout

# (speaker, emotion, sentence): two speakers, all six emotions in data.tsv's spelling
EMOTIONS = ("anger", "fear", "happiness", "neutral", "sadness", "surprised")
ROWS = [(s, e, n) for s in ("EB0", "KS0") for n, e in enumerate(EMOTIONS, 1)]


def make_release(root: Path, rows=ROWS, suffix: str = ".wav") -> Path:
    """data.tsv and samples/ as in amu-cai/nEMO (tiny stand-in bytes for the audio)."""
    (root / "samples").mkdir(parents=True)
    lines = [HEADER]
    for speaker, emotion, n in rows:
        file_id = f"{speaker}_{emotion}_{n}.wav"
        gender = "female" if speaker == "EB0" else "male"
        lines.append(f'{file_id}\t{emotion}\tZdanie "{n}".\tzdanie {n}\t{speaker:>11}\t{gender}\t27\n')
        (root / "samples" / file_id).with_suffix(suffix).write_bytes(f"RIFF {file_id}".encode())
    (root / "data.tsv").write_text("".join(lines), encoding="utf-8")
    return root


def test_fixture_four_and_six_classes(tmp_path):
    root = make_release(tmp_path / "nemo")
    four = load_corpus("nemo", tmp_path)
    assert four.labels == IEMOCAP_LABELS and len(four) == 8
    assert set(four.table["label"]) == set(IEMOCAP_LABELS)
    assert sorted(four.table["speaker"].unique()) == ["EB0", "KS0"]
    assert four.table.set_index("id").loc["KS0_neutral_4", "path"] == str(root / "samples" / "KS0_neutral_4.wav")
    six = load_corpus("nemo6", tmp_path)
    assert six.name == "nemo6" and six.labels == NEMO6_LABELS and len(six) == 12
    assert six.labels[:4] == four.labels  # class indices 0-3 mean the same in both
    assert six.table.set_index("id").loc["EB0_surprised_6", "label"] == "surprised"
    assert len(load_nemo(root, six=True)) == 12


def test_fixture_flac_copy(tmp_path):
    make_release(tmp_path / "nemo", suffix=".flac")  # data.tsv names .wav, the copy holds .flac
    assert all(p.endswith(".flac") for p in load_corpus("nemo", tmp_path).paths)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda t: t.replace("speaker_id", "speaker"), r"lacks column\(s\) \['speaker_id'\]"),
        (lambda t: t.replace("\tsadness\t", "\tsad\t", 1), r"line 6 \(EB0_sadness_5.wav\) has unknown emotion 'sad'"),
        (lambda t: t.replace("\tanger\t", "\t \t", 1), "line 2 has no emotion"),
        (lambda t: t + t.splitlines(keepends=True)[1], "EB0_anger_1.wav is listed twice"),
        (lambda t: t.replace("EB0_fear_2.wav", "../EB0_fear_2.wav"), "not a file name"),
        (lambda t: "", "not a readable"),
    ],
)
def test_malformed_data_tsv_names_the_file(tmp_path, edit, message):
    root = make_release(tmp_path / "nemo")
    tsv = root / "data.tsv"
    tsv.write_text(edit(tsv.read_text(encoding="utf-8")), encoding="utf-8")
    with pytest.raises(EESRError, match=message) as err:
        load_corpus("nemo", tmp_path)
    assert str(tsv) in str(err.value)


def test_missing_audio_names_both_files(tmp_path):
    root = make_release(tmp_path / "nemo")
    (root / "samples" / "KS0_happiness_3.wav").unlink()
    with pytest.raises(EESRError, match="KS0_happiness_3.wav") as err:
        load_corpus("nemo", tmp_path)
    assert str(root / "data.tsv") in str(err.value)
    (root / "samples" / "KS0_fear_2.wav").unlink()  # a dropped class: not needed by "nemo"
    (root / "samples" / "KS0_happiness_3.wav").write_bytes(b"RIFF")
    assert len(load_corpus("nemo", tmp_path)) == 8
    with pytest.raises(EESRError, match="KS0_fear_2.wav"):
        load_corpus("nemo6", tmp_path)


def test_missing_data_tsv(tmp_path):
    (tmp_path / "nemo" / "samples").mkdir(parents=True)
    with pytest.raises(EESRError, match="label file not found.*data.tsv"):
        load_corpus("nemo", tmp_path)


# ------------------------------------------------------------------ download


def _github_zip(release: Path) -> bytes:
    """GitHub's zip of a commit: everything inside nEMO-<commit>/."""
    top = f"nEMO-{NEMO_COMMIT}/"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(top, "")
        zf.writestr(top + "LICENSE", "CC BY-NC-SA 4.0\n")
        zf.writestr(top + "README.md", "# nEMO\n")
        zf.write(release / "data.tsv", top + "data.tsv")
        zf.writestr(top + "samples/", "")
        for wav in sorted((release / "samples").iterdir()):
            zf.write(wav, top + "samples/" + wav.name)
    return buf.getvalue()


@pytest.fixture(scope="module")
def release(tmp_path_factory) -> Path:
    return make_release(tmp_path_factory.mktemp("release") / "nEMO")


@pytest.fixture(scope="module")
def server(release):
    # the audio of KS0_sadness_5 renamed (same length) in the zip's headers; data.tsv, compressed, still names it
    missing = _github_zip(release).replace(b"KS0_sadness_5.wav", b"KS0_sadness_9.wav")
    srv = _Server({"/nemo.zip": _github_zip(release), "/missing.zip": missing})
    yield srv
    srv.close()


def _digest(release: Path) -> str:
    return hashlib.sha256(nemo_listing(release).encode()).hexdigest()


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".nemo-download-"))


def test_download_six_classes(server, release, tmp_path):
    dest = tmp_path / "data" / "nemo"
    url = server.url("/nemo.zip")
    out = download_nemo(dest, url=url, progress=False, expected_files=len(ROWS), sha256=_digest(release))
    assert out == dest and _leftovers(dest.parent) == []
    assert (dest / "LICENSE").is_file() and (dest / "data.tsv").read_bytes() == (release / "data.tsv").read_bytes()
    assert (dest.stat().st_mode & 0o777) == 0o755
    assert (dest / "SHA256SUMS").read_text() == nemo_listing(release)  # the listing the digest is taken of
    assert len(load_corpus("nemo6", dest.parent)) == 12 and len(load_corpus("nemo", dest.parent)) == 8
    before = len(server.requests)  # complete: no second request, for six classes or four
    assert download_nemo(dest, url=url, classes=4) == dest and download_nemo(dest, url=url) == dest
    assert len(server.requests) == before


def test_download_four_classes_via_cli(server, release, tmp_path, monkeypatch, capsys):
    import eesr_lib.download as dl

    # the tiny release stands in for the real one: its count and digest instead of the real release's
    tiny = functools.partial(dl.download_nemo, expected_files=len(ROWS), sha256=_digest(release), progress=False)
    monkeypatch.setattr(dl, "download_nemo", tiny)
    main(["download", "nemo", "--classes", "4", "--data-root", str(tmp_path), "--url", server.url("/nemo.zip")])
    assert "nEMO (4 classes)" in capsys.readouterr().out
    dest = tmp_path / "nemo"
    assert sorted(p.name for p in (dest / "samples").iterdir()) == sorted(
        f"{s}_{e}_{n}.wav" for s, e, n in ROWS if e in IEMOCAP_LABELS
    )
    lines = (dest / "data.tsv").read_text(encoding="utf-8").splitlines(keepends=True)
    source = (release / "data.tsv").read_text(encoding="utf-8").splitlines(keepends=True)
    assert lines == [source[0]] + [line for line in source[1:] if line.split("\t")[1] in IEMOCAP_LABELS]
    assert (dest / "SHA256SUMS").read_text() == nemo_listing(dest)
    corpus = load_corpus("nemo", tmp_path)
    assert len(corpus) == 8 and nemo_is_complete(dest, 4) and not nemo_is_complete(dest, 6)
    with pytest.raises(EESRError, match="only nEMO's four IEMOCAP classes"):  # asking for six later
        download_nemo(dest, url=server.url("/nemo.zip"), progress=False)


def test_download_checksum_mismatch_leaves_nothing(server, tmp_path):
    with pytest.raises(EESRError, match="SHA-256 .* expected 0{64}"):
        download_nemo(
            tmp_path / "nemo", url=server.url("/nemo.zip"), progress=False, expected_files=None, sha256="0" * 64
        )
    assert list(tmp_path.iterdir()) == []


def test_download_wrong_count_and_missing_sample(server, tmp_path):
    with pytest.raises(EESRError, match="lists 12 recordings in data.tsv, expected 4481"):
        download_nemo(tmp_path / "nemo", url=server.url("/nemo.zip"), progress=False, sha256=None)
    with pytest.raises(EESRError, match=r"1 file\(s\) missing from samples/.*KS0_sadness_5.wav"):
        download_nemo(tmp_path / "nemo", url=server.url("/missing.zip"), progress=False, sha256=None)
    assert list(tmp_path.iterdir()) == []


def test_download_http_error_names_url_and_hint(server, tmp_path):
    url = server.url("/nope.zip")
    with pytest.raises(EESRError, match="nEMO .*404.*EESR_DATA") as err:
        download_nemo(tmp_path / "x" / "nemo", url=url, progress=False)
    assert url in str(err.value) and list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------ the run list


def test_replicate_lists_the_nemo_runs(data_root, tmp_path, capsys):
    from eesr_lib.plan import ABLATIONS, REPLICATION

    expected = [
        ("loso-speaker", "is10+svm"),
        ("loso-speaker", "is10+mlp"),
        ("kfold10", "is10+svm"),
        ("kfold10", "is10+mlp"),
        ("loso-speaker", "ae+ee+in"),
    ] + [("loso-speaker", v) for v in ABLATIONS]
    assert REPLICATION["nemo"] == expected
    main(["replicate", "--dataset", "nemo", "--data-root", str(data_root), "--results", str(tmp_path)])
    lines = capsys.readouterr().out.splitlines()
    rows = [line.split() for line in lines[1:-1]]
    assert [(r[0], r[1]) for r in rows] == expected
    assert [r[2] for r in rows] == ["0/9", "0/9", "0/10", "0/10"] + ["0/9"] * 6
    assert all(r[-1] == "?" for r in rows)  # nothing finished: no pace to estimate from
    assert lines[-1].startswith("0 of 10 runs finished") and list(tmp_path.iterdir()) == []


def test_nemo_results_are_set_beside_the_papers_iemocap_tables_value_by_value():
    from eesr_lib import paper

    assert paper.reference_corpus("nemo") == "iemocap"
    assert paper.reference_corpus("emodb") == "emodb"
    for protocol in ("loso-speaker", "kfold10"):
        key = paper.reference_key("nemo", protocol)
        assert paper.CONFUSION_PCT[key]["labels"] == list(NEMO_LABELS)
        assert list(paper.PER_CLASS[key]["recall"]) == list(NEMO_LABELS)


def test_a_stand_in_corpus_says_what_may_be_compared(nemo, emodb):
    from eesr_lib.readings import stand_in_note

    note = stand_in_note(nemo)
    assert "standing in for IEMOCAP" in note and "3076 utterances, 9 speakers" in note and "Polish" in note
    assert stand_in_note(emodb) is None
