"""Emotion over time in a long recording: a bundle's probabilities segment by segment.

The network was trained on single acted utterances of one to eight seconds, each with the IS10
functionals of the *whole* utterance. A long recording (a talk, an interview, several utterances
played back to back) is not one utterance: scoring its 1.6 s windows against the IS10 vector of
the whole file, as :meth:`eesr_lib.bundle.Bundle.scores` does for an utterance, would give every
window the same summary of everything else that was said. So a timeline cuts the recording into
*segments* (by default one scoring window long, at the window hop) and scores each segment as if
it were an utterance of its own: its own spectrogram windows and its own IS10 vector.

:func:`join_recordings` builds such a recording from labelled utterances (with their true
labels as spans; :func:`one_per_class` picks one speaker's), :func:`segment_labels` says which
true label each segment covers and :func:`map_labels` translates another corpus's class names to
the model's (RAVDESS's "angry" is EMODB's "anger"; "calm" has no EMODB class), so that a timeline
can be checked against the truth.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from .audio import read_audio
from .bundle import Bundle
from .corpora import Corpus, load_corpus
from .crops import windows
from .errors import EESRError

# Other corpora's class names -> the names EMODB (and IEMOCAP/nEMO) use; a name that is already
# one of the model's labels maps to itself. Classes absent here and from the model map to None.
SYNONYMS = {
    "angry": "anger",
    "happy": "happiness",
    "sad": "sadness",
    "fearful": "fear",
    "disgusted": "disgust",
    "bored": "boredom",
}
# what :func:`agreement` reports, in this order
AGREEMENT = ("windows scored", "prediction = true class (%)", "mean probability of the true class")


def segment_bounds(n_samples: int, sample_rate: int, segment_s: float, hop_s: float) -> np.ndarray:
    """``(S, 2)`` sample bounds ``[start, end)`` of the segments: starts 0, hop, 2·hop, ... and one
    segment flush with the end (as :func:`eesr_lib.crops.window_starts`), so that no sample at
    the end goes unscored; a recording shorter than one segment is one segment."""
    if n_samples <= 0:
        raise EESRError("Cannot cut an empty recording into segments")
    if segment_s <= 0 or hop_s <= 0:
        raise EESRError(f"Segment length and hop must be positive, got {segment_s} s and {hop_s} s")
    length = max(1, int(round(segment_s * sample_rate)))
    hop = max(1, int(round(hop_s * sample_rate)))
    last = max(n_samples - length, 0)
    starts = list(range(0, last + 1, hop))
    if starts[-1] != last:
        starts.append(last)
    starts = np.asarray(starts, dtype=np.int64)
    return np.stack([starts, np.minimum(starts + length, n_samples)], axis=1)


def score_segments(
    bundle: Bundle,
    wav: np.ndarray,
    segment_s: float | None = None,
    hop_s: float | None = None,
    on_note=None,
) -> pd.DataFrame:
    """One row per segment of ``wav`` (mono, at the bundle's sample rate): ``start_s``, ``end_s``,
    ``prediction`` and one probability column per class.

    Each segment is scored as an utterance (its windows' probabilities averaged as in training,
    ``score_average``) with IS10 functionals of the segment alone. Defaults: one scoring window
    (1.6 s) per segment, hop the window hop (0.8 s), i.e. the windows :meth:`Bundle.scores` would
    use, each with its own IS10. ``on_note`` receives the notes of short segments (padding).
    """
    sr = bundle.spectrogram.sample_rate
    frame_s = bundle.spectrogram.hop_length / sr
    segment_s = bundle.window_seconds if segment_s is None else segment_s
    hop_s = bundle.train_cfg.window_hop * frame_s if hop_s is None else hop_s
    wav = np.asarray(wav, dtype=np.float32)
    if wav.ndim != 1:
        raise EESRError(f"A timeline needs a mono signal, got shape {wav.shape}")
    bounds = segment_bounds(len(wav), sr, segment_s, hop_s)
    cfg, tc = bundle.model_cfg, bundle.train_cfg
    crops, feats, owner = [], [], []
    for i, (a, b) in enumerate(bounds):
        spec, is10, notes = bundle.signal_features(wav[a:b], f"segment {a / sr:.2f}-{b / sr:.2f} s")
        for note in notes:
            if on_note:
                on_note(note)
        w = windows(spec, cfg.crop_frames, tc.window_hop, tc.pad_mode)
        crops.append(w)
        owner += [i] * len(w)
        if is10 is not None:
            feats.append(np.repeat(is10[None], len(w), axis=0))
    owner = np.asarray(owner)
    logits = bundle.window_logits(np.concatenate(crops), np.concatenate(feats) if feats else None)
    probs = np.stack([bundle.average(logits[owner == i]) for i in range(len(bounds))])
    table = pd.DataFrame(probs, columns=list(bundle.labels))
    table.insert(0, "prediction", [bundle.labels[k] for k in probs.argmax(1)])
    table.insert(0, "end_s", bounds[:, 1] / sr)
    table.insert(0, "start_s", bounds[:, 0] / sr)
    return table


def join_recordings(
    paths: Sequence[str | Path],
    labels: Sequence[str],
    ids: Sequence[str] | None = None,
    sample_rate: int = 16000,
    gap_s: float = 0.5,
) -> tuple[np.ndarray, pd.DataFrame]:
    """The files played back to back with ``gap_s`` of silence between them, and a table of
    spans (``id``, ``label``, ``start_s``, ``end_s``): a long recording whose truth is known."""
    if len(paths) != len(labels) or (ids is not None and len(ids) != len(paths)):
        raise EESRError(f"{len(paths)} paths, {len(labels)} labels and {len(ids or paths)} ids do not match")
    if not len(paths):
        raise EESRError("No recordings to join")
    gap = np.zeros(int(round(gap_s * sample_rate)), dtype=np.float32)
    parts, rows, at = [], [], 0
    for i, (path, label) in enumerate(zip(paths, labels)):
        if i:
            parts.append(gap)
            at += len(gap)
        wav = read_audio(path, sample_rate)
        name = str(ids[i]) if ids is not None else str(path)
        rows.append((name, label, at / sample_rate, (at + len(wav)) / sample_rate))
        parts.append(wav)
        at += len(wav)
    return np.concatenate(parts), pd.DataFrame(rows, columns=["id", "label", "start_s", "end_s"])


def one_per_class(corpus: Corpus, speaker: str) -> pd.DataFrame:
    """One utterance of ``speaker`` per class, in the corpus's class order: the first by id, of the
    strongest intensity where the corpus records one (RAVDESS acts each emotion "normal" and
    "strong", neutral only "normal"), so that a short recording shows each emotion clearly."""
    table = corpus.table[corpus.table["speaker"].astype(str) == str(speaker)]
    if table.empty:
        raise EESRError(f"No utterance of speaker {speaker!r} in {corpus.name}")
    keys = ["id"]
    if "intensity" in table:
        table = table.assign(_weak=table["intensity"] != "strong")
        keys = ["_weak", "id"]
    picked = table.sort_values(keys).groupby("label", sort=False).head(1)
    order = {lab: i for i, lab in enumerate(corpus.labels)}
    picked = picked.sort_values("label", key=lambda s: s.map(order))
    return picked.drop(columns="_weak", errors="ignore").reset_index(drop=True)


def segment_labels(segments: pd.DataFrame, spans: pd.DataFrame, min_share: float = 0.5) -> pd.Series:
    """The true label of each segment: the label of the span that covers the largest part of it,
    if that part is at least ``min_share`` of the segment; None where the segment is mostly silence
    between spans or straddles two spans without a majority (its truth is mixed)."""
    out = []
    for a, b in zip(segments["start_s"], segments["end_s"]):
        overlap = (np.minimum(spans["end_s"], b) - np.maximum(spans["start_s"], a)).clip(lower=0)
        best = int(np.argmax(overlap.to_numpy())) if len(spans) else -1
        share = overlap.iloc[best] / (b - a) if best >= 0 and b > a else 0.0
        out.append(spans["label"].iloc[best] if share >= min_share else None)
    return pd.Series(out, index=segments.index, name="true", dtype=object)


def map_labels(labels: Sequence[str | None], model_labels: Sequence[str]) -> list[str | None]:
    """Another corpus's class names in the model's names (:data:`SYNONYMS`); None for a class the
    model does not have (RAVDESS's calm and surprised for an EMODB model), which no prediction
    can get right and which a cross-corpus score must leave out."""
    known = set(model_labels)
    out = []
    for lab in labels:
        name = None if lab is None else SYNONYMS.get(lab, lab)
        out.append(name if name in known else None)
    return out


def agreement(scored: pd.DataFrame, truth: pd.Series) -> dict:
    """How well a timeline matches the truth: of the segments whose true class the model has
    (``truth`` not None, e.g. from :func:`segment_labels` then :func:`map_labels`), how many
    there are, the share (%) predicted as that class, and the mean probability given to it."""
    known = truth.notna().to_numpy()
    if not known.any():
        return dict.fromkeys(AGREEMENT, np.nan) | {AGREEMENT[0]: 0}
    rows = scored[known]
    true = truth[known].to_numpy()
    p_true = [rows[t].iloc[i] for i, t in enumerate(true)]
    right = 100.0 * float(np.mean(rows["prediction"].to_numpy() == true))
    return dict(zip(AGREEMENT, (int(known.sum()), right, float(np.mean(p_true)))))


# AGREEMENT's columns as the chapter prints them
AGREEMENT_FORMAT = dict(zip(AGREEMENT, ("{:.0f}", "{:.0f}", "{:.2f}")))


def source_corpus(name: str, data_root: str | Path | None, fallback: Corpus) -> Corpus:
    """Corpus ``name`` if it can be loaded here, else ``fallback``: a page about another corpus
    still runs (on the fallback's utterances, and says so) where that corpus is not downloaded."""
    try:
        return load_corpus(name, data_root)
    except EESRError:
        return fallback


def whole_recording_windows(bundle: Bundle, wav: np.ndarray) -> pd.DataFrame:
    """The windows of ``wav`` scored as :meth:`Bundle.scores` scores one utterance, every window
    with the IS10 vector of the *whole* recording; the columns of :func:`score_segments`. It is
    what a timeline avoids, kept to show what that choice changes."""
    sr = bundle.spectrogram.sample_rate
    _, probs, starts = bundle.scores(*bundle.signal_features(wav)[:2])
    labels = list(bundle.labels)
    table = pd.DataFrame(probs, columns=labels)
    table.insert(0, "prediction", [labels[k] for k in probs.argmax(1)])
    table.insert(0, "end_s", np.minimum(starts + bundle.window_seconds, len(wav) / sr))
    table.insert(0, "start_s", starts)
    return table


def own_vs_whole_is10(bundle: Bundle, wav: np.ndarray, segments: pd.DataFrame, spans: pd.DataFrame) -> pd.DataFrame:
    """:func:`agreement` of the timeline ``segments`` (with their ``true`` column) beside that of
    the same windows scored with the whole recording's IS10 (:func:`whole_recording_windows`)."""
    whole = whole_recording_windows(bundle, wav)
    truth = pd.Series(map_labels(segment_labels(whole, spans), bundle.labels), index=whole.index)
    return pd.DataFrame(
        {
            "each window, its own IS10": agreement(segments, segments["true"]),
            "each window, the whole recording's IS10": agreement(whole, truth),
        }
    ).T


def is10_reading(compare: pd.DataFrame, segments: pd.DataFrame, n_labels: int) -> str:
    """What :func:`own_vs_whole_is10` shows, in words: how many windows the choice of IS10 vector
    changes (hardly any: at most a tenth, or one), and which class the timeline answers most."""
    own, blended = compare["prediction = true class (%)"]
    n_known = int(compare["windows scored"].iloc[0])
    differ = round(abs(own - blended) * n_known / 100)
    top = segments["prediction"].value_counts()
    return (
        f"With its own IS10, {own:.0f} % of the windows get the true class; with the whole recording's, "
        f"{blended:.0f} % (one class in {n_labels}, at random: {100 / n_labels:.0f} %). "
        + (
            f"That is {differ} window(s) of {n_known}: on this recording the choice hardly matters. "
            if differ <= max(1, n_known // 10)
            else f"That is {differ} windows of {n_known}. "
        )
        + "It matters where a recording is long and its parts differ: one vector for all of it describes none "
        "of them, which is why `eesr predict --timeline` scores each segment on its own. Over the whole "
        f"timeline the model answers **{top.index[0]}** for {100 * top.iloc[0] / len(segments):.0f} % of the "
        "segments, silences between utterances included."
    )


# Cross-corpus transfer: a corpus's utterances scored one file at a time, as `eesr predict` does.


def transfer_subset(
    corpus: Corpus, model_labels: Sequence[str], n_speakers: int, per_class: int | None = None
) -> tuple[list, pd.DataFrame]:
    """The first ``n_speakers`` speakers of ``corpus`` (at least one) and their utterances of the
    classes the model has (:func:`map_labels`): the others no answer can get right. ``per_class``
    keeps only that many of each class (a quick check)."""
    speakers = sorted(corpus.table["speaker"].unique())[: max(1, int(n_speakers))]
    subset = corpus.table[corpus.table["speaker"].isin(speakers)]
    subset = subset[[m is not None for m in map_labels(subset["label"], model_labels)]]
    if per_class is not None:
        subset = subset.groupby("label").head(per_class)
    return speakers, subset


def transfer_confusion(scored: pd.DataFrame, model_labels: Sequence[str]) -> tuple[pd.DataFrame, list[str]]:
    """Where each true class went, in % of its utterances (rows: the classes present, in the model's
    order; columns: every class of the model), and those classes. ``scored`` has ``as model class``
    and ``prediction`` columns (:func:`eesr_lib.predict.predict_table`, :func:`map_labels`)."""
    present = set(scored["as model class"])
    shown = [lab for lab in model_labels if lab in present]
    confusion = pd.crosstab(scored["as model class"], scored["prediction"], normalize="index") * 100
    return confusion.reindex(index=shown, columns=list(model_labels), fill_value=0.0), shown


def favourite_reading(scored: pd.DataFrame) -> str:
    """Which class the model answers most on another corpus, and how often each other class: a
    model that answers mostly one class carries cues of the corpus, not of emotion."""
    favourite = scored["prediction"].value_counts()
    n = len(scored)
    return (
        f"The model answers **{favourite.index[0]}** for {100 * favourite.iloc[0] / n:.0f} % of "
        f"these utterances, whatever their emotion; "
        + ", ".join(f"{lab} {100 * k / n:.0f} %" for lab, k in favourite.iloc[1:].items())
        + ". A model that answers mostly one class has learned cues that do not carry across the corpus gap "
        "(voice, language, recording chain) as much as cues of emotion."
    )
