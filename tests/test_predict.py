"""predict.py without a trained model: which files a folder contributes, what a prediction says, its CSV and JSON."""

import json

import numpy as np
import pytest

from horses_humans.predict import Prediction, Predictor, collect_files, format_predictions


def test_collect_files_skips_hidden_files_and_macos_resource_forks_like_the_data_set(tmp_path, make_image):
    folder = tmp_path / "photos"
    keep = [make_image(folder / "a.png"), make_image(folder / "sub" / "b.png")]
    make_image(folder / ".hidden.png")
    make_image(folder / "__MACOSX" / "sub" / "b.png")  # macOS zips carry a resource-fork copy of each folder
    make_image(folder / ".cache" / "c.png")
    (folder / "sub" / ".DS_Store").write_bytes(b"junk")
    named = tmp_path / ".named-directly.png"
    assert collect_files([folder, named]) == keep + [named]  # a file named directly is taken as given


def test_collect_files_of_a_folder_under_a_hidden_folder_keeps_its_files(tmp_path, make_image):
    folder = tmp_path / ".cache" / "photos"  # only the parts below the named folder count
    image = make_image(folder / "a.png")
    assert collect_files([folder]) == [image]


def test_csv_of_predictions_has_one_column_per_class_and_a_header_even_when_empty():
    rows = [Prediction("a.png", "humans", 0.75, {"horses": 0.25, "humans": 0.75}), Prediction("b.png", error="not an image")]
    assert format_predictions(rows, "csv").splitlines() == [
        "file,label,probability,p_horses,p_humans,unsure_reason,unsure_score,error",
        "a.png,humans,0.75,0.25,0.75,,,", "b.png,,,,,,,not an image"]
    assert format_predictions([], "csv", ["cats", "dogs", "owls"]) == \
        "file,label,probability,p_cats,p_dogs,p_owls,unsure_reason,unsure_score,error\n"
    assert format_predictions([], "csv") == "file,label,probability,unsure_reason,unsure_score,error\n"


def test_json_of_predictions_gives_every_class_in_a_dict_and_the_table_the_label_and_its_probability():
    rows = [Prediction("a.png", "horses", 0.9, {"horses": 0.9, "humans": 0.1}), Prediction("b.png", error="not an image")]
    assert json.loads(format_predictions(rows, "json")) == [
        {"file": "a.png", "label": "horses", "probability": 0.9, "probabilities": {"horses": 0.9, "humans": 0.1},
         "unsure_reason": None, "unsure_score": None, "error": None},
        {"file": "b.png", "label": None, "probability": None, "probabilities": None,
         "unsure_reason": None, "unsure_score": None, "error": "not an image"}]
    table = format_predictions(rows).splitlines()
    assert table[1].split() == ["a.png", "horses", "0.9000"] and table[2].split() == ["b.png", "error:", "not", "an", "image"]


class Constant:
    """A stand-in model: the same raw output for every image."""

    def __init__(self, raw):
        self.raw = np.asarray(raw, np.float32)

    def predict_on_batch(self, x):
        return np.repeat(self.raw[None], len(x), axis=0)


@pytest.mark.parametrize("names,raw,label,probability", [
    (["horses", "humans"], [3.7e-10], "horses", 1.0),  # a sure horse reads 1.0 for horses, not 3.7e-10
    (["horses", "humans"], [0.8], "humans", 0.8),
    (["cats", "dogs", "owls"], [0.2, 0.1, 0.7], "owls", 0.7),
])
def test_predicted_probability_is_that_of_the_label(tmp_path, make_image, names, raw, label, probability):
    predictor = Predictor(Constant(raw), names, 16)
    (result,) = predictor.predict_files([make_image(tmp_path / "a.png")])
    assert (result.label, result.error) == (label, None) and result.probability == pytest.approx(probability)
    expected = predictor.output.probabilities(np.asarray(raw)[None])[0]
    assert result.probabilities == pytest.approx(dict(zip(names, expected))) and list(result.probabilities) == names
