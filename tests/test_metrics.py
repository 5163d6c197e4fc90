import numpy as np
import pytest

from eesr_lib.metrics import classification_metrics, mean_std

LABELS = ("a", "b", "c")


def test_wa_ua_on_a_hand_made_example():
    # class a: 4 utterances, 3 right; b: 2 utterances, 1 right; c: 1 utterance, right.
    y_true = [0, 0, 0, 0, 1, 1, 2]
    y_pred = [0, 0, 0, 1, 1, 2, 2]
    m = classification_metrics(y_true, y_pred, LABELS)
    assert m["wa"] == pytest.approx(100 * 5 / 7)
    assert m["ua"] == pytest.approx(100 * (3 / 4 + 1 / 2 + 1) / 3)
    assert m["recall"] == pytest.approx({"a": 75.0, "b": 50.0, "c": 100.0})
    assert m["precision"] == pytest.approx({"a": 100.0, "b": 50.0, "c": 50.0})
    assert m["f1"]["c"] == pytest.approx(100 * 2 * 0.5 * 1 / 1.5)
    assert m["confusion"] == [[3, 1, 0], [0, 1, 1], [0, 0, 1]]
    assert np.allclose(m["confusion_pct"][0], [75, 25, 0])
    assert m["support"] == {"a": 4, "b": 2, "c": 1} and m["n"] == 7


def test_absent_class_gives_zero_row_not_nan():
    m = classification_metrics([0, 0, 1], [0, 1, 1], LABELS)
    assert m["confusion_pct"][2] == [0, 0, 0]
    assert m["ua"] == pytest.approx(100 * (0.5 + 1) / 2)


def test_mean_std():
    assert mean_std([1.0, 3.0]) == pytest.approx((2.0, np.sqrt(2)))
    assert mean_std([5.0]) == (5.0, 0.0)
