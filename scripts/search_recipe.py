"""The search for a recipe that closes the gap to the paper, on inner validation splits only.

Every configuration is run in *selection* mode (``eesr run --inner``): trained on the inner
training part of an outer training fold and scored on its validation part, so the outer
test folds are never looked at. Each finished configuration is a result like any other
under ``results/<dataset>/<protocol>+inner/<variant>@<tag>/`` and appears in the book's
experiment log, negative results included. Rerunning skips what is finished.

    python scripts/search_recipe.py --protocol kfold5 --folds 0 [--only tag1,tag2]
    python scripts/search_recipe.py --ray [--address HOST:PORT] [--cpus-per-fold 2] [--gpus-per-fold 0.1]

By default the configurations run one after the other in this process; with ``--ray`` (or
``--address``) every fold of every configuration is a Ray task, scheduled as ``eesr replicate
--run`` schedules the replication's folds (eesr_lib.distributed; README, "Running on a Ray cluster").
"""

from __future__ import annotations

import argparse

from eesr_lib.results import RESULTS_DIR
from eesr_lib.runner import run

# tag -> (variant, overrides). Only choices the paper leaves open; Tables 1-3 stay as they are.
CANDIDATES: dict[str, tuple[str, dict]] = {
    "recipe0": ("ae+ee+in", {}),  # the straightforward build: λ=1, batch 32, 1 crop/utt/epoch
    "lam0.1": ("ae+ee+in", {"lam": 0.1}),
    "lam10": ("ae+ee+in", {"lam": 10.0}),
    "lam30": ("ae+ee+in", {"lam": 30.0}),
    "nograd": ("ae+ee+in", {"classifier_grad_to_encoder": False}),
    "wd1e-3": ("ae+ee+in", {"weight_decay": 1e-3}),
    "logit": ("ae+ee+in", {"score_average": "logit"}),
    "bs16": ("ae+ee+in", {"batch_size": 16}),
    "maxpool": ("ae+ee+in", {"pooling": "max"}),
    # Round 2: 20-epoch proxies. The validation curves of round 1 plateau by epoch ~20, and with
    # a constant learning rate a 20-epoch run follows the first half of a 40-epoch one (same seed,
    # same random stream; only floating-point rounding differs when the thread count does, which
    # alone moved e20 vs round 1's epochs 16-20 by ~0.5 UA: a measure of the noise floor).
    "e20": ("ae+ee+in", {"epochs": 20}),
    "e20-deep": ("ae-os+ee+in", {"epochs": 20}),
    "e20-lam10": ("ae+ee+in", {"epochs": 20, "lam": 10.0}),
    "e20-lam30": ("ae+ee+in", {"epochs": 20, "lam": 30.0}),
    "e20-is10x0.1": ("ae+ee+in", {"epochs": 20, "is10_scale": 0.1}),
    "e20-is10x0.3": ("ae+ee+in", {"epochs": 20, "is10_scale": 0.3}),
    "e20-cosine": ("ae+ee+in", {"epochs": 20, "lr_schedule": "cosine"}),
    "e20-crops2": ("ae+ee+in", {"epochs": 20, "crops_per_epoch": 2}),
    "e20-bs16": ("ae+ee+in", {"epochs": 20, "batch_size": 16}),
    "e20-meanmax": ("ae+ee+in", {"epochs": 20, "pooling": "meanmax"}),
    # Round 3: the deep feature alone (e20-deep) sat at the majority class for ten epochs and
    # reached 36% UA: with one crop per utterance an EMODB epoch is only ~11 Adam steps, and in
    # the full model IS10 fits the training set long before the encoder has learnt anything.
    # These try to give the encoder more updates (smaller batches: same compute, more steps) or
    # a larger share of the gradient.
    "e20-bs8": ("ae+ee+in", {"epochs": 20, "batch_size": 8}),
    "e20-deep-bs8": ("ae-os+ee+in", {"epochs": 20, "batch_size": 8}),
    "e20-deep-lam10": ("ae-os+ee+in", {"epochs": 20, "lam": 10.0}),
    "e20-deep-crops4": ("ae-os+ee+in", {"epochs": 20, "crops_per_epoch": 4}),
    "e20-bs8-is10x0.1": ("ae+ee+in", {"epochs": 20, "batch_size": 8, "is10_scale": 0.1}),
    # Round 4: the deep-only runs sat at the class prior for exactly ten epochs whatever the
    # batch size or λ, i.e. not for want of steps: the mean over time of attended, instance-
    # normalized frames hardly varies between utterances at first. Pooling that keeps more of
    # the 16 frames gives the classifier something to use from the first epoch.
    "e20-deep-max": ("ae-os+ee+in", {"epochs": 20, "pooling": "max"}),
    "e20-deep-flatten": ("ae-os+ee+in", {"epochs": 20, "pooling": "flatten"}),
    "e20-max": ("ae+ee+in", {"epochs": 20, "pooling": "max"}),
    "e20-flatten": ("ae+ee+in", {"epochs": 20, "pooling": "flatten"}),
    # Round 5: a linear probe on a freshly initialised encoder (no training) separates EMODB's
    # emotions far better from its time-averaged output without instance norm than with it:
    # IN removes each channel's mean and scale over the crop, i.e. loudness and spectral
    # balance, which carry much of the emotion. Same runs with batch norm in IN's places
    # (variant ae+ee is the Table 4 row "AE+EE" under the same recipe).
    # These two ran before bn_stats existed, i.e. with PyTorch's running BN statistics at test time,
    # which leave BN models near chance (eesr_lib.train.recalibrate_batch_norm): their scores
    # understate batch norm.
    "e20-deep-bn": ("ae-os+ee+in", {"epochs": 20, "norm": "batch", "bn_stats": "running"}),
    "e20-bn": ("ae+ee", {"epochs": 20, "bn_stats": "running"}),
    "mlp": ("is10+mlp", {}),
    # The IS10 head alone trains in seconds, so the head's own choices are scanned on all five
    # inner splits with it; whatever helps the head is then tried in the full model.
    "mlp-e20": ("is10+mlp", {"epochs": 20}),
    "mlp-e80": ("is10+mlp", {"epochs": 80}),
    "mlp-bs16": ("is10+mlp", {"batch_size": 16}),
    "mlp-wd1e-2": ("is10+mlp", {"weight_decay": 1e-2}),
    "mlp-wd1e-1": ("is10+mlp", {"weight_decay": 1e-1}),
    "mlp-cosine": ("is10+mlp", {"lr_schedule": "cosine"}),
    "mlp-is10x0.1": ("is10+mlp", {"is10_scale": 0.1}),
    "svm": ("is10+svm", {}),
    # Round 6: dropout. Table 1 and 3 give p = 0.5 everywhere; that is a rate, not a shape, and
    # with ~430 training utterances it may be too strong or too weak. The head first (all five
    # inner splits, seconds each), then the full model on split 0.
    "mlp-drop0.2": ("is10+mlp", {"classifier_dropout": 0.2}),
    "mlp-drop0": ("is10+mlp", {"classifier_dropout": 0.0}),
    "e20-drop0.2": ("ae+ee+in", {"epochs": 20, "dropout": 0.2, "classifier_dropout": 0.2}),
}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="emodb")
    p.add_argument("--protocol", default="kfold5")
    p.add_argument("--folds", default="0", help="outer folds whose training part is split (comma-separated)")
    p.add_argument("--only", default=None, help="comma-separated tags (default: all, in order)")
    p.add_argument("--results", default=str(RESULTS_DIR))
    p.add_argument("--device", default="auto")
    p.add_argument("--ray", action="store_true", help="run the folds as Ray tasks (a local instance by default)")
    p.add_argument("--address", default=None, help="the Ray cluster to join (implies --ray)")
    p.add_argument("--cpus-per-fold", type=float, default=1.0)
    p.add_argument("--gpus-per-fold", type=float, default=0.0)
    args = p.parse_args()
    tags = args.only.split(",") if args.only else list(CANDIDATES)
    folds = [int(f) for f in args.folds.split(",")]
    if args.ray or args.address:
        from eesr_lib.corpora import load_corpus
        from eesr_lib.distributed import run_on_ray
        from eesr_lib.plan import Run

        runs = [
            Run(args.protocol, CANDIDATES[t][0], t, tuple(CANDIDATES[t][1].items()), selection=True, folds=tuple(folds))
            for t in tags
        ]
        results = run_on_ray(
            load_corpus(args.dataset),
            runs,
            results_dir=args.results,
            device=args.device,
            address=args.address,
            cpus_per_fold=args.cpus_per_fold,
            gpus_per_fold=args.gpus_per_fold,
        )
        for tag, res in zip(tags, results):
            _report(tag, CANDIDATES[tag][0], res)
        return
    for tag in tags:
        variant, overrides = CANDIDATES[tag]
        res = run(
            args.dataset,
            args.protocol,
            variant,
            results_dir=args.results,
            folds_to_run=folds,
            device=args.device,
            tag=tag,
            overrides=overrides,
            selection=True,
        )
        _report(tag, variant, res)


def _report(tag: str, variant: str, res: list[dict]) -> None:
    uas = ", ".join(f"{r['metrics']['ua']:.1f}" for r in res)
    print(f"{tag:10s} {variant:10s} inner-validation UA per fold: {uas}", flush=True)


if __name__ == "__main__":
    main()
