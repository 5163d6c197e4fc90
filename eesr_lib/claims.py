"""The verdicts the book prints on the paper's claims, as tested functions of measured numbers.

Chapter 4 reads each claim against our results ("holds", "does not hold", "no measurable effect").
The thresholds live here, named, once; the chapter only words the outcome. Every function takes
plain numbers (gaps in UA points, intervals, the training-noise standard deviation), so each rule
is tested on made-up values (tests/test_claims.py) independently of any run.
"""

from __future__ import annotations

from collections.abc import Sequence

# Table 14: our WA "holds" the paper's if it is at most this many points lower.
TABLE14_TOLERANCE_WA = 2.0
# "The proposed model beats IS10+SVM": by at least this many UA points, fold-paired. The bar the
# project set for a gain worth the network's cost (the paper reports +8.1 on IEMOCAP LOSO).
BEATS_BASELINE_UA = 3.0
# A gap is "within training noise" if it is no larger than this many standard deviations of the
# fold-paired gap between two trainings of the same model (eesr_lib.stats.retraining_noise).
NOISE_SDS = 2.0

HOLDS, DOES_NOT_HOLD, MIXED, NO_EFFECT, HOLDS_IN_SIGN = (
    "holds",
    "does not hold",
    "mixed",
    "no measurable effect",
    "holds in sign only",
)


def table14_holds(ours_wa: float, paper_wa: float) -> bool:
    """Whether our mean WA is within :data:`TABLE14_TOLERANCE_WA` of the paper's Table 14 value."""
    return ours_wa >= paper_wa - TABLE14_TOLERANCE_WA


def interval_contains_zero(interval: tuple[float, float] | None) -> bool:
    """True when a gap's resampling interval includes 0 (no clear difference); False without one."""
    return interval is not None and interval[0] <= 0 <= interval[1]


def within_training_noise(gap: float, gap_sd: float | None) -> bool:
    """Whether ``|gap|`` is no larger than :data:`NOISE_SDS` standard deviations of retraining noise."""
    return gap_sd is not None and abs(gap) <= NOISE_SDS * gap_sd


def beats_baseline(gap: float, interval: tuple[float, float] | None = None) -> tuple[str, str]:
    """Verdict on "the model beats IS10+SVM" from the fold-paired UA gap (model minus baseline).

    Returns (verdict, reason): ``holds`` at :data:`BEATS_BASELINE_UA` or more; otherwise ``does not
    hold``, with the reason "above" (ahead by less than the bar), "no clear difference" (behind,
    but the speaker-resampled interval includes 0) or "below"."""
    if gap >= BEATS_BASELINE_UA:
        return HOLDS, "above"
    if gap >= 0:
        return DOES_NOT_HOLD, "above"
    return DOES_NOT_HOLD, "no clear difference" if interval_contains_zero(interval) else "below"


def ordering(gaps: dict[str, float], gap_sd: float | None) -> tuple[str, list[str], list[str]]:
    """Table 4's ordering: every ablation row below the full model? ``gaps`` maps a row to its
    fold-paired UA gap (ablation minus AE+EE,IN). Returns (verdict, rows at or above, rows below
    by no more than training noise): ``holds``; ``holds in sign only`` when every row is below but
    some by no more than retraining moves it; ``does not hold`` when any row is at or above."""
    above = [name for name, gap in gaps.items() if gap >= 0]
    tiny = [name for name, gap in gaps.items() if within_training_noise(gap, gap_sd)]
    if above:
        return DOES_NOT_HOLD, above, tiny
    return (HOLDS_IN_SIGN if tiny else HOLDS), above, tiny


def ingredient_effect(gaps: Sequence[float], gap_sd: float | None) -> str:
    """One ingredient judged on the Table 4 pairs that differ by it alone (gaps with minus without):
    ``no measurable effect`` when every gap is within training noise, else ``holds`` (all positive),
    ``does not hold`` (none positive) or ``mixed``."""
    if not gaps:
        raise ValueError("no pair to judge the ingredient on")
    if all(within_training_noise(g, gap_sd) for g in gaps):
        return NO_EFFECT
    positive = [g > 0 for g in gaps]
    return HOLDS if all(positive) else DOES_NOT_HOLD if not any(positive) else MIXED
