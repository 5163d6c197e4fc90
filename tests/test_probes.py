"""Linear probes on the untrained encoder: shapes, and a probe that can tell signal from noise."""

import numpy as np

from eesr_lib.features import corpus_features
from eesr_lib.probes import encoder_features, first_crops, probe_ua


def test_first_crops_pad_and_cut():
    crops = first_crops([np.ones((513, 99)), np.ones((513, 300))])
    assert crops.shape == (2, 513, 128)
    assert crops[0, :, 99:].sum() == 0 and crops[1].min() == 1  # short one zero-padded, long one cut


def test_encoder_features_shapes_and_norm_matters(mini):
    specs, _ = corpus_features(mini, n_jobs=1, progress=False)
    crops = first_crops(specs[:6])
    inst = encoder_features(crops, "instance")
    none = encoder_features(crops, "none")
    assert inst["encoder"].shape == (6, 512) and inst["attention"].shape == (6, 512)
    assert not np.allclose(inst["encoder"], none["encoder"])


def test_probe_separates_signal_from_noise():
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(3), 30)
    noise = rng.normal(size=(90, 20))
    signal = noise + 3 * np.eye(3)[y] @ rng.normal(size=(3, 20))
    assert probe_ua(signal, y)[0] > 90
    assert probe_ua(noise, y)[0] < 60
