"""Corpora as tables of utterances: ``id, path, label, speaker`` (and ``session``).

Labels always come from each corpus's own documented naming scheme (EMODB's and
RAVDESS's file names, IEMOCAP's EmoEvaluation files) or from a user's manifest CSV,
never from third-party label lists. Each corpus has a fixed label order so that class
indices mean the same thing in every result file.

Where the data lives: ``--data-root`` > ``$EESR_DATA`` > ``data/`` in the project.
The data root holds one folder per corpus (``emodb/``, ``ravdess/``, ``iemocap/``, ``nemo/``);
pointing it at a corpus folder itself also works.
"""

from __future__ import annotations

import csv
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import EESRError

PROJECT_ROOT = Path(__file__).resolve().parents[1]

EMODB_CODES = {
    "W": "anger",
    "L": "boredom",
    "E": "disgust",
    "A": "fear",
    "F": "happiness",
    "T": "sadness",
    "N": "neutral",
}
EMODB_LABELS = ("anger", "boredom", "disgust", "fear", "happiness", "neutral", "sadness")
_EMODB_NAME = re.compile(r"^(\d{2})([a-b]\d{2})([A-Z])([a-z])\.(wav|flac)$")

RAVDESS_CODES = {
    "01": "neutral",
    "02": "calm",
    "03": "happy",
    "04": "sad",
    "05": "angry",
    "06": "fearful",
    "07": "disgust",
    "08": "surprised",
}
RAVDESS_LABELS = tuple(RAVDESS_CODES.values())
_RAVDESS_NAME = re.compile(r"^03-01-(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})\.(wav|flac)$")

# IEMOCAP's 4-class setup used by the paper: excited is merged into happy.
IEMOCAP_MAP = {"ang": "anger", "hap": "happiness", "exc": "happiness", "neu": "neutral", "sad": "sadness"}
IEMOCAP_LABELS = ("anger", "happiness", "neutral", "sadness")
_IEMOCAP_LINE = re.compile(r"^\[(\S+) - (\S+)\]\t(\S+)\t(\S+)\t\[")

# nEMO (Christop 2024, Polish, 9 actors; data.tsv names the emotion of every file) as an open stand-in
# for IEMOCAP: its anger, happiness, neutral, sadness are IEMOCAP's four classes, same names and order,
# so class indices and per-class scores line up with the paper's IEMOCAP tables. Its other two
# emotions, named "fear" and "surprised" in data.tsv, are dropped by "nemo" and kept by "nemo6"
# (after the four, so that indices 0-3 mean the same in both).
NEMO_EMOTIONS = ("anger", "fear", "happiness", "neutral", "sadness", "surprised")  # data.tsv's names
NEMO_LABELS = IEMOCAP_LABELS
NEMO6_LABELS = IEMOCAP_LABELS + ("fear", "surprised")
NEMO_COLUMNS = ("file_id", "emotion", "speaker_id")  # the columns of data.tsv that the loader reads

DATASETS = ("emodb", "ravdess", "iemocap", "nemo", "nemo6")
# corpus variants read from another corpus's folder: "nemo6" is the six-class view of nemo/
CORPUS_FOLDER = {"nemo6": "nemo"}


@dataclass(frozen=True)
class Corpus:
    """A labelled corpus: its name, fixed label order, and one row per utterance."""

    name: str
    labels: tuple[str, ...]
    table: pd.DataFrame

    @property
    def y(self) -> np.ndarray:
        """Class indices in the order of :attr:`labels`."""
        index = {lab: i for i, lab in enumerate(self.labels)}
        return self.table["label"].map(index).to_numpy(dtype=np.int64, copy=True)

    @property
    def paths(self) -> list[str]:
        return self.table["path"].tolist()

    def __len__(self) -> int:
        return len(self.table)

    def summary(self) -> pd.DataFrame:
        """Class x speaker counts with totals, in the corpus's label order."""
        tab = pd.crosstab(self.table["label"], self.table["speaker"], margins=True, margins_name="total")
        return tab.reindex(list(self.labels) + ["total"])


def resolve_data_root(data_root: str | Path | None = None) -> Path:
    """``data_root`` if given, else ``$EESR_DATA``, else ``data/`` in the project root."""
    if data_root is not None:
        return Path(data_root).expanduser()
    env = os.environ.get("EESR_DATA")
    return Path(env).expanduser() if env else PROJECT_ROOT / "data"


def corpus_dir(name: str, data_root: str | Path | None = None) -> Path:
    """The folder of corpus ``name`` under the data root (or the root itself if it is one)."""
    root = resolve_data_root(data_root)
    folder = CORPUS_FOLDER.get(name, name)
    if (root / folder).is_dir():
        return root / folder
    markers = {"emodb": "wav", "ravdess": "Actor_01", "iemocap": "Session1", "nemo": "data.tsv"}
    if (root / markers.get(folder, "\0")).exists():
        return root
    hint = f" (or run `eesr download {folder}`)." if folder in ("emodb", "nemo") else "."
    raise EESRError(
        f"Corpus '{name}' not found under data root {root}. Set EESR_DATA or --data-root "
        f"to the folder that holds '{folder}/'" + hint
    )


def _table(rows: list[dict], name: str, root: Path) -> pd.DataFrame:
    if not rows:
        raise EESRError(f"No audio files of corpus '{name}' found in {root}")
    return pd.DataFrame(rows).sort_values("id", kind="stable").reset_index(drop=True)


def load_emodb(root: str | Path) -> Corpus:
    """EMODB: ``wav/SSTTTEV.wav``; speaker = SS, emotion = E (German initial).

    A ``.flac`` of the same name is read too: a lossless copy (the same samples) is how the corpus
    travels to a rented GPU within its upload limit (scripts/device_kit.py).
    """
    root = Path(root)
    wav_dir = root / "wav"
    if not wav_dir.is_dir():
        raise EESRError(f"EMODB folder {root} has no wav/ subfolder")
    rows, seen = [], {}
    for path in sorted([*wav_dir.glob("*.wav"), *wav_dir.glob("*.flac")]):
        m = _EMODB_NAME.match(path.name)
        if not m:
            raise EESRError(f"Not an EMODB file name (expected e.g. 03a01Fa.wav): {path}")
        if path.stem in seen:
            raise EESRError(f"EMODB utterance {path.stem} is there twice: {seen[path.stem]} and {path}; keep one")
        seen[path.stem] = path
        speaker, _text, code, _version, _ext = m.groups()
        if code not in EMODB_CODES:
            raise EESRError(f"Unknown EMODB emotion code '{code}' in {path}")
        rows.append({"id": path.stem, "path": str(path), "label": EMODB_CODES[code], "speaker": speaker})
    return Corpus("emodb", EMODB_LABELS, _table(rows, "emodb", root))


def load_ravdess(root: str | Path) -> Corpus:
    """RAVDESS speech: ``Actor_NN/03-01-EE-II-SS-RR-AA.(wav|flac)``; speaker = AA."""
    root = Path(root)
    rows = []
    for path in sorted(root.glob("Actor_*/*")):
        if path.suffix.lower() not in (".wav", ".flac"):
            continue
        m = _RAVDESS_NAME.match(path.name)
        if not m:
            raise EESRError(f"Not a RAVDESS speech file name (03-01-EE-II-SS-RR-AA): {path}")
        emotion, intensity, _statement, _rep, actor = m.groups()[:5]
        if emotion not in RAVDESS_CODES:
            raise EESRError(f"Unknown RAVDESS emotion code '{emotion}' in {path}")
        rows.append(
            {
                "id": path.stem,
                "path": str(path),
                "label": RAVDESS_CODES[emotion],
                "speaker": actor,
                "intensity": "strong" if intensity == "02" else "normal",
            }
        )
    return Corpus("ravdess", RAVDESS_LABELS, _table(rows, "ravdess", root))


def iemocap_speaker(utterance_id: str) -> str:
    """``Ses01F_impro01_M000`` -> ``Ses01M``: the session plus the *utterance's* speaker.

    The letter after the session names who wore the markers in the dialog, not who
    speaks; the speaker of an utterance is the gender letter of its last field.
    """
    return utterance_id[:5] + utterance_id.rsplit("_", 1)[-1][0]


def load_iemocap(root: str | Path) -> Corpus:
    """IEMOCAP (4 classes: ang, hap+exc, neu, sad; all other labels dropped).

    Layout of the USC release: ``SessionN/sentences/wav/<dialog>/<utt>.wav`` with labels in
    ``SessionN/dialog/EmoEvaluation/<dialog>.txt``, one line per utterance such as
    ``[6.2901 - 8.2357]<TAB>Ses01F_impro01_F000<TAB>neu<TAB>[2.5000, 2.5000, 2.5000]``.
    """
    root = Path(root)
    sessions = sorted(root.glob("Session[1-5]"))
    if not sessions:
        raise EESRError(f"IEMOCAP folder {root} has no Session1..Session5 subfolders")
    rows = []
    for session in sessions:
        eval_dir = session / "dialog" / "EmoEvaluation"
        if not eval_dir.is_dir():
            raise EESRError(f"IEMOCAP session {session} has no dialog/EmoEvaluation/ folder")
        for label_file in sorted(eval_dir.glob("*.txt")):
            dialog = label_file.stem
            for line in label_file.read_text(encoding="utf-8", errors="replace").splitlines():
                m = _IEMOCAP_LINE.match(line)
                if not m:
                    continue
                _start, _end, utt, code = m.groups()
                if code not in IEMOCAP_MAP:
                    continue
                wav = session / "sentences" / "wav" / dialog / f"{utt}.wav"
                if not wav.is_file():
                    raise EESRError(f"IEMOCAP label file {label_file} names {utt}, but {wav} is missing")
                rows.append(
                    {
                        "id": utt,
                        "path": str(wav),
                        "label": IEMOCAP_MAP[code],
                        "speaker": iemocap_speaker(utt),
                        "session": int(session.name[-1]),
                    }
                )
    return Corpus("iemocap", IEMOCAP_LABELS, _table(rows, "iemocap", root))


def read_nemo_tsv(tsv: str | Path) -> pd.DataFrame:
    """nEMO's ``data.tsv`` as a table of strings, checked: the columns the loader needs, no empty
    cell in them, every emotion one of :data:`NEMO_EMOTIONS`, no file named twice.

    Columns of the release: ``file_id`` (``{speaker}_{emotion}_{sentence}.wav``), ``emotion``,
    ``raw_text``, ``normalized_text``, ``speaker_id`` (left-padded with spaces: stripped here),
    ``gender``, ``age``. The texts hold no quoting, so quote characters are read as text.
    """
    tsv = Path(tsv)
    if not tsv.is_file():
        raise EESRError(f"nEMO label file not found: {tsv}")
    try:
        table = pd.read_csv(tsv, sep="\t", dtype=str, quoting=csv.QUOTE_NONE, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise EESRError(f"nEMO label file {tsv} is not a readable UTF-8 tab-separated file: {exc}") from exc
    table.columns = [str(c).strip() for c in table.columns]
    missing = [c for c in NEMO_COLUMNS if c not in table.columns]
    if missing:
        raise EESRError(f"nEMO label file {tsv} lacks column(s) {missing}; found {list(table.columns)}")
    if table.empty:
        raise EESRError(f"nEMO label file {tsv} has no rows")
    for col in NEMO_COLUMNS:
        table[col] = table[col].fillna("").str.strip()  # a short row's missing cells are NaN
        empty = table[col] == ""
        if empty.any():
            raise EESRError(f"nEMO label file {tsv}: line {int(empty.to_numpy().argmax()) + 2} has no {col}")
    unknown = ~table["emotion"].isin(NEMO_EMOTIONS)
    if unknown.any():
        i = int(unknown.to_numpy().argmax())
        raise EESRError(
            f"nEMO label file {tsv}: line {i + 2} ({table.at[i, 'file_id']}) has unknown emotion "
            f"'{table.at[i, 'emotion']}'; nEMO's are {', '.join(NEMO_EMOTIONS)}"
        )
    odd = table["file_id"].map(lambda f: Path(f).name != f or f in (".", ".."))
    if odd.any():
        i = int(odd.to_numpy().argmax())
        raise EESRError(f"nEMO label file {tsv}: line {i + 2} has file_id '{table.at[i, 'file_id']}', not a file name")
    dup = table["file_id"].duplicated()
    if dup.any():
        raise EESRError(f"nEMO label file {tsv}: {table.loc[dup, 'file_id'].iloc[0]} is listed twice")
    return table


def nemo_audio(root: Path, file_id: str) -> Path | None:
    """The audio of a data.tsv row: ``samples/<file_id>`` as released (24 kHz .wav), or the same
    stem as ``.flac`` (a converted copy, such as the shared 16 kHz one); None if neither exists."""
    for path in (root / "samples" / file_id, (root / "samples" / file_id).with_suffix(".flac")):
        if path.is_file():
            return path
    return None


def load_nemo(root: str | Path, six: bool = False) -> Corpus:
    """nEMO from its own ``data.tsv`` and ``samples/``: IEMOCAP's four classes, or all six with ``six``.

    The four (``load_corpus("nemo")``) keep the release's anger, happiness, neutral, sadness, named
    and ordered as :data:`IEMOCAP_LABELS`; fear and surprised are dropped. ``load_corpus("nemo6")``
    keeps all six, labels :data:`NEMO6_LABELS`, and needs a copy that holds all six (the full
    release, as ``eesr download nemo`` fetches it). Speaker = ``speaker_id``, stripped of its
    padding; ``gender`` is kept where data.tsv has it. A row whose audio is missing is an error.
    """
    root = Path(root)
    tsv = root / "data.tsv"
    table = read_nemo_tsv(tsv)
    labels = NEMO6_LABELS if six else NEMO_LABELS
    table = table[table["emotion"].isin(labels)]
    absent = [lab for lab in labels if lab not in set(table["emotion"])]
    if absent:
        hint = " (a copy of the four IEMOCAP classes only? `eesr download nemo` fetches all six)" if six else ""
        raise EESRError(f"nEMO label file {tsv} has no {', '.join(absent)} recordings{hint}")
    has_gender = "gender" in table.columns
    rows = []
    for _, r in table.iterrows():
        path = nemo_audio(root, r["file_id"])
        if path is None:
            raise EESRError(
                f"nEMO label file {tsv} names {r['file_id']}, but {root / 'samples' / r['file_id']} is missing"
            )
        row = {"id": Path(r["file_id"]).stem, "path": str(path), "label": r["emotion"], "speaker": r["speaker_id"]}
        if has_gender:
            row["gender"] = r["gender"].strip()
        rows.append(row)
    return Corpus("nemo6" if six else "nemo", labels, _table(rows, "nemo", root))


def read_manifest(
    csv_path: str | Path, required: tuple[str, ...] = ("path",), check_files: bool = True
) -> pd.DataFrame:
    """A manifest CSV as a table with absolute ``path`` and a unique ``id`` per row.

    Columns are found by name (order does not matter; names are stripped of spaces, a UTF-8
    byte-order mark is skipped) and columns other than those used are ignored. Paths are
    relative to the CSV's folder (absolute ones are taken as they are) and may hold spaces
    and any letters. Without an ``id`` column (or where its cell is empty) an utterance's id
    is its path relative to the manifest as written there, e.g. ``spk1/001.wav``: unique
    unless the same file is listed twice. An explicit ``id`` column wins; a duplicate id,
    explicit or not, is an error naming both rows. ``check_files``: a missing file is an
    error here (else the caller meets it when reading the audio).
    """
    csv_path = Path(csv_path)
    if not csv_path.is_file():
        raise EESRError(f"Manifest not found: {csv_path}")
    try:
        table = pd.read_csv(csv_path, dtype=str, encoding="utf-8-sig")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise EESRError(f"Manifest {csv_path} is not a readable UTF-8 CSV file: {exc}") from exc
    table.columns = [str(c).strip() for c in table.columns]
    missing = set(required) - set(table.columns)
    if missing:
        raise EESRError(f"Manifest {csv_path} lacks column(s) {sorted(missing)}; it needs {','.join(required)}")
    if table.empty:
        raise EESRError(f"Manifest {csv_path} has no rows")
    empty = table["path"].isna()
    if empty.any():
        raise EESRError(f"Manifest {csv_path}: line {int(empty.to_numpy().argmax()) + 2} has no path")
    folder = os.path.abspath(csv_path.parent)
    # the id: the path as the manifest names it, normalized, relative to the CSV (symlinks not followed)
    relative = [
        Path(os.path.relpath(os.path.normpath(os.path.join(folder, p)), folder)).as_posix() for p in table["path"]
    ]
    table["path"] = [str((csv_path.parent / p).resolve()) for p in table["path"]]
    if check_files:
        for p in table["path"]:
            if not Path(p).is_file():
                raise EESRError(f"Manifest {csv_path} names a missing audio file: {p}")
    if "id" in table.columns:
        table["id"] = [i.strip() if isinstance(i, str) and i.strip() else r for i, r in zip(table["id"], relative)]
    else:
        table["id"] = relative
    dup = table["id"].duplicated(keep=False)
    if dup.any():
        first = table.loc[dup, "id"].iloc[0]
        a, b = table.index[table["id"] == first][:2]
        raise EESRError(
            f"Manifest {csv_path}: lines {a + 2} and {b + 2} have the same utterance id '{first}' "
            f"({table.at[a, 'path']}, {table.at[b, 'path']}); ids must be unique"
        )
    return table


def load_manifest(csv_path: str | Path, labels: tuple[str, ...] | None = None) -> Corpus:
    """Any corpus from a CSV with columns ``path,label,speaker`` (optional ``session``, ``id``).

    Paths are relative to the CSV's folder; ids, column order, extra columns: see
    :func:`read_manifest`. The label order is ``labels`` if given, else sorted label names,
    so that class indices are reproducible.
    """
    csv_path = Path(csv_path)
    table = read_manifest(csv_path, required=("path", "label", "speaker"))
    for col in ("label", "speaker"):
        empty = table[col].isna()
        if empty.any():
            raise EESRError(f"Manifest {csv_path}: line {int(empty.to_numpy().argmax()) + 2} has no {col}")
    if "session" in table.columns:
        table["session"] = table["session"].astype(int)
    found = sorted(table["label"].unique())
    if labels is None:
        labels = tuple(found)
    unknown = set(found) - set(labels)
    if unknown:
        raise EESRError(f"Manifest {csv_path} has labels {sorted(unknown)} not in {labels}")
    cols = ["id", "path", "label", "speaker"] + (["session"] if "session" in table.columns else [])
    return Corpus(csv_path.stem, tuple(labels), table[cols].reset_index(drop=True))


_LOADERS = {
    "emodb": load_emodb,
    "ravdess": load_ravdess,
    "iemocap": load_iemocap,
    "nemo": load_nemo,
    "nemo6": lambda root: load_nemo(root, six=True),
}


def load_corpus(dataset: str, data_root: str | Path | None = None) -> Corpus:
    """Load ``emodb``, ``ravdess``, ``iemocap``, ``nemo`` (4 classes), ``nemo6`` (nEMO's 6) from the
    data root, or a manifest CSV path."""
    if dataset.endswith(".csv"):
        return load_manifest(dataset)
    if dataset not in _LOADERS:
        raise EESRError(f"Unknown dataset '{dataset}': use one of {DATASETS} or a manifest .csv path")
    return _LOADERS[dataset](corpus_dir(dataset, data_root))
