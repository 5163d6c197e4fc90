"""The book's opening figure: every claim of the paper that EMODB can test, against ours, with intervals.

Left panel, Table 14: the paper's EMODB WA beside our pooled WA of the proposed model, with a 95 %
interval from resampling speakers. Right panel, Table 4: the paper's UA gap for each ingredient
(its IEMOCAP numbers: the only ones it gives) beside our fold-paired gap on EMODB, with the 95 %
speaker-resampled interval of the pooled gap. Drawn from result files at build time
(scripts/build_book.py); a claim whose runs are missing is left out, never filled in.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from . import paper
from .report import load_folds, pooled_intervals
from .stats import compare_runs

# (label, with, without): the Table 4 comparisons drawn, each a pair that differs by one ingredient
GAPS = [
    ("AE+EE,IN − IS10+SVM", "ae+ee+in", "is10+svm"),
    ("emotion embedding: AE+EE − AE", "ae+ee", "ae"),
    ("instance norm: AE+IN − AE", "ae+in", "ae"),
    ("IS10: AE − AE-OS", "ae", "ae-os"),
    ("EE and IN, spectrogram only: AE-OS,+EE,IN − AE-OS", "ae-os+ee+in", "ae-os"),
]
PROTOCOLS = {"kfold5": "stratified 5-fold", "kfold10": "stratified 10-fold", "loso-speaker": "leave one speaker out"}
PAPER_PROTOCOL = {
    "kfold5": "kfold10",
    "kfold10": "kfold10",
    "loso-speaker": "loso-speaker",
}  # its Table 4 has no 5-fold


def claim_rows(results_dir: str | Path, dataset: str, speakers: pd.Series, n_boot: int = 2000) -> pd.DataFrame:
    """One row per claim that finished runs can test: panel, label, protocol, ours, lo, hi, paper."""
    runs = {}
    for rec in load_folds(results_dir, dataset):
        c = rec["config"]
        if c.get("tag") or c.get("selection"):
            continue
        runs.setdefault((c["protocol"], c["variant"]), []).append(rec)

    def complete(protocol, variant):
        recs = runs.get((protocol, variant), [])
        return recs if recs and len(recs) == recs[0]["n_folds"] else None

    rows = []
    for protocol, paper_wa in paper.EMODB_WA.items():
        recs = complete(protocol, "ae+ee+in")
        if recs is None:
            continue
        b = pooled_intervals(recs, speakers, n_boot)
        rows.append(
            {"panel": "wa", "label": "WA of AE+EE,IN", "protocol": protocol, "ours": b["WA_pooled"], "lo": b["WA_lo"]}
            | {"hi": b["WA_hi"], "paper": paper_wa}
        )
    for protocol in PROTOCOLS:
        for label, a, b in GAPS:
            ra, rb = complete(protocol, a), complete(protocol, b)
            if ra is None or rb is None:
                continue
            c = compare_runs(ra, rb, speakers, n_boot=n_boot)
            table4 = paper.TABLE4_UA_IEMOCAP
            ref_protocol = PAPER_PROTOCOL[protocol]
            ref = (
                table4[a][ref_protocol] - table4[b][ref_protocol]
                if table4[a][ref_protocol] is not None and table4[b][ref_protocol] is not None
                else np.nan
            )
            rows.append(
                {"panel": "gap", "label": label, "protocol": protocol, "ours": c["gap"], "lo": c["lo"], "hi": c["hi"]}
                | {"paper": ref}
            )
    return pd.DataFrame(rows)


def claims_figure(rows: pd.DataFrame) -> plt.Figure:
    """Two stacked panels (Table 14 WA, Table 4 UA gaps): ours as a dot with its 95 % interval, the paper's as ×."""
    wa, gaps = rows[rows.panel == "wa"], rows[rows.panel == "gap"]
    titles = {
        "wa": "Table 14: WA of the proposed model on EMODB",
        "gap": "Table 4: UA gaps (ours: EMODB; the paper: IEMOCAP)",
    }
    parts = [(p, titles[k], x) for p, k, x in ((wa, "wa", "WA (%)"), (gaps, "gap", "UA gap (points)")) if not p.empty]
    fig, axes = plt.subplots(
        len(parts),
        1,
        figsize=(9, 1.6 + 0.3 * len(rows)),
        height_ratios=[len(p) + 1 for p, _, _ in parts],
        squeeze=False,
    )
    colors = {"kfold5": "tab:blue", "kfold10": "tab:purple", "loso-speaker": "tab:orange"}
    for ax, (part, title, xlabel) in zip(axes[:, 0], parts):
        y = np.arange(len(part))[::-1]
        for yi, r in zip(y, part.itertuples()):
            err = [[r.ours - r.lo], [r.hi - r.ours]]
            ax.errorbar(r.ours, yi, xerr=err, fmt="o", color=colors[r.protocol], capsize=3)
            if not np.isnan(r.paper):
                ax.plot(r.paper, yi, "x", color="k", ms=8, mew=2)
        ax.set_yticks(y, [f"{r.label} [{PROTOCOLS[r.protocol]}]" for r in part.itertuples()], fontsize=8)
        ax.set_ylim(-0.7, len(part) - 0.3)
        ax.set_xlabel(xlabel, fontsize=9)
        ax.set_title(title, fontsize=10, loc="left")
        if part is gaps:
            ax.axvline(0, color="grey", lw=1)
    handles = [plt.Line2D([], [], marker="o", ls="", color=c, label=f"ours, {PROTOCOLS[p]}") for p, c in colors.items()]
    handles.append(plt.Line2D([], [], marker="x", ls="", color="k", mew=2, label="the paper"))
    fig.legend(handles=handles, loc="lower center", ncol=4, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    return fig


def write_claims_figure(results_dir: str | Path, dataset: str, speakers: pd.Series, out: str | Path) -> Path | None:
    """Draw :func:`claims_figure` from the results into ``out`` (PNG); None when no claim can be drawn."""
    rows = claim_rows(results_dir, dataset, speakers)
    if rows.empty:
        return None
    fig = claims_figure(rows)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


# The result chapters' figures. Each takes the tables of eesr_lib.tables and returns the figure;
# the chapter shows it (plt.show()), so a page holds only the call.


def fold_spread(shown, protocol: str, paper_wa: float | None = None) -> plt.Figure | None:
    """WA and UA of every fold of every variant run under ``protocol``: one dot per fold over a box
    of the quartiles (seaborn), the paper's Table 14 WA as a dashed line where given; None if none ran."""
    import seaborn as sns

    from .experiments import VARIANT_NAMES

    present = [v for v in shown.order if shown.runs(protocol, v)]
    if not present:
        return None
    names = {v: VARIANT_NAMES[v].replace(" (proposed)", "") for v in present}
    folds = pd.DataFrame(
        [
            {"variant": names[v], "metric": m.upper(), "score": r["metrics"][m]}
            for v in present
            for r in shown.runs(protocol, v)
            for m in ("wa", "ua")
        ]
    )
    fig, axes = plt.subplots(1, 2, figsize=(12, 3.8), sharey=True, layout="constrained")
    for ax, metric in zip(axes, ("WA", "UA")):
        part = folds[folds.metric == metric]
        with warnings.catch_warnings():  # seaborn 0.13.2 passes boxplot's `vert`, deprecated in matplotlib 3.11
            warnings.simplefilter("ignore", DeprecationWarning)
            sns.boxplot(part, x="variant", y="score", ax=ax, width=0.5, showfliers=False, color="white")
        sns.stripplot(part, x="variant", y="score", ax=ax, hue="variant", size=5, alpha=0.8, jitter=0.13, legend=False)
        if metric == "WA" and paper_wa is not None:
            ax.axhline(paper_wa, color="gray", linestyle="--", label="paper, AE+EE,IN (Table 14)")
            ax.legend(loc="lower left", fontsize=8)
        ax.tick_params(axis="x", labelrotation=30)
        ax.set(title=f"{metric} per fold", xlabel="", ylabel="%")
        ax.grid(axis="y", alpha=0.3)
    n = max(len(shown.runs(protocol, v)) for v in present)
    fig.suptitle(f"{shown.corpus.name}, {protocol}: {n} fold(s) per variant")
    return fig


def gap_intervals(comparisons: pd.DataFrame, dataset: str) -> plt.Figure:
    """The UA gap of AE+EE,IN to every other run with its speaker-resampled 95 % interval, one panel
    per protocol (``comparisons``: :attr:`eesr_lib.tables.Shown.comparisons`)."""
    protocols = list(dict.fromkeys(comparisons.protocol))
    fig, axes = plt.subplots(
        1,
        len(protocols),
        figsize=(5.5 * len(protocols), 1.3 + 0.45 * comparisons.vs.nunique()),
        sharex=True,
        squeeze=False,
        layout="constrained",
    )
    for ax, protocol in zip(axes[0], protocols):
        t = comparisons[comparisons.protocol == protocol].reset_index(drop=True)
        ax.errorbar(t.gap, t.index, xerr=[t.gap - t.lo, t.hi - t.gap], fmt="o", capsize=3)
        ax.axvline(0, color="gray", linestyle="--")
        ax.set_yticks(t.index, t.vs)
        ax.invert_yaxis()
        ax.set(title=f"{dataset}, {protocol}", xlabel="UA, AE+EE,IN minus the other run (points)")
        ax.grid(axis="x", alpha=0.3)
    return fig


def rerun_scatter(noise: dict[str, dict], dataset: str) -> plt.Figure:
    """Each fold's UA in the first training of AE+EE,IN against the second (``noise``:
    :func:`eesr_lib.tables.rerun_noise`); on the diagonal, retraining changed nothing."""
    fig, axes = plt.subplots(1, len(noise), figsize=(4.2 * len(noise), 4), squeeze=False, layout="constrained")
    for ax, (protocol, r) in zip(axes[0], noise.items()):
        lo, hi = min(r["first"] + r["again"]) - 3, max(r["first"] + r["again"]) + 3
        ax.plot([lo, hi], [lo, hi], color="gray", linestyle="--", linewidth=1)
        ax.scatter(r["first"], r["again"])
        for k, x, y in zip(r["folds"], r["first"], r["again"]):
            ax.annotate(str(k), (x, y), textcoords="offset points", xytext=(4, -3), fontsize=8)
        ax.set(xlim=(lo, hi), ylim=(lo, hi), aspect="equal", title=f"{dataset}, {protocol}: AE+EE,IN twice")
        ax.set(xlabel="UA, first training (per fold)", ylabel="UA, second training")
        ax.grid(alpha=0.3)
    return fig


def confusion_panels(pooled: dict, labels: list[str], title: str, ref: dict | None = None) -> plt.Figure:
    """Our pooled confusion matrix in % of each true class (seaborn heatmap); with the paper's
    matrix ``ref`` (``eesr_lib.paper.CONFUSION_PCT``), also the paper's and our difference to it."""
    import seaborn as sns

    ours = np.asarray(pooled["confusion_pct"], dtype=float)
    panels = [(ours, f"ours: % of each true class ({pooled['n']} utterances)", "Blues", (0, 100), ".0f")]
    if ref:
        delta = ours - np.asarray(ref["rows"], dtype=float)
        lim = max(10.0, float(np.abs(delta).max()))
        panels.append((np.asarray(ref["rows"], dtype=float), f"paper, Table {ref['table']}", "Blues", (0, 100), ".0f"))
        panels.append((delta, "ours − paper (points)", "RdBu_r", (-lim, lim), "+.0f"))
    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 4.8), layout="constrained", squeeze=False)
    for ax, (matrix, name, cmap, (vmin, vmax), fmt) in zip(axes[0], panels):
        frame = pd.DataFrame(matrix, index=labels, columns=labels)
        sns.heatmap(frame, ax=ax, cmap=cmap, vmin=vmin, vmax=vmax, annot=True, fmt=fmt, cbar=False, square=True)
        ax.tick_params(axis="x", labelrotation=45)
        ax.tick_params(axis="y", labelrotation=0)
        ax.set(xlabel="predicted", ylabel="true", title=name)
    fig.suptitle(title)
    return fig


# Chapter 9's figures: a timeline of a long recording and the calibration of held-out predictions.


def timeline_figure(
    segments: pd.DataFrame, spans: pd.DataFrame, labels: list[str], hop_s: float, duration_s: float
) -> plt.Figure:
    """Stacked class probabilities of each timeline segment (:func:`eesr_lib.timeline.score_segments`)
    under the true spans (``spans`` with ``as model class``), and a strip of the true against the
    predicted class per segment; hatched where the truth is a class the model does not have."""
    colors = {lab: plt.cm.tab10(i) for i, lab in enumerate(labels)}
    mid = ((segments["start_s"] + segments["end_s"]) / 2).to_numpy()
    fig, (ax, strip) = plt.subplots(
        2, 1, figsize=(11, 4.8), sharex=True, gridspec_kw={"height_ratios": [4, 1.3], "hspace": 0.08}
    )
    ax.stackplot(mid, segments[labels].to_numpy().T, colors=[colors[lab] for lab in labels], labels=labels, alpha=0.9)
    for start, end, label, as_model in zip(spans["start_s"], spans["end_s"], spans["label"], spans["as model class"]):
        ax.axvspan(start, end, ymin=1.0, ymax=1.06, color=colors.get(as_model, "lightgrey"), clip_on=False)
        ax.text((start + end) / 2, 1.075, label, ha="center", va="bottom", fontsize=8)
        for a in (ax, strip):
            a.axvline(start, color="k", lw=0.5)
    ax.set_ylim(0, 1)
    ax.set_ylabel("probability (stacked)")
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, title="model class")
    for row, values in ((1, segments["true"]), (0, segments["prediction"])):
        for t, lab in zip(mid, values):
            strip.broken_barh(
                [(t - hop_s / 2, hop_s)],
                (row, 0.9),
                color=colors.get(lab, "white"),
                hatch=None if lab else "//",
                edgecolor="lightgrey" if not lab else None,
            )
    strip.set_yticks([0.45, 1.45], ["predicted", "true"])
    strip.set_ylim(0, 2)
    strip.set_xlabel("time in the recording (s)")
    strip.set_xlim(0, duration_s)
    ax.set_title(
        "Class probabilities of each 1.6 s segment (own IS10); hatched: a class the model does not have", pad=28
    )
    return fig


def reliability_panels(held: dict, panels: list[str]) -> plt.Figure:
    """One panel per test set in ``panels``: accuracy against stated confidence in ten bins for each
    model with probabilities (``held``: :class:`eesr_lib.calibration.Held` by (test set, variant)),
    and below, how often each confidence occurs (log scale)."""
    from .calibration import reliability_table
    from .experiments import VARIANT_NAMES

    fig, axes = plt.subplots(
        2,
        len(panels),
        figsize=(3.8 * len(panels), 6),
        sharey="row",
        squeeze=False,
        gridspec_kw={"height_ratios": [3, 1.2]},
    )
    for j, where in enumerate(panels):
        ax, hist = axes[0, j], axes[1, j]
        ax.plot([0, 1], [0, 1], color="k", ls=":", lw=1, label="calibrated")
        for variant in ["ae+ee+in", "is10+mlp", "ae-os", "bundle"]:
            if (where, variant) not in held or not held[(where, variant)].is_probability:
                continue
            conf, correct = held[(where, variant)][:2]
            rel = reliability_table(conf, correct)
            name = VARIANT_NAMES.get(variant, "the bundle")
            (line,) = ax.plot(rel["confidence"], rel["accuracy"], marker="o", ms=4, label=name)
            hist.hist(conf, bins=np.linspace(0, 1, 11), histtype="step", lw=1.5, color=line.get_color())
        ax.set_title(where, fontsize=10)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        hist.set_xlabel("confidence of the predicted class")
        hist.set_yscale("log")
        ax.legend(fontsize=7, loc="upper left")
    axes[0, 0].set_ylabel("accuracy in the bin")
    axes[1, 0].set_ylabel("utterances (log)")
    fig.suptitle("Reliability: accuracy against stated confidence (ten bins); below, how often each confidence occurs")
    fig.tight_layout()
    return fig


def selective_figure(curves: dict[str, pd.Series], where: str) -> plt.Figure:
    """Accuracy of the most confident share of utterances against that share, one line per score
    (``curves``: :func:`eesr_lib.calibration.selective_curves`)."""
    fig, ax = plt.subplots(figsize=(7, 3.6))
    for name, acc in curves.items():
        ax.plot(100 * acc.index, acc.to_numpy(), marker=".", label=name)
    ax.set_xlabel("share of utterances answered, most confident first (%)")
    ax.set_ylabel("accuracy on them (%)")
    ax.set_title(f"Selective accuracy ({where}; SVM: its largest decision value)")
    ax.legend(fontsize=8)
    return fig


def outer_test_curve_figure(curves: pd.DataFrame, smooth: int = 9, flat: dict[str, float] | None = None) -> plt.Figure:
    """The outer folds' test UA against the budget the model has had (``curves``:
    :func:`eesr_lib.budget.outer_test_curves`): one colour per variant, a thin line per fold, a thick
    one for the mean over its folds; each a centred running mean over the scores within ``smooth`` epochs
    (a window in epochs, not in points: the batch-norm rows are scored every few epochs, see
    ``runner.TEST_CURVE_EVERY_BN``), since one epoch's score on a ~107-utterance fold jumps by a few
    points. ``flat``: dashed lines for scores without a budget (IS10+SVM's mean UA). For reading, never
    for choosing."""
    fig, ax = plt.subplots(figsize=(9, 4.2), layout="constrained")
    for i, (variant, pts) in enumerate(curves.groupby("variant", sort=False)):
        color = f"C{i}"
        wide = pts.pivot_table(index="epoch", columns="fold", values="test_ua")
        every_epoch = wide.reindex(range(1, int(wide.index.max()) + 1))  # unscored epochs NaN: skipped below
        wide = every_epoch.rolling(smooth, center=True, min_periods=1).mean().loc[wide.index]
        x = pts.groupby("epoch").multiple.mean().loc[wide.index]
        for fold in wide:
            ax.plot(x, wide[fold], color=color, alpha=0.25, linewidth=0.8)
        n = wide.shape[1]
        which = ", ".join(map(str, wide.columns))  # which folds: rows over different folds are not paired
        label = f"{variant} (mean of folds {which})" if n > 1 else f"{variant} (fold {which})"
        ax.plot(x, wide.mean(axis=1), color=color, linewidth=2.2, label=label)
    for name, value in (flat or {}).items():
        ax.axhline(value, color="k", linestyle="--", linewidth=1, label=name)
    ax.axvline(1, color="k", linestyle=":", linewidth=1)
    ax.set_xscale("log", base=2)
    ax.set(xlabel="optimizer steps, as a multiple of today's budget (log scale; dotted: today's 40 epochs)")
    ax.set(ylabel=f"test UA (%), running mean over {smooth} epochs")
    ax.set_title("Outer test folds during the longer runs (recorded for the demonstration, never read to choose)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return fig
