"""Chapter 3's table of our modules next to the paper's Tables 1-3, and chapter 1's feature descriptions."""

import torch

from eesr_lib import layers
from eesr_lib.features import SpectrogramParams, describe_spectrogram, is10_layout
from eesr_lib.model import EESR
from eesr_lib.runner import configs


def test_every_row_of_tables_1_to_3_has_its_module_and_the_differences_are_named():
    model = EESR(configs("ae+ee+in", 7)[0]).eval()
    modules = dict(model.named_modules())
    assert all(path in modules for _, _, path in layers.TABLE_ROWS)
    table = layers.layer_table(model, {"encoder.fc1": [(2, 16, 512)]}, n_classes=7)
    assert len(table) == len(layers.TABLE_ROWS)
    assert table.set_index("our module").loc["encoder.fc1", "output on the batch"] == "(2, 16, 512)"
    fc1 = table[(table.network == "classifier") & (table["our module"] == "classifier.head.0")].iloc[0]
    assert fc1.match == "✗ differs" and fc1["our sizes"].startswith("2094 → ")  # the 2478 question
    text = layers.differences_markdown(table)
    assert text.startswith(f"**{(table.match != '✓').sum()} of {len(table)} rows differ")
    assert layers.module_sizes(torch.nn.Dropout(0.5)) == (None, None, None, 1, "p=0.5")


def test_spectrogram_fields_are_described_with_their_values():
    table = describe_spectrogram(SpectrogramParams())
    assert table.loc["n_bins (derived)", "value"] == 513
    assert (
        "12.5 ms between frames: 80 frames/s, a 128-frame crop lasts 1.6 s" in table.loc["hop_length", "what it does"]
    )


def test_is10_names_split_into_contour_functional_and_family():
    parts = is10_layout(["pcm_loudness_sma_maxPos", "mfcc_sma_de[3]_stddev", "F0final__Turn_numOnsets"])
    assert parts.contour.tolist() == ["pcm_loudness_sma", "mfcc_sma_de[3]", "F0final (turn)"]
    assert parts.functional.tolist() == ["maxPos", "stddev", "numOnsets"]
    assert parts.delta.tolist() == [False, True, False] and parts.family.tolist() == [
        "loudness",
        "mfcc",
        "F0final (turn)",
    ]
