"""What every chapter of the book does before its first figure, in one call.

Chapters are run by papermill with a ``parameters`` cell (dataset, data_root, profile, seed, ...).
:func:`setup_chapter` validates the profile, sets the plot style, silences the progress-widget
warnings a built page must not show, loads the corpus and, for the smoke profile, takes the same
seeded subset in every chapter so that features and results are shared between them.
:func:`as_list` reads a list parameter however papermill passed it. The chapters that show
training results (4-6) get theirs through :mod:`eesr_lib.experiments`.
"""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib.pyplot as plt
import pandas as pd

from .corpora import Corpus, load_corpus
from .errors import EESRError

if TYPE_CHECKING:
    from .experiments import Experiments

# Importing this module first (chapters do) keeps the "no progress widgets" warning, which tqdm
# raises when a library module imports tqdm.auto, off the built pages.
warnings.filterwarnings("ignore", message="IProgress not found")

PROFILES = ("paper", "smoke")
SMOKE_PER_CLASS = 10  # the smoke profile uses this many utterances of each class
SMOKE_BANNER = (
    "> **Smoke profile.** This page was built from a {n}-utterance subset ({per_class} per class) with the "
    "shortest settings, to test that the book builds. Its numbers say nothing about the method."
)


def as_list(value: str | list | tuple | None) -> list | None:
    """A list parameter of a chapter, as a list (``None`` stays ``None``: "the profile's default").

    Why: the ``parameters`` cell holds a list or ``None``, but ``papermill -p protocols ...`` on the
    command line passes text, either JSON (``'["kfold5", "loso-speaker"]'``) or comma-separated
    (``kfold5,loso-speaker``). Every chapter with a list parameter reads it the same way.
    """
    if value is None or isinstance(value, (list, tuple)):
        return None if value is None else list(value)
    text = str(value).strip()
    if text.startswith("["):
        return list(json.loads(text))
    return [v.strip() for v in text.split(",") if v.strip()]


def per_class_subset(corpus: Corpus, per_class: int, seed: int = 0) -> Corpus:
    """Up to ``per_class`` utterances of every class, drawn at random with ``seed``, in id order.

    Why: a small subset that keeps every class (for a demo run, or the smoke profile) and is the
    same for the same seed, so that chapters built separately share its cached features and results.
    """
    table = corpus.table.sample(frac=1.0, random_state=seed).groupby("label").head(per_class)
    return Corpus(corpus.name, corpus.labels, table.sort_values("id").reset_index(drop=True))


def smoke_subset(corpus: Corpus, seed: int = 0, per_class: int = SMOKE_PER_CLASS) -> Corpus:
    """The seeded ``per_class``-per-class subset every chapter's smoke profile uses."""
    return per_class_subset(corpus, per_class, seed)


def setup_chapter(
    dataset: str,
    data_root: str | None = None,
    profile: str = "paper",
    seed: int = 0,
    display_precision: int = 1,
) -> Corpus:
    """The corpus a chapter works on (its smoke subset under profile "smoke"), with the book's
    plot style set and the smoke banner shown where it applies.

    ``display_precision``: decimals pandas shows for floats (chapters 1-6 show two: losses,
    durations; the others one).
    """
    if profile not in PROFILES:
        raise EESRError(f"profile must be one of {PROFILES}, got {profile!r}")
    plt.rcParams.update({"figure.dpi": 90, "savefig.dpi": 90, "axes.titlesize": 11})
    pd.set_option("display.precision", display_precision)
    corpus = load_corpus(dataset, data_root)
    if profile == "smoke":
        corpus = smoke_subset(corpus, seed)
        _show_markdown(SMOKE_BANNER.format(n=len(corpus), per_class=SMOKE_PER_CLASS))
    return corpus


def setup_result_chapter(
    dataset: str,
    data_root: str | None = None,
    profile: str = "paper",
    results_dir: str = "results",
    device: str = "auto",
    seed: int = 0,
    run_missing: bool | None = None,
    display_precision: int = 2,
) -> tuple[Corpus, Experiments]:
    """:func:`setup_chapter`, then the chapter's experiments (:class:`eesr_lib.experiments.Experiments`),
    whose settings table it shows first: what the page computes or reads, and from where.

    Why: chapters 4-6 show results of ``eesr run`` experiments; under profile "paper" they read the
    finished 40-epoch folds in ``results_dir`` and train nothing, under "smoke" they train one fold
    for one epoch (``eesr_lib.experiments.PROFILES``). One call keeps the three chapters alike.
    """
    from .experiments import Experiments

    corpus = setup_chapter(dataset, data_root, profile, seed, display_precision)
    experiments = Experiments.for_chapter(
        corpus,
        dataset=dataset,
        profile=profile,
        results_dir=results_dir,
        data_root=data_root,
        device=device,
        seed=seed,
        run_missing=run_missing,
    )
    _show(experiments.settings())
    return corpus, experiments


SUBSTITUTION = re.compile(r"{{\s*(\w+)\s*}}")
FRONT_MATTER_NOTE = "# Written by scripts/build_book.py from the results (eesr_lib.findings); do not edit by hand."


def split_front_matter(text: str) -> tuple[str, str]:
    """(front matter including its ``---`` lines, or "", the rest) of a MyST page."""
    if text.startswith("---\n"):
        end = text.index("\n---\n", 3) + len("\n---\n")
        return text[:end], text[end:]
    return "", text


def write_substitutions(page: str | Path, values: dict[str, str]) -> bool:
    """Write the values of the MyST substitutions (``{{ name }}``) that ``page`` uses into its front
    matter; True if the file changed.

    Why: a number a run produced is quoted on a prose page by name, and its value is written here from
    the results (:func:`eesr_lib.findings.page_numbers`) each time the book is built, never by hand.
    Raises if the page uses a name ``values`` lacks, so a sentence never shows a raw ``{{ name }}``.
    """
    page = Path(page)
    text = page.read_text()
    body = split_front_matter(text)[1]
    used = sorted(set(SUBSTITUTION.findall(body)))
    missing = [name for name in used if name not in values]
    if missing:
        raise EESRError(f"{page} quotes {missing}, which eesr_lib.findings does not compute")
    lines = ["---", FRONT_MATTER_NOTE, "myst:", "  substitutions:"]
    lines += [f"    {name}: {json.dumps(values[name], ensure_ascii=False)}" for name in used]
    new = "\n".join([*lines, "---", ""]) + body
    if new == text:
        return False
    page.write_text(new)
    return True


def _show(obj: object) -> None:
    try:
        from IPython.display import display
    except ImportError:  # outside Jupyter: plain text
        print(obj)
        return
    display(obj)


def _show_markdown(text: str) -> None:
    try:
        from IPython.display import Markdown, display
    except ImportError:  # outside Jupyter: plain text
        print(text)
        return
    display(Markdown(text))
