"""The experiments a chapter shows: what each book profile computes, and how a chapter gets a result.

Chapters 4-6 show results of ``eesr run`` experiments (one protocol x one variant). Under profile
"paper" they only read the finished folds in the results folder (training them takes hours); under
"smoke" they train one fold for one epoch in a throw-away folder, to test that the pages build. An
experiment that is not there is shown with the exact command that computes it. The functions here
take everything they need as arguments; :class:`Experiments` binds a chapter's parameters once so
that a chapter's cells call ``experiments.run(protocol, variant)`` and
``experiments.command(protocol, variant)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from . import paper
from .corpora import Corpus
from .errors import EESRError
from .protocols import book_protocols, folds
from .results import RESULTS_DIR, load_folds, variant_folder
from .runner import run
from .variants import VARIANTS

# How the chapters name each variant: the paper's Table 4 names, and ours for the extra baseline.
VARIANT_NAMES: dict[str, str] = {**paper.VARIANT_NAMES, "is10+mlp": "IS10+MLP (ours)"}


@dataclass(frozen=True)
class Profile:
    """What a chapter computes or shows under one book profile.

    ``protocols`` None: :func:`eesr_lib.protocols.book_protocols` of the corpus (it depends on the
    corpus: RAVDESS's 24 speakers get speaker-grouped folds). ``epochs`` None: the paper's 40
    (TrainConfig's default). ``folds`` None: every fold. ``tag`` keeps the results of a profile
    apart from the real ones whatever the results folder is. ``run_missing``: train what is missing
    (a chapter's ``run_missing`` parameter overrides it).
    """

    name: str
    protocols: tuple[str, ...] | None
    variants: tuple[str, ...]
    epochs: int | None
    folds: tuple[int, ...] | None
    tag: str | None
    run_missing: bool


PROFILES: dict[str, Profile] = {
    # the paper's setup: every Table 4 row, 40 epochs, every fold; results are read, never trained
    "paper": Profile(
        "paper",
        protocols=None,
        variants=tuple(VARIANTS),
        epochs=None,
        folds=None,
        tag=None,
        run_missing=False,
    ),
    # tiny and fast, for CI: one protocol, one fold, one epoch, four variants
    "smoke": Profile(
        "smoke",
        protocols=("kfold5",),
        variants=("ae+ee+in", "ae-os", "is10+svm", "is10+mlp"),
        epochs=1,
        folds=(0,),
        tag="smoke",
        run_missing=True,
    ),
}


def eesr_command(
    dataset: str,
    protocol: str,
    variant: str,
    *,
    data_root: str | Path | None = None,
    epochs: int | None = None,
    folds: Sequence[int] | None = None,
    seed: int = 0,
    tag: str | None = None,
    results_dir: str | Path = RESULTS_DIR,
) -> str:
    """The ``eesr run`` command line that computes (or completes) one experiment.

    Why: a page that cannot show an experiment says how to get it; the command carries every
    setting that differs from the CLI's defaults, so that it writes the very files the page reads.
    """
    parts = ["eesr run", f"--dataset {dataset}", f"--protocol {protocol}", f"--variant {variant}"]
    if data_root:
        parts.append(f"--data-root {data_root}")
    if epochs is not None:
        parts.append(f"--epochs {epochs}")
    if folds is not None:
        parts.append("--folds " + ",".join(map(str, folds)))
    if seed:
        parts.append(f"--seed {seed}")
    if tag:
        parts.append(f"--tag {tag}")
    if str(results_dir) != str(RESULTS_DIR):
        parts.append(f"--results {results_dir}")
    return " ".join(parts)


def experiment(
    corpus: Corpus,
    protocol: str,
    variant: str,
    *,
    results_dir: str | Path = RESULTS_DIR,
    run_missing: bool = False,
    folds_wanted: Sequence[int] | None = None,
    epochs: int | None = None,
    tag: str | None = None,
    data_root: str | Path | None = None,
    device: str = "auto",
    seed: int = 0,
) -> tuple[list[dict], str]:
    """(fold records, status) of one experiment on ``corpus``.

    Finished folds are reused (:func:`eesr_lib.runner.run` checks that their configuration is the
    one asked for); missing folds are trained only if ``run_missing``, else left out. The status is
    what a page shows: ``"k/n folds"``, ``"not run yet"``, ``"not applicable"`` (e.g. leave-one-
    session-out on a corpus without sessions) or ``"unusable (why)"``. ``folds_wanted`` None: every
    fold of the protocol.
    """
    try:
        total = len(folds(corpus, protocol, seed))
    except EESRError:
        return [], "not applicable"
    wanted = list(range(total)) if folds_wanted is None else [k for k in folds_wanted if k < total]
    done = {r["fold"] for r in load_folds(results_dir, corpus.name, protocol, variant_folder(variant, tag))}
    if not run_missing:
        wanted = [k for k in wanted if k in done]
    if not wanted:
        return [], "not run yet"
    try:
        recs = run(
            corpus.name,
            protocol,
            variant,
            data_root=data_root,
            results_dir=results_dir,
            folds_to_run=wanted,
            epochs=epochs,
            device=device,
            seed=seed,
            tag=tag,
            corpus=corpus,
            progress=False,
        )
    except EESRError as exc:
        return [], f"unusable ({exc})"
    return recs, f"{len(recs)}/{total} folds"


@dataclass(frozen=True)
class Experiments:
    """A chapter's experiments: its corpus and parameters bound once, for :func:`experiment` and
    :func:`eesr_command`. Build it with :meth:`for_chapter` from the chapter's parameters."""

    corpus: Corpus
    dataset: str  # as the chapter was given it (a corpus name or a manifest path): commands repeat it
    profile: Profile
    run_missing: bool
    results_dir: str | Path = RESULTS_DIR
    data_root: str | Path | None = None
    device: str = "auto"
    seed: int = 0

    @classmethod
    def for_chapter(
        cls,
        corpus: Corpus,
        *,
        dataset: str,
        profile: str,
        results_dir: str | Path = RESULTS_DIR,
        data_root: str | Path | None = None,
        device: str = "auto",
        seed: int = 0,
        run_missing: bool | None = None,
    ) -> Experiments:
        """The experiments of a chapter run with these parameters; ``run_missing`` None: the profile's."""
        if profile not in PROFILES:
            raise EESRError(f"profile must be one of {tuple(PROFILES)}, got {profile!r}")
        settings = PROFILES[profile]
        return cls(
            corpus=corpus,
            dataset=dataset,
            profile=settings,
            run_missing=settings.run_missing if run_missing is None else bool(run_missing),
            results_dir=results_dir,
            data_root=data_root,
            device=device,
            seed=seed,
        )

    @property
    def protocols(self) -> list[str]:
        """The protocols shown when the chapter's ``protocols`` parameter is None."""
        return list(self.profile.protocols or book_protocols(self.corpus))

    @property
    def variants(self) -> list[str]:
        """The variants shown when the chapter's ``variants`` parameter is None."""
        return list(self.profile.variants)

    @property
    def tag(self) -> str | None:
        return self.profile.tag

    def run(self, protocol: str, variant: str, only: Sequence[int] | None = None) -> tuple[list[dict], str]:
        """(fold records, status) of one experiment: :func:`experiment` with this chapter's settings.
        ``only``: these folds instead of the profile's."""
        return experiment(
            self.corpus,
            protocol,
            variant,
            results_dir=self.results_dir,
            run_missing=self.run_missing,
            folds_wanted=only or self.profile.folds,
            epochs=self.profile.epochs,
            tag=self.profile.tag,
            data_root=self.data_root,
            device=self.device,
            seed=self.seed,
        )

    def command(self, protocol: str, variant: str) -> str:
        """The ``eesr run`` command that computes one experiment with this chapter's settings."""
        return eesr_command(
            self.dataset,
            protocol,
            variant,
            data_root=self.data_root,
            epochs=self.profile.epochs,
            folds=self.profile.folds,
            seed=self.seed,
            tag=self.profile.tag,
            results_dir=self.results_dir,
        )

    def settings(self) -> pd.DataFrame:
        """The table a chapter shows first: what it computes or reads, and from where."""
        folds_shown = "all" if self.profile.folds is None else list(self.profile.folds)
        return pd.Series(
            {
                "dataset": f"{self.corpus.name} ({len(self.corpus)} utterances)",
                "profile": self.profile.name,
                "epochs": self.profile.epochs or "40 (the paper)",
                "folds": folds_shown,
                "train what is missing": self.run_missing,
                "results folder": str(self.results_dir),
            },
            name="setting",
        ).to_frame()
