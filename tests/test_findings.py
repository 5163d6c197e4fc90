"""The numbers the introduction and the choices page quote: computed from the results, written by name."""

import re
from pathlib import Path

import pytest
import yaml

from eesr_lib.book import SUBSTITUTION, split_front_matter, write_substitutions
from eesr_lib.errors import EESRError

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "book" / "intro.md", ROOT / "book" / "choices.md"]


def _defined(page: Path) -> tuple[set[str], dict]:
    front, body = split_front_matter(page.read_text())
    values = yaml.safe_load(front.strip("-\n")) if front else {}
    return set(SUBSTITUTION.findall(body)), (values or {}).get("myst", {}).get("substitutions", {})


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_number_a_page_quotes_has_its_value(page):
    used, values = _defined(page)
    assert used, f"{page.name} quotes no computed number"
    assert used == set(values), f"{page.name}: quoted but not written {used - set(values)}, stale {set(values) - used}"


def test_write_substitutions_fills_the_front_matter_and_refuses_an_unknown_name(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("# Title\n\nWe lose {{ loss }} points on {{ n }} utterances.\n")
    assert write_substitutions(page, {"loss": "29 to 44", "n": "535", "unused": "1"})
    used, values = _defined(page)
    assert values == {"loss": "29 to 44", "n": "535"} and page.read_text().endswith("{{ n }} utterances.\n")
    assert not write_substitutions(page, {"loss": "29 to 44", "n": "535"})  # unchanged: not rewritten
    assert write_substitutions(page, {"loss": "30 to 44", "n": "535"})  # a new value replaces the old one
    assert _defined(page)[1]["loss"] == "30 to 44" and page.read_text().count("---\n") == 2
    with pytest.raises(EESRError, match="n"):
        write_substitutions(page, {"loss": "1"})


def test_page_numbers_cover_every_page_from_the_committed_results(data_root):
    from eesr_lib.findings import MISSING, page_numbers

    values = page_numbers(ROOT / "results", data_root)
    for page in PAGES:
        used, _ = _defined(page)
        assert used <= set(values)
    assert values["emodb_utterances"] == "535" and values["steps_per_fold"] != MISSING
    assert " to " in values["spectrogram_only_loss"] or values["spectrogram_only_loss"] == MISSING
    deep = values["deep_ee_in"]  # the spectrogram-only pair at 40 epochs, under both protocols, beside the paper
    assert deep == MISSING or re.fullmatch(
        r"[+-]?\d+\.\d UA under 5-fold \([a-z ]+\) and [+-]?\d+\.\d UA with speakers held out \([a-z ]+\), "
        r"where the paper has \+1\.9 \(10-fold\) and \+2\.8 \(leave one speaker out\) on IEMOCAP",
        deep,
    )


def test_nemo_numbers_come_from_its_runs_and_say_which_are_missing(data_root, tmp_path):
    from eesr_lib.corpora import load_corpus
    from eesr_lib.findings import MISSING, nemo_numbers

    try:
        nemo = load_corpus("nemo", data_root)
    except EESRError:
        pytest.skip("nEMO is not in the shared data")
    committed = nemo_numbers(ROOT / "results", nemo)
    assert committed["nemo_utterances"] == "3076" and committed["nemo_speakers"] == "9"
    assert "95 % interval" in committed["nemo_svm_loso_ua"]  # the nine committed folds, pooled
    empty = nemo_numbers(tmp_path, nemo)
    assert empty["nemo_svm_loso_ua"] == MISSING and "comes next" in empty["nemo_proposed_reading"]


def test_nemo_reading_says_how_far_the_run_got_then_reads_the_verdict(data_root, tmp_path):
    """Stand-in folds: the committed IS10+MLP folds copied as the proposed model's, so the reading's
    verdict is the MLP-minus-SVM gap, read by the same rule as chapter 4's."""
    import shutil

    from eesr_lib.corpora import load_corpus
    from eesr_lib.findings import nemo_numbers

    try:
        nemo = load_corpus("nemo", data_root)
    except EESRError:
        pytest.skip("nEMO is not in the shared data")
    src = ROOT / "results" / "nemo" / "loso-speaker"
    dst = tmp_path / "nemo" / "loso-speaker"
    for v in ("is10+svm", "is10+mlp"):
        shutil.copytree(src / v, dst / v)
    (dst / "ae+ee+in").mkdir()
    for k in (0, 1):
        shutil.copy(src / "is10+mlp" / f"fold_{k}.json", dst / "ae+ee+in")
    partial = nemo_numbers(tmp_path, nemo)
    assert partial["nemo_proposed_loso_ua"] == "(still running)"  # not "(not run)", and no UA of 2 folds
    reading = partial["nemo_proposed_reading"]
    assert reading.startswith("Its run is under way (2 of 9 folds in;") and "hold" not in reading
    shutil.rmtree(dst / "ae+ee+in")
    shutil.copytree(dst / "is10+mlp", dst / "ae+ee+in")
    whole = nemo_numbers(tmp_path, nemo)
    assert whole["nemo_proposed_loso_ua"] == whole["nemo_mlp_loso_ua"]
    assert re.fullmatch(
        r"The paper's claim that its model beats IS10\+SVM \(by \+8\.1 UA on IEMOCAP; our bar: 3 points or more\), "
        r"on nEMO's held-out speakers: ours [+-]\d+\.\d UA \(pooled .*\); over the same head on IS10 alone "
        r"\(IS10\+MLP\) \+0\.0\. \*\*(Holds\.\*\*|Does not hold\*\*: .+)",
        whole["nemo_proposed_reading"],
    ), whole["nemo_proposed_reading"]


def test_budget_numbers_read_the_committed_histories(data_root, tmp_path):
    from eesr_lib.corpora import load_corpus
    from eesr_lib.findings import MISSING, budget_numbers

    emodb = load_corpus("emodb", data_root)
    values = budget_numbers(ROOT / "results", emodb)
    low, high = (float(x) for x in values["spectrogram_only_train_acc"].rstrip(" %").split(" to "))
    assert 0 < low < high < 99  # the spectrogram-only rows never fit their training crops at 40 epochs
    first, last = (int(x) for x in values["fused_fit_epoch"].split(" to "))
    assert 1 <= first <= last <= 40
    assert budget_numbers(tmp_path, emodb)["fused_fit_epoch"] == MISSING
    # the inner validation split of outer fold 0: 86 utterances, one of them worth 100/86 UA points
    assert (values["validation_utterances"], values["ua_points_per_utterance"]) == ("86", "1.2")


def test_curve_numbers_read_the_committed_learning_curves(tmp_path):
    from eesr_lib import plan
    from eesr_lib.findings import MISSING, curve_numbers

    values = curve_numbers(ROOT / "results")
    if values["fused_curve"] == MISSING:
        pytest.skip("no committed learning curve of the proposed model")
    assert values["fused_curve"].count(" at ") == 2 and "over the last doubling" in values["fused_curve"]
    assert values["fused_curve"].startswith(("flat (", "still rising ("))
    assert values["deep_curves"].startswith("AE-OS from ") and "AE-OS,+EE,IN from " in values["deep_curves"]
    done, total = values["budget_outer_folds"].split(" of ")
    assert 0 <= int(done) <= int(total) == 5 * len(plan.DECISIVE)
    outer = values["fused_outer"]
    assert outer == MISSING or re.match(r"(all 5 folds|[1-4] of 5 folds so far), UA ", outer)
    empty = curve_numbers(tmp_path)
    assert (
        empty["fused_curve"] == empty["deep_curves"] == empty["fused_outer"] == MISSING
        and empty["budget_outer_folds"] == f"0 of {total}"
    )
