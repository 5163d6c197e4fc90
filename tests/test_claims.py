"""The book's verdicts on the paper's claims (eesr_lib.claims) on made-up numbers."""

import pytest

from eesr_lib import claims


def test_table14_holds_only_within_the_tolerance():
    assert claims.table14_holds(92.2 - claims.TABLE14_TOLERANCE_WA, 92.2)
    assert not claims.table14_holds(85.8, 92.2)


def test_beating_the_baseline_needs_the_bar_and_a_shortfall_is_read_against_the_interval():
    assert claims.beats_baseline(claims.BEATS_BASELINE_UA) == (claims.HOLDS, "above")
    assert claims.beats_baseline(1.0, (-2.0, 4.0)) == (claims.DOES_NOT_HOLD, "above")
    assert claims.beats_baseline(-1.1, (-3.0, 0.9)) == (claims.DOES_NOT_HOLD, "no clear difference")
    assert claims.beats_baseline(-2.8, (-5.3, -0.4)) == (claims.DOES_NOT_HOLD, "below")
    assert claims.beats_baseline(-2.8, None) == (claims.DOES_NOT_HOLD, "below")  # no interval: no benefit of doubt


def test_training_noise_band_is_two_standard_deviations():
    assert claims.within_training_noise(-0.9, 0.5) and not claims.within_training_noise(1.1, 0.5)
    assert not claims.within_training_noise(0.0, None)  # no rerun measured: nothing is called noise


def test_table4_ordering():
    assert claims.ordering({"AE": -5.0, "AE-OS": -30.0}, 0.5) == (claims.HOLDS, [], [])
    assert claims.ordering({"AE": -0.5, "AE-OS": -30.0}, 0.5) == (claims.HOLDS_IN_SIGN, [], ["AE"])
    verdict, above, tiny = claims.ordering({"AE": 1.4, "AE+IN": 0.0, "AE-OS": -30.0}, 0.4)
    assert (verdict, above, tiny) == (claims.DOES_NOT_HOLD, ["AE", "AE+IN"], ["AE+IN"])


def test_an_ingredient_is_judged_on_its_pairs():
    assert claims.ingredient_effect([0.3, -0.5], 0.5) == claims.NO_EFFECT
    assert claims.ingredient_effect([29.0, 43.5], 0.5) == claims.HOLDS
    assert claims.ingredient_effect([-2.0, -3.0], 0.5) == claims.DOES_NOT_HOLD
    assert claims.ingredient_effect([2.0, -3.0], 0.5) == claims.MIXED
    assert claims.ingredient_effect([0.3, -0.5], None) == claims.MIXED  # without a noise measurement
    with pytest.raises(ValueError):
        claims.ingredient_effect([], 0.5)
