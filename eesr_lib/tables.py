"""The tables the result chapters print, built from fold records in one place.

Chapter 4 shows, for every (protocol, variant) of a corpus: whether it has run, the usual-bug
audit, WA and UA (mean ± std over folds, and pooled over the test utterances with a 95 % interval
from resampling speakers, macro-F1 beside UA), Table 4 and Table 14 next to the paper's, and the
paired comparisons with the proposed model. :class:`Shown` gathers the records once; every
function here takes it and returns a table or a line of Markdown, so a chapter's cell is a call
and the wording of a number lives here, next to how it is computed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd

from . import paper
from .audit import CHECKS, audit
from .corpora import Corpus
from .experiments import VARIANT_NAMES as NAMES
from .experiments import Experiments
from .metrics import mean_std
from .plan import ABLATIONS, BASELINES, runs_for
from .plan import status as plan_status
from .report import paired_gap, pooled_intervals, pooled_metrics
from .results import load_folds, variant_folder
from .stats import compare_runs, retraining_noise

N_BOOT = 2000  # bootstrap resamples of every interval the book prints
PROPOSED = "ae+ee+in"
RERUN_TAG = "gpu-rerun"  # the second training of AE+EE,IN, unchanged, that measures training noise


def signed(x: float) -> str:
    """ "+1.2", "-0.4", and "0.0" rather than "-0.0" for a value that rounds to zero."""
    return "0.0" if round(x, 1) == 0 else f"{x:+.1f}"


def with_interval(value: float, lo: float, hi: float) -> str:
    """A score and its 95 % interval as the book prints them: ``71.2 [65.0, 76.9]``; the score alone
    where there is no interval (one speaker's utterances, :func:`eesr_lib.stats.bootstrap_scores`)."""
    return f"{value:.1f}" if np.isnan(lo) else f"{value:.1f} [{lo:.1f}, {hi:.1f}]"


def interval_note(scores: dict) -> str:
    """What the brackets of :func:`pooled_scores`' numbers are, for the sentence that prints them."""
    if np.isnan(scores["UA"][1]):
        return "one speaker's utterances: resampling speakers gives no interval"
    return f"95 % intervals from resampling {scores['resampled']}"


def mean_pm(value: tuple | None) -> str:
    """``mean ± std`` of a (mean, std, ...) cell, or "not run yet"."""
    return "not run yet" if value is None else f"{value[0]:.1f} ± {value[1]:.1f}"


def pooled_scores(records: list[dict], speakers: pd.Series | None, n_boot: int = N_BOOT) -> dict:
    """Pooled WA, UA, macro-F1 with their intervals (:func:`eesr_lib.report.pooled_intervals`),
    as ``{"WA": (value, lo, hi), "UA": ..., "F1": ...}``."""
    r = pooled_intervals(records, speakers, n_boot)
    return {
        "WA": (r["WA_pooled"], r["WA_lo"], r["WA_hi"]),
        "UA": (r["UA_pooled"], r["UA_lo"], r["UA_hi"]),
        "F1": (r["F1"], r["F1_lo"], r["F1_hi"]),
        "resampled": r["resampled"],
    }


@dataclass
class Shown:
    """The experiments a result chapter shows: fold records and status of every (protocol, variant).

    ``status`` is what :func:`eesr_lib.experiments.experiment` says ("k/n folds", "not run yet",
    ...), or "not in the plan" for a missing run the replication's list (``eesr_lib.plan``) does
    not contain. Built with :meth:`collect`."""

    corpus: Corpus
    protocols: list[str]
    variants: list[str]
    records: dict[tuple[str, str], list[dict]]
    status: dict[tuple[str, str], str]
    tag: str | None = None
    seed: int = 0
    n_boot: int = N_BOOT
    _scores: dict = field(default_factory=dict, repr=False)

    @classmethod
    def collect(
        cls, experiments: Experiments, protocols: Sequence[str] | None = None, variants: Sequence[str] | None = None
    ) -> Shown:
        """Run (or read) every experiment the chapter shows; ``None``: the profile's protocols / variants."""
        protocols = list(protocols or experiments.protocols)
        variants = list(variants or experiments.variants)
        records, status = {}, {}
        for protocol in protocols:
            for variant in variants:
                records[protocol, variant], status[protocol, variant] = experiments.run(protocol, variant)
        planned = set(runs_for(experiments.corpus))
        for key, s in status.items():
            if s == "not run yet" and key not in planned and experiments.tag is None:
                status[key] = "not in the plan"
        return cls(experiments.corpus, protocols, variants, records, status, experiments.tag, experiments.seed)

    @property
    def order(self) -> list[str]:
        """The variants shown, in Table 4's order, IS10+MLP last."""
        return [v for v in [*paper.VARIANT_NAMES, "is10+mlp"] if v in self.variants]

    @cached_property
    def speakers(self) -> pd.Series:
        """Utterance id -> speaker: the clusters every interval resamples."""
        return self.corpus.table.set_index("id")["speaker"]

    @cached_property
    def ablated(self) -> list[str]:
        """The protocols under which the replication's list rebuilds Table 4 on this corpus."""
        return sorted({p for p, v in runs_for(self.corpus) if v in ABLATIONS})

    def runs(self, protocol: str, variant: str) -> list[dict]:
        """The finished folds of one experiment (empty if none)."""
        return self.records.get((protocol, variant)) or []

    def cell(self, protocol: str, variant: str, metric: str) -> tuple[float, float, float] | None:
        """(mean, std over folds, pooled) of ``metric`` ("WA" or "UA") of one experiment, or None."""
        recs = self.runs(protocol, variant)
        if not recs:
            return None
        values = mean_std([r["metrics"][metric.lower()] for r in recs])
        return values[0], values[1], pooled_metrics(recs)[metric.lower()]

    def scores(self, protocol: str, variant: str) -> dict | None:
        """:func:`pooled_scores` of one experiment (computed once), or None."""
        recs = self.runs(protocol, variant)
        if not recs:
            return None
        if (protocol, variant) not in self._scores:
            self._scores[protocol, variant] = pooled_scores(recs, self.speakers, self.n_boot)
        return self._scores[protocol, variant]

    def fold_gap(self, protocol: str, a: str, b: str) -> tuple[float, int] | None:
        """(a − b) in UA points over the folds both have, with the fold count, or None."""
        ra, rb = self.runs(protocol, a), self.runs(protocol, b)
        return paired_gap(ra, rb) if ra and rb else None

    def folds_note(self, protocol: str, variant: str, n: int) -> str:
        """ " (k of n folds so far)" while an experiment is unfinished, else ""."""
        total = max(r["n_folds"] for r in self.runs(protocol, variant))
        return "" if n == total else f" ({n} of {total} folds so far)"

    @cached_property
    def comparisons(self) -> pd.DataFrame:
        """AE+EE,IN against every other variant shown, per protocol: :func:`eesr_lib.stats.compare_runs`."""
        rows = []
        for protocol in self.protocols:
            proposed = self.runs(protocol, PROPOSED)
            for variant in self.order:
                other = self.runs(protocol, variant)
                if variant == PROPOSED or not proposed or not other:
                    continue
                r = compare_runs(proposed, other, self.speakers, n_boot=self.n_boot, seed=self.seed)
                rows.append({"protocol": protocol, "vs": NAMES[variant], **r})
        return pd.DataFrame(rows)

    def comparison(self, protocol: str, variant: str) -> pd.Series | None:
        """This pair's row of :attr:`comparisons`, or None."""
        t = self.comparisons
        if t.empty:
            return None
        row = t[(t.protocol == protocol) & (t.vs == NAMES[variant])]
        return None if row.empty else row.iloc[0]


def finished_runs(
    corpus: Corpus,
    results_dir: str | Path,
    protocols: Sequence[str],
    variants: Sequence[str],
    tag: str | None = None,
) -> Shown:
    """The experiments of ``corpus`` that have all their folds, read from ``results_dir`` (nothing
    trains), as a :class:`Shown`; an unfinished one is left out and its status says how far it got.

    ``tag``: the network rows' runs under that tag, e.g. ``plan.BUDGET_TAG``, trained at a longer
    budget. The IS10 baselines are always read untagged: the SVM has no training budget, and IS10+MLP's
    training loss is near zero by the paper's 40th epoch. Why whole runs only: a verdict read from some
    folds of a pair would change with every fold that lands."""
    records, status = {}, {}
    for p in protocols:
        for v in variants:
            folder = variant_folder(v, None if v in BASELINES else tag)
            recs = load_folds(results_dir, corpus.name, p, folder)
            whole = bool(recs) and len(recs) == recs[0]["n_folds"]
            records[p, v] = recs if whole else []
            status[p, v] = f"{len(recs)}/{recs[0]['n_folds']} folds" if recs else "not run yet"
    return Shown(corpus, list(protocols), list(variants), records, status, tag)


def status_table(shown: Shown) -> pd.DataFrame:
    """Variants x protocols: how many folds of each experiment are there."""
    return pd.DataFrame(
        {p: [shown.status[p, v] for v in shown.variants] for p in shown.protocols},
        index=pd.Index([NAMES.get(v, v) for v in shown.variants], name="variant"),
    )


def missing_markdown(shown: Shown, experiments: Experiments) -> list[str]:
    """One paragraph per kind of missing experiment, each with the commands that compute them."""
    ablated = shown.ablated
    intros = {
        "not run yet": "**Not run yet: {n} experiment(s).**",
        "not in the plan": "**Outside the replication's list: {n} experiment(s)** (`eesr_lib/plan.py` "
        + (
            "rebuilds Table 4 on this corpus under " + ", ".join(ablated) + " only"
            if ablated
            else "does not rebuild Table 4 on this corpus"
        )
        + "; these would extend it).",
    }
    out = []
    for label, intro in intros.items():
        missing = [(p, v) for (p, v), s in shown.status.items() if not shown.records[p, v] and s == label]
        if missing:
            commands = "\n".join(experiments.command(p, v) for p, v in missing)
            out.append(
                intro.format(n=len(missing))
                + " Each is one command (resumable; finished folds are skipped):"
                + f"\n\n```bash\n{commands}\n```"
            )
    return out


def plan_markdown(corpus: Corpus, results_dir: str, dataset: str, seed: int = 0) -> str:
    """What is left of the replication's list (``eesr_lib.plan``), as ``eesr replicate`` counts it."""
    left = plan_status(corpus, results_dir, seed)
    left = left[left.done < left.folds]
    if left.empty:
        return "**Every run of the replication's list** (`eesr_lib/plan.py`) **is finished.**"
    return (
        f"**The replication's list** (`eesr_lib/plan.py`) has {len(left)} run(s) "
        f"with folds left, about {left.hours_left_est.sum():.0f} worker-hours at the pace of the folds "
        f"finished so far. All of them, each fold a Ray task on this machine's cores "
        f"(or a cluster's, `--address`): `eesr replicate --dataset {dataset} --run`."
    )


def audit_tables(shown: Shown) -> tuple[pd.DataFrame | None, str]:
    """:func:`eesr_lib.audit.audit` of every finished experiment shown: (table, verdict in Markdown)."""
    checks = audit({key: recs for key, recs in shown.records.items() if recs}, shown.corpus)
    if checks.empty:
        return None, "*No finished fold to check yet.*"
    failed = [
        f"{r.protocol} / {r.variant}: {c}"
        for r in checks.itertuples(index=False)
        for c, ok in zip(CHECKS, r[3:])
        if not ok
    ]
    table = checks.replace({True: "✓", False: "✗ FAILED"}).set_index(["protocol", "variant"])
    verdict = (
        f"**{len(failed)} check(s) failed:** " + "; ".join(failed)
        if failed
        else f"All {len(CHECKS)} checks pass on all {int(checks.folds.sum())} folds shown here."
    )
    return table, verdict


def scores_table(shown: Shown, protocol: str) -> pd.DataFrame | None:
    """WA and UA of every variant run under ``protocol``: mean ± std over folds, and pooled over
    the test utterances with 95 % speaker-resampled intervals, macro-F1 beside UA; None if none ran."""
    rows = {}
    for v in shown.order:
        recs = shown.runs(protocol, v)
        if not recs:
            continue
        s, wa, ua = shown.scores(protocol, v), shown.cell(protocol, v, "WA"), shown.cell(protocol, v, "UA")
        is_baseline = v.startswith("is10+svm")
        rows[NAMES.get(v, v)] = {
            "folds": f"{len(recs)}/{recs[0]['n_folds']}",
            "epochs": "—" if is_baseline else recs[0]["config"]["train"]["epochs"],
            "WA mean ± std": mean_pm(wa),
            "UA mean ± std": mean_pm(ua),
            "WA pooled [95 %]": with_interval(*s["WA"]),
            "UA pooled [95 %]": with_interval(*s["UA"]),
            "macro-F1 pooled [95 %]": with_interval(*s["F1"]),
            "train time (min)": round(sum(r["provenance"]["wall_time_s"] for r in recs) / 60, 1),
            "device": recs[0]["provenance"]["hardware"]["device"],
        }
    if not rows:
        return None
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("variant")


def table4(shown: Shown) -> pd.DataFrame:
    """Table 4 rebuilt: our UA per protocol (mean ± std over folds; pooled with its 95 % interval),
    the paper's IEMOCAP UA beside it (and our difference to it on IEMOCAP or a corpus standing in for it,
    :data:`eesr_lib.paper.STAND_INS`)."""
    order = shown.order
    t4 = pd.DataFrame(index=pd.Index([NAMES[v] for v in order], name="variant"))
    for protocol in shown.protocols:
        name = f"{shown.corpus.name} {protocol}"
        t4[f"ours UA, {name}"] = [
            "not in the plan"
            if shown.status.get((protocol, v)) == "not in the plan"
            else mean_pm(shown.cell(protocol, v, "UA"))
            for v in order
        ]
        t4[f"ours UA pooled [95 %], {name}"] = [
            with_interval(*shown.scores(protocol, v)["UA"]) if shown.runs(protocol, v) else "—" for v in order
        ]
    for protocol, setting in (("kfold10", "10-fold"), ("loso-speaker", "LOSO")):
        ref = [paper.TABLE4_UA_IEMOCAP.get(v, {}).get(protocol) for v in order]
        t4[f"paper UA, IEMOCAP {setting}"] = ref
        if paper.reference_corpus(shown.corpus.name) == "iemocap" and protocol in shown.protocols:
            ours = [shown.cell(protocol, v, "UA") for v in order]  # IEMOCAP or a stand-in: values comparable
            t4[f"ours − paper, {setting}"] = [
                None if o is None or r is None else round(o[0] - r, 2) for o, r in zip(ours, ref)
            ]
    return t4.astype(object).where(t4.notna(), "—")


def gap_table(shown: Shown) -> pd.DataFrame:
    """Every variant's fold-paired UA gap to AE+EE,IN, ours per protocol and the paper's."""

    def gap_text(protocol, variant):
        gap = shown.fold_gap(protocol, variant, PROPOSED)
        if gap is None:
            return None
        total = max(r["n_folds"] for r in shown.runs(protocol, PROPOSED))
        return f"{gap[0]:+.1f}" + ("" if gap[1] == total else f" ({gap[1]}/{total} folds)")

    order = shown.order
    gaps = pd.DataFrame(index=pd.Index([NAMES[v] for v in order], name="variant"))
    for protocol in shown.protocols:
        gaps[f"ours, {protocol}"] = [gap_text(protocol, v) for v in order]
    for protocol, setting in (("kfold10", "10-fold"), ("loso-speaker", "LOSO")):
        best = paper.TABLE4_UA_IEMOCAP[PROPOSED][protocol]
        gaps[f"paper, IEMOCAP {setting}"] = [
            None
            if paper.TABLE4_UA_IEMOCAP.get(v, {}).get(protocol) is None
            else round(paper.TABLE4_UA_IEMOCAP[v][protocol] - best, 2)
            for v in order
        ]
    return gaps.astype(object).where(gaps.notna(), "—")


def table14(shown: Shown) -> pd.DataFrame:
    """Table 14 rebuilt: our WA of the proposed model and the IS10 baselines beside the paper's."""
    rows = []
    for protocol, paper_wa in paper.EMODB_WA.items():
        if protocol not in shown.protocols:
            continue
        for variant in (PROPOSED, "is10+svm", "is10+mlp"):
            if variant not in shown.variants:
                continue
            wa, s = shown.cell(protocol, variant, "WA"), shown.scores(protocol, variant)
            rows.append(
                {
                    "validation setting": paper.SETTING_NAMES[protocol],
                    "method": NAMES[variant],
                    "folds": shown.status[protocol, variant],
                    "paper WA": paper_wa if variant == PROPOSED else None,
                    "ours WA mean ± std": mean_pm(wa),
                    "ours WA pooled [95 %]": None if s is None else with_interval(*s["WA"]),
                    "ours − paper": None if wa is None or variant != PROPOSED else round(wa[0] - paper_wa, 2),
                }
            )
    return pd.DataFrame(rows).set_index(["validation setting", "method"]).astype(object).fillna("—")


def comparison_table(shown: Shown) -> pd.DataFrame:
    """:attr:`Shown.comparisons` as printed: gap, its speaker-resampled interval, McNemar, agreement."""
    t = shown.comparisons
    return t.assign(
        **{
            "UA gap": t.gap.map(signed),
            "95% interval (speakers resampled)": [f"{signed(lo)} to {signed(hi)}" for lo, hi in zip(t.lo, t.hi)],
            "only AE+EE,IN right / only other right": [f"{a} / {b}" for a, b in zip(t.only_a, t.only_b)],
            "McNemar p": t.p.map("{:.3f}".format),
            "same answer, %": t.agree_pct.map("{:.1f}".format),
        }
    )[
        [
            "protocol",
            "vs",
            "n",
            "UA gap",
            "95% interval (speakers resampled)",
            "only AE+EE,IN right / only other right",
            "McNemar p",
            "same answer, %",
        ]
    ].set_index(["protocol", "vs"])


def agreement_markdown(shown: Shown) -> str | None:
    """How often AE+EE,IN and IS10+SVM give the same answer, per protocol; None without the pair."""
    t = shown.comparisons
    svm = t[t.vs == NAMES["is10+svm"]] if not t.empty else t
    if svm.empty:
        return None
    text = "AE+EE,IN and IS10+SVM give the same answer on " + ", ".join(
        f"{a:.0f}% ({p})" for a, p in zip(svm.agree_pct, svm.protocol)
    )
    if svm.agree_pct.min() >= 80:
        return text + (
            " of the utterances: however differently they are built, on this corpus the "
            "proposed model and the baseline it feeds on mostly make the same decisions."
        )
    return text + " of the utterances."


def rerun_noise(shown: Shown, results_dir: str, rerun_tag: str | None) -> tuple[dict, dict]:
    """({protocol: :func:`eesr_lib.stats.retraining_noise`}, {protocol: the second run's folds}) for
    every protocol where AE+EE,IN was trained a second time under ``rerun_tag``."""
    noise, reruns = {}, {}
    for protocol in shown.protocols:
        first = shown.runs(protocol, PROPOSED)
        again = (
            load_folds(results_dir, shown.corpus.name, protocol, variant_folder(PROPOSED, rerun_tag))
            if rerun_tag
            else []
        )
        r = retraining_noise(first, again) if first and again else None
        if r is not None:
            noise[protocol], reruns[protocol] = r, again
    return noise, reruns


def rerun_table(shown: Shown, noise: dict, reruns: dict) -> pd.DataFrame:
    """The two trainings of AE+EE,IN side by side, per protocol, with the spread of their difference."""

    def device_of(recs):
        hardware = [r["provenance"]["hardware"] for r in recs]
        return ", ".join(sorted({h.get("gpu", h["device"]) for h in hardware}))

    return pd.DataFrame(
        [
            {
                "protocol": p,
                "folds": len(r["folds"]),
                "first run": device_of(shown.runs(p, PROPOSED)),
                "second run": device_of(reruns[p]),
                "UA first": f"{np.mean(r['first']):.1f}",
                "UA second": f"{np.mean(r['again']):.1f}",
                "paired gap": signed(r["gap"]),
                "mean |Δ| per fold": f"{r['mean_abs']:.1f}",
                "max |Δ| per fold": f"{r['max_abs']:.1f}",
                "sd of a paired gap": f"{r['gap_sd']:.1f}",
            }
            for p, r in noise.items()
        ]
    ).set_index("protocol")


def per_class_table(records: list[dict], key: tuple[str, str]) -> tuple[pd.DataFrame, dict]:
    """Precision, recall and F1 per class, pooled and averaged over folds, next to the paper's table
    for ``key`` = (dataset, protocol) where it has one; and the pooled metrics."""
    pooled = pooled_metrics(records)
    labels = records[0]["labels"]
    parts = (("precision", "P"), ("recall", "R"), ("f1", "F1"))
    cols = {("ours, pooled", short): [pooled[m][lab] for lab in labels] for m, short in parts}
    for m, short in parts:
        cols[("ours, mean over folds", short)] = [np.mean([r["metrics"][m][lab] for r in records]) for lab in labels]
    ref = paper.PER_CLASS.get(key)
    if ref:
        for m, short in parts:
            cols[(f"paper, Table {ref['table']}", short)] = [ref[m].get(lab, np.nan) for lab in labels]
    cols[("", "support")] = [pooled["support"][lab] for lab in labels]
    out = pd.DataFrame(cols, index=pd.Index(labels, name="emotion"))
    out.columns = pd.MultiIndex.from_tuples(out.columns)
    return out, pooled


def most_confused(pooled: dict, labels: Sequence[str]) -> str:
    """The best and worst recalled class and the most frequent confusion, in one Markdown line."""
    worst = min(labels, key=lambda lab: pooled["recall"][lab])
    best = max(labels, key=lambda lab: pooled["recall"][lab])
    confusion = np.asarray(pooled["confusion"])
    pairs = [divmod(int(i), len(labels)) for i in np.argsort(confusion, axis=None)[::-1]]
    pair = next(((a, b) for a, b in pairs if a != b and confusion[a][b] > 0), None)
    confused = (
        f"most frequent confusion: {labels[pair[0]]} taken for {labels[pair[1]]} "
        f"({pooled['confusion'][pair[0]][pair[1]]} utterances)."
        if pair
        else "no confusions at all."
    )
    return (
        f"Highest recall here: **{best}** ({pooled['recall'][best]:.1f} %); lowest: **{worst}** "
        f"({pooled['recall'][worst]:.1f} %); " + confused
    )


# What "an epoch" can mean (chapter 8): (name, TrainConfig settings), today's reading first.
EPOCH_READINGS = (
    ("random, 1 crop per utterance (today)", {}),
    ("random, 4 crops per utterance", {"crops_per_epoch": 4}),
    ("fixed, 8 crops per utterance", {"crop_set": "fixed", "crops_per_epoch": 8}),
    ("windows, hop 64", {"crop_set": "windows", "crop_hop": 64}),
    ("windows, hop 16", {"crop_set": "windows", "crop_hop": 16}),
    ("windows, hop 1 (every start frame)", {"crop_set": "windows", "crop_hop": 1}),
)


def epoch_table(lengths: np.ndarray, batch_size: int = 32) -> pd.DataFrame:
    """For training utterances of ``lengths`` frames: crops and optimizer steps in one epoch under each
    reading of :data:`EPOCH_READINGS`, and how many times today's budget 40 such epochs are."""
    from .train import TrainConfig, crops_per_epoch

    today = crops_per_epoch(lengths, TrainConfig())
    rows = []
    for name, settings in EPOCH_READINGS:
        n = crops_per_epoch(lengths, TrainConfig(**settings))
        rows.append(
            {
                "what an epoch is": name,
                "crops per epoch": n,
                f"steps per epoch (batch {batch_size})": -(-n // batch_size),
                "40 epochs = x today": n / today,
            }
        )
    return pd.DataFrame(rows)
