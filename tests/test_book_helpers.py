"""The helpers the chapters share (eesr_lib.book, eesr_lib.experiments), on small or made-up inputs.

Nothing here trains: experiments are asked for with run_missing False, on empty results folders.
"""

from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import pytest

from eesr_lib import book
from eesr_lib.book import as_list, per_class_subset, setup_chapter, smoke_subset
from eesr_lib.corpora import Corpus
from eesr_lib.errors import EESRError
from eesr_lib.experiments import PROFILES, VARIANT_NAMES, Experiments, eesr_command, experiment
from eesr_lib.runner import VARIANTS

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def smoke(emodb) -> Corpus:
    return smoke_subset(emodb, seed=0)


@pytest.fixture(autouse=True)
def _display_settings():
    """setup_chapter sets pandas and matplotlib options for a page: undo them after each test."""
    with pd.option_context("display.precision", pd.get_option("display.precision")), plt.rc_context():
        yield


# --- as_list: a list parameter however papermill passed it


@pytest.mark.parametrize(
    "value,expected",
    [
        (None, None),
        (["kfold5", "loso-speaker"], ["kfold5", "loso-speaker"]),
        (("kfold5",), ["kfold5"]),
        ('["kfold5", "loso-speaker"]', ["kfold5", "loso-speaker"]),
        ("  [0, 3]  ", [0, 3]),
        ("kfold5, loso-speaker", ["kfold5", "loso-speaker"]),
        ("kfold5,,loso-speaker,", ["kfold5", "loso-speaker"]),
        ("kfold5", ["kfold5"]),
        ("", []),
    ],
)
def test_as_list(value, expected):
    assert as_list(value) == expected


def test_as_list_returns_a_new_list():
    given = ["kfold5"]
    out = as_list(given)
    out.append("kfold10")
    assert given == ["kfold5"]


def test_as_list_rejects_broken_json():
    with pytest.raises(ValueError):
        as_list('["kfold5", ')


# --- the smoke subset: seeded, per class, the same in every chapter


def test_smoke_subset_is_per_class_and_seeded(emodb, smoke):
    counts = smoke.table["label"].value_counts()
    assert set(counts.index) == set(emodb.labels)
    assert (counts == book.SMOKE_PER_CLASS).all()
    assert len(smoke) == book.SMOKE_PER_CLASS * len(emodb.labels)
    assert smoke.labels == emodb.labels and smoke.name == emodb.name
    assert list(smoke.table["id"]) == sorted(smoke.table["id"])  # id order, index 0..n-1
    assert list(smoke.table.index) == list(range(len(smoke)))
    assert set(smoke.table["id"]) <= set(emodb.table["id"])
    pd.testing.assert_frame_equal(smoke.table, smoke_subset(emodb, seed=0).table)  # the same every time
    assert set(smoke_subset(emodb, seed=1).table["id"]) != set(smoke.table["id"])  # another seed, another draw


def test_per_class_subset_keeps_every_utterance_of_a_small_class(smoke):
    assert len(per_class_subset(smoke, 3, seed=0)) == 3 * len(smoke.labels)
    whole = per_class_subset(smoke, 1000, seed=0)
    assert sorted(whole.table["id"]) == sorted(smoke.table["id"])


def test_setup_chapter_refuses_an_unknown_profile(data_root):
    with pytest.raises(EESRError, match="profile"):
        setup_chapter("emodb", str(data_root), profile="full", seed=0)


def test_setup_chapter_smoke_is_the_smoke_subset(data_root, smoke, monkeypatch):
    shown = []
    monkeypatch.setattr(book, "_show_markdown", shown.append)
    corpus = setup_chapter("emodb", str(data_root), profile="smoke", seed=0, display_precision=2)
    pd.testing.assert_frame_equal(corpus.table, smoke.table)
    assert pd.get_option("display.precision") == 2
    assert len(shown) == 1 and shown[0].startswith("> **Smoke profile.**")
    assert f"{len(smoke)}-utterance subset ({book.SMOKE_PER_CLASS} per class)" in shown[0]


def test_setup_chapter_paper_is_the_whole_corpus(data_root, emodb, monkeypatch):
    shown = []
    monkeypatch.setattr(book, "_show_markdown", shown.append)
    corpus = setup_chapter("emodb", str(data_root), profile="paper")
    pd.testing.assert_frame_equal(corpus.table, emodb.table)
    assert pd.get_option("display.precision") == 1 and plt.rcParams["figure.dpi"] == 90
    assert shown == []  # no banner


# --- the profiles table


def test_profiles_are_the_books():
    assert set(PROFILES) == set(book.PROFILES)
    assert all(name == p.name for name, p in PROFILES.items())
    paper = PROFILES["paper"]
    assert paper.variants == tuple(VARIANTS) and not paper.run_missing
    assert paper.epochs is None and paper.folds is None and paper.tag is None  # the paper's 40 epochs, every fold
    smoke = PROFILES["smoke"]
    assert smoke.run_missing and smoke.tag and smoke.epochs == 1  # tiny, kept apart from real results
    assert set(smoke.variants) <= set(VARIANTS)
    assert set(VARIANTS) <= set(VARIANT_NAMES)


# --- eesr_command


def test_eesr_command_defaults_say_only_what_the_experiment_is():
    assert eesr_command("emodb", "kfold5", "ae+ee+in") == (
        "eesr run --dataset emodb --protocol kfold5 --variant ae+ee+in"
    )


def test_eesr_command_carries_every_setting_that_differs():
    cmd = eesr_command(
        "my/recordings.csv",
        "loso-speaker",
        "is10+svm",
        data_root="/data",
        epochs=1,
        folds=[0, 2],
        seed=3,
        tag="smoke",
        results_dir="/tmp/r",
    )
    assert cmd == (
        "eesr run --dataset my/recordings.csv --protocol loso-speaker --variant is10+svm --data-root /data "
        "--epochs 1 --folds 0,2 --seed 3 --tag smoke --results /tmp/r"
    )


def test_eesr_command_parses_as_the_cli_does():
    from eesr_lib.cli import build_parser

    cmd = eesr_command("emodb", "kfold5", "ae-os", epochs=1, folds=(0,), seed=2, tag="smoke", results_dir="out")
    args = build_parser().parse_args(cmd.split()[1:])
    got = (args.dataset, args.protocol, args.variant, args.epochs, args.folds, args.seed, args.tag, args.results)
    assert got == ("emodb", "kfold5", "ae-os", 1, "0", 2, "smoke", "out")


# --- experiment: reads finished folds, trains nothing unless asked


def test_experiment_on_an_empty_results_folder_is_not_run_yet(smoke, tmp_path):
    recs, status = experiment(smoke, "kfold5", "ae+ee+in", results_dir=tmp_path, run_missing=False)
    assert (recs, status) == ([], "not run yet")
    assert not any(tmp_path.iterdir())  # nothing written


def test_experiment_of_an_impossible_protocol_is_not_applicable(smoke, tmp_path):
    recs, status = experiment(smoke, "loso-session", "ae+ee+in", results_dir=tmp_path)
    assert (recs, status) == ([], "not applicable")


def test_experiments_bind_a_chapters_parameters(smoke, tmp_path):
    paper = Experiments.for_chapter(smoke, dataset="emodb", profile="paper", results_dir=tmp_path)
    assert not paper.run_missing and paper.tag is None
    assert paper.protocols == ["kfold5", "kfold10", "loso-speaker"]  # book_protocols of EMODB
    assert paper.variants == list(VARIANTS)
    assert paper.run("kfold5", "ae+ee+in") == ([], "not run yet")
    assert paper.command("kfold5", "ae") == (
        f"eesr run --dataset emodb --protocol kfold5 --variant ae --results {tmp_path}"
    )

    smoke_ex = Experiments.for_chapter(smoke, dataset="emodb", profile="smoke", seed=1, run_missing=False)
    assert smoke_ex.protocols == ["kfold5"] and smoke_ex.tag == "smoke" and not smoke_ex.run_missing
    assert smoke_ex.command("kfold5", "ae") == (
        "eesr run --dataset emodb --protocol kfold5 --variant ae --epochs 1 --folds 0 --seed 1 --tag smoke"
    )
    settings = smoke_ex.settings()["setting"]
    assert settings["folds"] == [0] and settings["epochs"] == 1 and settings["train what is missing"] is False
    assert settings["dataset"] == f"emodb ({len(smoke)} utterances)"

    with pytest.raises(EESRError, match="profile"):
        Experiments.for_chapter(smoke, dataset="emodb", profile="full")


def _build_book():
    """scripts/build_book.py as a module (a script, not part of the package)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("build_book", ROOT / "scripts" / "build_book.py")
    build_book = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build_book)
    return build_book


def test_build_book_keeps_papermills_injected_parameters_off_the_page(tmp_path):
    import nbformat

    build_book = _build_book()
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell("dataset = 'emodb'", metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell("dataset = 'nemo'", metadata={"tags": ["injected-parameters"]}),
    ]
    path = tmp_path / "chapter.ipynb"
    nbformat.write(nb, path)
    build_book.hide_injected_parameters(path)
    cells = nbformat.read(path, as_version=4).cells
    assert cells[0].metadata.tags == ["parameters"]  # the defaults stay visible
    assert cells[1].metadata.tags == ["injected-parameters", "remove-cell"]


def test_a_chapter_about_the_emodb_model_stays_out_of_other_corpora_parts():
    build_book = _build_book()
    own = ROOT / "notebooks" / "09_own_recording.ipynb"
    assert build_book.chapter_applies(own, "emodb") and not build_book.chapter_applies(own, "nemo")
    assert build_book.chapter_applies(ROOT / "notebooks" / "04_results.ipynb", "nemo")


def test_a_smoke_build_unlinks_only_the_chapters_it_does_not_run(tmp_path):
    build_book = _build_book()
    (tmp_path / "chapters" / "emodb").mkdir(parents=True)
    (tmp_path / "chapters" / "emodb" / "07_experiment_log.ipynb").write_text("{}")
    page = tmp_path / "intro.md"
    page.write_text(
        "See [the log](chapters/emodb/07_experiment_log.ipynb) and "
        "[the RAVDESS verdict](chapters/ravdess/07_experiment_log.ipynb), or [a site](https://example.org).\n"
    )
    gone = build_book.unlink_unbuilt(tmp_path)
    assert gone == ["chapters/ravdess/07_experiment_log.ipynb"]
    assert page.read_text() == (
        "See [the log](chapters/emodb/07_experiment_log.ipynb) and the RAVDESS verdict, or [a site](https://example.org).\n"
    )
