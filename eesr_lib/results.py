"""The results folder: where every file of a run lives, how it is written, claimed and read back.

Why one module: the runner writes these files, the report, the run lists, the budget chapter and the
scripts read them, and a second copy of a file name anywhere is a reader that silently finds nothing
once the layout changes. Layout (``results_dir`` defaults to ``results/``)::

    results/<dataset>/<protocol>[+inner]/<variant>[@tag]/       one run (run_dir; +inner: a selection run)
        fold_<k>.json            metrics, predictions, history, config, provenance: a finished fold
        fold_<k>.npz             deep features (float16), emotion embeddings (network variants)
        fold_<k>.curve.json      a selection run's learning curve so far, while the fold trains
        fold_<k>.<hash>.ckpt.pt  the fold's per-epoch checkpoint, while it trains (git-ignored)
        fold_<k>.lock            claimed by the process computing the fold (git-ignored)
        fold_<k>.log             the fold's log, when it ran as a Ray task (git-ignored)
        fold_<k>.bundle/         with keep_weights: the fold's model (eesr_lib.bundle)
    results/<dataset>/flaws/     scripts/evaluation_flaws.py
    results/<dataset>/probes/    scripts/probe_encoder.py

A fold's ``.json`` is written last and atomically: it exists only for a finished fold. While a fold
computes, its process holds an exclusive lock on ``fold_<k>.lock`` (:func:`fold_claim`); another process
skips that fold instead of computing it twice. :func:`read_fold` is the one reader of fold records; given
the configuration a caller wants, it refuses a record computed with another one, or written before one
of its settings existed (``scripts/migrate_results.py`` completes such files once).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from .errors import EESRError
from .variants import missing_settings, same_config

try:  # fold claims need it; Windows has none
    import fcntl
except ImportError:
    fcntl = None

RESULTS_DIR = Path("results")
# History keys (UA, WA) under which a run scores its held-out part every few epochs: the inner validation
# split of a selection run, or, in an outer run with test_curve, the test fold (measured for the test-fold-
# selection demonstration, eesr_lib.flaws; never read to choose anything).
SCORE_KEYS = {
    "validation": {"ua": "val_ua", "wa": "val_wa"},
    "test": {"ua": "test_ua_not_for_selection", "wa": "test_wa_not_for_selection"},
}
_RECORD = re.compile(r"fold_(\d+)\.json")
_CURVE = re.compile(r"fold_(\d+)\.curve\.json")


# ---------------------------------------------------------------- where things are


def protocol_folder(protocol: str, selection: bool = False) -> str:
    """The folder name of a protocol's runs: ``<protocol>+inner`` for selection runs, so that their scores
    (on inner validation splits) are never mistaken for test results."""
    return protocol + ("+inner" if selection else "")


def variant_folder(variant: str, tag: str | None = None) -> str:
    """The folder name of a variant's run: ``<variant>@<tag>`` keeps a tagged configuration apart."""
    return variant + (f"@{tag}" if tag else "")


def run_dir(
    results_dir: str | Path, dataset: str, protocol: str, variant: str, tag: str | None = None, selection: bool = False
) -> Path:
    """The folder holding one run's fold files."""
    return Path(results_dir) / dataset / protocol_folder(protocol, selection) / variant_folder(variant, tag)


def run_of(config: dict) -> tuple[str, str, str]:
    """(dataset, protocol folder, variant folder) of the run a fold record's ``config`` belongs to."""
    return (
        config["dataset"],
        protocol_folder(config["protocol"], config.get("selection", False)),
        variant_folder(config["variant"], config.get("tag")),
    )


def run_dirs(results_dir: str | Path) -> list[Path]:
    """Every run folder under ``results_dir``."""
    return sorted(p for p in Path(results_dir).glob("*/*/*") if p.is_dir())


def fold_files(folder: Path) -> list[Path]:
    """The files of a run folder that hold a fold's record: finished (``.json``) or partial (``.curve.json``)."""
    return sorted(p for p in Path(folder).glob("fold_*.json") if _RECORD.fullmatch(p.name) or _CURVE.fullmatch(p.name))


def lock_files(folder: Path) -> list[Path]:
    """The fold locks in a run folder: each is held by a process computing that fold, or left by one that died."""
    return sorted(Path(folder).glob("fold_*.lock"))


def fold_json(folder: Path, fold: int) -> Path:
    return Path(folder) / f"fold_{fold}.json"


def fold_npz(folder: Path, fold: int) -> Path:
    return Path(folder) / f"fold_{fold}.npz"


def fold_curve(folder: Path, fold: int) -> Path:
    return Path(folder) / f"fold_{fold}.curve.json"


def fold_checkpoint(folder: Path, fold: int, cfg_hash: str) -> Path:
    """Named by the config's hash (:func:`eesr_lib.variants.config_hash`): a changed config never resumes it."""
    return Path(folder) / f"fold_{fold}.{cfg_hash}.ckpt.pt"


def stacked_checkpoint(folder: Path, folds: list[int], cfg_hash: str) -> Path:
    """The checkpoint of folds trained as one stacked model (:mod:`eesr_lib.batched`)."""
    return Path(folder) / f"folds_{'-'.join(map(str, folds))}.{cfg_hash}.ckpt.pt"


def fold_lock(folder: Path, fold: int) -> Path:
    return Path(folder) / f"fold_{fold}.lock"


def fold_log(folder: Path, fold: int) -> Path:
    return Path(folder) / f"fold_{fold}.log"


def fold_bundle(folder: Path, fold: int) -> Path:
    return Path(folder) / f"fold_{fold}.bundle"


def datasets(results_dir: str | Path) -> list[str]:
    """The corpora that have results: one folder each."""
    return sorted(p.name for p in Path(results_dir).glob("*") if p.is_dir())


def flaws_dir(results_dir: str | Path, dataset: str) -> Path:
    """The evaluation-flaw demonstrations of a corpus (scripts/evaluation_flaws.py)."""
    return Path(results_dir) / dataset / "flaws"


def probe_file(results_dir: str | Path, dataset: str) -> Path:
    """The linear probes of the untrained encoder (scripts/probe_encoder.py)."""
    return Path(results_dir) / dataset / "probes" / "encoder_at_init.json"


# ---------------------------------------------------------------- writing, atomically


def write_json_atomic(obj: dict, path: Path) -> None:
    """Write ``obj`` as JSON so that a reader never sees a half-written file."""
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(obj, indent=1))
    os.replace(tmp, path)


def write_npz_atomic(path: Path, **arrays: np.ndarray) -> None:
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp.npz")
    np.savez_compressed(tmp, **arrays)
    os.replace(tmp, path)


def write_folder_atomic(path: Path, files: dict[str, bytes]) -> None:
    """A folder of ``files`` (relative path -> bytes) at ``path``, replacing any older one in one rename."""
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


def write_fold(
    folder: Path,
    fold: int,
    record: dict,
    arrays: dict[str, np.ndarray] | None = None,
    bundle_files: dict[str, bytes] | None = None,
    cfg_hash: str | None = None,
) -> None:
    """A computed fold's files: ``.npz`` (and bundle) first, the ``.json`` last and atomically, so that a
    ``.json`` means a complete fold; then drop the checkpoint and partial curve the fold left there."""
    if arrays is not None:
        write_npz_atomic(fold_npz(folder, fold), **arrays)
    if bundle_files is not None:
        write_folder_atomic(fold_bundle(folder, fold), bundle_files)
    write_json_atomic(record, fold_json(folder, fold))
    if cfg_hash is not None:
        fold_checkpoint(folder, fold, cfg_hash).unlink(missing_ok=True)
    fold_curve(folder, fold).unlink(missing_ok=True)  # the finished record holds it


# ---------------------------------------------------------------- claims


def fold_busy(folder: Path, fold: int) -> bool:
    """True while some process holds the claim :func:`fold_claim` takes on the fold."""
    if fcntl is None:
        return False
    try:
        with open(fold_lock(folder, fold)) as fh:
            fcntl.flock(fh, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except FileNotFoundError:
        return False
    except BlockingIOError:
        return True
    return False


@contextlib.contextmanager
def fold_claim(folder: Path, fold: int) -> Iterator[bool]:
    """Yield True if this process now holds the fold's lock exclusively, False if another does.

    Why ``flock`` and not a marker file: the kernel drops the lock when its process dies, so an
    interrupted run leaves no stale claim behind. The file is removed once the fold is done.
    Where ``fcntl`` does not exist (Windows) every claim succeeds: one process at a time there.
    """
    if fcntl is None:
        yield True
        return
    lock = fold_lock(folder, fold)
    with open(lock, "a+") as fh:
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
            if fold_json(folder, fold).exists():
                lock.unlink(missing_ok=True)


# ---------------------------------------------------------------- reading


def read_fold(path: Path, config: dict | None = None) -> dict:
    """A fold's record (``fold_<k>.json``, or a partial ``fold_<k>.curve.json``).

    Given ``config`` (the one a caller is about to compute with), the record must have been computed
    with it: a record whose config lacks one of its settings was written before that setting existed and
    is refused until migrated, never guessed; one computed with another value is refused too, so that
    results never mix configurations."""
    rec = json.loads(Path(path).read_text())
    if config is None:
        return rec
    missing = missing_settings(rec.get("config", {}), config)
    if missing:
        raise EESRError(
            f"{path} was written before the setting(s) {', '.join(missing)} existed: "
            "run `python scripts/migrate_results.py` once to record the values it was computed with"
        )
    if not same_config(rec["config"], config):
        raise EESRError(
            f"{path} was computed with a different configuration. Use --force to overwrite it, "
            f"or --results/--tag to keep both."
        )
    return rec


def fold_records(folder: Path, partial: bool = False) -> dict[int, dict]:
    """The finished folds of one run folder by fold number; with ``partial`` also the curve so far of each
    fold that has not finished (:func:`write_partial_curve`), every record marked ``partial`` True or False."""
    folder = Path(folder)
    out = {int(m[1]): read_fold(p) for p in folder.glob("fold_*.json") if (m := _RECORD.fullmatch(p.name))}
    if partial:
        out = {k: {**rec, "partial": False} for k, rec in out.items()}
        for p in folder.glob("fold_*.curve.json"):
            k = int(_CURVE.fullmatch(p.name)[1])
            if k not in out:
                out[k] = {**read_fold(p), "partial": True}
    return dict(sorted(out.items()))


def load_folds(
    results_dir: str | Path = RESULTS_DIR,
    dataset: str | None = None,
    protocol: str | None = None,
    variant: str | None = None,
) -> list[dict]:
    """Every finished fold's record under ``results_dir``, optionally filtered by folder names
    (``protocol`` as :func:`protocol_folder` names it, ``variant`` as :func:`variant_folder` does)."""
    out = []
    for path in sorted(Path(results_dir).glob("*/*/*/fold_*.json")):
        if not _RECORD.fullmatch(path.name):  # an unfinished learning curve (fold_records(partial=True) reads those)
            continue
        ds, proto, var = path.parts[-4:-1]
        if (dataset and ds != dataset) or (protocol and proto != protocol) or (variant and var != variant):
            continue
        out.append(read_fold(path))
    return out
