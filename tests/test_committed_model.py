"""The EMODB model committed in models/emodb: loadable by name from any folder, what bundle.json says it
is, and fitted to the corpus it was trained on (so the committed weights are the trained ones)."""

import json

import pytest

from eesr_lib.bundle import CONFIG_FILE, MODELS_DIR, WEIGHTS_FILE, committed_models, load_bundle
from eesr_lib.cli import main
from eesr_lib.corpora import EMODB_LABELS
from eesr_lib.errors import EESRError

MAX_MB = 40  # committed only under this size


@pytest.fixture()
def elsewhere(tmp_path, monkeypatch):
    """Run from a folder that is not the checkout's root."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_the_emodb_model_is_committed_and_small():
    assert "emodb" in committed_models()
    folder = MODELS_DIR / "emodb"
    assert sum(f.stat().st_size for f in folder.iterdir()) < MAX_MB * 1e6
    meta = json.loads((folder / CONFIG_FILE).read_text())
    assert meta["labels"] == list(EMODB_LABELS) and meta["weights"]["dtype"] == "bf16"
    training = meta["training"]
    assert training["dataset"] == "emodb" and training["variant"] == "ae+ee+in" and training["utterances"] == 535
    assert meta["train"]["epochs"] == 40 and len(training["history"]) == 40  # the replication's budget, finished
    assert meta["weights"]["bytes"] == (folder / WEIGHTS_FILE).stat().st_size


def test_loaded_by_name_from_any_folder(elsewhere):
    bundle = load_bundle("emodb")
    assert bundle.labels == EMODB_LABELS and bundle.path == MODELS_DIR / "emodb"
    assert load_bundle("models/emodb").path == bundle.path
    with pytest.raises(EESRError, match="committed model: .*emodb"):
        load_bundle("no-such-model")


def test_it_fits_the_corpus_it_was_trained_on(emodb, elsewhere, capsys):
    picked = emodb.table.groupby("label").head(1)  # one utterance per class, all seen in training
    assert main(["predict", "--model", "models/emodb", *picked["path"], "--csv"]) == 0
    rows = capsys.readouterr().out.splitlines()[1:]
    predicted = [row.split(",")[2] for row in rows]
    assert len(predicted) == len(picked)
    assert sum(p == t for p, t in zip(predicted, picked["label"])) >= len(picked) - 1, predicted
