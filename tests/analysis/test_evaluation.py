import math

import numpy as np
import pytest

from horses_humans.analysis.evaluation import classification_metrics, format_metrics, per_image_rows
from horses_humans.inference.predictor import rows_to_csv
from horses_humans.models.outputs import ClassOutput

BINARY = ClassOutput.for_classes(["horses", "humans"])
THREE = ClassOutput.for_classes(["cats", "dogs", "owls"])


def binary(p) -> np.ndarray:
    """P(class 1) per image -> the (N, 2) probabilities a sigmoid model gives."""
    return BINARY.probabilities(np.asarray(p, np.float32))


@pytest.mark.parametrize(
    "scores,auc",
    [
        ([0.1, 0.2, 0.8, 0.9], 1.0),
        ([0.9, 0.8, 0.2, 0.1], 0.0),
        ([0.5, 0.5, 0.5, 0.5], 0.5),
        ([0.1, 0.6, 0.5, 0.9], 0.75),  # one positive below one negative: 3 of 4 pairs ordered correctly
    ],
)
def test_roc_auc_known_values(scores, auc):
    assert classification_metrics(np.array([0, 0, 1, 1]), binary(scores), BINARY)["roc_auc"] == pytest.approx(auc)


def test_roc_auc_of_one_class_is_nan_not_an_error():
    m = classification_metrics(np.array([1, 1, 1]), binary([0.2, 0.7, 0.9]), BINARY)
    assert math.isnan(m["roc_auc"]) and m["confusion_matrix"] == [[0, 0], [1, 2]]  # both classes' rows, always


def test_classification_metrics_by_hand():
    y = np.array([0, 0, 0, 1, 1, 1, 1])
    p = binary([0.1, 0.7, 0.2, 0.9, 0.4, 0.8, 0.6])  # predicted 0,1,0,1,0,1,1
    m = classification_metrics(y, p, BINARY)
    assert m["confusion_matrix"] == [[2, 1], [1, 3]]
    assert m["accuracy"] == pytest.approx(5 / 7)
    assert m["precision"] == pytest.approx(3 / 4)
    assert m["recall"] == pytest.approx(3 / 4)
    assert m["f1"] == pytest.approx(3 / 4)
    assert m["images"] == 7 and m["class_names"] == ["horses", "humans"]
    assert m["per_class"]["horses"] == {
        "precision": pytest.approx(2 / 3),
        "recall": pytest.approx(2 / 3),
        "f1": pytest.approx(2 / 3),
        "support": 3,
    }
    assert m["macro"]["recall"] == pytest.approx((2 / 3 + 3 / 4) / 2)
    assert m["weighted"]["recall"] == pytest.approx((3 * 2 / 3 + 4 * 3 / 4) / 7)  # weighted recall = accuracy
    high = ClassOutput(("horses", "humans"), "sigmoid", threshold=0.85)
    assert classification_metrics(y, p, high)["confusion_matrix"] == [[3, 0], [3, 1]]  # the threshold is used


def test_nothing_predicted_positive_gives_zero_precision_not_an_error():
    m = classification_metrics(np.array([0, 1]), binary([0.1, 0.2]), BINARY)
    assert (m["precision"], m["recall"], m["f1"]) == (0.0, 0.0, 0.0)


def test_three_class_metrics_by_hand():
    y = np.array([0, 0, 1, 1, 2, 2])
    p = np.array([[0.8, 0.1, 0.1], [0.2, 0.7, 0.1], [0.1, 0.8, 0.1], [0.1, 0.6, 0.3], [0.2, 0.2, 0.6], [0.5, 0.1, 0.4]])
    m = classification_metrics(y, p, THREE)  # predicted 0, 1, 1, 1, 2, 0
    assert m["confusion_matrix"] == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
    assert m["accuracy"] == pytest.approx(4 / 6) and m["class_names"] == ["cats", "dogs", "owls"]
    assert m["per_class"]["dogs"] == {
        "precision": pytest.approx(2 / 3),
        "recall": 1.0,
        "f1": pytest.approx(0.8),
        "support": 2,
    }
    assert m["per_class"]["owls"]["precision"] == 1.0 and m["per_class"]["owls"]["recall"] == 0.5
    assert m["macro"]["precision"] == pytest.approx((1 / 2 + 2 / 3 + 1) / 3)
    assert "precision" not in m  # no positive class: the per-class and averaged numbers say it
    # one-vs-rest, of the 8 (class, other) pairs per class: cats' .2 ties a dog's .2 and loses to an owl's .5 (6.5);
    # dogs' .6 loses to a cat's .7 (7); owls' .6 and .4 beat every other .1-.3 (8)
    assert m["roc_auc"] == pytest.approx((6.5 / 8 + 7 / 8 + 8 / 8) / 3)


def test_three_class_roc_auc_is_nan_when_a_class_is_absent_and_averages_skip_it():
    y = np.array([0, 0, 1, 1])
    p = np.array([[0.8, 0.1, 0.1], [0.2, 0.1, 0.7], [0.1, 0.8, 0.1], [0.1, 0.6, 0.3]])
    m = classification_metrics(y, p, THREE)
    assert math.isnan(m["roc_auc"]) and m["per_class"]["owls"] == {
        "precision": 0.0,
        "recall": 0.0,
        "f1": 0.0,
        "support": 0,
    }
    assert m["macro"]["recall"] == pytest.approx((1 / 2 + 1) / 2)  # over the classes present: cats and dogs


def test_float32_softmax_rows_that_do_not_sum_exactly_to_one_still_give_an_auc():
    y = np.array([0, 1, 2])
    p = np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.2, 0.2, 0.6]], np.float32) * np.float32(1.0 + 3e-7)
    assert classification_metrics(y, p, THREE)["roc_auc"] == 1.0


def test_per_image_rows_and_csv():
    rows = per_image_rows(["a.png", "b.png"], np.array([0, 1]), binary([0.2, 0.3]), BINARY)
    assert rows[1] == {
        "file": "b.png",
        "true_label": "humans",
        "predicted_label": "horses",
        "probability": 0.7,
        "p_horses": 0.7,
        "p_humans": 0.3,
    }  # the probability is the predicted label's
    assert rows_to_csv(rows).splitlines() == [
        "file,true_label,predicted_label,probability,p_horses,p_humans",
        "a.png,horses,horses,0.8,0.8,0.2",
        "b.png,humans,horses,0.7,0.7,0.3",
    ]


def test_per_image_rows_of_three_classes():
    rows = per_image_rows(["a.png"], np.array([2]), np.array([[0.1, 0.6, 0.3]]), THREE)
    assert rows == [
        {
            "file": "a.png",
            "true_label": "owls",
            "predicted_label": "dogs",
            "probability": 0.6,
            "p_cats": 0.1,
            "p_dogs": 0.6,
            "p_owls": 0.3,
        }
    ]


@pytest.mark.parametrize("output", [BINARY, THREE])
def test_format_metrics_lays_out_every_class(output):
    n = len(output.class_names)
    y = np.arange(n)
    m = {**classification_metrics(y, np.eye(n)[::-1] if n == 2 else np.eye(n), output), "run": "runs/r"}
    text = format_metrics(m)
    assert "runs/r" in text and "macro avg" in text and "weighted avg" in text and "runs/r/predictions.csv" in text
    matrix = text.split("confusion matrix")[1].splitlines()
    assert matrix[1].split() == list(output.class_names)
    assert [line.split()[0] for line in matrix[2 : 2 + n]] == list(output.class_names)
    assert [list(map(int, line.split()[1:])) for line in matrix[2 : 2 + n]] == m["confusion_matrix"]
    assert ("positive = humans" in text) == (n == 2) and ("precision " in text.splitlines()[2]) == (n == 2)
