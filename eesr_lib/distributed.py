"""A run list's folds as Ray tasks: ``eesr replicate --run`` on one machine or a cluster.

The driver (the process that runs ``eesr replicate``) plans every missing fold of the runs
(:func:`eesr_lib.runner.plan_experiment`), claims them (``fold_<k>.lock``, so that a second
driver on the same results folder skips them), and submits one Ray task per fold (or per group
of ``stack_folds`` folds of one network run, trained as one stacked model: what fills a GPU). A task
computes its folds with :func:`eesr_lib.runner.compute_folds` and *returns* each fold's record,
arrays and log; the driver writes ``fold_<k>.json`` / ``.npz`` with
:func:`eesr_lib.runner.write_fold`, exactly as an in-process ``eesr run`` does, and the fold's
log as ``fold_<k>.log`` beside them. Workers need no shared file system:

- the corpus table and its features reach the workers through Ray's object store (put once
  per corpus by the driver), or, with ``features_from="nodes"``, every worker reads them
  itself from the corpus paths (a file system every node mounts at the same place) and its own
  feature cache;
- a fold's per-epoch checkpoint (and partial learning curve) stays on the worker: in the
  results folder when the worker runs on the driver's machine (the folder is the same inode), so
  that a rerun resumes it, otherwise in ``$TMPDIR/eesr-folds/<config hash>/`` on the worker, so
  that a retry of the task on the same node resumes it.

Faults: a worker that dies mid-fold (killed, out of memory, its node lost) makes Ray run the
task again, up to ``max_retries`` times; the driver writes each fold once, when its task
returns, and writes each finished fold as soon as it is there, so an interrupted driver
(Ctrl-C) leaves every finished fold on disk and a rerun computes only what is left.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import logging
import os
import shutil
import socket
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from tqdm.auto import tqdm

from .corpora import Corpus
from .errors import EESRError
from .results import (
    RESULTS_DIR,
    fold_bundle,
    fold_checkpoint,
    fold_claim,
    fold_curve,
    fold_json,
    fold_log,
    read_fold,
)
from .runner import FoldJob, FoldOutput, plan_experiment, stack_groups, use_cuda_graphs, write_fold

log = logging.getLogger(__name__)

FEATURES_FROM = ("driver", "nodes")
DEFAULT_RETRIES = 3
SCRATCH_ENV = "EESR_FOLD_SCRATCH"  # where a worker off the driver's machine keeps checkpoints (default: $TMPDIR)


def check_resources(device: str, cpus_per_fold: float, gpus_per_fold: float) -> None:
    """Refuse resource requests that cannot mean what they say."""
    if cpus_per_fold <= 0:
        raise EESRError(f"--cpus-per-fold must be > 0, got {cpus_per_fold}")
    if gpus_per_fold < 0 or (gpus_per_fold > 1 and gpus_per_fold != int(gpus_per_fold)):
        raise EESRError(f"--gpus-per-fold must be a fraction of one GPU or a whole number, got {gpus_per_fold}")
    if device == "cuda" and gpus_per_fold == 0:
        raise EESRError("--device cuda needs --gpus-per-fold (e.g. 0.1: ten folds share a GPU)")
    if device == "cpu" and gpus_per_fold > 0:
        raise EESRError("--gpus-per-fold reserves GPUs for folds that --device cpu would not use")


@contextlib.contextmanager
def ray_session(address: str | None = None, num_cpus: int | None = None) -> Iterator[None]:
    """Connected to Ray for the duration: to the cluster at ``address`` (``HOST:PORT`` or ``auto``), or to
    a local instance started here (``num_cpus``: default all cores) and shut down on the way out. A session
    the caller opened already (``ray.init``) is used as it is and left open."""
    import ray

    if ray.is_initialized():
        yield
        return
    quiet = {"log_to_driver": False, "logging_level": logging.WARNING}
    if address:
        ray.init(address=address, **quiet)
    else:
        ray.init(num_cpus=num_cpus, include_dashboard=False, **quiet)
    try:
        yield
    finally:
        ray.shutdown()


def run_on_ray(
    corpus: Corpus,
    runs: Sequence,
    *,
    results_dir: str | Path = RESULTS_DIR,
    device: str = "auto",
    address: str | None = None,
    cpus_per_fold: float = 1.0,
    gpus_per_fold: float = 0.0,
    features_from: str = "driver",
    max_retries: int = DEFAULT_RETRIES,
    progress: bool = True,
    num_cpus: int | None = None,
    fold_fn: Callable[..., FoldOutput] | None = None,
    stack_folds: int = 1,
) -> list[list[dict]]:
    """Compute every missing fold of ``runs`` (:class:`eesr_lib.plan.Run`) as Ray tasks; returns each run's
    fold records (finished before or now; a fold another driver holds is left out, as :func:`runner.run` does).

    ``address``: a running cluster to join; default a local Ray instance of ``num_cpus`` cores, started in
    this process. ``cpus_per_fold`` / ``gpus_per_fold``: what each task reserves (``gpus_per_fold=0.1`` lets
    ten folds share a GPU); the fold trains with ``int(cpus_per_fold)`` threads, on CUDA when it reserves
    GPU (``device`` auto or cuda), on the CPU otherwise. ``features_from``: ``driver`` (the object store)
    or ``nodes`` (see the module). ``fold_fn`` replaces :func:`eesr_lib.runner.compute_fold` (tests).
    ``stack_folds``: a network run's unfinished folds go in groups of that many to one task each, trained as
    one stacked model (:func:`eesr_lib.runner.compute_folds`); a fold with a checkpoint of its own goes alone.
    """
    if stack_folds < 1:
        raise EESRError(f"stack_folds must be >= 1, got {stack_folds}")
    check_resources(device, cpus_per_fold, gpus_per_fold)
    if features_from not in FEATURES_FROM:
        raise EESRError(f"features_from must be one of {FEATURES_FROM}, got '{features_from}'")
    results_dir = Path(results_dir).resolve()  # workers do not share the driver's working directory
    planned = []
    for r in runs:
        _, jobs = plan_experiment(
            corpus.name, r.protocol, r.variant, corpus=corpus, results_dir=results_dir, **r.run_kwargs()
        )
        planned.append(jobs)
    records: dict[tuple[int, int], dict] = {}
    claims: dict[tuple[int, int], contextlib.ExitStack] = {}
    todo: list[tuple[tuple[int, int], FoldJob]] = []
    try:
        for i, jobs in enumerate(planned):
            for job in jobs:
                key, done = (i, job.fold), fold_json(job.out_dir, job.fold)
                if done.exists():
                    records[key] = read_fold(done, job.config)
                    continue
                stack = contextlib.ExitStack()
                if not stack.enter_context(fold_claim(job.out_dir, job.fold)):
                    stack.close()
                    log.info("%s is being computed by another process: skipped here", job.label)
                    continue
                if done.exists():  # finished by another process since we looked
                    stack.close()
                    records[key] = read_fold(done, job.config)
                    continue
                claims[key] = stack
                todo.append((key, job))
        if todo:
            with ray_session(address, num_cpus):
                settings = (device, cpus_per_fold, gpus_per_fold, max_retries, features_from, progress, fold_fn)
                _schedule(corpus, _groups(todo, stack_folds), claims, records, *settings)
    finally:
        for stack in claims.values():
            stack.close()
    return [[records[(i, job.fold)] for job in jobs if (i, job.fold) in records] for i, jobs in enumerate(planned)]


def _groups(todo: list[tuple[tuple[int, int], FoldJob]], stack_folds: int) -> list[list]:
    """``todo`` as the tasks' groups, run by run (:func:`eesr_lib.runner.stack_groups` decides which folds
    go together), each fold with its key."""
    by_run: dict[int, list[FoldJob]] = {}
    for (run, _), job in todo:  # a key is (the run's index, the fold)
        by_run.setdefault(run, []).append(job)
    return [
        [((run, job.fold), job) for job in group]
        for run, jobs in by_run.items()
        for group in stack_groups(jobs, stack_folds)
    ]


def _schedule(corpus, groups, claims, records, device, cpus, gpus, max_retries, features_from, progress, fold_fn):
    """Submit ``groups`` of folds (one task each), write each fold as its task returns, show done / running / left."""
    import ray

    corpus_ref = ray.put(corpus)
    features_ref = None
    if features_from == "driver":
        from .features import corpus_features

        features_ref = ray.put(corpus_features(corpus, progress=progress))  # once per corpus
    task = ray.remote(_fold_task)
    pending = {}
    for group in groups:
        jobs = [job for _, job in group]
        name = jobs[0].label + (f" (+{len(jobs) - 1} stacked)" if len(jobs) > 1 else "")
        gen = task.options(
            name=f"eesr {name}",
            num_cpus=cpus,
            num_gpus=gpus,
            max_retries=max_retries,
            num_returns="streaming",
        ).remote(jobs, corpus_ref, features_ref, device, cpus, gpus, _folder_id(jobs[0].out_dir), fold_fn)
        pending[gen] = group
    running: dict = {}
    failed: list[FoldJob] = []
    total = sum(len(group) for group in groups)
    bar = tqdm(total=total, desc=f"{corpus.name} folds", unit="fold", disable=not progress)

    def show():
        extra = f", failed {len(failed)}" if failed else ""
        bar.set_postfix_str(f"running {len(running)}, left {len(pending) - len(running)}{extra}", refresh=True)

    def settle(gen):
        for key, _ in pending.pop(gen):
            claims.pop(key).close()
        running.pop(gen, None)

    show()
    try:
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=1.0)
            for gen in ready:
                group = pending[gen]
                try:
                    msg = ray.get(next(gen))
                except Exception as exc:  # the task raised, or its worker died more than max_retries times
                    for _, job in group:
                        _write_log(job, running.get(gen), f"FAILED\n{_error_text(exc)}")
                        failed.append(job)
                        where = fold_log(job.out_dir, job.fold)
                        tqdm.write(f"eesr: {job.label} failed: {type(exc).__name__} (log: {where})")
                    settle(gen)
                    continue
                if isinstance(msg, dict):  # the task started (sent once, whatever the retries)
                    running[gen] = msg
                    continue
                for (key, job), out in zip(group, msg):
                    records[key] = write_fold(job, out)
                    _write_log(job, running.get(gen), out.log)
                settle(gen)
                bar.update(len(group))
            show()
    except KeyboardInterrupt:
        for gen in pending:
            with contextlib.suppress(Exception):
                ray.cancel(gen, force=True)
        tqdm.write(
            f"eesr: interrupted: {bar.n} fold(s) finished and written, {len(pending)} unfinished; "
            "the same command again computes the rest"
        )
        raise
    finally:
        bar.close()
    if failed:
        raise EESRError(
            f"{len(failed)} fold(s) failed: {', '.join(j.label for j in failed)}; each fold_<k>.log says why"
        )


def _folder_id(path: Path) -> tuple[int, int]:
    st = os.stat(path)
    return st.st_dev, st.st_ino


def _write_log(job: FoldJob, started: dict | None, text: str) -> None:
    where = f"first started on {started['host']} (pid {started['pid']})\n" if started else ""
    fold_log(job.out_dir, job.fold).write_text(f"# {job.label}\n{where}{text}")


def _error_text(exc: BaseException) -> str:
    return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))


class _Tee(io.TextIOBase):
    def __init__(self, *streams):
        self.streams = streams

    def write(self, s: str) -> int:
        for stream in self.streams:
            stream.write(s)
        return len(s)

    def flush(self) -> None:
        for stream in self.streams:
            stream.flush()


_NODE_FEATURES: dict = {}  # features_from="nodes": the corpus's features, loaded once per worker process


def _fold_task(jobs, corpus, features, device, cpus, gpus, driver_folder, fold_fn=None):
    """The Ray task (a generator): says where it started, then computes its folds (one, or several of one run
    trained stacked) and returns their outputs, in the order of ``jobs``."""
    import ray
    import torch

    from .runner import compute_folds
    from .train import resolve_device

    yield {"host": socket.gethostname(), "pid": os.getpid()}
    buf = io.StringIO()
    handler = logging.StreamHandler(buf)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    pkg = logging.getLogger("eesr_lib")
    old_level = pkg.level
    pkg.addHandler(handler)
    pkg.setLevel(logging.INFO)
    try:
        with contextlib.redirect_stdout(_Tee(buf, sys.stdout)), contextlib.redirect_stderr(_Tee(buf, sys.stderr)):
            torch.set_num_threads(max(1, int(cpus)))
            dev = resolve_device(("cuda" if device == "auto" else device) if gpus > 0 else "cpu")
            graphs = use_cuda_graphs(None, dev, len(jobs))  # a fold alone on a GPU: graphed (runner.run)
            jobs = [dataclasses.replace(job, cuda_graphs=graphs) for job in jobs]
            scratch, local = _scratch(jobs[0], driver_folder)
            node = ray.get_runtime_context().get_node_id()[:8]
            print(f"host {socket.gethostname()}, node {node}, pid {os.getpid()}, device {dev}, ", end="")
            print(f"{torch.get_num_threads()} thread(s)")
            print(f"checkpoints in {scratch}", flush=True)
            if features is None:
                features = _node_features(corpus, max(1, int(cpus)))
            t0 = time.time()
            if fold_fn is None:
                outs = compute_folds(jobs, corpus, features[0], features[1], dev, scratch, False)
            else:
                outs = [fold_fn(job, corpus, features[0], features[1], dev, scratch, False) for job in jobs]
            if not local:
                for job, out in zip(jobs, outs):
                    _collect_scratch(job, scratch, out)
            for job, out in zip(jobs, outs):
                if len(jobs) > 1:
                    print(f"-- {job.label}")
                for h in out.record.get("history", []):
                    print(f"epoch {h.get('epoch')}: " + ", ".join(f"{k} {v}" for k, v in h.items() if k != "epoch"))
                print(f"metrics: WA {out.record['metrics']['wa']}, UA {out.record['metrics']['ua']}")
            print(f"done in {time.time() - t0:.1f} s", flush=True)
    finally:
        pkg.removeHandler(handler)
        pkg.setLevel(old_level)
    for out in outs:
        out.log = buf.getvalue()
    yield outs


def _scratch(job: FoldJob, driver_folder: tuple[int, int]) -> tuple[Path, bool]:
    """The results folder itself when this worker sees the driver's (same device and inode), else a folder
    of this machine that a retry of the task here finds again."""
    with contextlib.suppress(OSError):
        if _folder_id(job.out_dir) == tuple(driver_folder) and os.access(job.out_dir, os.W_OK):
            return job.out_dir, True
    root = Path(os.environ.get(SCRATCH_ENV) or tempfile.gettempdir()) / "eesr-folds" / job.cfg_hash
    root.mkdir(parents=True, exist_ok=True)
    return root, False


def _collect_scratch(job: FoldJob, scratch: Path, out: FoldOutput) -> None:
    """On a worker off the driver's machine: hand the bundle back as bytes and clear what the fold left."""
    bundle = fold_bundle(scratch, job.fold)
    if bundle.is_dir():
        out.bundle_files = {str(p.relative_to(bundle)): p.read_bytes() for p in bundle.rglob("*") if p.is_file()}
        shutil.rmtree(bundle)
    fold_checkpoint(scratch, job.fold, job.cfg_hash).unlink(missing_ok=True)
    fold_curve(scratch, job.fold).unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        scratch.rmdir()  # only if nothing else is left in it


def _node_features(corpus: Corpus, n_jobs: int):
    from .features import corpus_features

    key = (corpus.name, len(corpus), tuple(corpus.paths[:3]))
    if _NODE_FEATURES.get("key") != key:
        _NODE_FEATURES.clear()
        _NODE_FEATURES.update(key=key, value=corpus_features(corpus, n_jobs=n_jobs, progress=False))
    return _NODE_FEATURES["value"]
