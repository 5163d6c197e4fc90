"""The paper's random 128-frame crops, padding of short utterances, scoring windows, CropBank."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from eesr_lib.crops import CROP_FRAMES, CropBank, pad_to, random_crop, window_starts, windows
from eesr_lib.errors import EESRError

F = 6  # few frequency bins keep the tests fast; the code does not care about F


def _spec(frames: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((F, frames), dtype=np.float32)


def _start_of(crop: np.ndarray, source: np.ndarray) -> int:
    """The start frame at which ``crop`` sits in ``source`` (random columns make it unique)."""
    hits = [
        t for t in range(source.shape[1] - crop.shape[1] + 1) if np.array_equal(source[:, t : t + CROP_FRAMES], crop)
    ]
    assert len(hits) == 1
    return hits[0]


def test_random_crop_is_a_slice_of_the_source():
    spec = _spec(300)
    rng = np.random.default_rng(0)
    for _ in range(20):
        crop = random_crop(spec, rng)
        assert crop.shape == (F, CROP_FRAMES)
        t = _start_of(crop, spec)
        np.testing.assert_array_equal(crop, spec[:, t : t + CROP_FRAMES])


def test_every_start_is_reachable():
    spec = _spec(CROP_FRAMES + 4)  # starts 0..4, both ends included
    rng = np.random.default_rng(1)
    starts = {_start_of(random_crop(spec, rng), spec) for _ in range(200)}
    assert starts == {0, 1, 2, 3, 4}


def test_exact_length_has_one_crop():
    spec = _spec(CROP_FRAMES)
    np.testing.assert_array_equal(random_crop(spec, np.random.default_rng(0)), spec)


@pytest.mark.parametrize("frames", [1, 2, 50, 99, 127])
def test_padding_modes(frames):
    spec = _spec(frames)
    zero = pad_to(spec, pad_mode="zero")
    rep = pad_to(spec, pad_mode="repeat")
    ref = pad_to(spec, pad_mode="reflect")
    for out in (zero, rep, ref):
        assert out.shape == (F, CROP_FRAMES)
        np.testing.assert_array_equal(out[:, :frames], spec)  # the utterance comes first, unchanged
    assert (zero[:, frames:] == 0).all()
    np.testing.assert_array_equal(rep, np.tile(spec, (1, CROP_FRAMES))[:, :CROP_FRAMES])
    if frames > 1:
        np.testing.assert_array_equal(ref[:, frames], spec[:, frames - 2])  # mirrored, edge not repeated
    # each mode's padding holds only values of the utterance (or zeros)
    assert set(np.unique(ref)) <= set(np.unique(spec))
    crop = random_crop(spec, np.random.default_rng(0), pad_mode="repeat")
    np.testing.assert_array_equal(crop, rep)


def test_long_enough_is_not_padded():
    spec = _spec(200)
    assert pad_to(spec) is spec


def test_unknown_pad_mode():
    with pytest.raises(EESRError, match="wrap"):
        pad_to(_spec(10), pad_mode="wrap")


@pytest.mark.parametrize(("n", "hop"), [(128, 64), (129, 64), (300, 64), (300, 100), (1000, 37), (50, 64)])
def test_window_starts(n, hop):
    starts = window_starts(n, hop=hop)
    last = max(n - CROP_FRAMES, 0)
    assert starts[0] == 0 and starts[-1] == last  # covers the end
    steps = np.diff(starts)
    assert (steps[:-1] == hop).all() and ((steps > 0) & (steps <= hop)).all()  # hop, then one flush window
    covered = np.zeros(max(n, CROP_FRAMES), bool)
    for s in starts:
        covered[s : s + CROP_FRAMES] = True
    assert covered.all()


def test_window_starts_bad_hop():
    with pytest.raises(EESRError, match="hop"):
        window_starts(300, hop=0)


def test_windows_shape_and_content():
    spec = _spec(300)
    w = windows(spec, hop=64)
    starts = window_starts(300, hop=64)
    assert w.shape == (len(starts), F, CROP_FRAMES) == (4, F, CROP_FRAMES)
    for win, s in zip(w, starts, strict=True):
        np.testing.assert_array_equal(win, spec[:, s : s + CROP_FRAMES])
    short = windows(_spec(40), pad_mode="zero")
    assert short.shape == (1, F, CROP_FRAMES)


@pytest.fixture()
def specs() -> list[np.ndarray]:
    return [_spec(n, seed=i) for i, n in enumerate([300, 99, 128, 517, 140])]


def test_cropbank_gather_equals_numpy(specs):
    bank = CropBank(specs, pad_mode="reflect")
    padded = [pad_to(s, pad_mode="reflect") for s in specs]
    assert len(bank) == 5
    assert bank.lengths.tolist() == [p.shape[1] for p in padded]
    index = torch.tensor([0, 1, 2, 3, 4, 3, 0])
    starts = torch.tensor([172, 0, 0, 389, 12, 0, 5])  # includes each utterance's last valid start
    out = bank.gather(index, starts)
    assert out.shape == (7, F, CROP_FRAMES) and out.dtype == torch.float32
    for crop, i, s in zip(out, index.tolist(), starts.tolist(), strict=True):
        np.testing.assert_array_equal(crop.numpy(), padded[i][:, s : s + CROP_FRAMES])


def test_cropbank_random_crops_seeded(specs):
    bank = CropBank(specs)
    index = torch.arange(5).repeat(20)
    a = bank.random_crops(index, torch.Generator().manual_seed(7))
    b = bank.random_crops(index, torch.Generator().manual_seed(7))
    c = bank.random_crops(index, torch.Generator().manual_seed(8))
    assert torch.equal(a, b) and not torch.equal(a, c)
    padded = [pad_to(s) for s in specs]
    for crop, i in zip(a, index.tolist(), strict=True):  # each crop is a valid slice of its utterance
        assert _start_of(crop.numpy(), padded[i]) <= padded[i].shape[1] - CROP_FRAMES


def test_cropbank_random_starts_cover_range():
    bank = CropBank([_spec(CROP_FRAMES + 3)])
    gen = torch.Generator().manual_seed(0)
    crops = bank.random_crops(torch.zeros(200, dtype=torch.long), gen)
    padded = pad_to(_spec(CROP_FRAMES + 3))
    assert {_start_of(c.numpy(), padded) for c in crops} == {0, 1, 2, 3}


@pytest.mark.parametrize("hop", [64, 50])
def test_utterance_windows_match_windows(specs, hop):
    bank = CropBank(specs, pad_mode="repeat")
    for i, spec in enumerate(specs):
        expected = windows(spec, hop=hop, pad_mode="repeat")
        got = bank.utterance_windows(i, hop=hop)
        assert got.shape == expected.shape
        np.testing.assert_array_equal(got.numpy(), expected)
