"""The replication's list of runs, in one place, and how far along it is.

Why a list: the full replication (every protocol, every row of Table 4, a second corpus) is
~100 folds of 40 epochs, days of CPU time. It is done across many sittings and, where there
are cores or a GPU to spare, by several processes at once. ``eesr replicate`` walks this list:
it prints what is finished and what is left, and with ``--run`` computes what is left, fold by
fold; the runner's fold claims let several ``eesr replicate --run`` share the work.

The order is the order of priority: the proposed model first, then the baselines (cheap),
then the ablations, the 5-fold ones before the leave-one-speaker-out ones.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from .corpora import Corpus
from .errors import EESRError
from .protocols import book_protocols, folds
from .report import load_folds
from .runner import RESULTS_DIR, VARIANTS, fold_busy, fold_dir

PROPOSED = "ae+ee+in"
BASELINES = ("is10+svm", "is10+mlp")
ABLATIONS = ("ae-os", "ae-os+ee+in", "ae", "ae+ee", "ae+in")  # Table 4's other network rows

# The paper's protocols (5- and 10-fold) plus the speaker-independent one it did not report.
_EMODB = (
    [("kfold5", PROPOSED), ("kfold10", PROPOSED), ("loso-speaker", PROPOSED)]
    + [(p, b) for p in ("kfold5", "kfold10", "loso-speaker") for b in BASELINES]
    + [(p, v) for p in ("kfold5", "loso-speaker") for v in ABLATIONS]
)
# RAVDESS has 24 actors: the proposed model on four speaker-grouped folds (six actors held
# out in each), the cheap baselines on both that and leave-one-actor-out.
_RAVDESS = [("speaker-kfold4", PROPOSED)] + [(p, b) for p in ("speaker-kfold4", "loso-speaker") for b in BASELINES]
REPLICATION: dict[str, list[tuple[str, str]]] = {"emodb": _EMODB, "ravdess": _RAVDESS}


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


def status(corpus: Corpus, results_dir: str | Path = RESULTS_DIR, seed: int = 0) -> pd.DataFrame:
    """One row per run of :func:`runs_for`: folds finished, left and being computed now (a process
    holds their claim), wall time spent, an estimate of what is left.

    The estimate uses this run's own finished folds, or, before any has finished, the pace of
    the corpus's other network runs (seconds per training utterance and epoch) times this
    run's training sizes. It is in worker-hours: the wall time one process needs at the pace
    the finished folds were computed (two workers sharing a machine each run at about half speed,
    and take half the folds), a forecast for the same machine and nothing more.
    """
    done = [r for r in load_folds(results_dir, dataset=corpus.name) if not r["config"].get("tag")]
    done = [r for r in done if not r["config"].get("selection") and r["config"]["seed"] == seed]
    network = [r for r in done if "baseline" not in VARIANTS[r["config"]["variant"]]]
    pace = [
        r["provenance"]["wall_time_s"] / (r["train_size"] * r["config"]["train"]["epochs"])
        for r in network
        if r["provenance"]["hardware"]["device"] == "cpu"
    ]
    pace_s = sum(pace) / len(pace) if pace else None
    rows = []
    for protocol, variant in runs_for(corpus):
        split = folds(corpus, protocol, seed)
        mine = {r["fold"]: r for r in done if r["config"]["protocol"] == protocol and r["config"]["variant"] == variant}
        left = [k for k in range(len(split)) if k not in mine]
        out_dir = fold_dir(results_dir, corpus.name, protocol, variant)
        running = [k for k in left if fold_busy(out_dir / f"fold_{k}.lock")]
        spent = sum(r["provenance"]["wall_time_s"] for r in mine.values())
        if not left:
            eta = 0.0
        elif mine:
            eta = spent / len(mine) * len(left)
        elif "baseline" not in VARIANTS[variant] and pace_s is not None:
            epochs = network[0]["config"]["train"]["epochs"]
            eta = sum(pace_s * len(split[k][0]) * epochs for k in left)
        else:
            eta = float("nan")
        rows.append(
            {
                "protocol": protocol,
                "variant": variant,
                "done": len(mine),
                "folds": len(split),
                "left": ",".join(map(str, left)) or "-",
                "running": ",".join(map(str, running)) or "-",
                "hours_spent": spent / 3600,
                "hours_left_est": eta / 3600,
            }
        )
    return pd.DataFrame(rows)


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
        tail += f"; about {df.hours_left_est.sum():.1f} worker-hours left at the pace of the folds done so far"
        tail += f" (plus {unknown} run(s) with no estimate yet)" if unknown else ""
    return shown.to_string(index=False) + tail + "."
