"""The search for a recipe that closes the gap to the paper (issue: "Close the gap").

Every configuration is run in *selection* mode (``eesr run --inner``): trained on the inner
training part of an outer training fold and scored on its validation part, so the outer
test folds are never looked at. Each finished configuration is a result like any other
under ``results/<dataset>/<protocol>+inner/<variant>@<tag>/`` and appears in the book's
experiment log, negative results included. Rerunning skips what is finished.

    python scripts/search_recipe.py --protocol kfold5 --folds 0 [--only tag1,tag2]
"""

from __future__ import annotations

import argparse

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
    "mlp": ("is10+mlp", {}),
    "svm": ("is10+svm", {}),
}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="emodb")
    p.add_argument("--protocol", default="kfold5")
    p.add_argument("--folds", default="0", help="outer folds whose training part is split (comma-separated)")
    p.add_argument("--only", default=None, help="comma-separated tags (default: all, in order)")
    p.add_argument("--results", default="results")
    p.add_argument("--device", default="auto")
    args = p.parse_args()
    tags = args.only.split(",") if args.only else list(CANDIDATES)
    folds = [int(f) for f in args.folds.split(",")]
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
        uas = ", ".join(f"{r['metrics']['ua']:.1f}" for r in res)
        print(f"{tag:10s} {variant:10s} inner-validation UA per fold: {uas}", flush=True)


if __name__ == "__main__":
    main()
