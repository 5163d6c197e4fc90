"""The book's opening figure: every claim of the paper that EMODB can test, against ours, with intervals.

Left panel, Table 14: the paper's EMODB WA beside our pooled WA of the proposed model, with a 95 %
interval from resampling speakers. Right panel, Table 4: the paper's UA gap for each ingredient
(its IEMOCAP numbers: the only ones it gives) beside our fold-paired gap on EMODB, with the 95 %
speaker-resampled interval of the pooled gap. Drawn from result files at build time
(scripts/build_book.py); a claim whose runs are missing is left out, never filled in.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from . import paper  # noqa: E402
from .report import load_folds  # noqa: E402
from .stats import bootstrap_scores, compare_runs  # noqa: E402

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
        labels = recs[0]["labels"]
        index = {lab: i for i, lab in enumerate(labels)}
        preds = [p for r in recs for p in r["predictions"]]
        b = bootstrap_scores(
            np.array([index[p["true"]] for p in preds]),
            np.array([index[p["pred"]] for p in preds]),
            len(labels),
            speakers.loc[[p["id"] for p in preds]].to_numpy(),
            n_boot,
        )
        rows.append(
            {"panel": "wa", "label": "WA of AE+EE,IN", "protocol": protocol, "ours": b["wa"], "lo": b["wa_lo"]}
            | {"hi": b["wa_hi"], "paper": paper_wa}
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
