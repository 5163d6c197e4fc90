import numpy as np
import pandas as pd
import pytest

from eesr_lib.corpora import Corpus
from eesr_lib.errors import EESRError
from eesr_lib.protocols import book_protocols, fold_names, folds, inner_split


def _check_partition(corpus, fold_list):
    seen = np.concatenate([te for _, te in fold_list])
    assert sorted(seen) == list(range(len(corpus)))  # every utterance tested exactly once
    for tr, te in fold_list:
        assert not set(tr) & set(te)
        assert len(tr) + len(te) == len(corpus)


@pytest.mark.parametrize("protocol,k", [("kfold5", 5), ("kfold10", 10)])
def test_stratified_kfold(emodb, protocol, k):
    f = folds(emodb, protocol)
    assert len(f) == k
    _check_partition(emodb, f)
    overall = np.bincount(emodb.y) / len(emodb)
    for _, te in f:  # stratified: each fold's class mix is close to the corpus's
        assert np.abs(np.bincount(emodb.y[te], minlength=7) / len(te) - overall).max() < 0.03
    assert [te.tolist() for _, te in f] == [te.tolist() for _, te in folds(emodb, protocol)]  # fixed seed


def test_loso_speaker(emodb):
    f = folds(emodb, "loso-speaker")
    assert len(f) == 10
    _check_partition(emodb, f)
    spk = emodb.table["speaker"].to_numpy()
    for tr, te in f:
        assert len(set(spk[te])) == 1 and spk[te][0] not in set(spk[tr])
    assert fold_names(emodb, "loso-speaker")[0] == f"speaker {spk[f[0][1]][0]}"


def test_loso_session_and_missing_sessions():
    table = pd.DataFrame(
        {
            "id": [f"u{i}" for i in range(20)],
            "path": "x",
            "label": ["a", "b"] * 10,
            "speaker": [f"S{i % 4}" for i in range(20)],
            "session": [1 + i % 2 for i in range(20)],
        }
    )
    corpus = Corpus("toy", ("a", "b"), table)
    f = folds(corpus, "loso-session")
    assert len(f) == 2
    _check_partition(corpus, f)
    with pytest.raises(EESRError, match="session"):
        folds(Corpus("toy", ("a", "b"), table.drop(columns="session")), "loso-session")
    with pytest.raises(EESRError, match="protocol"):
        folds(corpus, "kfold3")


@pytest.mark.parametrize("protocol", ["kfold5", "loso-speaker"])
def test_inner_split_never_touches_the_test_fold(emodb, protocol):
    tr, te = folds(emodb, protocol)[0]
    inner_tr, val = inner_split(emodb, tr, protocol)
    assert set(inner_tr) | set(val) == set(tr) and not set(inner_tr) & set(val)
    assert not (set(inner_tr) | set(val)) & set(te)
    if protocol == "loso-speaker":  # validation speakers are held out too
        spk = emodb.table["speaker"].to_numpy()
        assert not set(spk[inner_tr]) & set(spk[val])


def test_speaker_kfold4_holds_out_whole_speakers_balanced_by_gender():
    # RAVDESS-like: 24 actors, odd numbers male, even female, 4 utterances each.
    actors = [f"{a:02d}" for a in range(1, 25)]
    table = pd.DataFrame(
        {
            "id": [f"{a}-{i}" for a in actors for i in range(4)],
            "path": "x",
            "label": ["a", "b"] * 48,
            "speaker": [a for a in actors for _ in range(4)],
        }
    )
    corpus = Corpus("toy", ("a", "b"), table)
    f = folds(corpus, "speaker-kfold4")
    assert len(f) == 4
    _check_partition(corpus, f)
    spk = table["speaker"].to_numpy()
    for tr, te in f:
        held = set(spk[te])
        assert len(held) == 6 and not held & set(spk[tr])
        assert sum(int(s) % 2 for s in held) == 3  # three male, three female actors
    assert fold_names(corpus, "speaker-kfold4")[0] == "speakers 01, 08, 09, 16, 17, 24"
    assert book_protocols(corpus) == ["loso-speaker", "speaker-kfold4"]  # 24 speakers
    tr, va = inner_split(corpus, f[0][0], "speaker-kfold4")
    assert not set(spk[va]) & set(spk[tr])  # validation speakers are held out too
    with pytest.raises(EESRError, match="speakers"):
        folds(Corpus("toy", ("a", "b"), table[table["speaker"] < "04"]), "speaker-kfold4")


def test_book_protocols_follow_the_corpus(emodb):
    assert book_protocols(emodb) == ["kfold5", "kfold10", "loso-speaker"]
    with_sessions = Corpus(emodb.name, emodb.labels, emodb.table.assign(session=1))
    assert book_protocols(with_sessions)[-1] == "loso-session"


def test_a_corpus_too_small_for_a_stratified_kfold_gets_a_clear_error(mini):
    assert len(folds(mini, "kfold5")) == 5  # 5 utterances a class
    with pytest.raises(EESRError, match="kfold10 needs 10 utterances of every class; 'anger' has 5"):
        folds(mini, "kfold10")
