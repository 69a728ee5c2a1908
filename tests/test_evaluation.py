import numpy as np
import pytest

from horses_humans.evaluation import classification_metrics, per_image_rows, roc_auc, rows_to_csv


def test_roc_auc_known_values():
    y = np.array([0, 0, 1, 1])
    assert roc_auc(y, np.array([0.1, 0.2, 0.8, 0.9])) == 1.0
    assert roc_auc(y, np.array([0.9, 0.8, 0.2, 0.1])) == 0.0
    assert roc_auc(y, np.array([0.5, 0.5, 0.5, 0.5])) == 0.5
    # one positive below one negative: 3 of 4 pairs ordered correctly
    assert roc_auc(y, np.array([0.1, 0.6, 0.5, 0.9])) == pytest.approx(0.75)


def test_classification_metrics_by_hand():
    y = np.array([0, 0, 0, 1, 1, 1, 1])
    p = np.array([0.1, 0.7, 0.2, 0.9, 0.4, 0.8, 0.6])  # predicted 0,1,0,1,0,1,1
    m = classification_metrics(y, p)
    assert m["confusion_matrix"] == [[2, 1], [1, 3]]
    assert m["accuracy"] == pytest.approx(5 / 7)
    assert m["precision"] == pytest.approx(3 / 4)
    assert m["recall"] == pytest.approx(3 / 4)
    assert m["f1"] == pytest.approx(3 / 4)


def test_per_image_rows_and_csv():
    rows = per_image_rows(["a.png", "b.png"], np.array([0, 1]), np.array([0.2, 0.3]), ["horses", "humans"])
    assert rows[1] == {"file": "b.png", "true_label": "humans", "probability": 0.3, "predicted_label": "horses"}
    assert rows_to_csv(rows).splitlines() == ["file,true_label,probability,predicted_label",
                                              "a.png,horses,0.2,horses", "b.png,humans,0.3,horses"]
