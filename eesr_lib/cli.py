"""``eesr`` command line (also ``python -m eesr_lib``): corpus, features, download, run, replicate, report,
and for one's own recordings train, predict, export."""

from __future__ import annotations

import argparse
import json
import logging
import sys

from .errors import EESRError


def _parse_set(items: list[str]) -> dict:
    """``key=value`` pairs; values are read as JSON where possible (numbers, true/false)."""
    out = {}
    for item in items or []:
        if "=" not in item:
            raise EESRError(f"--set expects key=value, got '{item}'")
        key, value = item.split("=", 1)
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def _folds(text: str | None) -> list[int] | None:
    if not text:
        return None
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError as exc:
        raise EESRError(f"--folds expects a comma-separated list of fold numbers, got '{text}'") from exc


def cmd_corpus(args: argparse.Namespace) -> None:
    from .corpora import load_corpus

    corpus = load_corpus(args.dataset, args.data_root)
    print(
        f"{corpus.name}: {len(corpus)} utterances, {corpus.table['speaker'].nunique()} speakers, "
        f"{len(corpus.labels)} classes"
    )
    print(corpus.summary().to_string())


def cmd_features(args: argparse.Namespace) -> None:
    from .corpora import load_corpus
    from .features import cache_dir, corpus_features

    corpus = load_corpus(args.dataset, args.data_root)
    specs, is10 = corpus_features(corpus, n_jobs=args.jobs)
    frames = [s.shape[1] for s in specs]
    print(f"spectrograms: {len(specs)} x (513, T), T from {min(frames)} to {max(frames)} frames")
    print(f"IS10: {is10.shape}")
    print(f"cache: {cache_dir()}")


def cmd_download(args: argparse.Namespace) -> None:
    from .corpora import resolve_data_root
    from .download import EMODB_URL, NEMO_URL, download_emodb, download_nemo

    if args.corpus not in ("emodb", "nemo"):
        raise EESRError(f"Only emodb and nemo can be downloaded; '{args.corpus}' must be obtained from its owners")
    dest = resolve_data_root(args.data_root) / args.corpus
    if args.corpus == "nemo":
        path = download_nemo(dest, url=args.url or NEMO_URL, classes=args.classes)
        print(
            f"nEMO ({args.classes} classes) is in {path}: --dataset nemo (4 classes)"
            + (" or nemo6" if args.classes == 6 else "")
        )
        return
    path = download_emodb(dest, url=args.url or EMODB_URL)
    print(f"EMODB is in {path}")


STACK_HELP = (
    "networks: train N unfinished folds at a time as one model with the folds' weights stacked (each kernel "
    "does the work of N folds: what fills a GPU); default 1"
)


def cmd_run(args: argparse.Namespace) -> None:
    from .report import format_summary, summary
    from .results import protocol_folder
    from .runner import run

    results = run(
        args.dataset,
        args.protocol,
        args.variant,
        data_root=args.data_root,
        results_dir=args.results,
        folds_to_run=_folds(args.folds),
        epochs=args.epochs,
        batch_size=args.batch_size,
        device=args.device,
        seed=args.seed,
        fold_seed=args.fold_seed,
        force=args.force,
        tag=args.tag,
        overrides={**_parse_set(args.set), **({"precision": "fp32"} if args.fp32 else {})},
        selection=args.inner,
        curve_every=args.curve_every,
        test_curve=args.test_curve,
        keep_weights=args.keep_weights,
        stack_folds=args.stack_folds,
        cuda_graphs=args.cuda_graphs,
    )
    for r in results:
        print(f"fold {r['fold']} ({r['fold_name']}): WA {r['metrics']['wa']:.1f}  UA {r['metrics']['ua']:.1f}")
    df = summary(args.results)
    protocol = protocol_folder(args.protocol, args.inner)
    print(format_summary(df[(df.protocol == protocol) & (df.variant.str.startswith(args.variant))]))


def cmd_replicate(args: argparse.Namespace) -> None:
    from .corpora import load_corpus
    from .plan import Run, budget_runs, format_status, runs_for, status

    corpus = load_corpus(args.dataset, args.data_root)
    runs = budget_runs(corpus) if args.budget else [Run(p, v) for p, v in runs_for(corpus)]
    todo = [
        r
        for r in runs
        if (not args.protocol or r.protocol in args.protocol) and (not args.variant or r.variant in args.variant)
    ]
    if args.run:
        from .distributed import run_on_ray

        run_on_ray(
            corpus,
            todo,
            results_dir=args.results,
            device=args.device,
            address=args.address,
            cpus_per_fold=args.cpus_per_fold,
            gpus_per_fold=args.gpus_per_fold,
            features_from=args.features_from,
            max_retries=args.max_retries,
            stack_folds=args.stack_folds,
        )
    print(format_status(status(corpus, args.results, runs=todo)))


def cmd_report(args: argparse.Namespace) -> None:
    from .corpora import load_corpus
    from .report import format_summary, summary
    from .results import datasets

    speakers = {}
    for dataset in datasets(args.results):
        try:  # speakers come from the corpus itself; without it, intervals resample utterances
            table = load_corpus(dataset, args.data_root).table
            speakers[dataset] = table.set_index("id")["speaker"]
        except EESRError:
            pass
    df = summary(args.results, speakers=speakers, n_boot=0 if args.no_intervals else args.n_boot)
    if args.csv:
        df.to_csv(sys.stdout, index=False)
    else:
        print(format_summary(df))


def cmd_train(args: argparse.Namespace) -> None:
    from .bundle import train_bundle

    overrides = {**_parse_set(args.set), **({"precision": "fp32"} if args.fp32 else {})}
    if args.epochs is not None:
        overrides["epochs"] = args.epochs
    if args.batch_size is not None:
        overrides["batch_size"] = args.batch_size
    out = train_bundle(
        args.dataset,
        args.variant,
        args.out,
        data_root=args.data_root,
        overrides=overrides,
        seed=args.seed,
        device=args.device,
        weights_dtype="bf16" if args.bf16 else "fp32",
    )
    print(f"model bundle: {out}")


PREDICT_EPILOG = """\
INPUT: audio files (any format libsndfile reads, any sample rate or channel count: converted
to 16 kHz mono), folders (searched recursively for .wav, .flac, .ogg) or manifest .csv files
(a 'path' column, relative to the CSV; an optional 'id' column). Utterances shorter than one
128-frame window are padded as in training.

A file that cannot be predicted (not audio, empty, missing) gets one line on stderr and is
skipped; the others are still predicted. Exit status: 0 if at least one file was predicted,
2 if none could be (or the model bundle cannot be loaded).
"""


def cmd_predict(args: argparse.Namespace) -> None:
    from tqdm.auto import tqdm

    from .bundle import load_bundle
    from .predict import find_inputs, predict_files, write_csv, write_json, write_table

    if not args.verbose:  # one line per converted file would bury the results
        logging.getLogger("eesr_lib.audio").setLevel(logging.WARNING)
    bundle = load_bundle(args.model)
    failed = []

    def on_error(msg: str) -> None:
        failed.append(msg)
        tqdm.write(f"eesr: skipped: {msg}", file=sys.stderr)

    inputs, many = find_inputs(args.inputs, on_error)
    records = predict_files(bundle, inputs, on_error, progress=None if many else False, timeline=args.timeline)
    if not records:
        raise EESRError(f"nothing could be predicted ({len(failed)} input(s) failed, see above)")
    if args.json:
        write_json(records, bundle.labels)
    elif args.csv:
        write_csv(records, bundle.labels, timeline=args.timeline)
    else:
        write_table(records, bundle.labels, timeline=args.timeline)


def cmd_export(args: argparse.Namespace) -> None:
    from .bundle import export_onnx

    out = export_onnx(args.onnx, args.out)
    print(f"ONNX model: {out}")


def build_parser() -> argparse.ArgumentParser:
    from .protocols import PROTOCOLS
    from .results import RESULTS_DIR
    from .variants import VARIANTS

    p = argparse.ArgumentParser(prog="eesr", description="Autoencoder with emotion embedding for SER (replication)")
    sub = p.add_subparsers(dest="command", required=True)

    def data_args(sp):
        sp.add_argument("--dataset", default="emodb", help="emodb | ravdess | iemocap | path to a manifest .csv")
        sp.add_argument("--data-root", default=None, help="folder holding the corpora (default: $EESR_DATA or data/)")

    sp = sub.add_parser("corpus", help="print the class x speaker table of a corpus")
    data_args(sp)
    sp.set_defaults(func=cmd_corpus)

    sp = sub.add_parser("features", help="extract and cache spectrograms and IS10 for a whole corpus")
    data_args(sp)
    sp.add_argument("--jobs", type=int, default=None, help="worker processes (default: all cores)")
    sp.set_defaults(func=cmd_features)

    sp = sub.add_parser("download", help="download a public corpus (emodb, nemo) into the data root")
    sp.add_argument("corpus", choices=["emodb", "nemo"])
    sp.add_argument(
        "--classes",
        type=int,
        choices=[4, 6],
        default=6,
        help="nemo: keep all 6 emotions (default) or only IEMOCAP's 4 (anger, happiness, neutral, sadness)",
    )
    sp.add_argument("--data-root", default=None)
    sp.add_argument("--url", default=None, help="override the download URL (a mirror, a local copy)")
    sp.set_defaults(func=cmd_download)

    sp = sub.add_parser("run", help="train/evaluate one variant under one protocol (resumable)")
    data_args(sp)
    sp.add_argument("--protocol", default="kfold5", choices=PROTOCOLS)
    sp.add_argument("--variant", default="ae+ee+in", choices=list(VARIANTS))
    sp.add_argument("--epochs", type=int, default=None, help="default 40 (the paper)")
    sp.add_argument("--batch-size", type=int, default=None)
    sp.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    sp.add_argument("--folds", default=None, help="comma-separated fold numbers, e.g. 0,1 (default: all)")
    sp.add_argument("--results", default=str(RESULTS_DIR), help="results folder (default: results/)")
    sp.add_argument("--seed", type=int, default=0, help="training seed; it deals the folds too unless --fold-seed")
    sp.add_argument(
        "--fold-seed",
        type=int,
        default=None,
        help="the seed that deals the folds (default: --seed); fixed, only the training seed varies",
    )
    sp.add_argument("--tag", default=None, help="suffix for the variant folder, to keep configurations apart")
    sp.add_argument("--set", action="append", metavar="KEY=VALUE", help="override any model/training setting")
    sp.add_argument("--force", action="store_true", help="recompute folds that are already finished")
    sp.add_argument(
        "--fp32",
        action="store_true",
        help="train and score in fp32 (default: bf16 autocast where the device has native bf16)",
    )
    sp.add_argument(
        "--inner",
        action="store_true",
        help="model selection: score on a validation split of each training fold, never the test fold",
    )
    sp.add_argument(
        "--curve-every",
        type=int,
        default=1,
        help="with --inner: score the validation split every N epochs (a learning curve; default 1)",
    )
    sp.add_argument(
        "--test-curve",
        action="store_true",
        help="record the test fold's score after every epoch (to measure test-fold selection; never used to choose)",
    )
    sp.add_argument(
        "--keep-weights",
        action="store_true",
        help="also write each fold's trained model as a bundle, fold_<k>.bundle/ (folds computed by this call)",
    )
    sp.add_argument("--stack-folds", type=int, default=1, help=STACK_HELP)
    sp.add_argument(
        "--cuda-graphs",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="replay each training step from a CUDA graph (default: on a CUDA device, one fold at a time)",
    )
    sp.set_defaults(func=cmd_run)

    sp = sub.add_parser(
        "replicate",
        help="the replication's list of runs: what is finished, what is left; --run computes what is left "
        "(each fold a Ray task, on this machine or a cluster)",
    )
    data_args(sp)
    sp.add_argument("--run", action="store_true", help="compute every fold that is not finished yet")
    sp.add_argument(
        "--budget",
        action="store_true",
        help="the training-budget runs (learning curves, departures, outer folds at the chosen budget)",
    )
    sp.add_argument(
        "--address",
        default=None,
        help="with --run: the Ray cluster to join (HOST:PORT, or auto for the one `ray start` runs here); "
        "default: a local Ray instance started by this command",
    )
    sp.add_argument(
        "--cpus-per-fold", type=float, default=1.0, help="with --run: CPU cores each fold reserves (default 1)"
    )
    sp.add_argument(
        "--gpus-per-fold",
        type=float,
        default=0.0,
        help="with --run: GPUs each fold reserves, fractional (0.1: ten folds share a GPU); default 0, CPU only",
    )
    sp.add_argument(
        "--features-from",
        choices=["driver", "nodes"],
        default="driver",
        help="with --run: the driver sends the features through Ray's object store (default), or every node "
        "reads the corpus at the same path (a shared file system) into its own feature cache",
    )
    sp.add_argument(
        "--max-retries", type=int, default=3, help="with --run: times a fold whose worker died is run again"
    )
    sp.add_argument("--stack-folds", type=int, default=1, help="with --run: " + STACK_HELP)
    sp.add_argument("--protocol", action="append", choices=PROTOCOLS, help="only this protocol (repeatable)")
    sp.add_argument("--variant", action="append", choices=list(VARIANTS), help="only this variant (repeatable)")
    sp.add_argument("--results", default=str(RESULTS_DIR), help="results folder (default: results/)")
    sp.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    sp.set_defaults(func=cmd_replicate)

    sp = sub.add_parser(
        "train",
        help="train a variant on every utterance of a corpus and write a model bundle (for eesr predict / export)",
    )
    data_args(sp)
    sp.add_argument("--variant", default="ae+ee+in", choices=[v for v, s in VARIANTS.items() if "baseline" not in s])
    sp.add_argument("--epochs", type=int, default=None, help="default 40 (the paper)")
    sp.add_argument("--batch-size", type=int, default=None)
    sp.add_argument("--out", default=None, help="bundle folder to write (default: <dataset>-<variant>.bundle)")
    sp.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    sp.add_argument("--seed", type=int, default=0)
    sp.add_argument("--set", action="append", metavar="KEY=VALUE", help="override any model/training setting")
    sp.add_argument("--fp32", action="store_true", help="train in fp32 (default: bf16 autocast where native)")
    sp.add_argument("--bf16", action="store_true", help="store the weights in bf16: half the size, not exact")
    sp.set_defaults(func=cmd_train)

    sp = sub.add_parser(
        "predict",
        help="class probabilities of audio files, folders or manifests with a model bundle",
        epilog=PREDICT_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sp.add_argument(
        "--model",
        required=True,
        metavar="BUNDLE",
        help="a model bundle (eesr train, eesr run --keep-weights), or a committed model by name: emodb",
    )
    sp.add_argument("inputs", nargs="+", metavar="INPUT", help="audio file, folder or manifest .csv")
    fmt = sp.add_mutually_exclusive_group()
    fmt.add_argument("--csv", action="store_true", help="CSV on stdout (default: an aligned table)")
    fmt.add_argument("--json", action="store_true", help="JSON on stdout")
    sp.add_argument(
        "--timeline",
        action="store_true",
        help="also each window's probabilities (1.6 s windows for 128 frames, each scored on its own audio, "
        "IS10 included), by start time in seconds (CSV: one row per window)",
    )
    sp.add_argument("--verbose", action="store_true", help="log each resampling / channel averaging")
    sp.set_defaults(func=cmd_predict)

    sp = sub.add_parser("export", help="export a model bundle for other runtimes: --onnx")
    sp.add_argument(
        "--onnx",
        required=True,
        metavar="BUNDLE",
        help="write BUNDLE's test-time network (encoder + classifier) as ONNX, dynamic batch",
    )
    sp.add_argument("--out", default=None, help="ONNX file to write (default: the bundle's name with .onnx)")
    sp.set_defaults(func=cmd_export)

    sp = sub.add_parser("report", help="print the table of every result present")
    sp.add_argument("--results", default=str(RESULTS_DIR))
    sp.add_argument("--csv", action="store_true", help="machine-readable output")
    sp.add_argument("--data-root", default=None, help="folder holding the corpora (for each utterance's speaker)")
    sp.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples of speakers per interval")
    sp.add_argument("--no-intervals", action="store_true", help="mean ± std over folds only (fast)")
    sp.set_defaults(func=cmd_report)
    return p


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except EESRError as exc:
        print(f"eesr: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
