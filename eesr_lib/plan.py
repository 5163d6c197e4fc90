"""The replication's list of runs, in one place, and how far along it is.

Why a list: the full replication (every protocol, every row of Table 4, a second corpus) is
~100 folds of 40 epochs, days of CPU time. It is done across many sittings and, where there
are cores or a GPU to spare, many folds at once. ``eesr replicate`` walks this list: it prints
what is finished and what is left, and with ``--run`` computes what is left, each fold a Ray task
on this machine's cores or a cluster's (:mod:`eesr_lib.distributed`).

The order is the order of priority: the proposed model first, then the baselines (cheap),
then the ablations, the 5-fold ones before the leave-one-speaker-out ones.

A second list, :func:`budget_runs` (``eesr replicate --budget``), holds the runs that settle
the training budget (book/choices.md, "What an epoch is"): learning curves on inner
validation splits, the departures meant to keep the deep branch learning, then Table 4's
decisive pairs on the outer folds at the chosen budget, each with the test score of every
epoch recorded for the "how could the paper's numbers arise" demonstration (never to choose).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .corpora import Corpus
from .errors import EESRError
from .protocols import book_protocols, folds, inner_split
from .results import RESULTS_DIR, fold_busy, fold_records, load_folds, protocol_folder, run_dir, variant_folder
from .variants import VARIANTS

PROPOSED = "ae+ee+in"
BASELINES = ("is10+svm", "is10+mlp")
ABLATIONS = ("ae-os", "ae-os+ee+in", "ae", "ae+ee", "ae+in")  # Table 4's other network rows
# The rows that decide the budget question on the outer folds: the proposed model, then Table 4's
# decisive pairs (AE vs AE+EE, AE-OS vs AE-OS,+EE,IN).
DECISIVE = (PROPOSED, "ae", "ae+ee", "ae-os", "ae-os+ee+in")

# The paper's protocols (5- and 10-fold) plus the speaker-independent one it did not report.
_EMODB = (
    [("kfold5", PROPOSED), ("kfold10", PROPOSED), ("loso-speaker", PROPOSED)]
    + [(p, b) for p in ("kfold5", "kfold10", "loso-speaker") for b in BASELINES]
    + [(p, v) for p in ("kfold5", "loso-speaker") for v in ABLATIONS]
)
# RAVDESS has 24 actors: the proposed model on four speaker-grouped folds (six actors held
# out in each), the cheap baselines on both that and leave-one-actor-out.
_RAVDESS = [("speaker-kfold4", PROPOSED)] + [(p, b) for p in ("speaker-kfold4", "loso-speaker") for b in BASELINES]
# nEMO stands in for the paper's IEMOCAP (same four classes, 9 actors): the paper's IEMOCAP protocol is
# leave-one-speaker-out, its EMODB one 10-fold. The cheap baselines come first, so the first numbers
# to set beside the paper's IEMOCAP tables exist within hours; then the proposed model, then Table 4.
_NEMO = (
    [(p, b) for p in ("loso-speaker", "kfold10") for b in BASELINES]
    + [("loso-speaker", PROPOSED)]
    + [("loso-speaker", v) for v in ABLATIONS]
)
REPLICATION: dict[str, list[tuple[str, str]]] = {"emodb": _EMODB, "ravdess": _RAVDESS, "nemo": _NEMO}

# ---------------------------------------------------------------- the training budget
PAPER_EPOCHS = 40  # today's budget: 40 epochs of one random crop per training utterance
CURVE_MULTIPLE = 16  # the learning curves run to 16x today's optimizer steps
# The budget the outer runs use, as a multiple of today's steps; chosen from the learning
# curves on inner validation splits (book/choices.md says which curve points decided it).
CHOSEN_MULTIPLE = 8
BUDGET_TAG = f"budget{CHOSEN_MULTIPLE}x"  # the tag of every run at the chosen budget
# Departures from the paper's single-stage recipe, compared on inner validation at the chosen
# budget (eesr_lib.train.TrainConfig); two stages split the budget in half.
DEPARTURES: dict[str, dict] = {
    "two-stage": {"two_stage_epochs": CHOSEN_MULTIPLE * PAPER_EPOCHS // 2},
    "is10-dropout": {"is10_dropout": 0.5},
    "aux": {"aux_loss": 1.0},
}
CURVE_EVERY = 10  # epochs between two validation scores on a curve


@dataclass(frozen=True)
class Run:
    """One experiment of a run list: what :func:`eesr_lib.runner.run` is called with."""

    protocol: str
    variant: str
    tag: str | None = None
    overrides: tuple[tuple[str, object], ...] = ()
    selection: bool = False
    folds: tuple[int, ...] | None = None
    curve_every: int = 1
    test_curve: bool = False
    seed: int = 0
    fold_seed: int | None = None  # None: ``seed`` deals the folds too (eesr_lib.runner.run)

    @property
    def deal_seed(self) -> int:
        """The seed that deals this run's folds."""
        return self.seed if self.fold_seed is None else self.fold_seed

    def splits(self, corpus: Corpus) -> list[tuple[np.ndarray, np.ndarray]]:
        """This run's ``(train, scored)`` index pairs: the outer folds, or their inner validation splits."""
        split = folds(corpus, self.protocol, self.deal_seed)
        if self.selection:
            split = [inner_split(corpus, tr, self.protocol, self.deal_seed) for tr, _ in split]
        return split

    def run_kwargs(self) -> dict:
        return {
            "tag": self.tag,
            "overrides": dict(self.overrides),
            "selection": self.selection,
            "folds_to_run": None if self.folds is None else list(self.folds),
            "curve_every": self.curve_every,
            "test_curve": self.test_curve,
            "seed": self.seed,
            "fold_seed": self.fold_seed,
        }

    @property
    def epochs(self) -> int:
        return int(dict(self.overrides).get("epochs", PAPER_EPOCHS))

    @property
    def name(self) -> str:
        return variant_folder(self.variant, self.tag)


def budget_runs(corpus: Corpus) -> list[Run]:
    """The budget question's runs on ``corpus``, most important first (EMODB; empty elsewhere)."""
    if corpus.name != "emodb":
        return []
    long = (("epochs", CURVE_MULTIPLE * PAPER_EPOCHS),)
    chosen = (("epochs", CHOSEN_MULTIPLE * PAPER_EPOCHS),)
    tag = BUDGET_TAG
    curves = [
        Run("kfold5", v, "budget", long, selection=True, folds=(0,), curve_every=CURVE_EVERY)
        for v in ("ae-os+ee+in", "ae-os", PROPOSED)
    ]
    departures = [Run("kfold5", PROPOSED, tag, chosen, selection=True, curve_every=CURVE_EVERY)] + [
        Run("kfold5", PROPOSED, f"{tag}-{name}", chosen + tuple(o.items()), selection=True, curve_every=CURVE_EVERY)
        for name, o in DEPARTURES.items()
    ]
    # Outer folds at the chosen budget, the paper-literal recipe: the proposed model and Table 4's decisive
    # pairs (AE vs AE+EE, AE-OS vs AE-OS,+EE,IN) come right after the curves, since every verdict needs
    # them whatever the departures show; then the departures on inner validation, then the rest.
    decisive = [Run("kfold5", v, tag, chosen, test_curve=True) for v in DECISIVE]
    rest = [Run("kfold5", "ae+in", tag, chosen, test_curve=True)] + [
        Run("loso-speaker", v, tag, chosen, test_curve=True) for v in (PROPOSED, *ABLATIONS)
    ]
    # The test-fold-selection demonstration at the paper's own budget: three training seeds on the folds of
    # seed 0 (a seed chosen per fold must be chosen among runs on the same test set), test score every epoch.
    seeds = [
        Run(p, PROPOSED, f"test-curve-s{s}", test_curve=True, seed=s, fold_seed=0)
        for p in ("kfold5", "kfold10")
        for s in range(3)
    ]
    return curves + decisive + departures + rest + seeds


def runs_for(corpus: Corpus) -> list[tuple[str, str]]:
    """(protocol, variant) pairs the replication runs on ``corpus``, most important first.

    A corpus without its own list (IEMOCAP, an engineer's manifest) gets the proposed model
    and the baselines under the protocols the book shows for it.
    """
    if corpus.name in REPLICATION:
        return list(REPLICATION[corpus.name])
    return [(p, v) for p in book_protocols(corpus) if _splittable(corpus, p) for v in (PROPOSED, *BASELINES)]


def _splittable(corpus: Corpus, protocol: str) -> bool:
    """False where the corpus is too small for the protocol (10-fold with < 10 of a class)."""
    try:
        folds(corpus, protocol)
    except EESRError:
        return False
    return True


def status(
    corpus: Corpus, results_dir: str | Path = RESULTS_DIR, seed: int = 0, runs: list[Run] | None = None
) -> pd.DataFrame:
    """One row per run of :func:`runs_for` (or of ``runs``, e.g. :func:`budget_runs`): folds
    finished, left and being computed now (a process holds their claim), wall time spent, an
    estimate of what is left.

    The estimate uses this run's own finished folds, or, before any has finished, the pace of
    the corpus's other network runs (seconds per training utterance and epoch) times this
    run's training sizes; on a corpus with no network fold yet, the pace of every corpus's (an
    epoch draws one fixed-size crop per training utterance, so the pace hardly depends on the
    corpus). It is in worker-hours: the wall time one process needs at the pace
    the finished folds were computed (two workers sharing a machine each run at about half speed,
    and take half the folds), a forecast for the same machine and nothing more.
    """
    # every corpus's records are read only when this corpus has no network fold to time
    pace_s = _pace(load_folds(results_dir, dataset=corpus.name), seed) or _pace(load_folds(results_dir), seed)
    rows = []
    for r in runs if runs is not None else [Run(p, v, seed=seed) for p, v in runs_for(corpus)]:
        split = r.splits(corpus)
        wanted = range(len(split)) if r.folds is None else r.folds
        out_dir = run_dir(results_dir, corpus.name, r.protocol, r.variant, r.tag, r.selection)
        finished = fold_records(out_dir)
        mine = {k: finished[k] for k in wanted if k in finished}
        left = [k for k in wanted if k not in mine]
        running = [k for k in left if fold_busy(out_dir, k)]
        spent = sum(m["provenance"]["wall_time_s"] for m in mine.values())
        if not left:
            eta = 0.0
        elif mine:
            eta = spent / len(mine) * len(left)
        elif "baseline" not in VARIANTS[r.variant] and pace_s is not None:
            eta = sum(pace_s * len(split[k][0]) * r.epochs for k in left)
        else:
            eta = float("nan")
        rows.append(
            {
                "protocol": protocol_folder(r.protocol, r.selection),
                "variant": r.name,
                "done": len(mine),
                "folds": len(wanted),
                "left": ",".join(map(str, left)) or "-",
                "running": ",".join(map(str, running)) or "-",
                "hours_spent": spent / 3600,
                "hours_left_est": eta / 3600,
            }
        )
    return pd.DataFrame(rows)


def _pace(records: list[dict], seed: int) -> float | None:
    """Mean CPU seconds per training utterance and epoch of the untagged network folds in ``records``."""
    pace = [
        r["provenance"]["wall_time_s"] / (r["train_size"] * r["config"]["train"]["epochs"])
        for r in records
        if not r["config"].get("tag")
        and not r["config"].get("selection")
        and r["config"]["seed"] == seed
        and "baseline" not in VARIANTS[r["config"]["variant"]]
        and r["provenance"]["hardware"]["device"] == "cpu"
    ]
    return sum(pace) / len(pace) if pace else None


def format_status(df: pd.DataFrame) -> str:
    shown = df.assign(
        done=[f"{d}/{n}" for d, n in zip(df.done, df.folds)],
        hours_spent=df.hours_spent.map(lambda h: f"{h:.1f}"),
        hours_left_est=df.hours_left_est.map(lambda h: "?" if pd.isna(h) else f"{h:.1f}"),
    ).drop(columns="folds")
    finished = int((df.done == df.folds).sum())
    tail = f"\n{finished} of {len(df)} runs finished"
    if finished < len(df):
        unknown = int(df.hours_left_est.isna().sum())
        if unknown < len(df) - finished:
            tail += f"; about {df.hours_left_est.sum():.1f} worker-hours left at the pace of the folds done so far"
            tail += f" (plus {unknown} run(s) with no estimate yet)" if unknown else ""
        else:
            tail += "; no estimate of the time left yet (no fold of this corpus has been computed on a CPU)"
    return shown.to_string(index=False) + tail + "."
