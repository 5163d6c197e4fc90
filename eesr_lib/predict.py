"""``eesr predict``: a model bundle's class probabilities for audio files, folders or manifests.

Inputs are found here (:func:`find_inputs`), scored by :class:`eesr_lib.bundle.Bundle` one
file at a time (:func:`predict_files`: a file that cannot be read is reported and skipped,
the rest is still predicted) and written as a table, CSV or JSON.
"""

from __future__ import annotations

import csv
import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from .audio import read_audio
from .bundle import Bundle
from .corpora import read_manifest
from .errors import EESRError
from .timeline import score_segments

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg")
DECIMALS = 4


@dataclass(frozen=True)
class Input:
    id: str  # what the output calls it: the path as given, or a manifest's id
    path: str


def find_inputs(inputs: list[str], on_error: Callable[[str], None]) -> tuple[list[Input], bool]:
    """The files named by ``inputs`` and whether any came from a folder or manifest.

    A folder is searched recursively for ``.wav``, ``.flac`` and ``.ogg`` files (hidden ones,
    e.g. macOS ``._*`` files, skipped); a ``.csv`` is a manifest (only its ``path`` column is
    needed; ids as in :func:`eesr_lib.corpora.read_manifest`); anything else is taken as an
    audio file whatever its name. A folder with no audio or an unreadable manifest is reported
    through ``on_error`` and skipped.
    """
    found, many = [], False
    for text in inputs:
        p = Path(text)
        if p.is_dir():
            many = True
            files = sorted(
                f
                for f in p.rglob("*")
                if f.suffix.lower() in AUDIO_SUFFIXES
                and not any(part.startswith(".") for part in f.relative_to(p).parts)
                and f.is_file()
            )
            if not files:
                on_error(f"{p}: no {', '.join(AUDIO_SUFFIXES)} files in this folder")
            found += [Input(str(f), str(f)) for f in files]
        elif p.suffix.lower() == ".csv" and p.is_file():
            many = True
            try:
                table = read_manifest(p, required=("path",), check_files=False)
            except EESRError as exc:
                on_error(str(exc))
                continue
            found += [Input(str(i), str(f)) for i, f in zip(table["id"], table["path"])]
        else:
            found.append(Input(text, text))
    return found, many


def predict_files(
    bundle: Bundle,
    inputs: list[Input],
    on_error: Callable[[str], None],
    progress: bool | None = None,
    timeline: bool = False,
) -> list[dict]:
    """One record per file that could be predicted: ``id``, ``path``, ``duration_s``,
    ``prediction``, ``probabilities`` (label -> p) and, with ``timeline``, ``windows`` (each
    ``start_s``, ``end_s``, ``prediction``, ``probabilities``). Files that cannot be read go to
    ``on_error`` (one line each). ``progress``: None shows a bar only on a terminal.

    The file's probabilities are those of one utterance (IS10 of the whole file). A timeline's
    windows are scored each on its own audio, IS10 included (:func:`eesr_lib.timeline.score_segments`):
    in a long recording the whole file's IS10 would blend everything said into every window."""
    labels = bundle.labels
    out = []
    bar = tqdm(inputs, desc="predict", unit="file", disable=True if progress is False else None, file=sys.stderr)
    for item in bar:
        notes = []
        try:
            wav = read_audio(item.path, bundle.spectrogram.sample_rate)
            spec, is10, notes = bundle.signal_features(wav, item.path)
            probs = bundle.scores(spec, is10)[0]
            segments = score_segments(bundle, wav) if timeline else None
        except Exception as exc:  # any failure on one file (unreadable, not audio, ...) must not stop the rest
            msg = " ".join(str(exc).split()) or type(exc).__name__
            on_error(msg if item.path in msg else f"{item.path}: {msg}")
            continue
        for note in notes:
            tqdm.write(f"eesr: note: {note}", file=sys.stderr)
        record = {
            "id": item.id,
            "path": os.path.abspath(item.path),
            "duration_s": round(len(wav) / bundle.spectrogram.sample_rate, 3),
            "prediction": labels[int(probs.argmax())],
            "probabilities": {lab: round(float(p), DECIMALS) for lab, p in zip(labels, probs)},
        }
        if segments is not None:
            record["windows"] = [
                {
                    "start_s": round(float(row["start_s"]), 3),
                    "end_s": round(float(row["end_s"]), 3),
                    "prediction": row["prediction"],
                    "probabilities": {lab: round(float(row[lab]), DECIMALS) for lab in labels},
                }
                for row in segments.to_dict("records")
            ]
        out.append(record)
    return out


def predict_table(
    bundle: Bundle, table: pd.DataFrame, on_error: Callable[[str], None] | None = None
) -> tuple[pd.DataFrame, np.ndarray]:
    """:func:`predict_files` on the files of a corpus table (``id``, ``path``, and ``label`` /
    ``speaker`` if it has them): one row per file predicted (``id``, ``speaker``, ``true``,
    ``prediction``, ``confidence``, the largest probability) and the ``(N, K)`` probabilities in
    the bundle's label order, in the same order. Why: to score a labelled corpus the model never
    saw (a cross-corpus check) exactly as ``eesr predict`` scores a user's files."""
    errors = []
    inputs = [Input(str(i), str(p)) for i, p in zip(table["id"], table["path"])]
    records = predict_files(bundle, inputs, on_error or errors.append, progress=False)
    rows = table.assign(id=table["id"].astype(str)).set_index("id").loc[[r["id"] for r in records]]
    out = pd.DataFrame(
        {
            "id": [r["id"] for r in records],
            "speaker": rows["speaker"].to_numpy() if "speaker" in rows else None,
            "true": rows["label"].to_numpy() if "label" in rows else None,
            "prediction": [r["prediction"] for r in records],
            "confidence": [max(r["probabilities"].values()) for r in records],
        }
    )
    probs = np.array([[r["probabilities"][lab] for lab in bundle.labels] for r in records], dtype=np.float64)
    return out, probs.reshape(len(records), len(bundle.labels))


# ------------------------------------------------------------------ output


def write_json(records: list[dict], labels: tuple[str, ...], stream=None) -> None:
    stream = stream or sys.stdout
    json.dump({"labels": list(labels), "predictions": records}, stream, indent=1, ensure_ascii=False)
    stream.write("\n")


def write_csv(records: list[dict], labels: tuple[str, ...], timeline: bool = False, stream=None) -> None:
    """One row per file, or with ``timeline`` one row per window (``start_s``, ``end_s``)."""
    stream = stream or sys.stdout
    writer = csv.writer(stream, lineterminator="\n")
    writer.writerow(["id", "path"] + (["start_s", "end_s"] if timeline else []) + ["prediction", *labels])
    for r in records:
        rows = r["windows"] if timeline else [r]
        for w in rows:
            span = [w["start_s"], w["end_s"]] if timeline else []
            writer.writerow([r["id"], r["path"], *span, w["prediction"], *(w["probabilities"][lab] for lab in labels)])


def write_table(records: list[dict], labels: tuple[str, ...], timeline: bool = False, stream=None) -> None:
    """Aligned text: one line per file (its windows indented below it with ``timeline``)."""
    stream = stream or sys.stdout
    rows = []
    for r in records:
        rows.append([r["id"], r["prediction"], *(f"{r['probabilities'][lab]:.3f}" for lab in labels)])
        for w in r.get("windows", []) if timeline else []:
            span = f"  {w['start_s']:7.2f}-{w['end_s']:.2f} s"
            rows.append([span, w["prediction"], *(f"{w['probabilities'][lab]:.3f}" for lab in labels)])
    header = ["file", "prediction", *labels]
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        first = str(row[0]).ljust(widths[0])
        stream.write(
            "  ".join([first, str(row[1]).ljust(widths[1])] + [str(c).rjust(w) for c, w in zip(row[2:], widths[2:])])
        )
        stream.write("\n")
