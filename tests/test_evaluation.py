import math

import numpy as np
import pytest

from horses_humans.config import DEFAULT_THRESHOLD
from horses_humans.evaluation import classification_metrics, per_image_rows
from horses_humans.predict import rows_to_csv


@pytest.mark.parametrize("scores,auc", [
    ([0.1, 0.2, 0.8, 0.9], 1.0), ([0.9, 0.8, 0.2, 0.1], 0.0), ([0.5, 0.5, 0.5, 0.5], 0.5),
    ([0.1, 0.6, 0.5, 0.9], 0.75),  # one positive below one negative: 3 of 4 pairs ordered correctly
])
def test_roc_auc_known_values(scores, auc):
    assert classification_metrics(np.array([0, 0, 1, 1]), np.array(scores), DEFAULT_THRESHOLD)["roc_auc"] == pytest.approx(auc)


def test_roc_auc_of_one_class_is_nan_not_an_error():
    m = classification_metrics(np.array([1, 1, 1]), np.array([0.2, 0.7, 0.9]), DEFAULT_THRESHOLD)
    assert math.isnan(m["roc_auc"]) and m["confusion_matrix"] == [[0, 0], [1, 2]]  # both classes' rows, always


def test_classification_metrics_by_hand():
    y = np.array([0, 0, 0, 1, 1, 1, 1])
    p = np.array([0.1, 0.7, 0.2, 0.9, 0.4, 0.8, 0.6])  # predicted 0,1,0,1,0,1,1
    m = classification_metrics(y, p, DEFAULT_THRESHOLD)
    assert m["confusion_matrix"] == [[2, 1], [1, 3]]
    assert m["accuracy"] == pytest.approx(5 / 7)
    assert m["precision"] == pytest.approx(3 / 4)
    assert m["recall"] == pytest.approx(3 / 4)
    assert m["f1"] == pytest.approx(3 / 4)
    assert m["images"] == 7
    assert classification_metrics(y, p, 0.85)["confusion_matrix"] == [[3, 0], [3, 1]]  # the threshold is used


def test_nothing_predicted_positive_gives_zero_precision_not_an_error():
    m = classification_metrics(np.array([0, 1]), np.array([0.1, 0.2]), DEFAULT_THRESHOLD)
    assert (m["precision"], m["recall"], m["f1"]) == (0.0, 0.0, 0.0)


def test_per_image_rows_and_csv():
    rows = per_image_rows(["a.png", "b.png"], np.array([0, 1]), np.array([0.2, 0.3]), ["horses", "humans"], DEFAULT_THRESHOLD)
    assert rows[1] == {"file": "b.png", "true_label": "humans", "probability": 0.3, "predicted_label": "horses"}
    assert rows_to_csv(rows).splitlines() == ["file,true_label,probability,predicted_label",
                                              "a.png,horses,0.2,horses", "b.png,humans,0.3,horses"]
