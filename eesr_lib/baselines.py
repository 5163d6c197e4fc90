"""Baselines without the autoencoder: IS10 + SVM (the paper's Table 4 row) and IS10 + MLP.

IS10+SVM: standardized IS10 functionals (training-fold statistics), a linear SVM
(scikit-learn ``SVC(kernel="linear")``, one-vs-one, class weights uniform). The paper
gives neither kernel nor C; we pick C from {1e-3, 1e-2, 1e-1, 1} by an inner 5-fold CV on
the training fold only (grouped by speaker for speaker-independent protocols), so the
outer test fold never influences the choice.

IS10+MLP: the same FC1-FC4 head as the proposed model's classifier (Table 3), fed IS10
alone and trained with the same optimizer, so that the gain of the autoencoder can be read
off directly: AE+EE,IN minus IS10+MLP is what the deep feature adds.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.model_selection import GridSearchCV, StratifiedGroupKFold, StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC
from tqdm.auto import tqdm

from .model import ModelConfig, classifier_head
from .train import TrainConfig, set_epoch_lr

SVM_CS = (1e-3, 1e-2, 1e-1, 1.0)
DEFAULT_C = 1e-2  # used only when a class has too few training utterances to tune


def svm_scores(
    train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, groups: np.ndarray | None = None, seed: int = 0
) -> tuple[np.ndarray, dict]:
    """Decision scores ``(N_test, K)`` of a linear SVM tuned inside the training fold."""
    n_splits = min(5, int(np.bincount(train_y).min()))
    if groups is not None and len(np.unique(groups)) >= 3:
        cv = StratifiedGroupKFold(n_splits=min(5, len(np.unique(groups))), shuffle=True, random_state=seed)
    elif n_splits >= 2:
        cv, groups = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed), None
    else:  # a class with a single training utterance: nothing to cross-validate on
        cv, groups = None, None
    pipe = make_pipeline(StandardScaler(), SVC(kernel="linear", decision_function_shape="ovr"))
    if cv is None:
        pipe.set_params(svc__C=DEFAULT_C).fit(train_x, train_y)
        return pipe.decision_function(test_x), {"svm_C": DEFAULT_C, "kernel": "linear", "inner_cv_ua": None}
    search = GridSearchCV(pipe, {"svc__C": list(SVM_CS)}, cv=cv, scoring="balanced_accuracy", n_jobs=1)
    search.fit(train_x, train_y, groups=groups)
    return search.decision_function(test_x), {
        "svm_C": search.best_params_["svc__C"],
        "kernel": "linear",
        "inner_cv_ua": 100 * float(search.best_score_),
    }


def mlp_scores(
    train_x: np.ndarray,
    train_y: np.ndarray,
    test_x: np.ndarray,
    model_cfg: ModelConfig,
    cfg: TrainConfig,
    seed: int = 0,
    device: str | torch.device = "cpu",
    progress: bool = True,
    on_epoch: Callable[[int, torch.nn.Module], dict | None] | None = None,
) -> tuple[np.ndarray, list[dict]]:
    """Softmax scores of the Table 3 head trained on IS10 only (already standardized).

    ``on_epoch(epoch, head)``, if given, is called after every epoch (1-based) with the head in
    eval mode; what it returns is added to that epoch's history record. It exists to *measure*
    (e.g. the per-epoch test curve of :mod:`eesr_lib.flaws`), never to choose: it must not draw
    from torch's global random generator (eval mode draws nothing), so that the training, and the
    scores returned, are the same with or without it.
    """
    torch.manual_seed(seed)
    device = torch.device(device)
    head = classifier_head(train_x.shape[1], model_cfg).to(device)
    opt = torch.optim.Adam(head.parameters(), lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), weight_decay=cfg.weight_decay)
    gen = torch.Generator().manual_seed(seed)
    x = model_cfg.is10_scale * torch.as_tensor(train_x, device=device)
    y = torch.as_tensor(train_y, dtype=torch.long, device=device)
    history = []
    for epoch in tqdm(range(cfg.epochs), desc="epochs", unit="ep", disable=not progress):
        head.train()
        set_epoch_lr(opt, cfg, epoch)
        order = torch.randperm(len(x), generator=gen).to(device)
        total = 0.0
        for b in range(0, len(order), cfg.batch_size):
            idx = order[b : b + cfg.batch_size]
            loss = F.cross_entropy(head(x[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(idx)
        history.append({"epoch": epoch + 1, "loss_ec": total / len(x)})
        if on_epoch is not None:
            head.eval()
            history[-1].update(on_epoch(epoch + 1, head) or {})
    head.eval()
    with torch.no_grad():
        scores = head(model_cfg.is10_scale * torch.as_tensor(test_x, device=device)).softmax(1).cpu().numpy()
    return scores, history
