"""Evaluation protocols: which utterances are tested in which fold.

Folds are always split by utterance (every crop of an utterance follows it), and the
split depends only on the corpus table and the seed, so every variant sees the same
folds. The paper used stratified 5- and 10-fold CV on EMODB and 10-fold
leave-one-speaker-out ("10-fold LOSO") on IEMOCAP; we add LOSO on EMODB (10 speakers),
leave-one-session-out for IEMOCAP, a speaker-grouped 4-fold for corpora with many
speakers (RAVDESS: 24 actors, where 24 LOSO folds of training cost too much on a CPU), and
an inner validation split for model selection that never touches the outer test fold.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd
from sklearn.model_selection import LeaveOneGroupOut, StratifiedGroupKFold, StratifiedKFold

from .corpora import Corpus
from .errors import EESRError
from .paper import reference_corpus

PROTOCOLS = ("kfold5", "kfold10", "loso-speaker", "loso-session", "speaker-kfold4")
SPEAKER_INDEPENDENT = ("loso-speaker", "loso-session", "speaker-kfold4")


def folds(corpus: Corpus, protocol: str, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """``[(train_idx, test_idx), ...]`` for ``protocol`` on ``corpus`` (fixed for a seed)."""
    y = corpus.y
    idx = np.arange(len(corpus))
    if protocol in ("kfold5", "kfold10"):
        k = 5 if protocol == "kfold5" else 10
        counts = np.bincount(y, minlength=len(corpus.labels))
        if counts.min() < k:
            rare = corpus.labels[int(counts.argmin())]
            raise EESRError(f"{protocol} needs {k} utterances of every class; '{rare}' has {counts.min()}")
        return list(StratifiedKFold(n_splits=k, shuffle=True, random_state=seed).split(idx, y))
    if protocol == "loso-speaker":
        return _leave_one_group_out(idx, y, corpus.table["speaker"].to_numpy())
    if protocol == "loso-session":
        if "session" not in corpus.table.columns:
            raise EESRError(f"Corpus '{corpus.name}' has no sessions: loso-session needs a 'session' column")
        return _leave_one_group_out(idx, y, corpus.table["session"].to_numpy())
    if protocol == "speaker-kfold4":
        test_fold = corpus.table["speaker"].map(speaker_folds(corpus.table["speaker"], 4)).to_numpy()
        return [(idx[test_fold != k], idx[test_fold == k]) for k in range(4)]
    raise EESRError(f"Unknown protocol '{protocol}': use one of {PROTOCOLS}")


def _leave_one_group_out(idx, y, groups) -> list[tuple[np.ndarray, np.ndarray]]:
    """One fold per group, in sorted group order (speaker '03' is fold 0 on EMODB)."""
    return list(LeaveOneGroupOut().split(idx, y, groups))


def speaker_folds(speakers: list[str] | pd.Series, k: int) -> dict:
    """Deal the sorted speakers to ``k`` folds in snake order (0, 1, .., k-1, k-1, .., 0, 0, ..).

    Why snake order: it is deterministic, needs no labels, and where speaker numbers
    alternate in gender, as RAVDESS's actors do (odd male, even female), every fold gets
    as many of each: with k = 4, actors 01, 08, 09, 16, 17, 24 form fold 0.
    """
    ordered = sorted(set(speakers))
    if len(ordered) < k:
        raise EESRError(f"A speaker-grouped {k}-fold needs at least {k} speakers; the corpus has {len(ordered)}")
    fold_of = {}
    for i, s in enumerate(ordered):
        r, pos = divmod(i, k)
        fold_of[s] = pos if r % 2 == 0 else k - 1 - pos
    return fold_of


def book_protocols(corpus: Corpus) -> list[str]:
    """The protocols the book's chapters show for ``corpus`` (profile "paper").

    The paper's stratified 5- and 10-fold and leave-one-speaker-out; leave-one-session-out
    where the corpus has sessions (IEMOCAP). With more than 12 speakers (RAVDESS: 24) the
    question worth the training time is the speaker-independent one, so the stratified
    k-folds give way to the speaker-grouped 4-fold. IEMOCAP and the corpora standing in for it
    (nEMO) get the paper's IEMOCAP protocols, leave-one-speaker-out and 10-fold. A chapter's
    ``protocols`` parameter overrides this.
    """
    if corpus.table["speaker"].nunique() > 12:
        return ["loso-speaker", "speaker-kfold4"]
    sessions = ["loso-session"] if "session" in corpus.table.columns else []
    if reference_corpus(corpus.name) == "iemocap":  # IEMOCAP or its stand-in: the paper's IEMOCAP protocols
        return ["loso-speaker", "kfold10", *sessions]
    return ["kfold5", "kfold10", "loso-speaker"] + (["loso-session"] if "session" in corpus.table.columns else [])


def fold_names(corpus: Corpus, protocol: str, seed: int = 0) -> list[str]:
    """Human-readable fold names: the held-out speaker/session for LOSO, else ``fold k``."""
    if protocol == "loso-speaker":
        return [f"speaker {s}" for s in sorted(corpus.table["speaker"].unique())]
    if protocol == "loso-session":
        return [f"session {s}" for s in sorted(corpus.table["session"].unique())]
    if protocol == "speaker-kfold4":
        spk = corpus.table["speaker"].to_numpy()
        return [f"speakers {', '.join(sorted(set(spk[te])))}" for _, te in folds(corpus, protocol, seed)]
    return [f"fold {k}" for k in range(len(folds(corpus, protocol, seed)))]


def inner_split(
    corpus: Corpus, train_idx: np.ndarray, protocol: str, seed: int = 0, n_splits: int = 5
) -> tuple[np.ndarray, np.ndarray]:
    """Split an outer *training* fold into (inner_train, validation) for model selection.

    Only ``train_idx`` is seen here, so the outer test fold cannot influence any choice.
    For speaker-independent protocols the validation utterances come from held-out
    speakers (stratified group k-fold by speaker), so validation is speaker-independent too.
    """
    y = corpus.y[train_idx]
    if protocol in SPEAKER_INDEPENDENT:
        groups = corpus.table["speaker"].to_numpy()[train_idx]
        n = min(n_splits, len(np.unique(groups)))
        splitter = StratifiedGroupKFold(n_splits=n, shuffle=True, random_state=seed)
        tr, va = next(splitter.split(train_idx, y, groups))
    else:
        n = max(2, min(n_splits, int(np.bincount(y).min())))
        tr, va = next(StratifiedKFold(n_splits=n, shuffle=True, random_state=seed).split(train_idx, y))
    return train_idx[tr], train_idx[va]


def iter_folds(
    corpus: Corpus, protocol: str, seed: int = 0, only: list[int] | None = None
) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    all_folds = folds(corpus, protocol, seed)
    wanted = range(len(all_folds)) if only is None else only
    for k in wanted:
        if not 0 <= k < len(all_folds):
            raise EESRError(f"Fold {k} does not exist: protocol '{protocol}' has {len(all_folds)} folds")
        yield k, *all_folds[k]
