"""What every chapter of the book does before its first figure, in one call.

Chapters are run by papermill with a ``parameters`` cell (dataset, data_root, profile, seed, ...).
:func:`setup_chapter` validates the profile, sets the plot style, silences the progress-widget
warnings a built page must not show, loads the corpus and, for the smoke profile, takes the same
seeded subset in every chapter so that features and results are shared between them.
"""

from __future__ import annotations

import warnings

import matplotlib.pyplot as plt
import pandas as pd

from .corpora import Corpus, load_corpus
from .errors import EESRError

# Importing this module first (chapters do) keeps the "no progress widgets" warning, which tqdm
# raises when a library module imports tqdm.auto, off the built pages.
warnings.filterwarnings("ignore", message="IProgress not found")

PROFILES = ("paper", "smoke")
SMOKE_PER_CLASS = 10  # the smoke profile uses this many utterances of each class
SMOKE_BANNER = (
    "> **Smoke profile.** This page was built from a {n}-utterance subset ({per_class} per class) with the "
    "shortest settings, to test that the book builds. Its numbers say nothing about the method."
)


def smoke_subset(corpus: Corpus, seed: int = 0, per_class: int = SMOKE_PER_CLASS) -> Corpus:
    """The seeded ``per_class``-per-class subset every chapter's smoke profile uses."""
    table = corpus.table.sample(frac=1.0, random_state=seed).groupby("label").head(per_class)
    return Corpus(corpus.name, corpus.labels, table.sort_values("id").reset_index(drop=True))


def setup_chapter(dataset: str, data_root: str | None = None, profile: str = "paper", seed: int = 0) -> Corpus:
    """The corpus a chapter works on (its smoke subset under profile "smoke"), with the book's
    plot style set and the smoke banner shown where it applies."""
    if profile not in PROFILES:
        raise EESRError(f"profile must be one of {PROFILES}, got {profile!r}")
    plt.rcParams.update({"figure.dpi": 90, "savefig.dpi": 90, "axes.titlesize": 11})
    pd.set_option("display.precision", 1)
    corpus = load_corpus(dataset, data_root)
    if profile == "smoke":
        corpus = smoke_subset(corpus, seed)
        _show_markdown(SMOKE_BANNER.format(n=len(corpus), per_class=SMOKE_PER_CLASS))
    return corpus


def _show_markdown(text: str) -> None:
    try:
        from IPython.display import Markdown, display
    except ImportError:  # outside Jupyter: plain text
        print(text)
        return
    display(Markdown(text))
