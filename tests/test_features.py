"""Spectrogram and IS10 features on a few real EMODB files, the feature cache, and bad audio."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from eesr_lib import features
from eesr_lib.audio import read_audio
from eesr_lib.errors import EESRError
from eesr_lib.features import IS10_DIM, SpectrogramParams, _params_tag, extract, log_magnitude_spectrogram

# The four shortest EMODB files (1.2-1.4 s): enough to test, cheap to compute.
SHORT = ("12a02Ac.wav", "14a02Ab.wav", "14a02Nc.wav", "03a02Nc.wav")


@pytest.fixture(scope="module")
def files(data_root) -> list[str]:
    return [str(data_root / "emodb" / "wav" / name) for name in SHORT]


def _cache_files(cache: Path) -> list[Path]:
    return sorted(cache.rglob("*.npy"))


def test_spectrogram_shape_range_dtype(files, tmp_cache):
    import librosa

    specs = extract(files[:3], "spectrogram", n_jobs=1, progress=False)
    for path, spec in zip(files[:3], specs, strict=True):
        n = len(read_audio(path))
        frames = 1 + n // 200
        assert librosa.stft(np.zeros(n, np.float32), n_fft=1024, hop_length=200).shape == (513, frames)  # centered
        assert spec.shape == (513, frames)
        assert spec.dtype == np.float32
        assert spec.min() >= 0.0 and spec.max() <= 1.0
        assert spec.std() > 0.05  # speech, not a constant
        np.testing.assert_array_equal(spec, log_magnitude_spectrogram(read_audio(path)))
    assert len(_cache_files(tmp_cache)) == 3


def test_is10_shape_finite(files, tmp_cache):
    vecs = extract(files[:2], "is10", n_jobs=1, progress=False)
    for vec in vecs:
        assert vec.shape == (IS10_DIM,) == (1582,)
        assert vec.dtype == np.float32
        assert np.isfinite(vec).all()
    assert not np.array_equal(vecs[0], vecs[1])


def test_second_call_is_a_cache_hit(files, tmp_cache, monkeypatch):
    first = extract(files[:2], "spectrogram", n_jobs=1, progress=False)
    cached = _cache_files(tmp_cache)
    mtimes = [p.stat().st_mtime_ns for p in cached]

    def boom(args):
        raise AssertionError(f"recomputed {args[0]} instead of loading it from the cache")

    monkeypatch.setattr(features, "_compute", boom)
    second = extract(files[:2], "spectrogram", n_jobs=1, progress=False)
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a, b)
    assert _cache_files(tmp_cache) == cached
    assert [p.stat().st_mtime_ns for p in cached] == mtimes
    with pytest.raises(AssertionError, match="recomputed"):  # an uncached file is computed
        extract(files[2:3], "spectrogram", n_jobs=1, progress=False)


def test_cache_key_follows_every_parameter(files, tmp_cache):
    base = SpectrogramParams()
    changed = {
        "sample_rate": 8000,
        "preemphasis": 0.9,
        "n_fft": 512,
        "hop_length": 160,
        "win_length": 400,
        "window": "hamming",
        "min_level_db": -80.0,
        "ref_level_db": 25.0,
    }
    assert set(changed) == {f.name for f in dataclasses.fields(SpectrogramParams)}
    tags = {_params_tag("spectrogram", dataclasses.replace(base, **{k: v})) for k, v in changed.items()}
    tags.add(_params_tag("spectrogram", base))
    assert len(tags) == len(changed) + 1
    assert _params_tag("is10", base) != _params_tag("spectrogram", base)

    extract(files[:1], "spectrogram", n_jobs=1, progress=False)
    (spec,) = extract(files[:1], "spectrogram", SpectrogramParams(hop_length=160), n_jobs=1, progress=False)
    assert spec.shape == (513, 1 + len(read_audio(files[0])) // 160)  # computed anew, not the hop-200 file
    assert len({p.parent for p in _cache_files(tmp_cache)}) == 2


def _bad(kind: str, folder: Path) -> Path:
    path = folder / f"{kind}.wav"
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "garbage":
        path.write_bytes(np.random.default_rng(0).bytes(4096))
    elif kind == "no_samples":
        sf.write(path, np.zeros(0, np.float32), 16_000)
    elif kind == "too_short":  # 500 samples: less than one 800-sample analysis window
        sf.write(path, np.random.default_rng(0).uniform(-0.1, 0.1, 500).astype(np.float32), 16_000)
    return path


@pytest.mark.parametrize(
    ("kind", "words"),
    [("empty", "empty"), ("garbage", "Cannot read"), ("no_samples", "zero samples"), ("too_short", "shorter")],
)
def test_bad_audio_names_the_file(kind, words, tmp_path, tmp_cache):
    path = _bad(kind, tmp_path)
    with pytest.raises(EESRError, match=words) as err:
        extract([str(path)], "spectrogram", n_jobs=1, progress=False)
    assert str(path) in str(err.value)
    assert _cache_files(tmp_cache) == []


def test_unknown_feature_kind(files, tmp_cache):
    with pytest.raises(EESRError, match="mfcc"):
        extract(files[:1], "mfcc", n_jobs=1, progress=False)


def test_stereo_is_averaged_to_mono(tmp_path, caplog):
    rng = np.random.default_rng(1)
    stereo = rng.uniform(-0.5, 0.5, (8000, 2)).astype(np.float32)
    path = tmp_path / "stereo.wav"
    sf.write(path, stereo, 16_000, subtype="FLOAT")
    with caplog.at_level(logging.INFO, logger="eesr_lib.audio"):
        wav = read_audio(path)
    assert wav.shape == (8000,) and wav.dtype == np.float32
    np.testing.assert_allclose(wav, stereo.mean(axis=1), atol=1e-6)
    assert any("mono" in r.getMessage() and str(path) in r.getMessage() for r in caplog.records)


def test_44k_is_resampled_to_16k(tmp_path, caplog):
    t = np.arange(44_100) / 44_100
    path = tmp_path / "cd.wav"
    sf.write(path, np.stack([np.sin(2 * np.pi * 440 * t)] * 2, axis=1).astype(np.float32) * 0.5, 44_100)
    with caplog.at_level(logging.INFO, logger="eesr_lib.audio"):
        wav = read_audio(path)
    assert wav.ndim == 1 and abs(len(wav) - 16_000) <= 1
    assert wav.dtype == np.float32
    messages = [r.getMessage() for r in caplog.records]
    assert any("44100" in m and "16000" in m for m in messages)
    assert any("mono" in m for m in messages)
    # still a 440 Hz tone after resampling
    peak = np.argmax(np.abs(np.fft.rfft(wav))) * 16_000 / len(wav)
    assert abs(peak - 440) < 2


def test_parallel_extraction_matches_serial(files, tmp_cache):
    specs = extract(files, "spectrogram", n_jobs=2, progress=False)
    assert len(specs) == 4
    for path, spec in zip(files, specs, strict=True):
        np.testing.assert_array_equal(spec, log_magnitude_spectrogram(read_audio(path)))
    assert len(_cache_files(tmp_cache)) == 4
