"""Pack, run and bring back the budget run list on a lent GPU (the `device` tool of this workplace).

What stands in the way, and what each command does about it:

- The device receives the working tree, at most 64 MiB, and nothing beside it: not ``../shared``.
  The tracked ``results/`` and ``models/`` (about 65 MB together) are not needed there, so
  ``aside`` moves them out of the tree for the call and ``back`` returns them.
- ``aside`` also moves ``book/`` (16 MB of executed chapters), so a call has about 62 MiB to carry.
- EMODB's WAVs are 53 MB; ``build`` writes them as FLAC (lossless: checked sample for sample, and the
  loader reads ``.flac``), about a third smaller, into ``.kit/``.
- nEMO (144 MB of FLAC and 20 MB of IS10 vectors) is over one call's limit. ``build --datasets nemo emodb``
  splits it into parts ``.kit-nemo-<i>/``, each one call's worth; a call that carries a part alone runs
  ``device_kit.sh stage .kit-nemo-<i>``, which copies it to ``/tmp/eesr-stage`` on the device, where it
  stays while the machine does (30 s of idleness between calls gives it back: the calls go back to
  back). The last part is sized to travel beside ``.kit/``, in the call that trains; ``device`` then
  checks that every part was staged and skips (saying so) the runs of a corpus that is not whole.
  ``build`` prints the calls in order.
- The device's Python has torch but neither opensmile nor librosa. ``build`` carries the IS10 vectors
  computed here, filed under the FLAC files' cache keys (so opensmile is never called there), and
  librosa with what it needs as wheels (the spectrograms are computed there, 16 cores).
- Every fold left in the budget run list (:func:`eesr_lib.plan.budget_runs`) is written to
  ``.kit/runs.json`` with its fold numbers, so the device computes only what is missing here.
  ``device`` (run there) trains them, ``--parallel`` runs at a time sharing the GPU, each run's folds one
  after the other with CUDA graphs (the runner's default on a GPU), and packs every fold file finished
  by then into ``$OUT/results.tgz``; ``land`` unpacks them into results/. Not stacked: on the H200,
  5 stacked folds trained at 0.59x the rate of eager folds one at a time (benchmarks/README.md),
  and a stacked group cut off by the time limit leaves nothing, where folds one at a time keep each
  finished fold.

    .venv/bin/python scripts/device_kit.py build            # here: .kit/ (git-excluded), and the travel size
    .venv/bin/python scripts/device_kit.py aside            # here, right before the device call(s)
    # the device call (carry [".kit"]):  bash scripts/device_kit.sh check && bash scripts/device_kit.sh runs --minutes 8
    # (with --datasets nemo emodb: the staging calls `build` printed first, then the training call)
    .venv/bin/python scripts/device_kit.py back             # here, right after it
    .venv/bin/python scripts/device_kit.py land /work/.device/.../results.tgz
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from eesr_lib import plan
from eesr_lib.corpora import CORPUS_FOLDER, PROJECT_ROOT, Corpus, corpus_dir, load_corpus
from eesr_lib.errors import EESRError
from eesr_lib.features import cache_dir, cached_path, corpus_features, extract
from eesr_lib.provenance import git_revision
from eesr_lib.results import RESULTS_DIR, fold_records, run_dir
from eesr_lib.variants import VARIANTS

KIT = PROJECT_ROOT / ".kit"
ASIDE = ("results", "models", "book")  # tracked, not needed on the device
KIT_CORPUS = "emodb"  # travels in .kit/ itself (`check` trains on it); any other corpus travels in parts
PART_MARGIN = 2 * 2**20  # what the device may count beyond travel_bytes (directory entries, rounding)
ASIDE_TO = PROJECT_ROOT.parent / f".{PROJECT_ROOT.name}-aside"
TRAVEL_LIMIT = 64 * 2**20  # the device tool's working-tree limit
# librosa and what it needs that the device's image lacks (its package list: device/KINDS.md);
# librosa and soundfile at requirements.txt's pins.
# soundfile needs cffi, which the image lacks too (its first call here failed on `_cffi_backend`).
WHEELS = (
    "librosa", "soundfile", "cffi", "pycparser", "soxr==1.1.0", "audioread==3.1.0", "decorator==5.3.1",
    "pooch==1.9.0", "platformdirs",
)  # fmt: skip
DEVICE_PYTHON = "3.12"
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64")


def pinned(name: str) -> str:
    """``name==version`` as requirements.txt pins it, or ``name`` as given."""
    if "==" in name:
        return name
    for line in (PROJECT_ROOT / "requirements.txt").read_text().splitlines():
        if line.split("==")[0].strip().lower() == name.lower():
            return line.strip()
    return name


def flac_copy(src: Path, dst: Path) -> None:
    """``src`` as FLAC at ``dst``, refused unless reading it back gives exactly ``src``'s samples."""
    info = sf.info(str(src))
    if info.subtype not in ("PCM_16", "PCM_24", "PCM_S8", "PCM_U8"):
        raise EESRError(f"{src}: {info.subtype} audio has no lossless FLAC form")
    wav, sr = sf.read(str(src), dtype="int32", always_2d=True)
    dst.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(dst), wav, sr, subtype=info.subtype, format="FLAC")
    back, sr_back = sf.read(str(dst), dtype="int32", always_2d=True)
    if sr_back != sr or not np.array_equal(back, wav):
        raise EESRError(f"{dst}: the FLAC copy of {src} does not give back its samples")


def pack_corpus(kit: Path, dataset: str = "emodb", data_root: str | None = None, limit: int | None = None) -> int:
    """The corpus as FLAC under ``kit/data`` and its IS10 vectors under ``kit/cache``, keyed by the FLAC
    files, so that the device computes the spectrograms (librosa) but never IS10 (opensmile). Returns
    the number of files."""
    if dataset != "emodb":
        raise EESRError(f"the kit itself packs EMODB only (asked for {dataset}): other corpora travel in parts")
    corpus = load_corpus(dataset, data_root)
    paths = corpus.paths[:limit] if limit else corpus.paths
    vectors = extract(paths, "is10")  # this machine's cache, computed where missing
    for path, vector in zip(paths, vectors):
        flac = kit / "data" / dataset / "wav" / (Path(path).stem + ".flac")
        if not flac.exists():
            flac_copy(Path(path), flac)
        target = cached_path(flac, "is10", root=kit / "cache")
        target.parent.mkdir(parents=True, exist_ok=True)
        np.save(target, vector)
    return len(paths)


def part_files(dataset: str, data_root: str | None = None) -> list[list[tuple[Path, str]]]:
    """What a corpus that travels in parts is made of, as groups that stay together: each utterance's
    audio with its IS10 vector (computed here where missing), and the corpus folder's own files (its
    label table). Each entry is ``(file here, path in a part)``: ``data/<corpus>/...`` as the loader
    finds it, ``cache/<features>/<key>.npy`` as :func:`~eesr_lib.features.extract` looks it up. The audio
    travels byte for byte, so the cache keys (the files' digests) are the same there."""
    corpus = load_corpus(dataset, data_root)
    root = corpus_dir(dataset, data_root)
    if any(not p.endswith(".flac") for p in corpus.paths):
        raise EESRError(f"{dataset}: only a FLAC copy travels in parts (found other audio under {root})")
    extract(corpus.paths, "is10")
    base = Path("data") / CORPUS_FOLDER.get(dataset, dataset)
    groups = [[(f, str(base / f.name))] for f in sorted(root.iterdir()) if f.is_file()]
    for path in map(Path, corpus.paths):
        vector = cached_path(path, "is10")
        groups.append(
            [(path, str(base / path.relative_to(root))), (vector, str(Path("cache") / vector.relative_to(cache_dir())))]
        )
    return groups


def pack_parts(
    prefix: Path, dataset: str, first_bytes: int, part_bytes: int, data_root: str | None = None
) -> list[Path]:
    """The corpus in parts ``<prefix>-1``, ``-2``, ...: the last at most ``first_bytes`` (it travels
    beside .kit/, in the call that trains), the others at most ``part_bytes`` (a call each, carried
    alone). Each part holds ``data/``, ``cache/`` and ``PART.json`` (corpus, file count, bytes, whether it
    travels with the kit)."""
    groups = part_files(dataset, data_root)
    sizes = [sum(f.stat().st_size for f, _ in g) for g in groups]
    if max(sizes) > part_bytes:
        raise EESRError(f"{dataset}: one utterance is over a part's {part_bytes / 2**20:.1f} MiB")
    last: list[int] = []  # travels with .kit/: filled first, with whatever still fits
    calls: list[list[int]] = []  # a staging call each
    room_last, room = first_bytes, 0
    for i, size in enumerate(sizes):
        if size <= room_last:
            last.append(i)
            room_last -= size
            continue
        if not calls or size > room:
            calls.append([])
            room = part_bytes
        calls[-1].append(i)
        room -= size
    order = calls + ([last] if last else [])
    for old in prefix.parent.glob(f"{prefix.name}-*"):
        shutil.rmtree(old)
    parts = []
    for n, members in enumerate(order, 1):
        part = prefix.parent / f"{prefix.name}-{n}"
        for i in members:
            for src, rel in groups[i]:
                (part / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(src, part / rel)
        files = sum(len(groups[i]) for i in members)
        info = {"dataset": dataset, "part": n, "of": len(order), "files": files}
        info |= {"bytes": sum(sizes[i] for i in members), "with_kit": members is last}
        (part / "PART.json").write_text(json.dumps(info))
        parts.append(part)
    return parts


def unstaged(kit: Path) -> dict[str, list[str]]:
    """The parts ``build`` made (``parts.json``) whose ``PART.json`` the staging did not copy into
    ``kit/staged``, by corpus: a corpus with any listed is not whole on the device."""
    listed = json.loads((kit / "parts.json").read_text()) if (kit / "parts.json").exists() else {}
    return {
        dataset: missing
        for dataset, names in listed.items()
        if (missing := [n for n in names if not (kit / "staged" / f"{n}.json").exists()])
    }


def device_runs(corpus: Corpus) -> list[plan.Run]:
    """The runs a GPU computes for ``corpus``: EMODB's budget list; elsewhere the network runs of the
    replication plan (the baselines need no GPU)."""
    runs = plan.budget_runs(corpus)
    if runs:
        return runs
    return [plan.Run(p, v) for p, v in plan.runs_for(corpus) if "baseline" not in VARIANTS[v]]


def runs_left(
    dataset: str = "emodb", data_root: str | None = None, results_dir: Path = PROJECT_ROOT / RESULTS_DIR
) -> list[dict]:
    """Every run of :func:`device_runs` with the folds it still lacks here, as keyword arguments of
    :func:`eesr_lib.runner.run` (``folds_to_run`` filled in)."""
    corpus = load_corpus(dataset, data_root)
    out = []
    for r in device_runs(corpus):
        split = r.splits(corpus)
        wanted = range(len(split)) if r.folds is None else r.folds
        done = fold_records(run_dir(results_dir, dataset, r.protocol, r.variant, r.tag, r.selection))
        left = [k for k in wanted if k not in done]
        if left:
            out.append(
                {"dataset": dataset, "protocol": r.protocol, "variant": r.variant}
                | r.run_kwargs()
                | {"folds_to_run": left}
            )
    return out


def travel_bytes(extra: list[Path]) -> int:
    """What the device tool would send: tracked and untracked-not-ignored files in the tree, plus ``extra``."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    total = sum(p.stat().st_size for f in listed if f and (p := PROJECT_ROOT / f.decode()).is_file())
    return total + sum(f.stat().st_size for e in extra for f in e.rglob("*") if f.is_file())


def exclude(path: str) -> None:
    """Add ``/path/`` to ``.git/info/exclude`` (once): the kit must never be committed."""
    info = PROJECT_ROOT / ".git" / "info" / "exclude"
    info.parent.mkdir(parents=True, exist_ok=True)
    lines = info.read_text().splitlines() if info.exists() else []
    if f"/{path}/" not in lines:
        info.write_text("\n".join([*lines, f"/{path}/"]) + "\n")


def build(args: argparse.Namespace) -> None:
    kit = Path(args.kit)
    exclude(kit.name)
    exclude(f"{kit.name}-*")  # the parts
    n = pack_corpus(kit, KIT_CORPUS, args.data_root, args.limit)
    runs = [r for dataset in args.datasets for r in runs_left(dataset, args.data_root)]
    (kit / "runs.json").write_text(json.dumps(runs, indent=1))
    (kit / "REVISION").write_text(git_revision())  # before `aside`, which leaves the tree dirty
    if not args.no_wheels:
        wheels = kit / "whl"
        shutil.rmtree(wheels, ignore_errors=True)
        platform_args = [a for p in PLATFORMS for a in ("--platform", p)]
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:"]
            + ["--python-version", DEVICE_PYTHON, "--implementation", "cp", *platform_args, "-d", str(wheels)]
            + [pinned(w) for w in WHEELS],
            check=True,
        )
    tree = travel_bytes([]) - sum(_tracked_bytes(PROJECT_ROOT / a) for a in ASIDE)
    kit_bytes = travel_bytes([kit]) - travel_bytes([])
    parts = {
        dataset: pack_parts(
            kit.parent / f"{kit.name}-{dataset}",
            dataset,
            first_bytes=TRAVEL_LIMIT - tree - kit_bytes - PART_MARGIN,
            part_bytes=TRAVEL_LIMIT - tree - PART_MARGIN,
            data_root=args.data_root,
        )
        for dataset in args.datasets
        if dataset != KIT_CORPUS
    }
    (kit / "parts.json").write_text(json.dumps({d: [p.name for p in ps] for d, ps in parts.items()}))
    folds_left = sum(len(r["folds_to_run"]) for r in runs)
    print(f"{kit}: {n} files of {KIT_CORPUS}, {len(runs)} runs with {folds_left} folds left")
    for call, (carry, command) in enumerate(device_calls(kit, [p for ps in parts.values() for p in ps]), 1):
        size = tree + sum(travel_bytes([kit.parent / c]) - travel_bytes([]) for c in carry)
        print(f"call {call}: carry {json.dumps(carry)} ({size / 2**20:.1f} MiB of {TRAVEL_LIMIT / 2**20:.0f})")
        print(f"    {command}")
        if size > TRAVEL_LIMIT:
            raise EESRError(f"call {call} is over the device tool's limit: nothing would be sent")
    print(f"{', '.join(ASIDE)} set aside (`aside`) for every call; back to back: a machine idle 30 s goes back")


def device_calls(kit: Path, parts: list[Path]) -> list[tuple[list[str], str]]:
    """The device calls, in order, as (carry, command): one per part that travels alone (it is staged),
    then the call that carries .kit/ and the part sized to go with it, stages that and trains. Names
    are relative to the repository root, where the parts lie beside .kit/."""
    beside = [p for p in parts if json.loads((p / "PART.json").read_text())["with_kit"]]
    calls = [([p.name], f"bash scripts/device_kit.sh stage {p.name}") for p in parts if p not in beside]
    stage = "".join(f"bash scripts/device_kit.sh stage {p.name} && " for p in beside)
    train = "bash scripts/device_kit.sh check && bash scripts/device_kit.sh runs --minutes 7 --parallel 2"
    return [*calls, ([kit.name, *(p.name for p in beside)], stage + train)]


def _tracked_bytes(folder: Path) -> int:
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--", str(folder)], cwd=PROJECT_ROOT, capture_output=True, check=True
    ).stdout.split(b"\0")
    return sum(p.stat().st_size for f in listed if f and (p := PROJECT_ROOT / f.decode()).is_file())


def aside(_args: argparse.Namespace) -> None:
    """Move :data:`ASIDE` out of the tree; refused while it holds uncommitted work."""
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--", *ASIDE], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()
    if dirty:
        raise EESRError(f"commit these first, they would travel aside uncommitted:\n{dirty}")
    ASIDE_TO.mkdir(exist_ok=True)
    for name in ASIDE:
        if (ASIDE_TO / name).exists():
            raise EESRError(f"{ASIDE_TO / name} exists already: run `back` first")
        shutil.move(str(PROJECT_ROOT / name), str(ASIDE_TO / name))
    print(f"{', '.join(ASIDE)} moved to {ASIDE_TO}; run `back` after the device call")


def back(_args: argparse.Namespace) -> None:
    """Return what ``aside`` moved (or, if that was lost, the committed copies)."""
    for name in ASIDE:
        if (ASIDE_TO / name).exists() and not (PROJECT_ROOT / name).exists():
            shutil.move(str(ASIDE_TO / name), str(PROJECT_ROOT / name))
    subprocess.run(["git", "checkout", "--", *ASIDE], cwd=PROJECT_ROOT, check=True)
    print(f"{', '.join(ASIDE)} are back")


def _train(kwargs: dict, results_dir: str, device: str) -> str:
    from eesr_lib.runner import run

    name = f"{kwargs['protocol']} {kwargs['variant']}@{kwargs['tag']}"
    started = time.time()
    try:
        run(results_dir=results_dir, device=device, progress=False, **kwargs)
    except Exception as exc:  # one run failing must not lose the others' folds
        return f"{name}: FAILED after {time.time() - started:.0f} s: {exc!r}"
    return f"{name}: {len(kwargs['folds_to_run'])} folds in {time.time() - started:.0f} s"


def device(args: argparse.Namespace) -> None:
    """On the device: train every run of runs.json, ``--parallel`` runs at a time sharing the GPU, each
    run's folds one after the other, for at most ``--minutes``; then pack every finished fold file into
    ``--out``/results.tgz (a fold cut off by the time limit leaves nothing, the folds before it stay).
    The runs of a corpus whose parts were not all staged are skipped, with the parts named."""
    kit = Path(args.kit)
    missing = unstaged(kit)
    for dataset, names in missing.items():
        print(f"{dataset}: {', '.join(names)} not staged (the machine went back between calls?): its runs are skipped")
    runs = [r for r in json.loads((kit / "runs.json").read_text()) if r["dataset"] not in missing][: args.max_runs]
    results = kit / "results"
    jobs = [(r, str(results), args.device) for r in runs]
    for dataset in sorted({r["dataset"] for r in runs}):  # once, on all cores, before the runs share them
        corpus_features(load_corpus(dataset))
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(args.parallel) as pool:
        pending = pool.starmap_async(_train, jobs)
        try:
            for line in pending.get(timeout=args.minutes * 60):
                print(line, flush=True)
        except multiprocessing.TimeoutError:
            print(f"stopped at the {args.minutes}-minute limit; packing the folds that finished", flush=True)
            pool.terminate()
    out = Path(args.out or os.environ.get("OUT", "."))
    with tarfile.open(out / "results.tgz", "w:gz") as tar:
        for f in sorted(results.rglob("fold_*")):
            if f.suffix in (".json", ".npz") and not f.name.endswith(".curve.json"):
                tar.add(f, arcname=str(f.relative_to(results)))
    print(f"{out / 'results.tgz'}: written")


def land(args: argparse.Namespace) -> None:
    """Unpack a device's results.tgz into results/: new fold files only, never over a finished fold."""
    added, kept = 0, 0
    with tarfile.open(args.tarball) as tar:
        for member in tar.getmembers():
            target = Path(args.results) / member.name
            if not member.isfile() or ".." in Path(member.name).parts:
                continue
            if target.exists():
                kept += 1
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(tar.extractfile(member).read())
            added += 1
    print(f"{added} fold files added to {args.results}; {kept} already there, left as they were")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--kit", default=str(KIT))
    sub = p.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="here: pack .kit/ and report what would travel")
    b.add_argument(
        "--datasets", nargs="+", default=[KIT_CORPUS], help="whose runs to list, in this order (any but EMODB in parts)"
    )
    b.add_argument("--data-root", default=None)
    b.add_argument("--limit", type=int, default=None, help="pack only the first N files (a test)")
    b.add_argument("--no-wheels", action="store_true")
    sub.add_parser("aside", help="here: move results/ and models/ out of the tree for the device call")
    sub.add_parser("back", help="here: return them")
    d = sub.add_parser("device", help="there: train what runs.json lists, pack results.tgz")
    d.add_argument("--device", default="cuda")
    d.add_argument("--parallel", type=int, default=5, help="runs sharing the GPU at once")
    d.add_argument("--max-runs", type=int, default=None, help="only the first N runs (most important first)")
    d.add_argument("--out", default=None, help="default: $OUT")
    d.add_argument("--minutes", type=float, default=8.5, help="stop training after this long (a call has 10)")
    la = sub.add_parser("land", help="here: unpack a device's results.tgz into results/")
    la.add_argument("tarball")
    la.add_argument("--results", default=str(PROJECT_ROOT / RESULTS_DIR))
    args = p.parse_args(argv)
    try:
        {"build": build, "aside": aside, "back": back, "device": device, "land": land}[args.command](args)
    except EESRError as exc:
        sys.exit(f"error: {exc}")


if __name__ == "__main__":
    main()
