"""The paper's two inputs: a log-magnitude spectrogram (§III-A.1) and openSMILE IS10 (§III-A.2).

Spectrogram: the paper says only that "the detailed spectral analysis was the same as in
previous work [36]" (Tacotron). We use Tacotron's analysis, which is also what the
voice-conversion autoencoder the network comes from (Chou et al., 2018) used: 16 kHz,
pre-emphasis 0.97, 1024-point FFT (513 bins), 12.5 ms hop, 50 ms Hann window, magnitude
in dB floored at -100 dB, then mapped to [0, 1]. Every number is a field of
:class:`SpectrogramParams`.

IS10: the INTERSPEECH 2010 Paralinguistic Challenge set (1582 functionals). The
``opensmile`` Python package ships it as ``IS10_paraling_compat.conf``: a "compat"
configuration for openSMILE 3.x whose jitter/shimmer and a few pitch-related values
differ slightly from the openSMILE 2.x numbers the paper would have used.

Both are cached on disk, keyed by the audio file's content and the parameters, so a
second call (or another notebook) loads instead of recomputing.
"""

from __future__ import annotations

import hashlib
import json
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from .audio import SAMPLE_RATE, read_audio
from .corpora import PROJECT_ROOT, Corpus
from .errors import EESRError

IS10_DIM = 1582
FeatureKind = Literal["spectrogram", "is10"]


@dataclass(frozen=True)
class SpectrogramParams:
    """Tacotron's analysis (the paper's ref. [36]); defaults give 513 x frames in [0, 1]."""

    sample_rate: int = SAMPLE_RATE
    preemphasis: float = 0.97
    n_fft: int = 1024
    hop_length: int = 200  # 12.5 ms
    win_length: int = 800  # 50 ms
    window: str = "hann"
    min_level_db: float = -100.0  # floor: 20*log10(1e-5)
    ref_level_db: float = 20.0

    @property
    def n_bins(self) -> int:
        return self.n_fft // 2 + 1


def log_magnitude_spectrogram(wav: np.ndarray, params: SpectrogramParams = SpectrogramParams()) -> np.ndarray:
    """``(n_fft/2+1, frames)`` float32 in [0, 1]: clip((20 log10 max(1e-5,|S|) - ref + 100) / 100)."""
    import librosa

    if len(wav) < params.win_length:
        raise EESRError(f"Signal of {len(wav)} samples is shorter than one analysis window ({params.win_length})")
    emphasized = np.append(wav[0], wav[1:] - params.preemphasis * wav[:-1]).astype(np.float32)
    mag = np.abs(
        librosa.stft(
            emphasized,
            n_fft=params.n_fft,
            hop_length=params.hop_length,
            win_length=params.win_length,
            window=params.window,
        )
    )
    floor = 10 ** (params.min_level_db / 20)
    db = 20 * np.log10(np.maximum(floor, mag)) - params.ref_level_db
    return np.clip((db - params.min_level_db) / -params.min_level_db, 0.0, 1.0).astype(np.float32)


_SMILE = None


def is10_functionals(wav: np.ndarray, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """The 1582 IS10 functionals of one utterance (openSMILE 3 "compat" config)."""
    global _SMILE
    import opensmile

    if _SMILE is None:  # one extractor per process: building it parses the config
        _SMILE = opensmile.Smile(
            feature_set=opensmile.FeatureSet.IS10, feature_level=opensmile.FeatureLevel.Functionals
        )
    values = _SMILE.process_signal(wav, sample_rate).to_numpy(dtype=np.float32).reshape(-1)
    if values.shape != (IS10_DIM,):
        raise EESRError(f"openSMILE IS10 returned {values.shape} values, expected {IS10_DIM}")
    return values


def is10_feature_names() -> list[str]:
    """Names of the 1582 IS10 values (LLD x functional), in the order of the vectors."""
    import opensmile

    smile = opensmile.Smile(feature_set=opensmile.FeatureSet.IS10, feature_level=opensmile.FeatureLevel.Functionals)
    return list(smile.feature_names)


def describe_spectrogram(params: SpectrogramParams = SpectrogramParams()) -> pd.DataFrame:
    """Every field of ``params`` with its value and what it does (chapter 1 prints it).

    Why here: the paper gives no analysis parameters, only its pointer to Tacotron; what each number
    means belongs next to the dataclass that holds it, not in a page."""
    crop_s = 128 * params.hop_length / params.sample_rate
    why = {
        "sample_rate": "every corpus is read as mono 16 kHz (`read_audio` resamples if needed)",
        "preemphasis": "x[n] − 0.97·x[n−1] before the FFT: lifts the high frequencies (Tacotron)",
        "n_fft": f"FFT size → {params.n_bins} bins = the encoder's {params.n_bins} input channels (Table 1)",
        "hop_length": f"{1000 * params.hop_length / params.sample_rate:g} ms between frames: "
        f"{params.sample_rate // params.hop_length} frames/s, a 128-frame crop lasts {crop_s:g} s",
        "win_length": f"{1000 * params.win_length / params.sample_rate:g} ms analysis window, zero-padded to n_fft",
        "window": "window shape",
        "min_level_db": "magnitudes are floored at this level (1e-5); it maps to 0",
        "ref_level_db": "reference level subtracted before the mapping to [0, 1] (Tacotron)",
    }
    rows = [{"field": k, "value": v, "what it does": why[k]} for k, v in asdict(params).items()]
    rows.append({"field": "n_bins (derived)", "value": params.n_bins, "what it does": "n_fft / 2 + 1"})
    return pd.DataFrame(rows).set_index("field")


def is10_layout(names: list[str] | None = None) -> pd.DataFrame:
    """One row per IS10 value (default: :func:`is10_feature_names`): its ``contour`` (an LLD, its delta,
    or "<name> (turn)" for a whole-turn value), ``functional``, ``delta`` and LLD ``family``.

    Why: openSMILE's names ("mfcc_sma_de[3]_stddev") say which contour and which statistic each of
    the 1582 numbers is, so the vector can be regrouped without any outside list."""

    def split(name: str) -> tuple[str, str]:
        if "__Turn_" in name:
            contour, functional = name.split("__Turn_")
            return contour + " (turn)", functional
        contour, functional = name.rsplit("_", 1)
        return contour, functional

    parts = pd.DataFrame([split(n) for n in names or is10_feature_names()], columns=["contour", "functional"])
    parts["delta"] = parts["contour"].str.contains("_de")
    parts["family"] = (
        parts["contour"]
        .str.replace(r"\[\d+\]", "", regex=True)
        .str.replace("_sma", "")
        .str.replace("_de", "")
        .str.replace("pcm_", "")
    )
    return parts


# ---------------------------------------------------------------- cache + extraction


def cache_dir() -> Path:
    """``$EESR_CACHE`` or ``.cache/eesr`` in the project (git-ignored)."""
    env = os.environ.get("EESR_CACHE")
    return Path(env).expanduser() if env else PROJECT_ROOT / ".cache" / "eesr"


def _params_tag(kind: FeatureKind, params: SpectrogramParams) -> str:
    spec = asdict(params) if kind == "spectrogram" else {"set": "IS10_paraling_compat", "sr": params.sample_rate}
    blob = json.dumps({"kind": kind, **spec}, sort_keys=True).encode()
    return f"{kind}-{hashlib.sha256(blob).hexdigest()[:12]}"


def _file_digest(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:32]


def cached_path(
    path: str | Path, kind: FeatureKind, params: SpectrogramParams = SpectrogramParams(), root: Path | None = None
) -> Path:
    """Where :func:`extract` keeps (or finds) the features of one audio file: keyed by the file's
    bytes and the parameters, under ``root`` (default :func:`cache_dir`)."""
    return (root or cache_dir()) / _params_tag(kind, params) / f"{_file_digest(str(path))}.npy"


def _compute(args: tuple[str, FeatureKind, SpectrogramParams, str]) -> str:
    """Worker: extract one file's features and write them atomically to ``target``."""
    path, kind, params, target = args
    wav = read_audio(path, params.sample_rate)
    if len(wav) < params.win_length:
        raise EESRError(f"{path}: {len(wav)} samples is shorter than one analysis window ({params.win_length} samples)")
    if kind == "spectrogram":
        feat = log_magnitude_spectrogram(wav, params)
    else:
        feat = is10_functionals(wav, params.sample_rate)
    tmp = f"{target}.{os.getpid()}.tmp.npy"
    np.save(tmp, feat)
    os.replace(tmp, target)
    return target


def extract(
    paths: list[str],
    kind: FeatureKind,
    params: SpectrogramParams = SpectrogramParams(),
    n_jobs: int | None = None,
    progress: bool = True,
) -> list[np.ndarray]:
    """Features of every file, from the cache where present, computed in parallel otherwise.

    Returns a list (spectrograms differ in length) of ``(513, T)`` arrays or ``(1582,)`` vectors.
    """
    if kind not in ("spectrogram", "is10"):
        raise EESRError(f"Unknown feature kind '{kind}': use 'spectrogram' or 'is10'")
    (cache_dir() / _params_tag(kind, params)).mkdir(parents=True, exist_ok=True)
    targets = [str(cached_path(p, kind, params)) for p in paths]
    todo = [(p, kind, params, t) for p, t in zip(paths, targets) if not os.path.exists(t)]
    if todo:
        n_jobs = n_jobs or min(len(todo), os.cpu_count() or 1)
        bar = tqdm(total=len(todo), desc=f"{kind} features", unit="file", disable=not progress)
        if n_jobs == 1:
            for item in todo:
                _compute(item)
                bar.update()
        else:
            with ProcessPoolExecutor(max_workers=n_jobs) as pool:
                for _ in pool.map(_compute, todo, chunksize=4):
                    bar.update()
        bar.close()
    return [np.load(t) for t in targets]


def corpus_features(
    corpus: Corpus, params: SpectrogramParams = SpectrogramParams(), n_jobs: int | None = None, progress: bool = True
) -> tuple[list[np.ndarray], np.ndarray]:
    """Spectrograms (list) and the IS10 matrix ``(N, 1582)`` of a :class:`~eesr_lib.corpora.Corpus`."""
    specs = extract(corpus.paths, "spectrogram", params, n_jobs, progress)
    is10 = np.stack(extract(corpus.paths, "is10", params, n_jobs, progress))
    return specs, is10
