"""Reading audio as the paper's pipeline expects it: mono float32 at 16 kHz.

Every corpus here is read through :func:`read_audio`, so the checks for empty, unreadable
or oddly formatted files live in one place and name the file at fault.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import soundfile as sf

from .errors import EESRError

SAMPLE_RATE = 16_000
log = logging.getLogger(__name__)


def read_audio(path: str | Path, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Return the file's samples as mono float32 in [-1, 1] at ``sample_rate``.

    Stereo is averaged to mono and other rates are resampled (soxr, via librosa);
    both conversions are logged so that a user knows their data was changed.
    """
    path = Path(path)
    if not path.is_file():
        raise EESRError(f"Audio file not found: {path}")
    if path.stat().st_size == 0:
        raise EESRError(f"Audio file is empty (0 bytes): {path}")
    try:
        wav, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as exc:  # soundfile raises several types; all mean "unreadable"
        raise EESRError(f"Cannot read audio file {path}: {exc}") from exc
    if wav.shape[0] == 0:
        raise EESRError(f"Audio file has zero samples: {path}")
    if wav.shape[1] > 1:
        log.info("%s: %d channels averaged to mono", path, wav.shape[1])
    wav = wav.mean(axis=1)
    if sr != sample_rate:
        import librosa  # imported lazily: it is slow to import and rarely needed here

        log.info("%s: resampled from %d Hz to %d Hz", path, sr, sample_rate)
        wav = librosa.resample(wav, orig_sr=sr, target_sr=sample_rate).astype(np.float32)
    return np.ascontiguousarray(wav, dtype=np.float32)
