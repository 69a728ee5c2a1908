"""outputs.ClassOutput: one way to read sigmoid and softmax outputs as (N, C) class probabilities."""

import numpy as np
import pytest

from horses_humans.config import HorsesHumansError
from horses_humans.models.outputs import SIGMOID, SOFTMAX, ClassOutput


def test_two_classes_read_one_sigmoid_unit_as_two_columns():
    out = ClassOutput.for_classes(["horses", "humans"])
    assert (out.kind, out.units) == (SIGMOID, 1)
    probs = out.probabilities(np.array([[0.2], [0.9], [0.5]]))
    np.testing.assert_allclose(probs, [[0.8, 0.2], [0.1, 0.9], [0.5, 0.5]], rtol=1e-6)
    assert out.predicted(probs).tolist() == [0, 1, 1]  # the threshold (0.5) is inclusive, as before
    assert out.label_of(probs[0]) == "horses"
    assert ClassOutput.for_classes(["a", "b"], threshold=0.95).predicted(probs).tolist() == [0, 0, 0]


def test_more_classes_use_softmax_columns_and_argmax():
    out = ClassOutput.for_classes(["cats", "dogs", "other"])
    assert (out.kind, out.units) == (SOFTMAX, 3)
    probs = out.probabilities(np.array([[0.1, 0.7, 0.2], [0.5, 0.2, 0.3]]))
    assert out.predicted(probs).tolist() == [1, 0]
    assert out.label_of(probs[1]) == "cats"
    assert "threshold" not in out.record() and out.record()["output_kind"] == "softmax"


def test_labels_round_trip_and_old_runs_read_as_sigmoid():
    for names in (["horses", "humans"], ["a", "b", "c", "d", "e"]):
        out = ClassOutput.for_classes(names)
        assert ClassOutput.from_labels(out.record()) == out
    old = {"class_names": ["horses", "humans"], "threshold": 0.5, "output": "probability of 'humans'"}
    assert ClassOutput.from_labels(old).kind == SIGMOID


@pytest.mark.parametrize("names, kind", [(["only"], SOFTMAX), (["a", "b", "c"], SIGMOID), (["a", "b"], SOFTMAX)])
def test_outputs_that_do_not_fit_their_classes_are_refused(names, kind):
    with pytest.raises(HorsesHumansError):
        ClassOutput(tuple(names), kind)
