"""The unsure rule of a --distance-unsure run: uniform rows are "unlike every image it was trained on", they count
in the 2% validation budget, and tau stays above 1/C so that a client that knows only tau agrees."""

import numpy as np

from horses_humans.inference.unsure import NOT_CONFIDENT, UNLIKE_TRAINING, UNSURE, UnsureRule, calibrate
from horses_humans.models.outputs import ClassOutput

TWO = ClassOutput.for_classes(["horses", "humans"])
THREE = ClassOutput.for_classes(["cats", "dogs", "rabbits"])


def test_a_uniform_row_is_unlike_training_only_when_the_run_has_the_check():
    rows = np.array([[0.5, 0.5], [0.2, 0.8], [0.45, 0.55]])
    with_check = UnsureRule(0.6, None, distance=True).apply(rows, TWO)
    assert [(v.label, v.reason) for v in with_check] == [
        (UNSURE, UNLIKE_TRAINING),
        ("humans", None),
        (UNSURE, NOT_CONFIDENT),
    ]
    assert UnsureRule(0.6).apply(rows, TWO)[0].reason == NOT_CONFIDENT


def test_the_rule_records_the_check_and_reads_it_back():
    rule = UnsureRule(0.7, None, distance=True)
    assert UnsureRule.from_record(rule.record()) == rule and UNLIKE_TRAINING in rule.record()["reasons"]
    assert UnsureRule.from_record({"min_confidence": 0.7}).distance is False  # rules made before the check


def test_tau_counts_uniform_rows_in_the_budget_and_stays_above_one_over_c():
    rng = np.random.default_rng(0)
    sure = rng.dirichlet([8, 1, 1], 98)  # confident rows of the model's own class (0)
    third = np.float32(1 / 3)
    labels = np.zeros(100, int)
    two_far = np.concatenate([sure, np.full((2, 3), third)])  # 2 of 100 answered uniform: the budget, spent
    rule = calibrate(two_far, labels, THREE, distance=True)
    assert rule.distance and rule.min_confidence == calibrate(two_far, labels, THREE).min_confidence
    assert rule.min_confidence == np.sort(sure[:, 0])[0]  # no real row unsure beyond the 2
    five_far = np.concatenate([sure[:95], np.full((5, 3), third)])  # more than the budget: tau would be 1/3
    assert calibrate(five_far, labels, THREE).apply(five_far[-1:], THREE)[0].label == "cats"  # no check: answered
    rule = calibrate(five_far, labels, THREE, distance=True)
    assert third < rule.min_confidence < 0.34  # the floor: just above 1/C, so tau alone answers them unsure
    assert [v.reason for v in rule.apply(five_far[-5:], THREE)] == [UNLIKE_TRAINING] * 5
    assert UnsureRule(rule.min_confidence).apply(five_far[-1:], THREE)[0].label == UNSURE  # a client knowing tau
