"""The public Python API (horses_humans.api, docs/python-api.md): light to import, clear about bad arguments, the
same answers for a file and its pixels, and the documented example runs as written."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import horses_humans as hh

from .centroid_runs import centroid_setup
from .synthetic import make_dataset

ROOT = Path(__file__).resolve().parents[1]
SRC = str(Path(hh.__file__).resolve().parents[1])


def test_the_public_names_are_listed_and_unknown_ones_are_attribute_errors():
    assert set(hh.__all__) == {
        "__version__",
        "train",
        "load_run",
        "Run",
        "Prediction",
        "TrainConfig",
        "HorsesHumansError",
    }
    assert set(hh.__all__) <= set(dir(hh))
    assert hh.TrainConfig().recipe == "recommended" and issubclass(hh.HorsesHumansError, Exception)
    with pytest.raises(AttributeError, match="no attribute 'trian'"):
        hh.trian  # noqa: B018


def test_importing_the_package_and_its_api_loads_no_tensorflow():
    code = (
        "import sys\nimport horses_humans as hh\n"
        "hh.train, hh.load_run, hh.Run, hh.Prediction, hh.TrainConfig, hh.HorsesHumansError\n"
        "print(sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ, "PYTHONPATH": SRC}, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_an_unknown_train_option_is_one_error_naming_it_and_the_valid_ones(tmp_path):
    with pytest.raises(hh.HorsesHumansError) as caught:
        hh.train(tmp_path / "nowhere", runs_dir=tmp_path / "runs", epoch=2)  # a typo for epochs
    message = str(caught.value)
    assert message.startswith("train: unknown option epoch;") and "epochs" in message and "image_size" in message
    assert "\n" not in message and not (tmp_path / "runs").exists()  # refused before anything was made


def test_a_bad_option_value_is_the_config_error(tmp_path):
    with pytest.raises(hh.HorsesHumansError, match="--image-size 8 is too small"):
        hh.train(tmp_path / "nowhere", runs_dir=tmp_path / "runs", image_size=8)


def test_a_reject_class_the_data_lacks_is_one_error_before_training(tmp_path):
    data = make_dataset(tmp_path / "data", train_per_class=2, val_per_class=2)
    with pytest.raises(hh.HorsesHumansError) as caught:
        hh.train(data, "baseline", runs_dir=tmp_path / "runs", reject_class="background")
    message = str(caught.value)
    assert message.startswith("--reject-class background: ") and "(found: horses, humans)" in message
    assert "\n" not in message and not list((tmp_path / "runs").rglob("*.keras"))


def test_loading_a_missing_or_unfinished_run_names_the_folder(tmp_path):
    with pytest.raises(hh.HorsesHumansError, match=re.escape(f"{tmp_path / 'gone'}: no such run directory")):
        hh.load_run(tmp_path / "gone")
    (tmp_path / "empty").mkdir()
    with pytest.raises(hh.HorsesHumansError, match=re.escape(str(tmp_path / "empty"))):
        hh.load_run(tmp_path / "empty")


@pytest.fixture
def centroid_run(tmp_path):
    """A finished 3-class run (a tiny hand-set model, no training) and an official-layout data set of its classes."""
    return centroid_setup(tmp_path, 3)


def test_a_loaded_run_says_what_it_is(centroid_run):
    run_dir, _ = centroid_run
    run = hh.load_run(run_dir, checkpoint="last")
    assert isinstance(run, hh.Run) and run.path == run_dir and run.name == run_dir.name
    assert run.class_names == ["class0", "class1", "class2"] and run.config.recipe == "baseline"
    assert run.metrics["val_accuracy"] == 1.0 and run.checkpoint == "last"


def test_a_file_and_its_pixels_get_the_same_answer_at_any_array_size(centroid_run, tmp_path):
    run_dir, data = centroid_run
    run = hh.load_run(run_dir)
    image = sorted((data / "validation-horse-or-human" / "class1").iterdir())[0]
    pixels = np.asarray(Image.open(image).convert("RGB"))
    bigger = np.asarray(Image.fromarray(pixels).resize((97, 61)))  # not square, not the model's size
    (text := tmp_path / "notes.txt").write_text("not an image")
    from_file, from_array, from_bigger, bad = run.predict([image, pixels, bigger, text], runtime="keras")
    assert isinstance(from_file, hh.Prediction) and from_file.file == str(image) and from_file.error is None
    assert from_file.label == from_array.label == from_bigger.label == "class1"
    assert from_array.file == "<array 1>" and from_bigger.file == "<array 2>"
    assert from_array.probabilities == pytest.approx(from_file.probabilities, abs=1e-6)  # resized as the file was
    assert sum(from_file.probabilities.values()) == pytest.approx(1.0, abs=1e-5)
    assert from_file.probability == from_file.probabilities["class1"] and from_file.unsure_reason is None
    assert bad.label is None and str(text) in bad.error  # a per-file error, as `predict` has
    assert [p.file for p in run.predict(data / "validation-horse-or-human" / "class0")] == [
        str(p) for p in sorted((data / "validation-horse-or-human" / "class0").iterdir())
    ]  # a folder is walked, in order


@pytest.mark.parametrize(
    "array", [np.zeros((8, 8), np.uint8), np.zeros((8, 8, 4), np.uint8), np.zeros((8, 8, 3), np.float32)]
)
def test_an_array_that_is_not_rgb_uint8_is_one_error_naming_its_shape(centroid_run, array):
    run = hh.load_run(centroid_run[0])
    with pytest.raises(hh.HorsesHumansError, match=re.escape(f"<array 0>: an array of shape {array.shape}")):
        run.predict([array], runtime="keras")


def test_evaluate_returns_what_it_writes(centroid_run):
    run_dir, data = centroid_run
    metrics = hh.load_run(run_dir).evaluate(data)
    assert metrics == json.loads((run_dir / "evaluation.json").read_text())
    assert metrics["accuracy"] == 1.0 and metrics["images"] == 3 * 2 and metrics["folder"].startswith(str(data))


def test_exporting_an_unknown_format_says_which_exist(centroid_run):
    with pytest.raises(hh.HorsesHumansError, match="coreml.*onnx"):
        hh.load_run(centroid_run[0]).export("coreml")


def example_code() -> str:
    """The one ```python block of docs/python-api.md's Example section."""
    text = (ROOT / "docs" / "python-api.md").read_text()
    example = text.split("## Example", 1)[1]
    (code,) = re.findall(r"```python\n(.*?)```", example, re.S)
    return code


@pytest.mark.slow
def test_the_documented_example_runs_as_written(tmp_path, monkeypatch, capsys):
    make_dataset(tmp_path / "data", train_per_class=12, val_per_class=4)
    monkeypatch.chdir(tmp_path)
    exec(compile(example_code(), "docs/python-api.md", "exec"), {"__name__": "example"})
    lines = capsys.readouterr().out.splitlines()
    (run_dir,) = (tmp_path / "runs").iterdir()
    assert lines[0].startswith(f"{run_dir.name} ['horses', 'humans'] ")
    assert lines[1].split()[:1] == [str(sorted(Path("data/validation-horse-or-human/horses").iterdir())[0])]
    assert lines[2].startswith("<array 1> ") and lines[1].split()[1] == lines[2].split()[2]  # the same label
    assert re.fullmatch(r"validation accuracy \d\.\d{3} on 8 images", lines[3])
    assert (
        Path(lines[4]).resolve() == run_dir / "export" / "web" and (run_dir / "export" / "web" / "model.onnx").is_file()
    )
    assert lines[5] in ("horses", "humans", "unsure")


def test_the_api_is_what_the_cli_runs(centroid_run, tmp_path, capsys):
    """`predict` and hh's Run.predict give the same rows for the same file."""
    from horses_humans.cli.main import main

    run_dir, data = centroid_run
    image = sorted((data / "validation-horse-or-human" / "class2").iterdir())[0]
    assert main(["predict", str(run_dir), str(image), "--json", "--runtime", "keras"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    (prediction,) = hh.load_run(run_dir).predict(image, runtime="keras")
    assert {k: v for k, v in row.items() if k != "model"} == prediction.to_dict()


def test_hh_train_takes_resize_and_the_run_decodes_by_it(tmp_path):
    from .data.test_resize import edged, save_png

    make_dataset(tmp_path / "data", train_per_class=4, val_per_class=2)
    with pytest.raises(hh.HorsesHumansError, match="--resize 'stretch': choose one of squash, crop, pad"):
        hh.train(tmp_path / "data", recipe="baseline", runs_dir=tmp_path / "runs", resize="stretch")
    run = hh.train(
        tmp_path / "data", recipe="baseline", runs_dir=tmp_path / "runs", epochs=1, image_size=32, resize="crop"
    )
    assert run.config.resize == "crop" and json.loads((run.path / "labels.json").read_text())["resize"] == "crop"
    photo = save_png(edged(), tmp_path / "wide.png")
    from_file, from_pixels = run.predict([photo, np.asarray(Image.open(photo))], runtime="keras")
    assert from_file.probabilities == from_pixels.probabilities
