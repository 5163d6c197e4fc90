"""The experiment runner: any row of the paper's Table 4 under any protocol, resumably.

A run is planned, computed and written in three steps that :func:`run` chains in one process
and :mod:`eesr_lib.distributed` spreads over a Ray cluster: :func:`plan_experiment` turns the
arguments into one :class:`FoldJob` per wanted fold; :func:`compute_fold` computes a fold from
its job, the corpus and its features and *returns* its record and arrays (it writes nothing
but its checkpoint and partial curve, in a scratch folder of its own machine); :func:`write_fold`
writes the fold's files into the results folder, the ``.json`` last.

Where the files go, how they are written and claimed is :mod:`eesr_lib.results`; what a variant and
its configuration are is :mod:`eesr_lib.variants`. A finished fold is skipped on a rerun, a fold
another process holds is skipped too (several runs share the work), and a fold interrupted
mid-training resumes from its checkpoint at the next epoch. Nothing finished is recomputed unless
``force=True``; asking for a *different* configuration where a finished fold exists is an error, so
results never mix configs.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from . import baselines
from .batched import FoldData, train_folds
from .corpora import Corpus, load_corpus
from .crops import CropBank
from .errors import EESRError
from .features import IS10_DIM, corpus_features
from .metrics import SCORE_DECIMALS, classification_metrics
from .model import ModelConfig
from .protocols import PROTOCOLS, SPEAKER_INDEPENDENT, fold_names, folds, inner_split
from .provenance import provenance
from .results import (
    RESULTS_DIR,
    SCORE_KEYS,
    fold_bundle,
    fold_checkpoint,
    fold_claim,
    fold_curve,
    fold_json,
    fold_npz,
    read_fold,
    run_dir,
    stacked_checkpoint,
    write_partial_curve,
)
from .results import run_dir as fold_dir  # noqa: F401 (chapter 5 imports it from here)
from .results import write_fold as write_fold_files
from .train import (
    TrainConfig,
    predict_utterances,
    recalibrate_batch_norm,
    recalibrates,
    resolve_device,
    standardize_is10,
    train_fold,
)
from .variants import VARIANTS, config_hash, config_record, configs

log = logging.getLogger(__name__)


def _checkpoint_history(ckpt: Path, key: str = "history") -> list:
    """The epoch records of a checkpoint left by an interrupted process ([] when there is none); ``key``
    "histories": a stacked checkpoint's, one list per fold.

    Memory-mapped, so reading the history does not load the (hundreds of MB of) weights and
    optimizer state that the trainer loads from the same file right after."""
    if not ckpt.exists():
        return []
    return torch.load(ckpt, map_location="cpu", weights_only=False, mmap=True)[key]


def _wall_time(this_process_s: float, earlier: list[dict]) -> dict:
    """``wall_time_s`` of a fold: this process's time plus the epochs that interrupted processes
    trained before it (their per-epoch ``seconds``), so a resumed fold does not look cheap."""
    out = {"wall_time_s": round(this_process_s + sum(h.get("seconds", 0.0) for h in earlier), 2)}
    if earlier:
        out["resumed_after_epoch"] = len(earlier)
        if any("seconds" not in h for h in earlier):  # checkpoints written before epochs were timed
            out["wall_time_note"] = "epochs trained before the resume were not timed; wall_time_s undercounts"
    return out


def run(
    dataset: str = "emodb",
    protocol: str = "kfold5",
    variant: str = "ae+ee+in",
    *,
    data_root: str | Path | None = None,
    results_dir: str | Path = RESULTS_DIR,
    folds_to_run: list[int] | None = None,
    epochs: int | None = None,
    batch_size: int | None = None,
    device: str = "auto",
    seed: int = 0,
    fold_seed: int | None = None,
    force: bool = False,
    tag: str | None = None,
    overrides: dict | None = None,
    progress: bool = True,
    corpus: Corpus | None = None,
    selection: bool = False,
    curve_every: int = 1,
    test_curve: bool = False,
    keep_weights: bool = False,
    stack_folds: int = 1,
    cuda_graphs: bool | None = None,
) -> list[dict]:
    """Run (or reuse) the folds of one experiment; returns each requested fold's result dict,
    except folds another process is computing at the time (they are skipped, see the module).

    ``selection=True`` is for choosing settings (the recipe search, the budget): each outer fold's
    *training* part is split again (:func:`~eesr_lib.protocols.inner_split`, by speaker
    for speaker-independent protocols) and the model is scored on that validation part.
    The outer test utterances are not even passed on, so no choice can see them. Results
    go to ``<protocol>+inner/`` so they are never mistaken for test results.

    ``curve_every`` (selection runs): score the validation split every that many epochs (and
    after the last), so that a long learning-curve run does not spend a third of its time
    scoring. After each epoch the curve so far is written to ``fold_<k>.curve.json``: a run
    longer than a sitting leaves a usable partial curve, and it resumes from its checkpoint.

    ``test_curve`` (outer runs): also score the test fold after every epoch (every
    :data:`TEST_CURVE_EVERY_BN` epochs in the batch-norm rows: :func:`epochs_between_test_scores`) and keep it in the
    history as ``test_ua_not_for_selection`` / ``test_wa_not_for_selection``. Nothing reads it
    to choose anything: it exists to *measure* what choosing on the test folds would report (a
    demonstration of that flaw, eesr_lib.flaws). Training is unchanged by it.

    ``keep_weights``: each fold computed by this call also writes its trained model as a bundle
    (:mod:`eesr_lib.bundle`) to ``fold_<k>.bundle/``, before its ``.json``.

    ``fold_seed``: the seed that deals the folds (and each fold's inner validation split); ``None``
    (the default) uses ``seed``, as every run did before the two were separate. Give it to vary the
    training seed over fixed test sets: the record's config then holds ``fold_seed`` beside ``seed``.

    ``stack_folds`` (networks): train that many unfinished folds at a time as one stacked model
    (:func:`compute_folds`), which is what fills a GPU. The same numbers as one at a time but for the
    dropout masks' random stream; the folds' records say so.

    ``cuda_graphs`` (networks, one fold at a time): replay each training step from a CUDA graph
    (:mod:`eesr_lib.graphed`); ``None`` (the default) uses them on a CUDA device. Why the default: on an
    H200 they trained 2.65x faster than the eager step, and a 40-epoch EMODB fold reached the same WA and
    a UA within 0.3 points (benchmarks/README.md). Each epoch's record says ``"cuda_graphs": true``.
    Stacked folds (``stack_folds`` > 1) are not graphed.
    """
    if stack_folds < 1:
        raise EESRError(f"stack_folds must be >= 1, got {stack_folds}")
    dev = resolve_device(device)
    graphs = use_cuda_graphs(cuda_graphs, dev, stack_folds)
    corpus, jobs = plan_experiment(
        dataset,
        protocol,
        variant,
        data_root=data_root,
        results_dir=results_dir,
        folds_to_run=folds_to_run,
        epochs=epochs,
        batch_size=batch_size,
        seed=seed,
        fold_seed=fold_seed,
        tag=tag,
        overrides=overrides,
        corpus=corpus,
        selection=selection,
        curve_every=curve_every,
        test_curve=test_curve,
        keep_weights=keep_weights,
        cuda_graphs=graphs,
    )
    if stack_folds > 1 and "baseline" not in VARIANTS[variant]:
        return _run_stacked(jobs, corpus, dev, stack_folds, force, progress)
    specs = is10 = None
    results = []
    for job in tqdm(jobs, desc=f"{corpus.name} {protocol} {variant}", unit="fold", disable=not progress):
        k, done = job.fold, fold_json(job.out_dir, job.fold)
        if done.exists() and not force:
            results.append(read_fold(done, job.config))
            if keep_weights and not fold_bundle(job.out_dir, k).exists():
                log.warning("%s fold %d finished earlier without its weights: --force recomputes it", job.out_dir, k)
            continue
        with fold_claim(job.out_dir, k) as claimed:
            if not claimed:
                log.info("%s fold %d is being computed by another process: skipped here", job.out_dir, k)
                continue
            if done.exists() and not force:  # another process finished it since we looked
                results.append(read_fold(done, job.config))
                continue
            if specs is None:  # features only when something is left to compute (cached on disk)
                specs, is10 = corpus_features(corpus, progress=progress)
            results.append(write_fold(job, compute_fold(job, corpus, specs, is10, dev, job.out_dir, progress)))
    return results


def use_cuda_graphs(asked: bool | None, dev: torch.device, stack_folds: int = 1) -> bool:
    """Whether a run's folds train with CUDA graphs: ``asked``, or on a CUDA device when ``None``; refused
    where they cannot run (a CPU, stacked folds) rather than silently ignored."""
    if asked is None:
        return dev.type == "cuda" and stack_folds == 1
    if asked and dev.type != "cuda":
        raise EESRError(f"CUDA graphs need a CUDA device; this run trains on {dev.type}")
    if asked and stack_folds > 1:
        raise EESRError("stacked folds (stack_folds > 1) are not trained with CUDA graphs: choose one")
    return asked


def _run_stacked(jobs: list, corpus: Corpus, dev: torch.device, stack_folds: int, force: bool, progress: bool):
    """:func:`run` for ``stack_folds`` > 1: claim every unfinished fold, then train them ``stack_folds`` at a
    time. A fold with a checkpoint of its own (an interrupted one-at-a-time run) resumes alone."""
    results, todo = [], []
    with contextlib.ExitStack() as held:
        for job in jobs:
            done = fold_json(job.out_dir, job.fold)
            if done.exists() and not force:
                results.append(read_fold(done, job.config))
                continue
            if not held.enter_context(fold_claim(job.out_dir, job.fold)):
                log.info("%s is being computed by another process: skipped here", job.label)
                continue
            if done.exists() and not force:  # another process finished it since we looked
                results.append(read_fold(done, job.config))
                continue
            todo.append(job)
        specs, is10 = corpus_features(corpus, progress=progress) if todo else (None, None)
        groups = stack_groups(todo, stack_folds)
        for group in tqdm(groups, desc=f"{corpus.name} stacked folds", unit="group", disable=not progress):
            outputs = compute_folds(group, corpus, specs, is10, dev, group[0].out_dir, progress)
            results.extend(write_fold(job, out) for job, out in zip(group, outputs))
    return sorted(results, key=lambda r: r["fold"])


def stack_groups(jobs: list, stack_folds: int) -> list[list]:
    """The unfinished folds of one experiment as the groups :func:`compute_folds` trains together: up to
    ``stack_folds`` at a time for a network; one each for a baseline, for ``stack_folds`` 1, and for a fold
    with a checkpoint of its own (an interrupted one-at-a-time run), which resumes alone."""
    if stack_folds == 1 or not jobs or "baseline" in VARIANTS[jobs[0].variant]:
        return [[job] for job in jobs]
    alone = [job for job in jobs if fold_checkpoint(job.out_dir, job.fold, job.cfg_hash).exists()]
    rest = [job for job in jobs if job not in alone]
    return [[job] for job in alone] + [rest[i : i + stack_folds] for i in range(0, len(rest), stack_folds)]


@dataclass(eq=False)
class FoldJob:
    """What one fold of one experiment is: everything :func:`compute_fold` needs besides the corpus and
    its features, and where :func:`write_fold` puts the result. Small and picklable (a Ray task's argument)."""

    out_dir: Path  # the experiment's folder in the results folder (the driver's machine)
    fold: int
    fold_name: str
    n_folds: int
    train_idx: np.ndarray
    test_idx: np.ndarray
    protocol: str
    variant: str
    model_cfg: ModelConfig
    train_cfg: TrainConfig
    seed: int
    config: dict
    cfg_hash: str
    selection: bool = False
    score_every: int | None = None
    keep_weights: bool = False
    cuda_graphs: bool = False  # how the step runs, not what it computes: not in the config

    @property
    def label(self) -> str:
        """``<dataset>/<protocol>/<variant>[@tag] fold <k>``, for progress bars and logs."""
        return f"{'/'.join(self.out_dir.parts[-3:])} fold {self.fold}"


@dataclass(eq=False)
class FoldOutput:
    """What computing a fold returns: its ``.json`` record and ``.npz`` arrays (network variants), and
    ``bundle_files`` (relative path -> bytes) when its model bundle was written elsewhere than the results."""

    record: dict
    arrays: dict[str, np.ndarray] | None = None
    bundle_files: dict[str, bytes] | None = None
    log: str = field(default="", repr=False)


# How often an outer run with ``test_curve`` scores its test fold in the rows whose every score first
# re-estimates the batch-norm statistics over the training crops (train.recalibrate_batch_norm). That costs
# ~40 % of a training epoch on the 2-core CPU (AE, EMODB 5-fold fold 0 at 8x: 17 s an epoch scored every
# epoch, 11.8 s of it training), hours over a run list of such folds. Every 4th epoch still gives the
# budgets the book reads (40, 80, 160, 320 epochs) and the last epoch exactly; the proposed model (instance
# norm, nothing to re-estimate) keeps its score after every epoch, which the test-fold-selection
# demonstration reads. Training is the same either way: the re-estimation has its own random stream.
TEST_CURVE_EVERY_BN = 4


def epochs_between_test_scores(model_cfg: ModelConfig, train_cfg: TrainConfig) -> int:
    """Epochs between two test-fold scores of an outer run's test curve (see :data:`TEST_CURVE_EVERY_BN`)."""
    return TEST_CURVE_EVERY_BN if recalibrates(model_cfg, train_cfg) else 1


def plan_experiment(
    dataset: str = "emodb",
    protocol: str = "kfold5",
    variant: str = "ae+ee+in",
    *,
    data_root: str | Path | None = None,
    results_dir: str | Path = RESULTS_DIR,
    folds_to_run: list[int] | None = None,
    epochs: int | None = None,
    batch_size: int | None = None,
    seed: int = 0,
    fold_seed: int | None = None,
    tag: str | None = None,
    overrides: dict | None = None,
    corpus: Corpus | None = None,
    selection: bool = False,
    curve_every: int = 1,
    test_curve: bool = False,
    keep_weights: bool = False,
    cuda_graphs: bool = False,
) -> tuple[Corpus, list[FoldJob]]:
    """The corpus and one :class:`FoldJob` per wanted fold of an experiment (finished or not); checks the
    arguments as :func:`run` documents them and creates the experiment's folder."""
    if protocol not in PROTOCOLS:
        raise EESRError(f"Unknown protocol '{protocol}': use one of {PROTOCOLS}")
    if curve_every < 1:
        raise EESRError(f"curve_every must be >= 1, got {curve_every}")
    if test_curve and selection:
        raise EESRError("test_curve is for outer runs; a selection run scores its validation split instead")
    if keep_weights and "baseline" in VARIANTS.get(variant, {}):
        raise EESRError(f"--keep-weights keeps a network's weights; variant '{variant}' has none")
    corpus = corpus or load_corpus(dataset, data_root)
    overrides = dict(overrides or {})
    if epochs is not None:
        overrides["epochs"] = epochs
    if batch_size is not None:
        overrides["batch_size"] = batch_size
    model_cfg, train_cfg = configs(variant, len(corpus.labels), overrides)
    deal = seed if fold_seed is None else fold_seed
    all_folds = folds(corpus, protocol, deal)
    names = fold_names(corpus, protocol, deal)
    if selection:
        all_folds = [inner_split(corpus, train_idx, protocol, deal) for train_idx, _test_idx in all_folds]
        names = [f"validation inside {n}" for n in names]
    wanted = list(range(len(all_folds))) if folds_to_run is None else list(folds_to_run)
    for k in wanted:
        if not 0 <= k < len(all_folds):
            raise EESRError(f"Fold {k} does not exist: protocol '{protocol}' has {len(all_folds)} folds")
    out_dir = run_dir(results_dir, corpus.name, protocol, variant, tag, selection)
    out_dir.mkdir(parents=True, exist_ok=True)
    config = config_record(
        corpus.name, corpus.labels, protocol, variant, tag, seed, model_cfg, train_cfg, selection, fold_seed=deal
    )
    cfg_hash = config_hash(config)
    score_every = None
    if selection:
        score_every = curve_every
    elif test_curve:
        score_every = epochs_between_test_scores(model_cfg, train_cfg)
    return corpus, [
        FoldJob(
            out_dir=out_dir,
            fold=k,
            fold_name=names[k],
            n_folds=len(all_folds),
            train_idx=all_folds[k][0],
            test_idx=all_folds[k][1],
            protocol=protocol,
            variant=variant,
            model_cfg=model_cfg,
            train_cfg=train_cfg,
            seed=seed,
            config=config,
            cfg_hash=cfg_hash,
            selection=selection,
            score_every=score_every,
            keep_weights=keep_weights,
            cuda_graphs=cuda_graphs,
        )
        for k in wanted
    ]


def compute_fold(
    job: FoldJob,
    corpus: Corpus,
    specs: list[np.ndarray] | None,
    is10: np.ndarray,
    device: torch.device,
    scratch: Path,
    progress: bool = False,
) -> FoldOutput:
    """Compute one fold and return its record (provenance of *this* machine) and arrays; write nothing
    but the fold's per-epoch checkpoint and partial learning curve (and, with ``keep_weights``, its model
    bundle) into ``scratch``: the results folder when computing there, a local folder on a remote worker.
    A checkpoint found in ``scratch`` is resumed. The caller writes the files (:func:`write_fold`)."""
    scratch = Path(scratch)
    t0 = time.time()
    ckpt = fold_checkpoint(scratch, job.fold, job.cfg_hash)
    earlier = _checkpoint_history(ckpt)  # epochs trained by interrupted processes, if any
    if earlier:
        log.info("%s resumes after epoch %d from %s", job.label, len(earlier), ckpt)
    record, arrays = _run_fold(
        corpus, specs, is10, job.train_idx, job.test_idx, dev=device, ckpt_path=ckpt, progress=progress,
        cuda_graphs=job.cuda_graphs, **_fold_settings(job, scratch),
    )  # fmt: skip
    record.update(
        fold=job.fold,
        fold_name=job.fold_name,
        n_folds=job.n_folds,
        config=job.config,
        provenance={**provenance(device), **_wall_time(time.time() - t0, earlier)},
    )
    return FoldOutput(record, arrays)


def _fold_settings(job: FoldJob, scratch: Path) -> dict:
    """The keyword arguments of :func:`_run_fold` / :func:`_prepare_network` that come from ``job``."""
    return {
        "protocol": job.protocol,
        "variant": job.variant,
        "model_cfg": job.model_cfg,
        "train_cfg": job.train_cfg,
        "seed": job.seed,
        "features_file": fold_npz(job.out_dir, job.fold).name,
        "score_every": job.score_every,
        "score_keys": SCORE_KEYS["validation" if job.selection else "test"],
        "curve_path": fold_curve(scratch, job.fold) if job.selection else None,
        "curve_header": {"fold": job.fold, "fold_name": job.fold_name, "config": job.config},
        "bundle_path": fold_bundle(scratch, job.fold) if job.keep_weights else None,
    }


def compute_folds(
    jobs: list[FoldJob],
    corpus: Corpus,
    specs: list[np.ndarray] | None,
    is10: np.ndarray,
    device: torch.device,
    scratch: Path,
    progress: bool = False,
) -> list[FoldOutput]:
    """Compute several folds of one network experiment trained as one stacked model
    (:func:`eesr_lib.batched.train_folds`: each kernel does the work of all of them, which is what fills a
    GPU); returns one :class:`FoldOutput` per job, as :func:`compute_fold` would. One job: :func:`compute_fold`.

    The stacked checkpoint (``folds_<k>-<k>...<hash>.ckpt.pt`` in ``scratch``) resumes a group of the same
    folds; it is deleted here once every fold's output is complete, since no caller can resume from it
    afterwards (a remote worker's scratch is cleared then anyway). Each fold's ``wall_time_s`` is its share."""
    if len(jobs) == 1:
        return [compute_fold(jobs[0], corpus, specs, is10, device, scratch, progress)]
    first = jobs[0]
    if len({job.cfg_hash for job in jobs}) != 1 or "baseline" in VARIANTS[first.variant]:
        raise EESRError("only folds of one network experiment (one configuration) can be trained stacked")
    scratch = Path(scratch)
    t0 = time.time()
    ckpt = stacked_checkpoint(scratch, [job.fold for job in jobs], first.cfg_hash)
    n_earlier = len(_checkpoint_history(ckpt, key="histories")[0]) if ckpt.exists() else 0
    folds = [
        _prepare_network(corpus, specs, is10, job.train_idx, job.test_idx, dev=device, **_fold_settings(job, scratch))
        for job in jobs
    ]
    trained = train_folds(
        first.model_cfg,
        first.train_cfg,
        [fold.data for fold in folds],
        device,
        checkpoint=ckpt,
        progress=progress,
        on_epoch=[fold.on_epoch for fold in folds],
        after_epoch=[fold.after_epoch for fold in folds],
    )
    outputs = [(job, fold.finish(model), history) for job, fold, (model, history) in zip(jobs, folds, trained)]
    share = (time.time() - t0) / len(jobs)
    out = []
    for job, (scores, extra, arrays), history in outputs:
        record = _record(corpus, job.train_idx, job.test_idx, scores, history, extra)
        record.update(
            fold=job.fold,
            fold_name=job.fold_name,
            n_folds=job.n_folds,
            config=job.config,
            provenance={
                **provenance(device),
                **_wall_time(share, history[:n_earlier]),
                "stacked_with_folds": [j.fold for j in jobs],
            },
        )
        out.append(FoldOutput(record, arrays))
    ckpt.unlink(missing_ok=True)
    return out


def write_fold(job: FoldJob, out: FoldOutput) -> dict:
    """Write a computed fold into the results folder (:func:`eesr_lib.results.write_fold`: the ``.json`` last
    and atomically), dropping the checkpoint and partial curve it leaves there. Returns the record."""
    write_fold_files(job.out_dir, job.fold, out.record, out.arrays, out.bundle_files, job.cfg_hash)
    return out.record


def _run_fold(
    corpus,
    specs,
    is10,
    train_idx,
    test_idx,
    protocol,
    variant,
    model_cfg,
    train_cfg,
    seed,
    dev,
    ckpt_path: Path,
    features_file: str,
    progress: bool,
    score_every: int | None = None,
    score_keys: dict[str, str] = SCORE_KEYS["validation"],
    curve_path: Path | None = None,
    curve_header: dict | None = None,
    bundle_path: Path | None = None,
    cuda_graphs: bool = False,
) -> dict:
    """Train on ``train_idx`` and score ``test_idx``; the test labels are used only for metrics.

    ``score_every`` scores the ``test_idx`` utterances every that many epochs into the history
    under ``score_keys`` (UA, WA): in selection runs, where ``test_idx`` is an inner validation
    split, to choose the budget; in outer runs only to measure the test-fold-selection flaw
    (see :func:`run`). Batch-norm models get their statistics re-estimated first, as after
    training, so that the curve measures the model that would be tested. ``curve_path``
    receives the history so far after every epoch. Returns the fold's record and, for a network, the
    arrays of its ``.npz`` (named ``features_file`` in the record); None for the baselines that have none.
    """
    spec = VARIANTS[variant]
    extra: dict = {}
    history: list[dict] = []
    arrays = None
    if spec.get("baseline") == "svm":
        groups = corpus.table["speaker"].to_numpy()[train_idx] if protocol in SPEAKER_INDEPENDENT else None
        scores, extra = baselines.svm_scores(is10[train_idx], corpus.y[train_idx], is10[test_idx], groups, seed)
    elif spec.get("baseline") == "mlp":
        tr, te = standardize_is10(is10[train_idx], is10[test_idx])
        scores, history = baselines.mlp_scores(tr, corpus.y[train_idx], te, model_cfg, train_cfg, seed, dev, progress)
    else:
        fold = _prepare_network(
            corpus, specs, is10, train_idx, test_idx, protocol, variant, model_cfg, train_cfg, seed, dev,
            features_file, score_every, score_keys, curve_path, curve_header, bundle_path,
        )  # fmt: skip
        model, history = train_fold(
            model_cfg,
            train_cfg,
            fold.data.specs,
            fold.data.is10,
            fold.data.y,
            seed=seed,
            device=dev,
            checkpoint=ckpt_path,
            progress=progress,
            on_epoch=fold.on_epoch,
            after_epoch=fold.after_epoch,
            cuda_graphs=cuda_graphs,
        )
        scores, extra, arrays = fold.finish(model)
    return _record(corpus, train_idx, test_idx, scores, history, extra), arrays


@dataclass(eq=False)
class _NetworkFold:
    """A network fold between its preparation and its scoring: the training set as the trainer takes it,
    the per-epoch callbacks, and ``finish(model) -> (test scores, record entries, .npz arrays)``."""

    data: FoldData
    on_epoch: Callable | None
    after_epoch: Callable | None
    finish: Callable


def _prepare_network(
    corpus, specs, is10, train_idx, test_idx, protocol, variant, model_cfg, train_cfg, seed, dev,
    features_file, score_every, score_keys, curve_path, curve_header, bundle_path,
) -> _NetworkFold:  # fmt: skip
    """What training one network fold needs, and what turns the trained model into the fold's result
    (see :func:`_run_fold`): shared by folds trained one at a time and folds trained stacked."""
    y = corpus.y
    labels = corpus.labels
    if model_cfg.use_is10 and is10.shape[1] != IS10_DIM:
        raise EESRError(f"IS10 matrix has {is10.shape[1]} columns, expected {IS10_DIM}")
    tr_is10, te_is10 = standardize_is10(is10[train_idx], is10[test_idx])
    on_epoch = after_epoch = None
    if score_every is not None:
        val_specs = [specs[i] for i in test_idx]
        bank = []  # built on first use: the training crops for BN re-estimation

        def on_epoch(epoch, model):
            if epoch % score_every and epoch != train_cfg.epochs:
                return {}
            if recalibrates(model_cfg, train_cfg):
                if not bank:
                    train_specs = [specs[i] for i in train_idx]
                    bank.append(CropBank(train_specs, model_cfg.crop_frames, train_cfg.pad_mode, dev))
                recalibrate_batch_norm(model, bank[0], train_cfg, seed, dev)
            s, _ = predict_utterances(model, val_specs, te_is10, train_cfg, dev)
            m = classification_metrics(y[test_idx], s.argmax(1), labels)
            return {score_keys["ua"]: m["ua"], score_keys["wa"]: m["wa"]}

    if curve_path is not None:

        def after_epoch(history):
            write_partial_curve(curve_path, curve_header or {}, history)

    def finish(model):
        scores, deep = predict_utterances(model, [specs[i] for i in test_idx], te_is10, train_cfg, dev)
        arrays = {
            "ids": np.asarray(corpus.table["id"].to_numpy()[test_idx], dtype=str),
            "y_true": y[test_idx],
            "deep": deep.astype(np.float16),
            "emotion_embeddings": model.emotion_embeddings().cpu().numpy().astype(np.float32),
        }
        extra = {"features_file": features_file}
        if bundle_path is not None:
            from .bundle import save_bundle

            header = curve_header or {}
            info = {"dataset": corpus.name, "protocol": protocol, "variant": variant, "seed": seed}
            info.update(fold=header.get("fold"), fold_name=header.get("fold_name"), utterances=int(len(train_idx)))
            save_bundle(bundle_path, model, labels, train_cfg, is10[train_idx], info=info, device=dev)
            extra["bundle"] = bundle_path.name
        if dev.type == "cuda":
            torch.cuda.empty_cache()
        return scores, extra, arrays

    data = FoldData([specs[i] for i in train_idx], tr_is10, y[train_idx], seed)
    return _NetworkFold(data, on_epoch, after_epoch, finish)


def _record(corpus, train_idx, test_idx, scores, history, extra) -> dict:
    """A fold's result record: metrics and every test utterance's prediction and scores."""
    y, labels = corpus.y, corpus.labels
    pred = scores.argmax(1)
    ids = corpus.table["id"].to_numpy()[test_idx]
    record = {
        "labels": list(labels),
        "metrics": classification_metrics(y[test_idx], pred, labels),
        "predictions": [
            {
                "id": str(i),
                "true": labels[t],
                "pred": labels[p],
                "scores": [round(float(s), SCORE_DECIMALS) for s in sc],
            }
            for i, t, p, sc in zip(ids, y[test_idx], pred, scores)
        ],
        "train_size": int(len(train_idx)),
        "history": history,
        **extra,
    }
    return record
