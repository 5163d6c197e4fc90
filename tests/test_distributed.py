"""Folds as Ray tasks on a two-node cluster (two `ray start` on this machine): the same results as in-process,
each fold written once, a worker killed mid-fold retried and resumed."""

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from eesr_lib import results, runner
from eesr_lib.distributed import check_resources, run_on_ray
from eesr_lib.errors import EESRError
from eesr_lib.plan import Run

FAST = (("epochs", 1), ("batch_size", 14), ("precision", "fp32"))
RUNS = [
    Run("kfold5", "is10+svm", folds=(0, 1)),
    Run("kfold5", "ae+ee+in", "t", FAST, folds=(0, 1)),
    Run("kfold5", "ae-os", "t", FAST, selection=True, folds=(0,)),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def cluster():
    """A head and a second node, one CPU each, as `ray start --block` process groups of this test."""
    ray_bin = str(Path(sys.executable).with_name("ray"))
    temp_dir = tempfile.mkdtemp(prefix="ray", dir="/tmp")  # short: Ray's socket paths must fit 107 bytes
    port = _free_port()
    # Token authentication with Ray's own token file (~/.ray/auth_token, made here if missing, as a local
    # `ray.init()` makes it): a local instance started earlier in this process (the CLI test) fixes the
    # process's authentication to that token, and the cluster must use the same.
    env = {**os.environ, "OMP_NUM_THREADS": "1", "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "token"}
    subprocess.run([ray_bin, "get-auth-token", "--generate"], env=env, check=True, stdout=subprocess.DEVNULL)
    common = ["--block", "--num-cpus", "1", "--disable-usage-stats"]
    procs = []

    def start(*args):
        out = open(Path(temp_dir) / f"node{len(procs)}.log", "w")
        procs.append(
            subprocess.Popen(
                [ray_bin, "start", *args, *common], env=env, start_new_session=True, stdout=out, stderr=out
            )
        )

    start("--head", "--port", str(port), "--temp-dir", temp_dir, "--include-dashboard=false")
    deadline = time.time() + 60
    while True:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            break
        assert time.time() < deadline and procs[0].poll() is None, "the Ray head did not start"
        time.sleep(0.5)
    start("--address", f"127.0.0.1:{port}")
    old_auth = os.environ.get("RAY_AUTH_MODE")
    os.environ["RAY_AUTH_MODE"] = "token"
    import ray

    try:
        ray.init(address=f"127.0.0.1:{port}", log_to_driver=False)
        while sum(n["Alive"] for n in ray.nodes()) < 2:
            assert time.time() < deadline, "the second Ray node did not join"
            time.sleep(0.5)
        ray.shutdown()
        yield f"127.0.0.1:{port}"
    finally:
        ray.shutdown()
        for proc in procs:  # only the process groups started here
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        stop_by = time.time() + 5
        for proc in procs:
            try:
                proc.wait(timeout=max(0.1, stop_by - time.time()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        if old_auth is None:
            os.environ.pop("RAY_AUTH_MODE", None)
        else:
            os.environ["RAY_AUTH_MODE"] = old_auth
        shutil.rmtree(temp_dir, ignore_errors=True)


@pytest.fixture()
def json_writes(monkeypatch):
    """Every fold_<k>.json the driver writes, in order."""
    seen = []
    real = results.write_json_atomic

    def spy(obj, path):
        if path.name.startswith("fold_") and path.name.endswith(".json") and ".curve." not in path.name:
            seen.append(path)
        real(obj, path)

    monkeypatch.setattr(results, "write_json_atomic", spy)
    return seen


def _in_process(mini, results_dir, runs):
    """The same folds in this process, with the one torch thread a 1-CPU Ray task gets (Ray sets
    OMP_NUM_THREADS to the task's CPUs): another thread count sums in another order, and the
    comparison below is exact."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for r in runs:
            runner.run(
                "emodb_mini", r.protocol, r.variant, corpus=mini, results_dir=results_dir, device="cpu", progress=False,
                **r.run_kwargs(),
            )  # fmt: skip
    finally:
        torch.set_num_threads(threads)


def _same_fold(a: Path, b: Path) -> None:
    ra, rb = json.loads(a.read_text()), json.loads(b.read_text())
    untimed = lambda r: [{k: v for k, v in h.items() if k != "seconds"} for h in r["history"]]  # noqa: E731
    assert untimed(ra) == untimed(rb)
    assert {k: v for k, v in ra.items() if k not in ("history", "provenance")} == {
        k: v for k, v in rb.items() if k not in ("history", "provenance")
    }
    resumed = {"resumed_after_epoch", "wall_time_note"}  # only where a fold was interrupted
    assert set(ra["provenance"]) - resumed == set(rb["provenance"]) - resumed
    if a.with_suffix(".npz").exists():
        na, nb = np.load(a.with_suffix(".npz")), np.load(b.with_suffix(".npz"))
        assert set(na.files) == set(nb.files) and all(np.array_equal(na[k], nb[k]) for k in na.files)


def test_folds_on_two_nodes_match_the_in_process_run(mini, cluster, tmp_path, json_writes):
    records = run_on_ray(mini, RUNS, results_dir=tmp_path / "ray", address=cluster, progress=False)
    assert [len(r) for r in records] == [2, 2, 1]
    written = sorted(json_writes)
    assert len(written) == len(set(written)) == 5  # each fold once
    _in_process(mini, tmp_path / "local", RUNS)
    ray_files = sorted((tmp_path / "ray").rglob("fold_*.json"))
    assert ray_files == written and len(ray_files) == 5
    for f in ray_files:
        _same_fold(f, tmp_path / "local" / f.relative_to(tmp_path / "ray"))
        log = f.with_suffix(".log").read_text()
        assert "first started on" in log and "metrics: WA" in log  # each fold's log, written by the driver
    nodes = {
        line.split("node ")[1].split(",")[0]
        for f in ray_files
        for line in f.with_suffix(".log").read_text().splitlines()
        if line.startswith("host ")
    }
    assert len(nodes) == 2  # both nodes computed folds
    left = list((tmp_path / "ray").rglob("*.lock")) + list((tmp_path / "ray").rglob("*.ckpt.pt"))
    assert not left and not list((tmp_path / "ray").rglob("*.tmp*"))
    # a rerun finds everything finished: nothing is scheduled (Ray is not even needed)
    json_writes.clear()
    again = run_on_ray(mini, RUNS, results_dir=tmp_path / "ray", address="127.0.0.1:1", progress=False)
    assert again == records and json_writes == []


def test_a_worker_killed_mid_fold_is_retried_and_resumes(mini, cluster, tmp_path, json_writes):
    """Fold 2's worker dies in its second epoch (Ray runs the task again, which resumes from the epoch-1
    checkpoint); fold 4 raises (reported, logged, the others still written); fold 3 is undisturbed."""
    marker = tmp_path / "killed"
    runs = [Run("kfold5", "ae+ee+in", "t", (("epochs", 2), *FAST[1:]), folds=(2, 3, 4))]

    def faulty(job, *args, **kwargs):  # runs on a worker; pickled by value
        import eesr_lib.train as train_mod
        from eesr_lib.runner import compute_fold

        if job.fold == 4:
            raise ValueError("a fold that fails")
        train_mod.CHECKPOINT_EVERY_S = 0.0  # a checkpoint after every epoch, on this worker
        if job.fold == 2 and not marker.exists():
            real, calls = train_mod.train_step, [0]

            def step(*a, **k):
                calls[0] += 1
                if calls[0] == 3:  # 28 training utterances / batch 14: the first step of epoch 2
                    marker.touch()
                    os._exit(1)  # the worker process dies, as if killed
                return real(*a, **k)

            train_mod.train_step = step
        return compute_fold(job, *args, **kwargs)

    out = tmp_path / "ray" / "emodb_mini" / "kfold5" / "ae+ee+in@t"
    with pytest.raises(EESRError, match="1 fold"):
        run_on_ray(mini, runs, results_dir=tmp_path / "ray", address=cluster, progress=False, fold_fn=faulty)
    assert marker.exists() and sorted(p.name for p in json_writes) == ["fold_2.json", "fold_3.json"]  # once each
    assert "ValueError: a fold that fails" in (out / "fold_4.log").read_text() and not (out / "fold_4.json").exists()
    by_fold = {k: json.loads((out / f"fold_{k}.json").read_text()) for k in (2, 3)}
    assert by_fold[2]["provenance"]["resumed_after_epoch"] == 1  # the retry resumed from the epoch-1 checkpoint
    assert "resumed_after_epoch" not in by_fold[3]["provenance"]
    assert not list(out.glob("*.lock")) or [p.name for p in out.glob("*.lock")] == ["fold_4.lock"]
    _in_process(mini, tmp_path / "local", [replace(runs[0], folds=(2,))])  # the result of an uninterrupted fold
    _same_fold(out / "fold_2.json", tmp_path / "local" / "emodb_mini" / "kfold5" / "ae+ee+in@t" / "fold_2.json")


def test_resource_requests_are_checked():
    check_resources("auto", 1, 0.1)
    check_resources("cuda", 2, 1)
    for device, cpus, gpus in (("cuda", 1, 0), ("cpu", 1, 0.5), ("auto", 0, 0), ("auto", 1, 1.5)):
        with pytest.raises(EESRError):
            check_resources(device, cpus, gpus)


def test_stacked_folds_are_one_task_and_each_fold_is_written(mini, cluster, tmp_path, json_writes):
    """`stack_folds=2`: a network run's two folds go to one task, trained as one stacked model; the baseline's
    folds stay one task each. Every fold is written once, with its log, and nothing is left behind."""
    runs = RUNS[:2]
    records = run_on_ray(mini, runs, results_dir=tmp_path / "ray", address=cluster, progress=False, stack_folds=2)
    assert [len(r) for r in records] == [2, 2]
    assert len(json_writes) == len(set(json_writes)) == 4
    assert [r["provenance"].get("stacked_with_folds") for r in records[1]] == [[0, 1], [0, 1]]
    assert all("stacked_with_folds" not in r["provenance"] for r in records[0])
    net = tmp_path / "ray" / "emodb_mini" / "kfold5" / "ae+ee+in@t"
    for k in (0, 1):
        log = (net / f"fold_{k}.log").read_text()
        assert "-- " in log and "metrics: WA" in log
    left = list((tmp_path / "ray").rglob("*.lock")) + list((tmp_path / "ray").rglob("*.ckpt.pt"))
    assert not left
