"""How could the paper's EMODB numbers arise? Measured demonstrations of evaluation flaws.

    python scripts/evaluation_flaws.py [--items bdca] [--seeds 5] [--results results]

Every number written here DEMONSTRATES A FLAW (or reads the paper's own tables); none is a
result of this replication. See eesr_lib/flaws.py for why each exists. Writes one JSON per item
to ``results/emodb/flaws/``:

- ``a_choose_on_test.json``: IS10+MLP scored on the test fold after every epoch, several seeds;
  the honest final-epoch WA beside WAs chosen on the test folds (best epoch, best seed).
- ``b_crop_level_split.json``: IS10+SVM with crops (not utterances) split into 5 folds.
- ``c_confusion_matrices.json``: which fold structures fit the paper's Tables 11 and 12.
- ``d_random_kfold.json``: IS10+SVM under random (non-stratified) and stratified k-fold, seeds.

Item c reads d's file (if present) for the spread of the implied-WA check, so d runs first.
CPU only, one thread; about half an hour on 2 busy cores, item a most of it.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from eesr_lib import flaws, paper
from eesr_lib.corpora import load_corpus
from eesr_lib.features import corpus_features
from eesr_lib.model import ModelConfig
from eesr_lib.protocols import folds
from eesr_lib.provenance import provenance
from eesr_lib.results import RESULTS_DIR, flaws_dir, load_folds, write_json_atomic
from eesr_lib.train import TrainConfig

FLAW = "DEMONSTRATION OF AN EVALUATION FLAW: not a result of this replication"
FILES = {
    "a": "a_choose_on_test.json",
    "b": "b_crop_level_split.json",
    "c": "c_confusion_matrices.json",
    "d": "d_random_kfold.json",
}


def _r(x, nd: int = 3):
    """Round floats in nested lists/dicts for compact JSON."""
    if isinstance(x, float):
        return round(x, nd)
    if isinstance(x, dict):
        return {k: _r(v, nd) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_r(v, nd) for v in x]
    return x


def _stored_predictions(results: Path, protocol: str, variant: str, labels: list[str]) -> dict[int, np.ndarray] | None:
    """Predicted class indices of a stored run, per fold (None if any fold is missing)."""
    records = load_folds(results, "emodb", protocol, variant)
    if not records:
        return None
    return {rec["fold"]: np.array([labels.index(p["pred"]) for p in rec["predictions"]]) for rec in records}


def item_a(corpus, is10, seeds: list[int], results: Path) -> dict:
    y, labels = corpus.y, list(corpus.labels)
    model_cfg, train_cfg = ModelConfig(n_classes=len(labels)), TrainConfig()
    out = {}
    for protocol in ("kfold5", "kfold10"):
        fs = folds(corpus, protocol)
        wa = np.zeros((len(seeds), len(fs), train_cfg.epochs))
        ua = np.zeros_like(wa)
        final_pred = {}
        for s_i, seed in enumerate(seeds):
            for f_i, (tr, te) in enumerate(fs):
                t0 = time.time()
                c = flaws.mlp_test_curve(is10[tr], y[tr], is10[te], y[te], labels, model_cfg, train_cfg, seed)
                wa[s_i, f_i], ua[s_i, f_i] = c["wa"], c["ua"]
                if not c["final_pred_matches"]:
                    raise RuntimeError("the per-epoch hook changed the final predictions")
                if seed == 0:
                    final_pred[f_i] = np.array(c["pred"][-1])
                print(f"  a {protocol} seed {seed} fold {f_i}: final WA {c['wa'][-1]:.1f} ({time.time() - t0:.0f} s)")
        sizes = [len(te) for _, te in fs]
        stored = _stored_predictions(results, protocol, "is10+mlp", labels)
        matches = None if stored is None else all(np.array_equal(stored[k], final_pred[k]) for k in final_pred)
        out[protocol] = {
            "test_sizes": sizes,
            "wa": _r(flaws.choose_on_test(wa, weights=sizes)),
            "ua_fold_mean": _r(flaws.choose_on_test(ua)),
            "seed0_final_matches_stored_run": matches,
            "curves_wa": np.round(wa, 2).tolist(),
            "curves_ua": np.round(ua, 2).tolist(),
        }
    jump = {
        name: out["kfold10"]["wa"][name]["mean"] - out["kfold5"]["wa"][name]["mean"]
        for name in ("final_epoch", "best_common_epoch", "best_epoch_per_fold")
    }
    jump.update(
        {
            name: out["kfold10"]["wa"][name]["value"] - out["kfold5"]["wa"][name]["value"]
            for name in ("best_seed_per_fold", "best_seed_overall", "best_seed_and_epoch_per_fold")
        }
    )
    return {
        "what": "IS10+MLP test-fold WA/UA after every epoch; numbers chosen on the test folds are flawed",
        "config": {
            "model": asdict(model_cfg),
            "train": asdict(train_cfg),
            "folds": "eesr_lib.protocols.folds(corpus, protocol, seed=0)",
            "training_seeds": seeds,
            "wa": "pooled over folds (fold WAs weighted by test size)",
            "ua": "mean over folds",
            "selection": "each number chosen on itself (WA on WA, UA on UA)",
        },
        "results": out,
        "jump_kfold10_minus_kfold5": _r(jump),
        "paper": {"wa": paper.EMODB_WA, "jump": round(paper.EMODB_WA["kfold10"] - paper.EMODB_WA["kfold5"], 2)},
    }


def item_b(corpus, is10, lengths, seed: int) -> dict:
    y, labels = corpus.y, list(corpus.labels)
    crop = flaws.crop_level_svm(is10, y, lengths, labels, k=5, seed=seed)
    honest = flaws.utterance_svm(is10, y, folds(corpus, "kfold5", seed), labels, seed)
    return {
        "what": "IS10+SVM with 128-frame crops (hop 64), not utterances, dealt to stratified 5 folds",
        "config": {
            "crop_frames": 128,
            "hop": 64,
            "crop_folds": f"StratifiedKFold(5, shuffle=True, random_state={seed}) over crops",
            "svm": "eesr_lib.baselines.svm_scores (linear, C by inner 5-fold CV on the training part)",
            "honest_folds": f"eesr_lib.protocols.folds(corpus, 'kfold5', seed={seed}) (utterances)",
        },
        "results": {"crop_level_flawed": _r(crop), "utterance_level_honest": _r(honest)},
        "paper": {"wa": paper.EMODB_WA},
    }


def item_c(corpus, lengths, results_dir: Path) -> dict:
    labels = list(corpus.labels)
    counts = np.bincount(corpus.y, minlength=len(labels))
    crops = np.bincount(corpus.y, weights=flaws.crop_counts(lengths), minlength=len(labels)).astype(int)
    tables = {}
    for protocol, k in (("kfold5", 5), ("kfold10", 10)):
        table = paper.CONFUSION_PCT[("emodb", protocol)]
        if list(table["labels"]) != labels:
            raise RuntimeError("the paper's label order differs from the corpus's")
        res = flaws.explain_confusion(table["rows"], labels, counts.tolist(), k, crops.tolist())
        diag = np.diag(np.array(table["rows"]))
        res["wa_check"] = {
            "printed_wa": paper.EMODB_WA[protocol],
            "implied_wa_utterance_weights": round(flaws.implied_wa(diag, counts), 3),
            "implied_wa_crop_weights": round(flaws.implied_wa(diag, crops), 3),
            "ua_mean_of_diagonal": round(float(diag.mean()), 3),
        }
        tables[f"table_{table['table']}"] = {"protocol": protocol, **res}
    d_file = results_dir / FILES["d"]
    gaps = None
    if d_file.is_file():  # how far fold-averaged recalls move an implied WA, measured on real CV runs
        d = json.loads(d_file.read_text())
        gaps = {}
        for key, runs in d["results"].items():
            g = [r["wa_check"]["implied_wa"] - r["wa_check"]["pooled_wa"] for r in runs["runs"]]
            h = [r["wa_check"]["implied_wa"] - r["wa_check"]["fold_mean_wa"] for r in runs["runs"]]
            gaps[key] = {
                "implied_minus_pooled": _r([min(g), max(g)]),
                "implied_minus_fold_mean": _r([min(h), max(h)]),
            }
    return {
        "what": "the paper's EMODB confusion matrices (Tables 11, 12): which per-fold counts fit each entry",
        "config": {
            "hypotheses": flaws.HYPOTHESES,
            "class_counts_from": "the corpus (eesr_lib.corpora.load_emodb)",
            "crop_counts_from": "128-frame windows, hop 64 (eesr_lib.crops.window_starts), our spectrograms",
            "fit": "|value - printed| <= 0.005; exhaustive exact search (fractions)",
            "chance": "share of 2-decimal values within printed*(1 +- band) the hypothesis also fits",
            "random_fold_size_range": "hypergeometric 0.0005..0.9995 quantiles of a class's count in one fold",
        },
        "results": tables,
        "implied_wa_gap_range_in_real_cv_runs": gaps,
        "paper": {"wa": paper.EMODB_WA},
    }


def item_d(corpus, is10, seeds: list[int]) -> dict:
    y, labels = corpus.y, list(corpus.labels)
    out = {}
    for k in (5, 10):
        for scheme in ("random", "stratified"):
            runs = []
            for seed in seeds:
                fs = flaws.random_kfold(len(y), k, seed) if scheme == "random" else folds(corpus, f"kfold{k}", seed)
                r = flaws.utterance_svm(is10, y, fs, labels, seed)
                r["seed"] = seed
                cc = np.array(r["class_counts_per_fold"])
                r["class_count_range_per_class"] = {
                    lab: [int(cc[:, i].min()), int(cc[:, i].max())] for i, lab in enumerate(labels)
                }
                runs.append(r)
                print(f"  d {scheme} {k}-fold seed {seed}: WA {r['wa']:.1f} UA {r['ua']:.1f}")
            wa = np.array([r["wa"] for r in runs])
            ua = np.array([r["ua"] for r in runs])
            out[f"{scheme}_kfold{k}"] = {
                "wa": _r({"mean": wa.mean(), "sd": wa.std(ddof=1), "min": wa.min(), "max": wa.max()}),
                "ua": _r({"mean": ua.mean(), "sd": ua.std(ddof=1), "min": ua.min(), "max": ua.max()}),
                "runs": _r(runs),
            }
    return {
        "what": "IS10+SVM under random (KFold, shuffle) and stratified k-fold, several fold seeds",
        "config": {
            "random": "sklearn KFold(k, shuffle=True, random_state=seed)",
            "stratified": "eesr_lib.protocols.folds(corpus, 'kfold<k>', seed) (StratifiedKFold, shuffle)",
            "svm": "eesr_lib.baselines.svm_scores (inner CV seeded with the same seed)",
            "seeds": seeds,
            "wa_ua": "pooled over the folds of one run; mean/sd/min/max over seeds",
        },
        "results": out,
        "paper": {"wa": paper.EMODB_WA},
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--items", default="bdca", help="which items, in order (default bdca: d before c)")
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--seed", type=int, default=0, help="fold seed of items b")
    p.add_argument("--data-root", default=None)
    p.add_argument("--results", default=str(RESULTS_DIR))
    args = p.parse_args()
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    t_all = time.time()
    corpus = load_corpus("emodb", args.data_root)
    specs, is10 = corpus_features(corpus, progress=False)
    lengths = [s.shape[1] for s in specs]
    del specs
    results = Path(args.results)
    out_dir = flaws_dir(results, "emodb")
    out_dir.mkdir(parents=True, exist_ok=True)
    seeds = list(range(args.seeds))
    for item in args.items:
        t0 = time.time()
        print(f"item {item} ...")
        if item == "a":
            rec = item_a(corpus, is10, seeds, results)
        elif item == "b":
            rec = item_b(corpus, is10, lengths, args.seed)
        elif item == "c":
            rec = item_c(corpus, lengths, out_dir)
        elif item == "d":
            rec = item_d(corpus, is10, seeds)
        else:
            raise SystemExit(f"unknown item '{item}': use a, b, c, d")
        rec = {
            "item": item,
            "flaw": FLAW,
            **rec,
            "seed": args.seed if item == "b" else seeds,
            "provenance": {**provenance("cpu"), "wall_time_s": round(time.time() - t0, 1)},
        }
        write_json_atomic(rec, out_dir / FILES[item])
        summarize(item, rec)
    print(f"all items: {time.time() - t_all:.0f} s")


def summarize(item: str, rec: dict) -> None:
    """A few lines per item."""
    if item == "a":
        for protocol, r in rec["results"].items():
            w = r["wa"]
            print(
                f"a {protocol}: WA final epoch {w['final_epoch']['mean']:.1f} "
                f"± {w['final_epoch']['sd']:.1f} (honest) | "
                f"best common epoch {w['best_common_epoch']['mean']:.1f} | best epoch per fold "
                f"{w['best_epoch_per_fold']['mean']:.1f} | best seed per fold {w['best_seed_per_fold']['value']:.1f} | "
                f"best seed+epoch per fold {w['best_seed_and_epoch_per_fold']['value']:.1f} (flawed)"
            )
        print(f"a jump 10-fold minus 5-fold: {rec['jump_kfold10_minus_kfold5']} (paper {rec['paper']['jump']})")
    elif item == "b":
        c, h = rec["results"]["crop_level_flawed"], rec["results"]["utterance_level_honest"]
        print(
            f"b crop-level 5-fold WA {c['wa']:.1f} UA {c['ua']:.1f} (flawed; {c['leaked_share']:.0f}% of test crops "
            f"have a twin in training: WA {c['wa_leaked']:.1f} on those, {c['wa_unleaked']:.1f} on the rest) | "
            f"utterance-level WA {h['wa']:.1f} UA {h['ua']:.1f} (honest)"
        )
    elif item == "c":
        for name, t in rec["results"].items():
            s = ", ".join(
                f"{h} {v['explained']}/{v['of']} (chance {v['expected_by_chance']})" for h, v in t["summary"].items()
            )
            print(f"c {name} ({t['protocol']}): {s}; WA check {t['wa_check']}")
    elif item == "d":
        for key, r in rec["results"].items():
            print(
                f"d {key}: WA {r['wa']['mean']:.1f} ± {r['wa']['sd']:.1f} "
                f"[{r['wa']['min']:.1f}, {r['wa']['max']:.1f}], "
                f"UA {r['ua']['mean']:.1f} ± {r['ua']['sd']:.1f}"
            )


if __name__ == "__main__":
    main()
