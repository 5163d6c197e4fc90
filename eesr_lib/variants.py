"""What a run *is*: Table 4's variants, their model and training configurations, and the config record.

Every result file carries the record :func:`config_record` builds; two records that train the same
model compare equal under :func:`same_config`, and :func:`config_hash` names the checkpoint of a fold
being trained with it. Where the files live is :mod:`eesr_lib.results`; running a fold is
:mod:`eesr_lib.runner`.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, fields

from .errors import EESRError
from .features import SpectrogramParams
from .model import ModelConfig
from .train import TrainConfig

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

# Settings added after checkpoints were first named by a hash of the config, with their defaults: left out
# of the hash at those defaults, so that a fold interrupted before a setting existed resumed after it was
# added under the same checkpoint name. Changing this table renames every checkpoint.
_UNHASHED_AT_DEFAULT = {
    "model": {"aux_head": False},
    "train": {"crop_set": "random", "crop_hop": 64, "two_stage_epochs": 0, "is10_dropout": 0.0, "aux_loss": 0.0},
}
# Settings that do not change the numbers: a finished fold is reused whatever they were.
_NOT_COMPARED = {"train": ("eval_batch_size",)}
# Top-level keys a config holds only where they differ from what their absence means (config_record): a
# stored config without one is complete, never a file to migrate.
_RECORDED_WHEN_SET = ("fold_seed",)


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


def config_record(
    dataset: str,
    labels: list[str],
    protocol: str,
    variant: str,
    tag: str | None,
    seed: int,
    model_cfg: ModelConfig,
    train_cfg: TrainConfig,
    selection: bool,
    fold_seed: int | None = None,
) -> dict:
    """The ``config`` every fold record of a run carries: everything that decides its numbers.

    ``fold_seed`` (the seed that dealt the folds) is recorded only where it differs from ``seed``:
    until the two were separate, ``seed`` dealt the folds too, so a record without it means exactly
    that, and the records and checkpoint names of every run that keeps them equal stay as they were."""
    deal = {} if fold_seed is None or fold_seed == seed else {"fold_seed": fold_seed}
    return {
        "dataset": dataset,
        "protocol": protocol,
        "variant": variant,
        "tag": tag,
        "seed": seed,
        **deal,
        "labels": list(labels),
        "model": asdict(model_cfg),
        "train": asdict(train_cfg),
        "spectrogram": asdict(SpectrogramParams()),
        "selection": selection,
    }


def fold_seed_of(config: dict) -> int:
    """The seed that dealt a record's folds (see :func:`config_record`): ``fold_seed`` where recorded,
    else ``seed`` (0 in a config that has neither)."""
    return int(config.get("fold_seed", config.get("seed", 0)))


def config_hash(config: dict) -> str:
    """Short hash naming a fold's checkpoint: equal for configs that train the same model."""
    c = {**config}
    for part, defaults in _UNHASHED_AT_DEFAULT.items():
        if part in c:
            c[part] = {k: v for k, v in c[part].items() if not (k in defaults and v == defaults[k])}
    return hashlib.sha256(json.dumps(c, sort_keys=True).encode()).hexdigest()[:10]


def missing_settings(stored: dict, wanted: dict) -> list[str]:
    """The settings (``part.name``) that ``wanted`` has and the ``stored`` config lacks: a file written
    before they existed, which ``scripts/migrate_results.py`` completes with the values it ran with."""
    out = [k for k in wanted if k not in stored and k not in _RECORDED_WHEN_SET]
    for part, values in wanted.items():
        if isinstance(values, dict) and isinstance(stored.get(part), dict):
            out += [f"{part}.{k}" for k in values if k not in stored[part]]
    return out


def same_config(a: dict, b: dict) -> bool:
    """Configs match if everything that changes the numbers matches (the eval batch size does not)."""

    def compared(c: dict) -> dict:
        return {**c, **{p: {k: v for k, v in c[p].items() if k not in ks} for p, ks in _NOT_COMPARED.items()}}

    return json.dumps(compared(a), sort_keys=True) == json.dumps(compared(b), sort_keys=True)
