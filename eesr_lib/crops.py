"""The paper's augmentation (§IV-A, Fig. 2) and the utterance-level windows used to score.

    "128 consecutive time steps [t, t + 128) are termed a training sample, where t is
    chosen from a uniform distribution [0, T - 128)" (Zhang & Xue, 2021)

We draw t from {0, ..., T - 128} (inclusive, so an utterance of exactly 128 frames has one
crop). Utterances shorter than 128 frames (EMODB has some: its shortest is 99 frames)
are padded first; the paper is silent, so ``pad_mode`` is a parameter:
``"zero"`` (default: 0 is the -100 dB floor of the normalized spectrogram, i.e. silence
appended after the speech), ``"repeat"`` (tile the utterance), or ``"reflect"``.

The paper does not say how a whole utterance is classified. We score every window of
128 frames with hop ``hop`` (default 64, plus one window flush with the end) and average.

:class:`CropBank` keeps all of a split's spectrograms in one tensor (frames concatenated
along time) so crops are one gather, on whatever device the tensor lives on.
"""

from __future__ import annotations

import numpy as np
import torch

from .errors import EESRError

CROP_FRAMES = 128
PAD_MODES = ("zero", "repeat", "reflect")


def pad_to(spec: np.ndarray, frames: int = CROP_FRAMES, pad_mode: str = "zero") -> np.ndarray:
    """Pad ``(F, T)`` on the right to at least ``frames`` columns."""
    if pad_mode not in PAD_MODES:
        raise EESRError(f"Unknown pad_mode '{pad_mode}': use one of {PAD_MODES}")
    missing = frames - spec.shape[1]
    if missing <= 0:
        return spec
    if pad_mode == "zero":
        return np.pad(spec, ((0, 0), (0, missing)))
    if pad_mode == "repeat":
        reps = -(-frames // spec.shape[1])
        return np.tile(spec, (1, reps))[:, :frames]
    out = spec
    while out.shape[1] < frames:  # reflect needs pad < length: grow in steps
        step = min(frames - out.shape[1], out.shape[1] - 1) or 1
        out = np.pad(out, ((0, 0), (0, step)), mode="reflect" if out.shape[1] > 1 else "edge")
    return out


def random_crop(
    spec: np.ndarray, rng: np.random.Generator, frames: int = CROP_FRAMES, pad_mode: str = "zero"
) -> np.ndarray:
    """One training sample: frames ``[t, t + frames)`` with ``t`` uniform in ``[0, T - frames]``."""
    spec = pad_to(spec, frames, pad_mode)
    t = int(rng.integers(0, spec.shape[1] - frames + 1))
    return spec[:, t : t + frames]


def window_starts(n_frames: int, frames: int = CROP_FRAMES, hop: int = 64) -> np.ndarray:
    """Start frames of the scoring windows: 0, hop, 2·hop, ... plus one window ending at T."""
    if hop <= 0:
        raise EESRError(f"Window hop must be positive, got {hop}")
    last = max(n_frames - frames, 0)
    starts = list(range(0, last + 1, hop))
    if starts[-1] != last:
        starts.append(last)
    return np.asarray(starts, dtype=np.int64)


def windows(spec: np.ndarray, frames: int = CROP_FRAMES, hop: int = 64, pad_mode: str = "zero") -> np.ndarray:
    """All scoring windows of one utterance: ``(n_windows, F, frames)``."""
    spec = pad_to(spec, frames, pad_mode)
    return np.stack([spec[:, s : s + frames] for s in window_starts(spec.shape[1], frames, hop)])


class CropBank:
    """A split's spectrograms as one ``(F, total_frames)`` tensor, cropped by gather.

    State is real here: the concatenated tensor, each utterance's offset and (padded)
    length, all on one device, so that a GPU never waits on the host for crops.
    """

    def __init__(
        self,
        specs: list[np.ndarray],
        frames: int = CROP_FRAMES,
        pad_mode: str = "zero",
        device: str | torch.device = "cpu",
    ):
        padded = [pad_to(s, frames, pad_mode) for s in specs]
        lengths = np.array([p.shape[1] for p in padded], dtype=np.int64)
        offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]])
        self.frames = frames
        self.data = torch.from_numpy(np.concatenate(padded, axis=1)).to(device)
        self.lengths = torch.from_numpy(lengths).to(device)
        self.offsets = torch.from_numpy(offsets).to(device)
        self._arange = torch.arange(frames, device=device)

    def __len__(self) -> int:
        return len(self.lengths)

    def gather(self, index: torch.Tensor, starts: torch.Tensor) -> torch.Tensor:
        """Crops ``(B, F, frames)`` of utterances ``index`` starting at frames ``starts``."""
        cols = (self.offsets[index] + starts)[:, None] + self._arange  # (B, frames)
        return self.data[:, cols].permute(1, 0, 2)

    def random_crops(self, index: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """One uniform random crop per utterance in ``index``."""
        span = (self.lengths[index] - self.frames + 1).to(torch.float64)
        u = torch.rand(len(index), generator=generator, dtype=torch.float64, device=generator.device)
        starts = (u.to(span.device) * span).long()
        return self.gather(index, starts)

    def utterance_windows(self, i: int, hop: int = 64) -> torch.Tensor:
        """All scoring windows of utterance ``i``: ``(n_windows, F, frames)``."""
        starts = torch.from_numpy(window_starts(int(self.lengths[i]), self.frames, hop)).to(self.data.device)
        index = torch.full_like(starts, i)
        return self.gather(index, starts)
