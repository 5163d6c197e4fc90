"""Timelines of long recordings: segments, their own IS10, joined recordings and their truth."""

import numpy as np
import pandas as pd
import pytest
import torch

from eesr_lib import timeline as tl
from eesr_lib.bundle import EESRClassifier, load_bundle, save_bundle
from eesr_lib.corpora import Corpus
from eesr_lib.errors import EESRError
from eesr_lib.features import corpus_features
from eesr_lib.model import ModelConfig
from eesr_lib.predict import predict_table
from eesr_lib.train import TrainConfig


def test_segment_bounds_cover_the_recording():
    b = tl.segment_bounds(16000 * 5, 16000, segment_s=1.6, hop_s=0.8)
    assert b[0].tolist() == [0, 25600] and (np.diff(b[:-1, 0]) == 12800).all()
    assert b[-1, 1] == 80000 and b[-1, 1] - b[-1, 0] == 25600  # the last one flush with the end
    assert ((b[:, 1] - b[:, 0]) == 25600).all()
    assert tl.segment_bounds(1000, 16000, 1.6, 0.8).tolist() == [[0, 1000]]  # shorter than a segment
    with pytest.raises(EESRError):
        tl.segment_bounds(0, 16000, 1.6, 0.8)
    with pytest.raises(EESRError):
        tl.segment_bounds(1000, 16000, 1.6, 0)


def test_segment_labels_majority_gaps_and_straddles():
    spans = pd.DataFrame({"label": ["anger", "sadness"], "start_s": [0.0, 2.5], "end_s": [2.0, 5.0]})
    segs = pd.DataFrame({"start_s": [0.0, 1.0, 1.9, 2.2, 3.0], "end_s": [1.6, 2.6, 2.7, 3.8, 4.6]})
    # [1.9, 2.7]: 0.1 s anger, 0.2 s sadness of 0.8 s: no majority; [1.0, 2.6]: anger 1.0 of 1.6 s
    assert tl.segment_labels(segs, spans).tolist() == ["anger", "anger", None, "sadness", "sadness"]
    assert tl.segment_labels(segs, spans, min_share=0.9).tolist() == ["anger", None, None, None, "sadness"]


def test_map_labels_to_the_models_names():
    emodb = ("anger", "boredom", "disgust", "fear", "happiness", "neutral", "sadness")
    ravdess = ["neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised", None]
    got = tl.map_labels(ravdess, emodb)
    assert got == ["neutral", None, "happiness", "sadness", "anger", "fear", "disgust", None, None]
    assert tl.map_labels(["surprised", "anger"], emodb + ("surprised",)) == ["surprised", "anger"]


def test_one_per_class_prefers_strong_intensity_and_keeps_class_order():
    table = pd.DataFrame(
        {
            "id": ["a-sad-normal", "c-sad-strong", "b-sad-strong", "d-angry-normal", "e-neutral", "x-angry"],
            "path": ["p"] * 6,
            "label": ["sad", "sad", "sad", "angry", "neutral", "angry"],
            "speaker": ["01", "01", "01", "01", "01", "02"],
            "intensity": ["normal", "strong", "strong", "normal", "normal", "strong"],
        }
    )
    corpus = Corpus("toy", ("neutral", "angry", "sad"), table)
    assert tl.one_per_class(corpus, "01")["id"].tolist() == ["e-neutral", "d-angry-normal", "b-sad-strong"]
    assert tl.one_per_class(corpus, "02")["id"].tolist() == ["x-angry"]
    assert "_weak" not in tl.one_per_class(corpus, "01")
    no_intensity = Corpus("toy", ("neutral", "angry", "sad"), table.drop(columns="intensity"))
    assert tl.one_per_class(no_intensity, "01")["id"].tolist() == ["e-neutral", "d-angry-normal", "a-sad-normal"]
    with pytest.raises(EESRError, match="speaker '03'"):
        tl.one_per_class(corpus, "03")


def test_join_recordings_places_spans_with_gaps(emodb):
    paths, labels = emodb.paths[:3], list(emodb.table["label"][:3])
    wav, spans = tl.join_recordings(paths, labels, ids=list(emodb.table["id"][:3]), gap_s=0.5)
    lengths = (spans["end_s"] - spans["start_s"]).to_numpy()
    assert len(wav) == pytest.approx(16000 * (lengths.sum() + 1.0), abs=2)  # two gaps of 0.5 s
    assert spans["start_s"].iloc[1] == pytest.approx(spans["end_s"].iloc[0] + 0.5)
    assert spans["label"].tolist() == labels and spans["id"].iloc[0] == emodb.table["id"].iloc[0]
    a, b = int(spans["end_s"].iloc[0] * 16000), int(spans["start_s"].iloc[1] * 16000)
    assert not wav[a:b].any()  # silence between the utterances
    with pytest.raises(EESRError):
        tl.join_recordings(paths, labels[:2])


@pytest.fixture(scope="module")
def small_bundle(mini, tmp_path_factory):
    """An untrained network with 32-frame windows and the mini corpus's IS10 scaling: enough to score."""
    torch.manual_seed(0)
    cfg = ModelConfig(crop_frames=32)
    _specs, is10 = corpus_features(mini, progress=False)
    out = tmp_path_factory.mktemp("tl") / "small.bundle"
    return load_bundle(save_bundle(out, EESRClassifier(cfg), mini.labels, TrainConfig(window_hop=16), is10))


def test_score_segments_scores_each_segment_as_its_own_utterance(small_bundle, emodb):
    bundle = small_bundle
    wav, spans = tl.join_recordings(emodb.paths[:2], list(emodb.table["label"][:2]), gap_s=0.3)
    table = tl.score_segments(bundle, wav, segment_s=1.0, hop_s=0.75)
    bounds = tl.segment_bounds(len(wav), 16000, 1.0, 0.75)
    assert table[["start_s", "end_s"]].to_numpy().tolist() == (bounds / 16000).tolist()
    probs = table[list(bundle.labels)].to_numpy()
    np.testing.assert_allclose(probs.sum(1), 1, atol=1e-5)
    assert (table["prediction"] == [bundle.labels[k] for k in probs.argmax(1)]).all()
    for i in (0, len(bounds) // 2, len(bounds) - 1):  # each = that stretch of audio scored as an utterance
        a, b = bounds[i]
        alone = bundle.scores(*bundle.signal_features(wav[a:b])[:2])[0]
        np.testing.assert_allclose(probs[i], alone, atol=1e-5)
    # the default: one window per segment at the window hop, each window with its own IS10,
    # not the whole recording's (which Bundle.scores would give every window)
    default = tl.score_segments(bundle, wav)
    assert default["end_s"].iloc[0] == pytest.approx(bundle.window_seconds)
    assert default["start_s"].iloc[1] == pytest.approx(16 * 200 / 16000)
    whole = bundle.scores(*bundle.signal_features(wav)[:2])[1]
    assert len(whole) == len(default)
    assert not np.allclose(default[list(bundle.labels)].to_numpy(), whole, atol=1e-3)
    with pytest.raises(EESRError, match="mono"):
        tl.score_segments(bundle, np.stack([wav, wav], axis=1))


def test_agreement_counts_only_segments_with_a_known_class():
    scored = pd.DataFrame(
        {
            "prediction": ["anger", "sadness", "anger", "anger"],
            "anger": [0.7, 0.2, 0.6, 0.9],
            "sadness": [0.3, 0.8, 0.4, 0.1],
        }
    )
    truth = pd.Series(["anger", "anger", None, "sadness"])
    got = tl.agreement(scored, truth)
    assert got["windows scored"] == 3
    assert got["prediction = true class (%)"] == pytest.approx(100 / 3)
    assert got["mean probability of the true class"] == pytest.approx((0.7 + 0.2 + 0.1) / 3)
    empty = tl.agreement(scored, pd.Series([None] * 4))
    assert empty["windows scored"] == 0 and np.isnan(empty["prediction = true class (%)"])


def test_predict_table_scores_a_corpus_table_like_eesr_predict(small_bundle, emodb, tmp_path):
    table = emodb.table.head(3).copy()
    table.loc[len(table)] = {**table.iloc[0].to_dict(), "id": "missing", "path": str(tmp_path / "nowhere.wav")}
    errors = []
    out, probs = predict_table(small_bundle, table, errors.append)
    assert out["id"].tolist() == table["id"].head(3).tolist() and len(errors) == 1 and "nowhere.wav" in errors[0]
    assert out["true"].tolist() == table["label"].head(3).tolist()
    assert out["speaker"].tolist() == table["speaker"].head(3).tolist()
    assert probs.shape == (3, 7) and np.allclose(probs.sum(1), 1, atol=1e-3)
    assert out["prediction"].tolist() == [small_bundle.labels[k] for k in probs.argmax(1)]
    np.testing.assert_allclose(out["confidence"], probs.max(1))
    np.testing.assert_allclose(probs[1], small_bundle.predict_file(table["path"].iloc[1])[0], atol=1e-4)
