"""`export --format tfjs`: a TF.js graph model by the official converter in its own venv, checked in Node.

The slow tests convert for real (the converter's venv is built once, into the user's cache, by the first of them or
by scripts/setup-test.sh) and run the files with @tensorflow/tfjs in Node reading nothing but model.json and its
shards: the labels from its metadata must be predict's and the probabilities within 1e-4, for a two-class sigmoid run
with a temperature and an unsure rule and a three-class --tta run that answers a mirrored image otherwise. The fast
ones do the faults: no node, no @tensorflow/tfjs, no pip index, a damaged shard.
"""

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

from horses_humans.config import HorsesHumansError
from horses_humans.data.layouts import VALIDATION
from horses_humans.export import clients, formats, tfjs, tfjs_env
from horses_humans.export import pipeline as ex
from horses_humans.export.onnx_file import metadata
from horses_humans.inference.predictor import Predictor
from horses_humans.inference.unsure import UNSURE, UnsureRule, save_rule
from horses_humans.runs.layout import EXPORT_DIR
from horses_humans.runs.store import MODEL_CARD_FILE, load_run, update_calibration

from ..centroid_runs import centroid_setup, write_centroid_run
from ..tiers import slow_fixture
from .test_served_exports import label_of, load_image, predicted

CONVERTER_ENV = tfjs_env.env_dir()  # the real user cache, read before the tests' own cache folders are set


@pytest.fixture
def converter_env(monkeypatch):
    """The converter's venv in the user's cache, built once for every test run (not in each test's own cache)."""
    monkeypatch.setenv(tfjs_env.ENV_TFJS_ENV, str(CONVERTER_ENV))


def export_tfjs(run: Path, data: Path, quantize: str = "none") -> ex.ExportResult:
    return ex.export(ex.open_source(run, data, log=lambda line: None), "tfjs", quantize, latency_runs=3)


@pytest.fixture(scope="module")
@slow_fixture
def sigmoid_run(tmp_path_factory):
    """(run, validation images): two classes, temperature 2.0, an unsure rule answering about half unsure; exported."""
    run, data = centroid_setup(tmp_path_factory.mktemp("sigmoid"), 2)
    update_calibration(run, temperature=2.0)
    images = sorted((data / VALIDATION).rglob("*.png"))
    confidence = [r.probability for r in Predictor.from_run(run, runtime="keras").predict_files(images)]
    save_rule(run, UnsureRule(min_confidence=float(np.median(confidence))))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(tfjs_env.ENV_TFJS_ENV, str(CONVERTER_ENV))
        result = export_tfjs(run, data)
    assert result.shipped, result.error
    return run, images


@pytest.fixture(scope="module")
@slow_fixture
def softmax_tta_run(tmp_path_factory):
    """(run, validation images): three classes, a model that tells left from right, --tta, temperature 0.7."""
    run, data = centroid_setup(tmp_path_factory.mktemp("softmax"), 3, lopsided=True, tta=True)
    update_calibration(run, temperature=0.7)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(tfjs_env.ENV_TFJS_ENV, str(CONVERTER_ENV))
        result = export_tfjs(run, data)
    assert result.shipped, result.error
    return run, sorted((data / VALIDATION).rglob("*.png"))


@pytest.fixture(params=["sigmoid_run", "softmax_tta_run"])
def tfjs_run(request):
    return request.getfixturevalue(request.param)


def plain_tfjs(folder: Path, images: list[Path]) -> tuple[dict, np.ndarray, list[str]]:
    """(metadata, probabilities (N, C), labels) from @tensorflow/tfjs in Node, knowing nothing but the folder's
    model.json and shards (the input size and classes from model.json's metadata)."""
    meta = json.loads((folder / tfjs.MODEL_JSON).read_text())["userDefinedMetadata"][tfjs.METADATA_KEY]
    pixels = np.stack([load_image(path, meta["image_size"]) for path in images])
    probabilities = tfjs.TfjsRuntime(folder / tfjs.MODEL_JSON).predict(pixels)
    as_strings = {key: value if isinstance(value, str) else json.dumps(value) for key, value in meta.items()}
    return meta, probabilities, [label_of(row, as_strings, meta["class_names"]) for row in probabilities]


# ---------------------------------------------------------------- the real converter and TF.js in Node


@pytest.mark.slow  # tfjs_run reaches its slow fixtures by getfixturevalue, which tiers.py cannot see
def test_tfjs_in_node_reading_only_the_folder_answers_like_predict(tfjs_run):
    run, images = tfjs_run
    labels, probabilities = predicted(run, images)
    meta, got, got_labels = plain_tfjs(run / EXPORT_DIR / "tfjs", images)
    assert meta["class_names"] == load_run(run).class_names
    assert got_labels == labels
    np.testing.assert_allclose(got, probabilities, atol=1e-4)


def test_the_sigmoid_runs_unsure_rule_travels_in_model_json_and_holds_some_images_back(sigmoid_run):
    run, images = sigmoid_run
    meta, _, labels = plain_tfjs(run / EXPORT_DIR / "tfjs", images)
    assert meta["unsure_threshold"] > 0.5 and meta["temperature_applied"] == 2.0 and meta["threshold"] == 0.5
    assert UNSURE in labels and set(labels) - {UNSURE}


def test_model_json_carries_the_onnx_metadata_typed_and_the_folder_its_readme_and_card(softmax_tta_run):
    run, _ = softmax_tta_run
    folder = run / EXPORT_DIR / "tfjs"
    model = json.loads((folder / tfjs.MODEL_JSON).read_text())
    meta = model["userDefinedMetadata"][tfjs.METADATA_KEY]
    loaded = load_run(run)
    onnx_meta = metadata(loaded, loaded.output, UnsureRule(), True)
    assert meta.keys() == onnx_meta.keys() and "unsure_threshold" not in meta and "threshold" not in meta
    assert meta["class_names"] == json.loads(onnx_meta["class_names"]) and meta["flip_average_applied"] is True
    assert list(model["signature"]["inputs"]) == ["image"] and list(model["signature"]["outputs"]) == ["probabilities"]
    assert model["signature"]["inputs"]["image"]["dtype"] == "DT_UINT8"
    record = json.loads((folder / "export.json").read_text())
    assert record["parity"]["passed"] and record["runtime"] == tfjs.TfjsRuntime.name
    shards = [path for group in model["weightsManifest"] for path in group["paths"]]
    assert set(record["files"]) >= {tfjs.MODEL_JSON, *shards, MODEL_CARD_FILE, "README.md", "labels.json"}
    assert record["model_bytes"] == tfjs.graph_model_bytes(folder / tfjs.MODEL_JSON)
    readme = (folder / "README.md").read_text()
    assert "tf.loadGraphModel" in readme and "```python" not in readme


@pytest.mark.slow
def test_float16_stores_every_float_weight_in_half_precision_within_1e_2(tmp_path, converter_env):
    run, data = centroid_setup(tmp_path, 3)
    result = export_tfjs(run, data, "float16")
    assert result.shipped, result.error
    assert result.parity.max_abs_diff <= 1e-2 and result.name == "tfjs-float16"
    model = json.loads((result.path / tfjs.MODEL_JSON).read_text())
    floats = [w for group in model["weightsManifest"] for w in group["weights"] if w["dtype"] == "float32"]
    assert floats and all(w.get("quantization", {}).get("dtype") == "float16" for w in floats)


@pytest.mark.slow
def test_a_damaged_shard_fails_the_parity_check_and_is_never_published(tmp_path, converter_env, monkeypatch):
    run, data = centroid_setup(tmp_path, 2)
    real_convert = tfjs.convert

    def convert_then_damage(python, saved, folder, meta, quantize):
        real_convert(python, saved, folder, meta, quantize)
        (shard,) = folder.glob("group1-shard*.bin")
        values = np.fromfile(shard, np.float32)  # every weight here is 4 bytes (float32 or int32), in manifest order
        start, largest = 0, (0, 0)
        for weight in json.loads((folder / tfjs.MODEL_JSON).read_text())["weightsManifest"][0]["weights"]:
            size = int(np.prod(weight["shape"]))
            if weight["dtype"] == "float32" and size > largest[1]:
                largest = (start, size)
            start += size
        damaged = slice(largest[0], largest[0] + largest[1])  # the biggest kernel, negated and skewed
        values[damaged] = np.linspace(0.0, 1.0, largest[1]) - values[damaged]
        values.tofile(shard)

    monkeypatch.setattr(tfjs, "convert", convert_then_damage)
    result = export_tfjs(run, data)
    assert not result.shipped and result.error.startswith("parity failed")
    assert not (run / EXPORT_DIR / "tfjs").exists()


# ---------------------------------------------------------------- faults, without converting


def test_without_node_the_format_is_one_error_line_naming_nodejs(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty folder: no node on PATH
    with pytest.raises(HorsesHumansError) as raised:
        formats.check_request("tfjs", "none")
    assert "node is not on PATH" in str(raised.value) and "nodejs" in str(raised.value)
    assert "\n" not in str(raised.value)


def test_without_the_tfjs_package_the_format_is_one_error_line_saying_npm_ci(monkeypatch, tmp_path):
    monkeypatch.setenv(tfjs.ENV_TFJS, str(tmp_path / "node_modules" / "@tensorflow" / "tfjs"))
    with pytest.raises(HorsesHumansError) as raised:
        formats.check_request("tfjs", "none")
    message = str(raised.value)
    assert str(tmp_path) in message and "npm ci --prefix web" in message and "\n" not in message


def test_tfjs_takes_float16_but_not_int8_and_export_all_leaves_it_out():
    assert formats.check_request("tfjs", "float16").name == "tfjs"
    with pytest.raises(HorsesHumansError, match="does not take --quantize int8"):
        formats.check_request("tfjs", "int8")
    assert not [request for request in formats.ALL if request[0] == "tfjs"]


def test_offline_the_converter_venv_build_is_one_error_line_and_leaves_nothing(monkeypatch, tmp_path):
    target = tmp_path / "tfjs-env"
    monkeypatch.setenv(tfjs_env.ENV_TFJS_ENV, str(target))
    monkeypatch.setenv("PIP_CONFIG_FILE", "/dev/null")  # no configured indexes or wheel folders
    monkeypatch.setenv("PIP_NO_INDEX", "1")  # and no PyPI: what an offline machine sees
    with pytest.raises(HorsesHumansError) as raised:
        tfjs_env.converter_python(log=lambda line: None)
    message = str(raised.value)
    assert "could not install tensorflowjs" in message and str(tfjs_env.CONSTRAINTS) in message
    assert "\n" not in message
    assert not target.exists() and not target.with_name("tfjs-env.building").exists()


def test_a_finished_venv_is_used_as_it_is_without_pip(monkeypatch, tmp_path):
    target = tmp_path / "tfjs-env"
    (target / "bin").mkdir(parents=True)
    (target / tfjs_env.READY).write_text("")
    monkeypatch.setenv(tfjs_env.ENV_TFJS_ENV, str(target))
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    assert tfjs_env.converter_python(log=lambda line: None) == target / "bin" / "python"


def test_the_venv_key_follows_the_pins(monkeypatch, tmp_path):
    monkeypatch.delenv(tfjs_env.ENV_TFJS_ENV, raising=False)
    before = tfjs_env.env_dir()
    pins = tmp_path / "tfjs-constraints.txt"
    pins.write_text(tfjs_env.CONSTRAINTS.read_text() + "six==1.16.0\n")
    monkeypatch.setattr(tfjs_env, "CONSTRAINTS", pins)
    assert tfjs_env.env_dir() != before and tfjs_env.env_dir().parent == before.parent


def test_the_pins_hold_the_converter_and_the_versions_it_needs():
    pins = dict(line.split("==") for line in tfjs_env.CONSTRAINTS.read_text().splitlines() if line and line[0] != "#")
    assert pins["tensorflowjs"] == "4.22.0" and pins["tensorflow"].startswith("2.19.")
    assert pins["ydf"] == "0.13.0" and int(pins["protobuf"].split(".")[0]) < 6


def test_the_metadata_leaves_out_what_the_run_lacks_and_types_the_rest(tmp_path):
    run = load_run(write_centroid_run(tmp_path, 2))
    bare = tfjs.tfjs_metadata(run, UnsureRule())
    assert bare["class_names"] == list(run.class_names)
    assert bare["image_size"] == 32 and bare["threshold"] == 0.5 and bare["resize"] == "squash"
    assert not {"unsure_threshold", "reject_class", "temperature_applied", "flip_average_applied"} & bare.keys()
    ruled = tfjs.tfjs_metadata(run, UnsureRule(min_confidence=0.75))
    assert ruled["unsure_threshold"] == 0.75


def test_the_readme_client_reads_the_metadata_from_model_json(tmp_path):
    run = load_run(write_centroid_run(tmp_path, 2))
    text = clients.readme("tfjs", tfjs.MODEL_JSON, run)
    assert "model.metadata.horses_humans" in text and "@tensorflow/tfjs@" + tfjs.TFJS_VERSION in text
    assert "--format onnx" in text  # the Python section sends Python users to the onnx export


def test_the_node_runner_script_parses():
    if subprocess.run(["node", "--version"], capture_output=True).returncode != 0:
        pytest.fail("node is missing: scripts/setup-web.sh installs it")
    done = subprocess.run(["node", "--check", str(tfjs.RUNNER)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_web_package_pins_tfjs_at_the_version_the_readme_names():
    root = Path(__file__).resolve().parents[2]
    assert json.loads((root / "web" / "package.json").read_text())["dependencies"]["@tensorflow/tfjs"] == (
        tfjs.TFJS_VERSION
    )
    lock = json.loads((root / "web" / "package-lock.json").read_text())
    assert lock["packages"]["node_modules/@tensorflow/tfjs"]["version"] == tfjs.TFJS_VERSION


def test_the_parity_check_spreads_a_limited_sample_over_the_whole_split():
    assert ex.checked_images(16, formats.TFJS_CHECK_IMAGES) == slice(None)  # a small split: every image
    pick = ex.checked_images(256, formats.TFJS_CHECK_IMAGES)
    assert len(pick) == formats.TFJS_CHECK_IMAGES and pick[0] == 0 and pick[-1] == 255
    labels = np.repeat([0, 1], 128)  # the split as it is stored: one class, then the next
    assert np.bincount(labels[pick]).tolist() == [16, 16]
    assert formats.FORMATS["tfjs"].check_images == formats.TFJS_CHECK_IMAGES
