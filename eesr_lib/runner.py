"""The experiment runner: any row of the paper's Table 4 under any protocol, resumably.

Layout of what a run writes (``results_dir`` defaults to ``results/``)::

    results/<dataset>/<protocol>/<variant>[@tag]/fold_<k>.json   metrics, predictions, history, provenance
    results/<dataset>/<protocol>/<variant>[@tag]/fold_<k>.npz    deep features (float16), emotion embeddings
    results/<dataset>/<protocol>/<variant>[@tag]/fold_<k>.<cfg>.ckpt.pt  while a fold trains (git-ignored)
    results/<dataset>/<protocol>/<variant>[@tag]/fold_<k>.lock  while a fold trains (git-ignored)
    results/<dataset>/<protocol>/<variant>[@tag]/fold_<k>.bundle/  with keep_weights: the fold's model (eesr_lib.bundle)

A fold's ``.json`` is written last and atomically: it exists only for a finished fold, and
a rerun skips it. While a fold computes, its process holds an exclusive lock on
``fold_<k>.lock``; another process running the same experiment skips that fold instead of
computing it twice, so several runs (two ``eesr run`` in two terminals, or an ``eesr run`` and
an ``eesr replicate --run``) share the work. A fold interrupted mid-training resumes from its
checkpoint at the next epoch. Nothing finished is recomputed unless ``force=True``; asking for a
*different* configuration where a finished fold exists is an error, so results never mix configs.

A run is planned, computed and written in three steps that :func:`run` chains in one process
and :mod:`eesr_lib.distributed` spreads over a Ray cluster: :func:`plan_experiment` turns the
arguments into one :class:`FoldJob` per wanted fold; :func:`compute_fold` computes a fold from
its job, the corpus and its features and *returns* its record and arrays (it writes nothing
but its checkpoint and partial curve, in a scratch folder of its own machine); :func:`write_fold`
writes the fold's files into the results folder, the ``.json`` last.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from . import baselines
from .corpora import Corpus, load_corpus
from .crops import CropBank
from .errors import EESRError
from .features import IS10_DIM, SpectrogramParams, corpus_features
from .metrics import SCORE_DECIMALS, classification_metrics
from .model import ModelConfig
from .protocols import PROTOCOLS, SPEAKER_INDEPENDENT, fold_names, folds, inner_split
from .provenance import provenance
from .train import (
    TrainConfig,
    predict_utterances,
    recalibrate_batch_norm,
    resolve_device,
    standardize_is10,
    train_fold,
)

try:  # fold claims (below) need it; Windows has none
    import fcntl
except ImportError:
    fcntl = None

# Table 4's rows. "IN off" means the same network with `norm_without_in` in place of IN.
VARIANTS: dict[str, dict] = {
    "ae+ee+in": {"emotion_embedding": True, "instance_norm": True, "use_is10": True},
    "ae": {"emotion_embedding": False, "instance_norm": False, "use_is10": True},
    "ae+ee": {"emotion_embedding": True, "instance_norm": False, "use_is10": True},
    "ae+in": {"emotion_embedding": False, "instance_norm": True, "use_is10": True},
    "ae-os": {"emotion_embedding": False, "instance_norm": False, "use_is10": False},
    "ae-os+ee+in": {"emotion_embedding": True, "instance_norm": True, "use_is10": False},
    "is10+svm": {"baseline": "svm"},
    "is10+mlp": {"baseline": "mlp"},
}
# The paper says IN *replaced* BN, so the rows without IN use batch norm by default.
NORM_WITHOUT_IN = "batch"
RESULTS_DIR = Path("results")
log = logging.getLogger(__name__)


def configs(variant: str, n_classes: int, overrides: dict | None = None) -> tuple[ModelConfig, TrainConfig]:
    """The model and training configuration of ``variant`` with ``overrides`` applied.

    ``overrides`` may name any field of :class:`ModelConfig` or :class:`TrainConfig`, plus
    ``norm_without_in`` (what replaces IN in the rows without it: "batch" or "none").
    """
    if variant not in VARIANTS:
        raise EESRError(f"Unknown variant '{variant}': use one of {list(VARIANTS)}")
    overrides = dict(overrides or {})
    norm_off = overrides.pop("norm_without_in", NORM_WITHOUT_IN)
    spec = VARIANTS[variant]
    model_kw = {"n_classes": n_classes}
    if "baseline" not in spec:
        model_kw.update(
            emotion_embedding=spec["emotion_embedding"],
            use_is10=spec["use_is10"],
            norm="instance" if spec["instance_norm"] else norm_off,
        )
    model_fields = {f.name for f in fields(ModelConfig)}
    train_fields = {f.name for f in fields(TrainConfig)}
    unknown = set(overrides) - model_fields - train_fields
    if unknown:
        raise EESRError(f"Unknown setting(s) {sorted(unknown)}; known: {sorted(model_fields | train_fields)}")
    model_kw.update({k: v for k, v in overrides.items() if k in model_fields})
    train_kw = {k: v for k, v in overrides.items() if k in train_fields}
    train_cfg = TrainConfig(**train_kw)
    if train_cfg.aux_loss > 0 and "baseline" not in spec:
        model_kw["aux_head"] = True  # the auxiliary loss needs its head; one switch, not two
    return ModelConfig(**model_kw), train_cfg


def fold_dir(results_dir: str | Path, dataset: str, protocol: str, variant: str, tag: str | None = None) -> Path:
    return Path(results_dir) / dataset / protocol / (variant + (f"@{tag}" if tag else ""))


def _config_record(corpus, protocol, variant, tag, seed, model_cfg, train_cfg) -> dict:
    return {
        "dataset": corpus.name,
        "protocol": protocol,
        "variant": variant,
        "tag": tag,
        "seed": seed,
        "labels": list(corpus.labels),
        "model": asdict(model_cfg),
        "train": asdict(train_cfg),
        "spectrogram": asdict(SpectrogramParams()),
    }


# Options added after results were first written, with the value that reproduces what the code
# did before they existed. A stored config that lacks one of them ran with that value.
# bn_stats: every network result written before it existed is an IN model, on which it has no
# effect; the BN-row results computed without it (AE-OS, EMODB 5-fold) were deleted and recomputed.
ADDED_LATER = {
    "model": {"is10_scale": 1.0, "aux_head": False},
    "train": {
        "lr_schedule": "constant",
        "bn_stats": "recalibrate",
        "crop_set": "random",
        "crop_hop": 64,
        "two_stage_epochs": 0,
        "is10_dropout": 0.0,
        "aux_loss": 0.0,
    },
}
# Options added after checkpoints were first named by a hash of the config: left out of the hash
# at their defaults, so a fold interrupted before an option existed resumes after it was added.
_UNHASHED_AT_DEFAULT = {
    "model": ("aux_head",),
    "train": ("crop_set", "crop_hop", "two_stage_epochs", "is10_dropout", "aux_loss"),
}
SCORE_KEYS = {
    "validation": ("val_ua", "val_wa"),
    # outer runs with test_curve: measured for the test-fold-selection demonstration, never read to choose
    "test": ("test_ua_not_for_selection", "test_wa_not_for_selection"),
}


def config_hash(config: dict) -> str:
    """Short hash naming a fold's checkpoint: equal for configs that train the same model."""
    c = {**config}
    for part, names in _UNHASHED_AT_DEFAULT.items():
        if part in c:
            c[part] = {k: v for k, v in c[part].items() if not (k in names and v == ADDED_LATER[part][k])}
    return hashlib.sha256(json.dumps(c, sort_keys=True).encode()).hexdigest()[:10]


def _same_config(a: dict, b: dict) -> bool:
    """Configs match if everything that changes the numbers matches (the eval batch size does not)."""

    def norm(c: dict) -> dict:
        c = {**c, **{part: {**ADDED_LATER[part], **c[part]} for part in ADDED_LATER}}
        c["train"] = {k: v for k, v in c["train"].items() if k != "eval_batch_size"}
        return c

    return json.dumps(norm(a), sort_keys=True) == json.dumps(norm(b), sort_keys=True)


def write_partial_curve(path: Path, header: dict, history: list[dict]) -> bool:
    """Write an unfinished learning curve, unless ``path`` already holds a longer one.

    Why: checkpoints are not committed, so a run restarted in a fresh checkout begins again at
    epoch 1; without this guard its first epoch would replace a committed curve of hundreds of
    epochs. The longer curve stays until the new run passes it (same seed, same prefix)."""
    if path.exists():
        try:
            if len(json.loads(path.read_text()).get("history", [])) > len(history):
                return False
        except (json.JSONDecodeError, OSError):
            pass  # an unreadable file is replaced
    write_json_atomic({**header, "partial": True, "history": history}, path)
    return True


def write_json_atomic(obj: dict, path: Path) -> None:
    """Write ``obj`` as JSON so that a reader never sees a half-written file."""
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(obj, indent=1))
    os.replace(tmp, path)


def _write_npz_atomic(path: Path, **arrays) -> None:
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp.npz")
    np.savez_compressed(tmp, **arrays)
    os.replace(tmp, path)


def _checkpoint_history(ckpt: Path) -> list[dict]:
    """The epoch records of a checkpoint left by an interrupted process ([] when there is none).

    Memory-mapped, so reading the history does not load the (hundreds of MB of) weights and
    optimizer state that train_fold loads from the same file right after."""
    if not ckpt.exists():
        return []
    return torch.load(ckpt, map_location="cpu", weights_only=False, mmap=True)["history"]


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
    force: bool = False,
    tag: str | None = None,
    overrides: dict | None = None,
    progress: bool = True,
    corpus: Corpus | None = None,
    selection: bool = False,
    curve_every: int = 1,
    test_curve: bool = False,
    keep_weights: bool = False,
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

    ``test_curve`` (outer runs): also score the test fold after every epoch and keep it in the
    history as ``test_ua_not_for_selection`` / ``test_wa_not_for_selection``. Nothing reads it
    to choose anything: it exists to *measure* what choosing on the test folds would report (a
    demonstration of that flaw, eesr_lib.flaws). Training is unchanged by it.

    ``keep_weights``: each fold computed by this call also writes its trained model as a bundle
    (:mod:`eesr_lib.bundle`) to ``fold_<k>.bundle/``, before its ``.json``.
    """
    dev = resolve_device(device)
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
        tag=tag,
        overrides=overrides,
        corpus=corpus,
        selection=selection,
        curve_every=curve_every,
        test_curve=test_curve,
        keep_weights=keep_weights,
    )
    specs = is10 = None
    results = []
    for job in tqdm(jobs, desc=f"{corpus.name} {protocol} {variant}", unit="fold", disable=not progress):
        k = job.fold
        if job.json_path.exists() and not force:
            results.append(_finished(job.json_path, job.config))
            if keep_weights and not job.bundle_path.exists():
                log.warning("%s fold %d finished earlier without its weights: --force recomputes it", job.out_dir, k)
            continue
        with fold_claim(job.lock_path) as claimed:
            if not claimed:
                log.info("%s fold %d is being computed by another process: skipped here", job.out_dir, k)
                continue
            if job.json_path.exists() and not force:  # another process finished it since we looked
                results.append(_finished(job.json_path, job.config))
                continue
            if specs is None:  # features only when something is left to compute (cached on disk)
                specs, is10 = corpus_features(corpus, progress=progress)
            results.append(write_fold(job, compute_fold(job, corpus, specs, is10, dev, job.out_dir, progress)))
    return results


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

    @property
    def label(self) -> str:
        """``<dataset>/<protocol>/<variant>[@tag] fold <k>``, for progress bars and logs."""
        return f"{'/'.join(self.out_dir.parts[-3:])} fold {self.fold}"

    @property
    def json_path(self) -> Path:
        return self.out_dir / f"fold_{self.fold}.json"

    @property
    def lock_path(self) -> Path:
        return self.out_dir / f"fold_{self.fold}.lock"

    @property
    def npz_path(self) -> Path:
        return self.out_dir / f"fold_{self.fold}.npz"

    @property
    def bundle_path(self) -> Path:
        return self.out_dir / self.bundle_name

    @property
    def bundle_name(self) -> str:
        return f"fold_{self.fold}.bundle"

    @property
    def ckpt_name(self) -> str:
        return f"fold_{self.fold}.{self.cfg_hash}.ckpt.pt"

    @property
    def curve_name(self) -> str:
        return f"fold_{self.fold}.curve.json"


@dataclass(eq=False)
class FoldOutput:
    """What computing a fold returns: its ``.json`` record and ``.npz`` arrays (network variants), and
    ``bundle_files`` (relative path -> bytes) when its model bundle was written elsewhere than the results."""

    record: dict
    arrays: dict[str, np.ndarray] | None = None
    bundle_files: dict[str, bytes] | None = None
    log: str = field(default="", repr=False)


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
    tag: str | None = None,
    overrides: dict | None = None,
    corpus: Corpus | None = None,
    selection: bool = False,
    curve_every: int = 1,
    test_curve: bool = False,
    keep_weights: bool = False,
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
    all_folds = folds(corpus, protocol, seed)
    names = fold_names(corpus, protocol, seed)
    if selection:
        all_folds = [inner_split(corpus, train_idx, protocol, seed) for train_idx, _test_idx in all_folds]
        names = [f"validation inside {n}" for n in names]
    wanted = list(range(len(all_folds))) if folds_to_run is None else list(folds_to_run)
    for k in wanted:
        if not 0 <= k < len(all_folds):
            raise EESRError(f"Fold {k} does not exist: protocol '{protocol}' has {len(all_folds)} folds")
    out_dir = fold_dir(results_dir, corpus.name, protocol + ("+inner" if selection else ""), variant, tag)
    out_dir.mkdir(parents=True, exist_ok=True)
    config = _config_record(corpus, protocol, variant, tag, seed, model_cfg, train_cfg)
    config["selection"] = selection
    cfg_hash = config_hash(config)
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
            score_every=curve_every if selection else (1 if test_curve else None),
            keep_weights=keep_weights,
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
    ckpt = scratch / job.ckpt_name
    earlier = _checkpoint_history(ckpt)  # epochs trained by interrupted processes, if any
    if earlier:
        log.info("%s resumes after epoch %d from %s", job.label, len(earlier), ckpt)
    record, arrays = _run_fold(
        corpus,
        specs,
        is10,
        job.train_idx,
        job.test_idx,
        job.protocol,
        job.variant,
        job.model_cfg,
        job.train_cfg,
        job.seed,
        device,
        ckpt,
        job.npz_path.name,
        progress,
        score_every=job.score_every,
        score_keys=SCORE_KEYS["validation" if job.selection else "test"],
        curve_path=scratch / job.curve_name if job.selection else None,
        curve_header={"fold": job.fold, "fold_name": job.fold_name, "config": job.config},
        bundle_path=scratch / job.bundle_name if job.keep_weights else None,
    )
    record.update(
        fold=job.fold,
        fold_name=job.fold_name,
        n_folds=job.n_folds,
        config=job.config,
        provenance={**provenance(device), **_wall_time(time.time() - t0, earlier)},
    )
    return FoldOutput(record, arrays)


def write_fold(job: FoldJob, out: FoldOutput) -> dict:
    """Write a computed fold into the results folder: ``.npz`` (and bundle) first, the ``.json`` last and
    atomically, then drop the checkpoint and partial curve it leaves there. Returns the record."""
    if out.arrays is not None:
        _write_npz_atomic(job.npz_path, **out.arrays)
    if out.bundle_files is not None:
        _write_folder_atomic(job.bundle_path, out.bundle_files)
    write_json_atomic(out.record, job.json_path)
    (job.out_dir / job.ckpt_name).unlink(missing_ok=True)
    (job.out_dir / job.curve_name).unlink(missing_ok=True)  # the finished record holds it
    return out.record


def _write_folder_atomic(path: Path, files: dict[str, bytes]) -> None:
    """A folder of ``files`` (relative path -> bytes) at ``path``, replacing any older one in one rename."""
    import shutil

    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    for rel, data in files.items():
        (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp / rel).write_bytes(data)
    if path.exists():
        old = path.with_name(path.name + f".{os.getpid()}.old")
        os.replace(path, old)
        os.replace(tmp, path)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, path)


def _finished(json_path: Path, config: dict) -> dict:
    """A finished fold's record, provided it was computed with ``config``."""
    done = json.loads(json_path.read_text())
    if not _same_config(done["config"], config):
        raise EESRError(
            f"{json_path} was computed with a different configuration. Use --force to overwrite it, "
            f"or --results/--tag to keep both."
        )
    return done


def fold_busy(lock_path: Path) -> bool:
    """True while some process holds the claim :func:`fold_claim` takes on ``lock_path``."""
    if fcntl is None:
        return False
    try:
        with open(lock_path) as fh:
            fcntl.flock(fh, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except FileNotFoundError:
        return False
    except BlockingIOError:
        return True
    return False


@contextlib.contextmanager
def fold_claim(lock_path: Path) -> Iterator[bool]:
    """Yield True if this process now holds ``lock_path`` exclusively, False if another does.

    Why ``flock`` and not a marker file: the kernel drops the lock when its process dies, so an
    interrupted run leaves no stale claim behind. The file is removed once the fold is done.
    Where ``fcntl`` does not exist (Windows) every claim succeeds: one process at a time there.
    """
    if fcntl is None:
        yield True
        return
    with open(lock_path, "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        fh.seek(0)
        fh.truncate()
        fh.write(f"{os.getpid()}\n")
        fh.flush()
        try:
            yield True
        finally:
            if lock_path.with_suffix(".json").exists():
                lock_path.unlink(missing_ok=True)


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
    score_keys: tuple[str, str] = ("val_ua", "val_wa"),
    curve_path: Path | None = None,
    curve_header: dict | None = None,
    bundle_path: Path | None = None,
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
    y = corpus.y
    labels = corpus.labels
    spec = VARIANTS[variant]
    extra: dict = {}
    history: list[dict] = []
    arrays = None
    if spec.get("baseline") == "svm":
        groups = corpus.table["speaker"].to_numpy()[train_idx] if protocol in SPEAKER_INDEPENDENT else None
        scores, extra = baselines.svm_scores(is10[train_idx], y[train_idx], is10[test_idx], groups, seed)
    elif spec.get("baseline") == "mlp":
        tr, te = standardize_is10(is10[train_idx], is10[test_idx])
        scores, history = baselines.mlp_scores(tr, y[train_idx], te, model_cfg, train_cfg, seed, dev, progress)
    else:
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
                if train_cfg.bn_stats == "recalibrate" and model_cfg.norm == "batch":
                    if not bank:
                        train_specs = [specs[i] for i in train_idx]
                        bank.append(CropBank(train_specs, model_cfg.crop_frames, train_cfg.pad_mode, dev))
                    recalibrate_batch_norm(model, bank[0], train_cfg, seed, dev)
                s, _ = predict_utterances(model, val_specs, te_is10, train_cfg, dev)
                m = classification_metrics(y[test_idx], s.argmax(1), labels)
                return {score_keys[0]: m["ua"], score_keys[1]: m["wa"]}

        if curve_path is not None:

            def after_epoch(history):
                write_partial_curve(curve_path, curve_header or {}, history)

        model, history = train_fold(
            model_cfg,
            train_cfg,
            [specs[i] for i in train_idx],
            tr_is10,
            y[train_idx],
            seed=seed,
            device=dev,
            checkpoint=ckpt_path,
            progress=progress,
            on_epoch=on_epoch,
            after_epoch=after_epoch,
        )
        scores, deep = predict_utterances(model, [specs[i] for i in test_idx], te_is10, train_cfg, dev)
        arrays = {
            "ids": np.asarray(corpus.table["id"].to_numpy()[test_idx], dtype=str),
            "y_true": y[test_idx],
            "deep": deep.astype(np.float16),
            "emotion_embeddings": model.emotion_embeddings().cpu().numpy().astype(np.float32),
        }
        extra["features_file"] = features_file
        if bundle_path is not None:
            from .bundle import save_bundle

            header = curve_header or {}
            info = {"dataset": corpus.name, "protocol": protocol, "variant": variant, "seed": seed}
            info.update(fold=header.get("fold"), fold_name=header.get("fold_name"), utterances=int(len(train_idx)))
            save_bundle(bundle_path, model, labels, train_cfg, is10[train_idx], info=info, device=dev)
            extra["bundle"] = bundle_path.name
        if dev.type == "cuda":
            torch.cuda.empty_cache()
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
    return record, arrays


def replace_config(cfg, **kw):
    """Small helper for notebooks: a frozen config with some fields changed."""
    return replace(cfg, **kw)
