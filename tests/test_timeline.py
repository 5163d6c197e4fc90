"""Timelines of long recordings: segments, their own IS10, joined recordings and their truth."""

from types import SimpleNamespace

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


# Chapter 9's helpers, on made-up tables and a stand-in bundle (nothing is scored by a network)


def _fake_bundle(window_probs, window_s=1.6):
    """Just what whole_recording_windows reads: windows every 0.8 s with the given probabilities."""
    probs = np.asarray(window_probs, dtype=float)
    starts = 0.8 * np.arange(len(probs))
    return SimpleNamespace(
        labels=("anger", "sadness"),
        window_seconds=window_s,
        spectrogram=SimpleNamespace(sample_rate=16000),
        signal_features=lambda wav: (wav, None, []),
        scores=lambda spec, is10: (probs.mean(0), probs, starts),
    )


def test_whole_recording_windows_and_the_own_vs_whole_comparison():
    wav = np.zeros(int(16000 * 3.0), dtype=np.float32)  # 3 s: windows at 0, 0.8, 1.6 (cut at 3.0)
    bundle = _fake_bundle([[0.9, 0.1], [0.2, 0.8], [0.4, 0.6]])
    whole = tl.whole_recording_windows(bundle, wav)
    assert list(whole.columns) == ["start_s", "end_s", "prediction", "anger", "sadness"]
    assert whole["end_s"].tolist() == pytest.approx([1.6, 2.4, 3.0])
    assert whole["prediction"].tolist() == ["anger", "sadness", "sadness"]
    spans = pd.DataFrame({"label": ["angry", "calm"], "start_s": [0.0, 1.7], "end_s": [1.6, 3.0]})
    segments = whole.assign(prediction=["anger", "anger", "anger"])  # the timeline: anger throughout
    segments["true"] = tl.map_labels(tl.segment_labels(segments, spans), bundle.labels)  # anger, None, None
    compare = tl.own_vs_whole_is10(bundle, wav, segments, spans)
    assert compare.index.tolist() == ["each window, its own IS10", "each window, the whole recording's IS10"]
    assert compare["windows scored"].tolist() == [1, 1]  # "calm" has no EMODB class: left out
    assert compare["prediction = true class (%)"].tolist() == [100.0, 100.0]
    assert compare["mean probability of the true class"].tolist() == pytest.approx([0.9, 0.9])
    assert list(tl.AGREEMENT_FORMAT) == list(compare.columns)


def test_is10_reading_counts_the_windows_the_choice_changes():
    segments = pd.DataFrame({"prediction": ["anger"] * 3 + ["sadness"]})
    compare = pd.DataFrame(
        {"windows scored": [20, 20], "prediction = true class (%)": [50.0, 45.0]},
        index=["own", "whole"],
    )
    text = tl.is10_reading(compare, segments, 7)
    assert "own IS10, 50 % of the windows" in text and "whole recording's, 45 %" in text
    assert "at random: 14 %" in text and "1 window(s) of 20: on this recording the choice hardly matters" in text
    assert "answers **anger** for 75 % of the segments" in text
    compare["prediction = true class (%)"] = [80.0, 40.0]
    assert "That is 8 windows of 20. It matters" in tl.is10_reading(compare, segments, 7)


def test_source_corpus_falls_back_where_a_corpus_cannot_be_loaded(tmp_path):
    fallback = Corpus("toy", ("a",), pd.DataFrame({"id": [], "path": [], "label": [], "speaker": []}))
    assert tl.source_corpus("no-such-corpus", tmp_path, fallback) is fallback


def _transfer_corpus():
    rows = [(f"{s}-{lab}-{k}", lab, s) for s in ("03", "01", "02") for lab in ("angry", "calm", "sad") for k in (0, 1)]
    table = pd.DataFrame(rows, columns=["id", "label", "speaker"]).assign(path="p")
    return Corpus("toy", ("calm", "angry", "sad"), table)


def test_transfer_subset_keeps_the_first_speakers_and_the_models_classes():
    emodb = ["anger", "boredom", "sadness"]
    speakers, subset = tl.transfer_subset(_transfer_corpus(), emodb, 2)
    assert speakers == ["01", "02"] and set(subset["speaker"]) == {"01", "02"}
    assert set(subset["label"]) == {"angry", "sad"} and len(subset) == 8  # "calm" has no EMODB class
    speakers, subset = tl.transfer_subset(_transfer_corpus(), emodb, 0, per_class=1)
    assert speakers == ["01"] and subset["id"].tolist() == ["01-angry-0", "01-sad-0"]


def test_transfer_confusion_and_the_favourite_class():
    scored = pd.DataFrame(
        {
            "as model class": ["sadness", "anger", "anger", "anger", "anger"],
            "prediction": ["anger", "anger", "anger", "boredom", "sadness"],
        }
    )
    confusion, shown = tl.transfer_confusion(scored, ["anger", "boredom", "sadness", "fear"])
    assert shown == ["anger", "sadness"]  # the model's order, only classes present
    assert list(confusion.columns) == ["anger", "boredom", "sadness", "fear"]
    assert confusion.loc["anger"].tolist() == [50.0, 25.0, 25.0, 0.0]
    assert confusion.loc["sadness"].tolist() == [100.0, 0.0, 0.0, 0.0]
    text = tl.favourite_reading(scored)
    assert text.startswith("The model answers **anger** for 60 % of these utterances")
    assert "whatever their emotion; boredom 20 %, sadness 20 %." in text or "sadness 20 %, boredom 20 %." in text


def test_timeline_figure_marks_the_truth_and_each_segment(tmp_path):
    from eesr_lib import figures

    labels = ["anger", "sadness"]
    segments = pd.DataFrame(
        {
            "start_s": [0.0, 0.8, 1.6],
            "end_s": [1.6, 2.4, 3.2],
            "prediction": ["anger", "sadness", "sadness"],
            "anger": [0.7, 0.4, 0.1],
            "sadness": [0.3, 0.6, 0.9],
            "true": ["anger", None, "sadness"],
        }
    )
    spans = pd.DataFrame(
        {"label": ["angry", "sad"], "as model class": ["anger", "sadness"], "start_s": [0.0, 1.7], "end_s": [1.5, 3.2]}
    )
    fig = figures.timeline_figure(segments, spans, labels, hop_s=0.8, duration_s=3.2)
    ax, strip = fig.axes
    assert [t.get_text() for t in ax.texts] == ["angry", "sad"]
    assert len(strip.collections) == 6  # one bar per segment, for the truth and for the prediction
    assert strip.get_xlim() == (0, 3.2)
    assert [t.get_text() for t in ax.get_legend().get_texts()] == labels


def test_bundle_facts_and_hop_seconds(tmp_path):
    from eesr_lib.bundle import Bundle, bundle_facts
    from eesr_lib.features import SpectrogramParams

    (tmp_path / "weights.safetensors").write_bytes(b"x" * 2_500_000)
    history = [{"steps": 10, "seconds": 60}, {"steps": 20, "seconds": 120}]
    meta = {
        "training": {"dataset": "emodb", "utterances": 535, "variant": "ae+ee+in", "history": history},
        "weights": {"dtype": "bf16"},
        "provenance": {"hardware": {"device": "cpu", "torch_threads": 2}},
    }
    spec = SpectrogramParams()
    bundle = Bundle(tmp_path, None, ("anger", "sadness"), ModelConfig(), TrainConfig(), spec, None, None, meta)
    assert bundle.hop_seconds == pytest.approx(64 * 200 / 16000) and bundle.window_seconds == pytest.approx(1.6)
    facts = bundle_facts(bundle)
    assert facts["trained on"] == "emodb, 535 utterances (unknown)"
    assert facts["model"] == "AE+EE,IN (proposed)" and facts["classes"] == "anger, sadness"
    assert facts["epochs, optimizer steps"] == "2, 20"
    assert facts["training time"] == "3 min on cpu (2 thread(s), ?)"
    assert facts["weights"] == "bf16, bundle 2.5 MB"
    assert facts["scoring windows"] == "1.60 s (128 frames), hop 0.80 s"
    assert facts["code"] == "?"


def test_untrained_bundle_stands_in_with_the_corpus_classes_and_scaling(mini, tmp_path):
    from eesr_lib.bundle import is10_statistics, untrained_bundle

    first = untrained_bundle(mini, tmp_path / "a.bundle", seed=3)
    assert first.labels == tuple(mini.labels) and (tmp_path / "a.bundle" / "bundle.json").is_file()
    _specs, is10 = corpus_features(mini, progress=False)
    np.testing.assert_allclose(first.is10_mean, is10_statistics(is10)[0])
    again = untrained_bundle(mini, tmp_path / "b.bundle", seed=3)  # seeded: the same stand-in every build
    for (name, a), b in zip(first.network.state_dict().items(), again.network.state_dict().values()):
        assert torch.equal(a, b), name
