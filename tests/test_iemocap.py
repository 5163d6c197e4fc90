"""IEMOCAP on a generated fixture in the exact layout of the USC release (it cannot be shared).

``SessionN/sentences/wav/<dialog>/<utt>.wav`` and ``SessionN/dialog/EmoEvaluation/<dialog>.txt``,
the latter with the release's header, blank lines, one tab-separated line per utterance and
the annotators' ``C-..``/``A-..`` lines, plus the ``Categorical/`` subfolder that must be ignored.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from eesr_lib.audio import read_audio
from eesr_lib.corpora import IEMOCAP_LABELS, iemocap_speaker, load_corpus, load_iemocap
from eesr_lib.errors import EESRError

# (last field of the utterance id, label code) per dialog kind; every code of the release appears.
IMPRO = [("F000", "ang"), ("M000", "hap"), ("F001", "exc"), ("M001", "neu"), ("F002", "sad"),
         ("M002", "fru"), ("F003", "xxx"), ("M003", "sur")]  # fmt: skip
SCRIPT = [("F000", "neu"), ("M000", "sad"), ("F001", "fea"), ("M001", "exc"), ("F002", "dis"),
          ("M002", "ang"), ("F003", "oth"), ("M003", "hap")]  # fmt: skip
KEPT = {"ang": "anger", "hap": "happiness", "exc": "happiness", "neu": "neutral", "sad": "sadness"}
CATEGORY = {"ang": "Anger", "hap": "Happiness", "exc": "Excited", "neu": "Neutral state", "sad": "Sadness",
            "fru": "Frustration", "xxx": "Other", "sur": "Surprise", "fea": "Fear", "dis": "Disgust",
            "oth": "Other"}  # fmt: skip
HEADER = "% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]\n\n"
SR = 16_000


def _dialogs(session: int) -> list[tuple[str, list[tuple[str, str]]]]:
    """Two dialogs per session: an improvisation led by F and a script led by M, as in the release."""
    return [(f"Ses0{session}F_impro01", IMPRO), (f"Ses0{session}M_script01_1", SCRIPT)]


def make_iemocap(root: Path, sessions=(1, 2, 3, 4, 5), seconds: float = 0.25) -> Path:
    """Write a small IEMOCAP tree under ``root`` and return ``root``."""
    rng = np.random.default_rng(0)
    for session in sessions:
        sdir = root / f"Session{session}"
        eval_dir = sdir / "dialog" / "EmoEvaluation"
        (eval_dir / "Categorical").mkdir(parents=True)
        for dialog, utts in _dialogs(session):
            wav_dir = sdir / "sentences" / "wav" / dialog
            wav_dir.mkdir(parents=True)
            lines = [HEADER]
            cat_lines = []
            t = 6.2901
            for suffix, code in utts:
                utt = f"{dialog}_{suffix}"
                n = int(seconds * SR)
                tone = 0.3 * np.sin(2 * np.pi * 220 * np.arange(n) / SR) + 0.01 * rng.standard_normal(n)
                sf.write(wav_dir / f"{utt}.wav", tone.astype(np.float32), SR, subtype="PCM_16")
                cat = CATEGORY[code]
                lines.append(
                    f"[{t:.4f} - {t + 1.9456:.4f}]\t{utt}\t{code}\t[2.5000, 3.0000, 2.5000]\n"
                    f"C-E1:\t{cat};\t()\n"
                    f"C-E2:\t{cat}; Other;\t(a bit tense)\n"
                    f"C-F1:\t{cat};\t()\n"
                    f"A-E1:\tval 3; act 2; dom  2;\t()\n"
                    f"A-F1:\tval 2; act 3; dom  3;\t(mildly aggravated but staying polite, attitude)\n\n"
                )
                cat_lines.append(f"{utt} :{cat}; ()\n")
                t += 3.5
            (eval_dir / f"{dialog}.txt").write_text("".join(lines))
            (eval_dir / "Categorical" / f"{dialog}_e1_cat.txt").write_text("".join(cat_lines))
        # a macOS AppleDouble file, as found in some copies of the release: must be skipped
        (eval_dir / f"._{_dialogs(session)[0][0]}.txt").write_bytes(b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X")
    return root


@pytest.fixture(scope="module")
def iemocap_root(tmp_path_factory) -> Path:
    """A data root holding ``iemocap/`` with all five sessions."""
    root = tmp_path_factory.mktemp("data")
    make_iemocap(root / "iemocap")
    return root


@pytest.fixture(scope="module")
def corpus(iemocap_root):
    return load_iemocap(iemocap_root / "iemocap")


def test_only_four_classes_kept(corpus):
    assert corpus.labels == IEMOCAP_LABELS == ("anger", "happiness", "neutral", "sadness")
    per_session = sum(code in KEPT for _, code in IMPRO + SCRIPT)
    assert len(corpus) == 5 * per_session
    assert set(corpus.table["label"]) == set(IEMOCAP_LABELS)
    counts = corpus.table["label"].value_counts().to_dict()
    assert counts == {"anger": 10, "happiness": 20, "neutral": 10, "sadness": 10}  # hap + exc merged


def test_labels_match_the_evaluation_lines(corpus):
    expected = {}
    for session in range(1, 6):
        for dialog, utts in _dialogs(session):
            expected.update({f"{dialog}_{s}": KEPT[c] for s, c in utts if c in KEPT})
    assert dict(zip(corpus.table["id"], corpus.table["label"], strict=True)) == expected
    # excited and happy both become happiness
    assert corpus.table.set_index("id").loc["Ses01F_impro01_F001", "label"] == "happiness"
    assert corpus.table.set_index("id").loc["Ses03M_script01_1_M003", "label"] == "happiness"


def test_paths_point_at_the_sentence_wavs(corpus, iemocap_root):
    for utt, path in zip(corpus.table["id"], corpus.paths, strict=True):
        p = Path(path)
        assert p.is_file() and p.stem == utt
        assert p.parent.parent.parent.name == "sentences"
        assert p.parent.name == utt.rsplit("_", 1)[0]  # the dialog folder
    assert read_audio(corpus.paths[0]).shape == (4000,)  # the synthetic wavs read as 16 kHz mono


def test_speaker_is_the_utterance_gender(corpus):
    assert iemocap_speaker("Ses01F_impro01_M000") == "Ses01M"
    assert iemocap_speaker("Ses01M_script01_1_F003") == "Ses01F"
    table = corpus.table.set_index("id")
    assert table.loc["Ses01F_impro01_M001", "speaker"] == "Ses01M"
    assert table.loc["Ses02M_script01_1_F000", "speaker"] == "Ses02F"
    assert (table["speaker"].str[-1] == table.index.str.rsplit("_", n=1).str[-1].str[0]).all()
    assert corpus.table["speaker"].nunique() == 10
    assert sorted(corpus.table["speaker"].unique()) == [f"Ses0{s}{g}" for s in range(1, 6) for g in "FM"]


def test_session_column(corpus):
    assert sorted(corpus.table["session"].unique()) == [1, 2, 3, 4, 5]
    assert (corpus.table["session"] == corpus.table["id"].str[4].astype(int)).all()
    # every session holds both speakers of that session
    assert (corpus.table.groupby("session")["speaker"].nunique() == 2).all()


def test_load_corpus_finds_iemocap_under_root(iemocap_root, corpus):
    via_root = load_corpus("iemocap", iemocap_root)
    assert via_root.table.equals(corpus.table)
    via_folder = load_corpus("iemocap", iemocap_root / "iemocap")  # the corpus folder itself
    assert len(via_folder) == len(corpus)


def test_two_sessions(tmp_path):
    corpus = load_iemocap(make_iemocap(tmp_path / "iemocap", sessions=(1, 4)))
    assert sorted(corpus.table["session"].unique()) == [1, 4]
    assert corpus.table["speaker"].nunique() == 4


def test_label_line_with_missing_wav(tmp_path):
    root = make_iemocap(tmp_path / "iemocap", sessions=(2,))
    missing = root / "Session2" / "sentences" / "wav" / "Ses02F_impro01" / "Ses02F_impro01_F002.wav"
    missing.unlink()
    with pytest.raises(EESRError, match="Ses02F_impro01_F002") as err:
        load_iemocap(root)
    assert "Ses02F_impro01.txt" in str(err.value)


def test_dropped_label_with_missing_wav_is_fine(tmp_path):
    root = make_iemocap(tmp_path / "iemocap", sessions=(3,))
    (root / "Session3" / "sentences" / "wav" / "Ses03F_impro01" / "Ses03F_impro01_M002.wav").unlink()  # fru
    assert len(load_iemocap(root)) == sum(code in KEPT for _, code in IMPRO + SCRIPT)


def test_no_sessions(tmp_path):
    with pytest.raises(EESRError, match="Session1"):
        load_iemocap(tmp_path)


def test_session_without_evaluation_folder(tmp_path):
    (tmp_path / "Session1" / "sentences" / "wav").mkdir(parents=True)
    with pytest.raises(EESRError, match="EmoEvaluation"):
        load_iemocap(tmp_path)
