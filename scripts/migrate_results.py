"""Complete the configs of result files written before a setting existed, once.

    python scripts/migrate_results.py [RESULTS_DIR] [--dry-run]

Why: every fold record carries the configuration it was computed with, and a rerun reuses a finished
fold only if its configuration is the one asked for (eesr_lib.results.read_fold). A setting added to
ModelConfig or TrainConfig after a file was written is missing from that file's config; rather than
every reader patching such files with the value the code had before the setting existed, this script
writes that value into the file, once, and readers refuse a config that still lacks a setting.

It is idempotent: a file whose config has every setting is left as it is (not even rewritten). A run
folder that holds a ``fold_<k>.lock`` is skipped, since a process may be computing there right now (its
files would be replaced under it); run the script again once that process has stopped (a lock left by a
process that died stays behind too: delete it first). Migrating leaves every config's hash, and so the
name of any checkpoint, as the code computes it for that run today (eesr_lib.variants.config_hash).
"""

from __future__ import annotations

import argparse
import json
from dataclasses import fields
from pathlib import Path

from eesr_lib.model import ModelConfig
from eesr_lib.results import RESULTS_DIR, fold_files, lock_files, run_dirs, write_json_atomic
from eesr_lib.train import TrainConfig

# Settings added after results were first written, with the value that reproduces what the code did before
# they existed: a stored config that lacks one of them ran with that value.
# bn_stats: every network result written before it existed is an IN model, on which it has no effect; the
# BN-row results computed without it (AE-OS, EMODB 5-fold) were deleted and recomputed.
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
_SETTINGS = {"model": [f.name for f in fields(ModelConfig)], "train": [f.name for f in fields(TrainConfig)]}


def completed(config: dict, where: Path) -> tuple[dict, list[str]]:
    """``config`` with every setting it lacks set to the value it ran with (in the order today's records
    list them), and the names added; a missing setting with no known old value is an error."""
    out, added = dict(config), []
    for part, names in _SETTINGS.items():
        stored = config[part]
        lacking = [n for n in names if n not in stored]
        unknown = [n for n in lacking if n not in ADDED_LATER[part]]
        if unknown:
            raise SystemExit(f"{where}: {part} lacks {unknown}, whose value before they existed is not in ADDED_LATER")
        if lacking:
            out[part] = {n: stored[n] if n in stored else ADDED_LATER[part][n] for n in names}
            out[part].update({k: v for k, v in stored.items() if k not in out[part]})
            added += [f"{part}.{n}" for n in lacking]
    return out, added


def migrate(results_dir: str | Path, dry_run: bool = False) -> dict[str, list]:
    """Complete every fold record under ``results_dir`` that needs it; returns what was done, by path:
    ``migrated`` (file, settings added), ``skipped`` (folder, its locks) and ``complete`` (files)."""
    done: dict[str, list] = {"migrated": [], "skipped": [], "complete": []}
    for folder in run_dirs(results_dir):
        locks = lock_files(folder)
        if locks:
            done["skipped"].append((folder, locks))
            continue
        for path in fold_files(folder):
            rec = json.loads(path.read_text())
            new, added = completed(rec["config"], path)
            if not added:
                done["complete"].append(path)
                continue
            if not dry_run:
                write_json_atomic({**rec, "config": new}, path)
            done["migrated"].append((path, added))
    return done


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("results", nargs="?", default=str(RESULTS_DIR), help="results folder (default: results/)")
    p.add_argument("--dry-run", action="store_true", help="say what would change, write nothing")
    args = p.parse_args(argv)
    done = migrate(args.results, args.dry_run)
    verb = "would complete" if args.dry_run else "completed"
    by_folder: dict[Path, list] = {}
    for path, added in done["migrated"]:
        by_folder.setdefault(path.parent, []).append(added)
    for folder, files in by_folder.items():
        settings = sorted({s for added in files for s in added})
        print(f"{folder}: {verb} {len(files)} file(s), adding {', '.join(settings)}")
    for folder, locks in done["skipped"]:
        names = ", ".join(lock.name for lock in locks)
        print(f"{folder}: SKIPPED, it holds {names} (a run may be computing there): run this again once it stopped")
    print(
        f"{len(done['migrated'])} file(s) {verb} in {len(by_folder)} folder(s); {len(done['complete'])} already "
        f"complete; {len(done['skipped'])} folder(s) skipped for their locks"
    )


if __name__ == "__main__":
    main()
