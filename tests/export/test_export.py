"""export: every format and quantization ships only after its parity check; what ships opens in standard tooling."""

import json
import subprocess
import sys

import numpy as np
import pytest

from horses_humans.cli.main import main
from horses_humans.config import HorsesHumansError
from horses_humans.core.tables import exports_table, write_exports_markdown
from horses_humans.data.images import load_pixels
from horses_humans.export import formats, webbuild
from horses_humans.export import pipeline as ex
from horses_humans.export.parity import RULES, check_parity, p50_latency_ms
from horses_humans.export.source import strip_augmentation
from horses_humans.inference.predictor import Predictor
from horses_humans.inference.runtimes import SavedModelRuntime
from horses_humans.models.outputs import ClassOutput
from horses_humans.runs.store import load_run

from ..synthetic import write_image
from ..tiers import slow_fixture

RAW = [(f, q) for f, q in formats.ALL if not formats.FORMATS[f].served]  # raw output out; labels.json says how to read
SERVED = [(f, q) for f, q in formats.ALL if formats.FORMATS[f].served]  # predict's probabilities (test_served_exports)


@pytest.fixture(scope="module")
def baseline_source(baseline_run, views_data):
    return ex.open_source(baseline_run, views_data[0], views_data[1], log=lambda s: None)


@pytest.fixture(scope="module")
@slow_fixture
def baseline_exports(baseline_source):
    """Every format and quantization of the one-epoch 32 px baseline, exported once for the module."""
    return {r.name: r for r in ex.export_all(baseline_source, latency_runs=3)}


# ---------------------------------------------------------------- parity rules

BINARY = ClassOutput.for_classes(["horses", "humans"])


def binary_parity(reference, candidate, quantize):
    """check_parity on two sets of P(humans) (N,), as the two-class model's (N, 2) probability matrices."""
    return check_parity(BINARY.probabilities(reference), BINARY.probabilities(candidate), quantize, BINARY)


def test_float_exports_must_agree_to_1e_4():
    reference = np.linspace(0.01, 0.99, 50)
    assert binary_parity(reference, reference + 9e-5, "none").passed
    failed = binary_parity(reference, reference + 2e-4, "none")
    assert not failed.passed and failed.max_abs_diff == pytest.approx(2e-4, rel=1e-3) and failed.label_agreement == 1.0
    assert failed.mean_abs_diff == pytest.approx(
        2e-4, rel=1e-3
    )  # both columns move alike: the numbers stay P(humans)'s


def test_float16_exports_must_agree_to_1e_2():
    reference = np.linspace(0.01, 0.99, 50)
    assert binary_parity(reference, reference - 0.009, "float16").passed
    assert not binary_parity(reference, reference - 0.011, "float16").passed


@pytest.mark.parametrize("quantize", ["dynamic", "int8"])
def test_integer_exports_must_agree_on_99_percent_of_labels(quantize):
    reference = np.r_[np.full(50, 0.9), np.full(50, 0.1)]
    one_flip, two_flips = reference.copy(), reference.copy()
    one_flip[0] = 0.4
    two_flips[[0, 99]] = [0.4, 0.6]
    assert binary_parity(reference, one_flip, quantize).label_agreement == pytest.approx(0.99)
    assert binary_parity(reference, one_flip, quantize).passed
    assert not binary_parity(reference, two_flips, quantize).passed


def test_labels_are_read_at_the_runs_threshold():
    strict = ClassOutput.for_classes(["horses", "humans"], threshold=0.8)
    reference, candidate = strict.probabilities(np.full(10, 0.85)), strict.probabilities(np.full(10, 0.75))
    assert check_parity(reference, candidate, "int8", BINARY).label_agreement == 1.0  # both humans at 0.5
    assert check_parity(reference, candidate, "int8", strict).label_agreement == 0.0  # humans vs horses at 0.8


def test_softmax_parity_compares_every_class_and_the_argmax():
    three = ClassOutput.for_classes(["a", "b", "c"])
    reference = np.tile([[0.6, 0.3, 0.1]], (100, 1))
    close = reference + [0.0, 5e-5, -5e-5]
    assert check_parity(reference, close, "none", three).passed
    moved = reference.copy()
    moved[:, 2] += 2e-4  # only the least likely class moves: still a float-rule failure
    failed = check_parity(reference, moved, "none", three)
    assert not failed.passed and failed.max_abs_diff == pytest.approx(2e-4) and failed.label_agreement == 1.0
    assert failed.mean_abs_diff == pytest.approx(2e-4 / 3)  # over all N x C entries
    flipped = reference.copy()
    flipped[0] = [0.3, 0.6, 0.1]
    assert check_parity(reference, flipped, "int8", three).label_agreement == pytest.approx(0.99)
    flipped[1] = [0.1, 0.3, 0.6]
    assert not check_parity(reference, flipped, "int8", three).passed


def test_with_the_distance_check_a_uniform_row_agrees_only_with_a_uniform_row():
    three = ClassOutput.for_classes(["a", "b", "c"])
    reference = np.tile([[0.8, 0.1, 0.1]], (100, 1))
    reference[0] = 1 / 3  # the check fired: unsure, whatever argmax says (a)
    candidate = reference.copy()
    candidate[0] = [0.34, 0.33, 0.33]  # the quantized check did not fire: answered a
    candidate[1] = 1 / 3  # and fired on an image the model answers
    assert check_parity(reference, candidate, "int8", three).label_agreement == 1.0  # argmax alone: all a
    checked = check_parity(reference, candidate, "int8", three, distance=True)
    assert checked.label_agreement == pytest.approx(0.98) and not checked.passed
    both = reference.copy()
    both[0] = [0.3333, 0.3333, 0.3333]  # quantized uniform: the same answer
    assert check_parity(reference, both, "int8", three, distance=True).label_agreement == 1.0


def test_nan_probabilities_never_pass():
    reference = np.full(10, 0.7)
    assert not binary_parity(reference, np.r_[np.full(9, 0.7), np.nan], "none").passed
    three = ClassOutput.for_classes(["a", "b", "c"])
    softmax = np.tile([[0.8, 0.1, 0.1]], (100, 1))
    broken = softmax.copy()
    broken[:2] = np.nan  # argmax of a NaN row is 0, class a's index: it must not count as agreeing
    assert check_parity(softmax, broken, "int8", three).label_agreement == pytest.approx(0.98)


def test_parity_needs_matching_probabilities():
    with pytest.raises(ValueError, match="equal, non-empty"):
        check_parity(np.zeros((3, 2)), np.zeros((4, 2)), "none", BINARY)
    with pytest.raises(ValueError, match=r"\(N, 2\)"):
        check_parity(np.zeros(3), np.zeros(3), "none", BINARY)  # P(class 1) alone is not the matrix


def test_every_quantization_has_a_rule():
    assert set(RULES) == set(formats.QUANTIZE)


def test_p50_latency_times_single_image_calls():
    calls = []
    latency = p50_latency_ms(lambda batch: calls.append(batch.shape), np.zeros((8, 8, 3), np.uint8), runs=7, warmup=2)
    assert calls == [(1, 8, 8, 3)] * 9 and latency >= 0


# ---------------------------------------------------------------- exports of a trained model


def fresh_images(tmp_path, size=40, count=4) -> list:
    """Images the model has not seen (written with another seed than the data set's)."""
    rng = np.random.default_rng(123)
    paths = [tmp_path / f"new-{i}.png" for i in range(count)]
    for i, path in enumerate(paths):
        write_image(path, i % 2, rng, size, mode="RGB")
    return paths


@pytest.mark.parametrize("name", [formats.export_name(f, q) for f, q in RAW])
def test_every_export_ships_with_its_labels(baseline_exports, baseline_run, name):
    result = baseline_exports[name]
    assert result.shipped, result.error
    folder = baseline_run / "export" / name
    assert result.path == folder and (folder / formats.FORMATS[result.format].file).exists()
    labels = json.loads((folder / "labels.json").read_text())
    assert labels["class_names"] == ["horses", "humans"] and labels["threshold"] == 0.5 and labels["input_size"] == 32
    assert labels["output_kind"] == "sigmoid" and labels["output_shape"] == [None, 1] and "'humans'" in labels["output"]
    assert labels["pixel_range"] == [0, 255] and labels["input"]["shape"] == [None, 32, 32, 3]
    assert (labels["format"], labels["quantize"]) == (result.format, result.quantize)
    assert (
        labels["temperature"] == load_run(baseline_run).output.temperature
    )  # the export serves calibrated probabilities
    manifest = json.loads((folder / "export.json").read_text())
    assert manifest["parity"]["passed"] and manifest["parity"]["images"] == 16
    assert manifest["parity"]["rule"] == result.parity.rule and manifest["model_bytes"] == result.model_bytes > 0
    assert result.latency_ms > 0 and result.accuracy == manifest["validation_accuracy"]


def test_quantized_exports_are_smaller(baseline_exports):
    size = {name: r.model_bytes for name, r in baseline_exports.items()}
    assert size["tflite-float16"] < 0.55 * size["tflite"]
    assert size["tflite-int8"] < 0.3 * size["tflite"] and size["tflite-dynamic"] < 0.3 * size["tflite"]
    assert size["web-dynamic"] < 0.45 * size["web"]  # at 32 px the dense layer is 83% of the weights


def test_web_dynamic_quantizes_dense_layers_only(baseline_exports):
    import onnx

    ops = {node.op_type for node in onnx.load(baseline_exports["web-dynamic"].path / "model.onnx").graph.node}
    assert "MatMulInteger" in ops and "Conv" in ops and "ConvInteger" not in ops


def standard_predictions(folder, fmt, pixels):
    """Raw outputs (N, K) from each format's own library, without this package's runtimes (K = 1: P(class 1))."""
    x = pixels.astype(np.float32)
    if fmt == "keras":
        import keras

        return np.asarray(keras.saving.load_model(folder / "model.keras", compile=False).predict_on_batch(x)).reshape(
            len(x), -1
        )
    if fmt == "savedmodel":
        import tensorflow as tf

        loaded = tf.saved_model.load(str(folder / "saved_model"))  # kept alive while `serve` runs
        return np.asarray(loaded.signatures["serving_default"](pixels=x)["output_0"]).reshape(len(x), -1)
    if fmt == "web":
        import onnxruntime

        session = onnxruntime.InferenceSession(str(folder / "model.onnx"), providers=["CPUExecutionProvider"])
        return session.run(None, {session.get_inputs()[0].name: x})[0].reshape(len(x), -1)
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(folder / "model.tflite"))
    interpreter.allocate_tensors()
    (inp,), (out,) = interpreter.get_input_details(), interpreter.get_output_details()
    outputs = []
    for image in x:
        interpreter.set_tensor(inp["index"], image[None])
        interpreter.invoke()
        outputs.append(interpreter.get_tensor(out["index"]).reshape(-1))
    return np.array(outputs)


@pytest.mark.parametrize("name", [formats.export_name(f, q) for f, q in RAW])
def test_shipped_export_answers_like_keras_on_new_images(baseline_exports, baseline_run, tmp_path, name):
    result = baseline_exports[name]
    pixels = np.stack([load_pixels(path, 32) for path in fresh_images(tmp_path)])
    expected = Predictor.from_run(baseline_run, runtime="keras").predict_proba(pixels)[:, 1]
    got = standard_predictions(result.path, result.format, pixels).ravel()
    metric, bound = RULES[result.quantize]
    if metric == "max_abs_diff":
        assert np.abs(got - expected).max() <= bound
    else:
        assert np.array_equal(got >= 0.5, expected >= 0.5) and np.abs(got - expected).max() < 0.05


@pytest.mark.parametrize("name", [formats.export_name(f, q) for f, q in SERVED])
def test_served_export_run_alone_answers_like_predict_on_new_images(baseline_exports, baseline_run, tmp_path, name):
    from .test_served_exports import plain_litert, plain_onnx

    result, images = baseline_exports[name], fresh_images(tmp_path)
    assert result.shipped, result.error
    expected = Predictor.from_run(baseline_run, runtime="keras").predict_proba(
        np.stack([load_pixels(path, 32) for path in images])
    )
    got = (
        plain_onnx(result.path / "model.onnx", images)[1]
        if result.format == "onnx"
        else plain_litert(result.path, images)[1]
    )
    metric, bound = RULES[result.quantize]
    if metric == "max_abs_diff":
        assert np.abs(got - expected).max() <= bound
    else:
        assert np.array_equal(got[:, 1] >= 0.5, expected[:, 1] >= 0.5) and np.abs(got - expected).max() < 0.05


@pytest.mark.parametrize("fmt", [f for f, q in RAW if q == "none"])
def test_the_readmes_python_client_of_every_raw_format_runs(baseline_exports, baseline_run, tmp_path, fmt):
    """The README's client (the model's own, uncalibrated probabilities: labels.json says how to go on from them)."""
    from horses_humans.export.clients import README_FILE, python_client

    folder = baseline_exports[fmt].path
    assert {README_FILE, "MODEL_CARD.md"} <= set(json.loads((folder / "export.json").read_text())["files"])
    image = fresh_images(tmp_path, count=1)[0]
    client = python_client((folder / README_FILE).read_text())
    done = subprocess.run([sys.executable, "-c", client, str(image)], cwd=folder, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    expected = Predictor.uncalibrated(load_run(baseline_run)).predict_proba(load_pixels(image, 32)[None])[0]
    answer = json.loads(done.stdout.splitlines()[-1])
    np.testing.assert_allclose(list(answer["probabilities"].values()), expected, atol=1e-4)


def test_augmentation_is_stripped_for_export_and_answers_the_same():
    from horses_humans.config import TrainConfig
    from horses_humans.models.recipes import build_model

    model = build_model(TrainConfig(recipe="augmented", image_size=32))
    stripped = strip_augmentation(model)
    assert not any(type(layer).__name__.startswith("Random") for layer in stripped.layers)
    assert [layer.name for layer in stripped.layers] == [layer.name for layer in model.layers]
    x = np.random.default_rng(0).integers(0, 256, (4, 32, 32, 3)).astype(np.float32)
    assert np.array_equal(np.asarray(stripped(x)), np.asarray(model(x, training=False)))
    plain = build_model(TrainConfig(recipe="baseline", image_size=32))
    assert strip_augmentation(plain) is plain


def test_web_build_is_a_self_contained_static_site(baseline_exports):
    folder = baseline_exports["web"].path
    page = (folder / "index.html").read_text()
    assert "{{" not in page and '<script src="./ort.wasm.min.js">' in page
    for name in webbuild.ORT_WEB_FILES + webbuild.PAGE_FILES + ("labels.json", "model.onnx"):
        assert (folder / name).stat().st_size > 0, name
    assert json.loads((folder / "labels.json").read_text())["model_file"] == "model.onnx"


def test_web_build_without_local_runtime_points_at_the_pinned_cdn(baseline_source, monkeypatch, tmp_path):
    monkeypatch.setattr(webbuild, "find_ort_web", lambda: None)
    notes = []
    base = webbuild.copy_ort_web(tmp_path, log=notes.append)
    assert base == webbuild.ORT_WEB_CDN and webbuild.ORT_WEB_VERSION in base and "needs internet" in notes[0]
    assert not list(tmp_path.iterdir())


def test_a_runtime_folder_missing_files_is_a_clear_error(monkeypatch, tmp_path):
    (tmp_path / "ort.wasm.min.js").write_text("//")
    monkeypatch.setenv(webbuild.ENV_ORT_WEB, str(tmp_path))
    with pytest.raises(HorsesHumansError, match="ort-wasm-simd-threaded.mjs, ort-wasm-simd-threaded.wasm"):
        webbuild.copy_ort_web(tmp_path / "out")


def test_exports_table_has_every_export(baseline_source, baseline_exports):
    table, path = write_exports_markdown(baseline_source, list(baseline_exports.values()))
    assert path.read_text() == table
    rows = [line for line in table.splitlines() if line.startswith("| ") and not line.startswith("| export")]
    assert [row.split(" | ")[0][2:] for row in rows] == [formats.export_name(f, q) for f, q in formats.ALL]
    assert "| tflite | LiteRT | model.tflite |" in table and "| 1.0000 |" in table  # float TFLite is the size reference


# ---------------------------------------------------------------- failures are reported, not shipped


def test_failed_parity_ships_nothing_and_keeps_the_previous_export(baseline_source, monkeypatch):
    first = ex.export(baseline_source, "keras", latency_runs=1)
    before = (first.path / "export.json").read_text()
    monkeypatch.setitem(RULES, "none", ("max_abs_diff", -1.0))  # nothing can pass
    result = ex.export(baseline_source, "keras", latency_runs=1)
    assert not result.shipped and result.error.startswith("parity failed: max |dp| <= -1")
    assert (first.path / "export.json").read_text() == before
    assert not [p for p in first.path.parent.iterdir() if p.name.startswith(".")], "staging left behind"


def test_converter_failure_is_reported_and_the_rest_still_export(baseline_source, monkeypatch):
    def broken(source, target, quantize):
        raise RuntimeError("converter exploded\nsecond line")

    monkeypatch.setitem(
        formats.FORMATS, "savedmodel", formats.Format("savedmodel", "saved_model", broken, SavedModelRuntime)
    )
    results = ex.export_all(baseline_source, [("savedmodel", "none"), ("keras", "none")], latency_runs=1)
    assert [r.shipped for r in results] == [False, True]
    assert results[0].error == "RuntimeError: converter exploded"
    assert not [p for p in (baseline_source.run.path / "export").iterdir() if p.name.startswith(".")]


def test_export_replaces_an_earlier_one_of_the_same_name(baseline_source):
    first = ex.export(baseline_source, "tflite", "float16", latency_runs=1)
    marker = first.path / "stale.txt"
    marker.write_text("from before")
    second = ex.export(baseline_source, "tflite", "float16", latency_runs=1)
    assert second.path == first.path and not marker.exists() and (second.path / "model.tflite").exists()
    assert oct(second.path.stat().st_mode & 0o777) != oct(0o700)  # an ordinary folder, not mkdtemp's private one


@pytest.mark.parametrize(
    "fmt,quantize,words",
    [
        ("keras", "int8", "--format keras does not take --quantize int8"),
        ("web", "float16", "--format web does not take --quantize float16"),
        ("coreml", "none", "unknown export format 'coreml': choose one of keras, savedmodel, tflite, web, onnx"),
        ("onnx", "dynamic", "--format onnx does not take --quantize dynamic"),
    ],
)
def test_bad_format_requests_are_clear_errors(fmt, quantize, words):
    with pytest.raises(HorsesHumansError, match=words.replace("-", r"\-")):
        formats.check_request(fmt, quantize)


def test_a_missing_export_dependency_names_the_extra(monkeypatch):
    real = formats.importlib.util.find_spec
    monkeypatch.setattr(
        formats.importlib.util, "find_spec", lambda name: None if name == "ai_edge_litert" else real(name)
    )
    with pytest.raises(HorsesHumansError, match=r"needs ai_edge_litert: pip install 'horses-humans\[export\]'"):
        formats.check_request("tflite", "int8")


# ---------------------------------------------------------------- the command


def test_cli_export_prints_the_table_and_exits_0(baseline_run, views_data, capsys):
    code = main(
        [
            "export",
            str(baseline_run),
            "--format",
            "tflite",
            "--quantize",
            "int8",
            "--latency-runs",
            "2",
            "--data-dir",
            str(views_data[0]),
            "--cache-dir",
            str(views_data[1]),
        ]
    )
    out, err = capsys.readouterr()
    assert code == 0, err
    assert out.startswith(f"**{baseline_run.name}**") and "| tflite-int8 | LiteRT | model.tflite |" in out
    assert "tflite-int8: " in err and str(baseline_run / "export" / "tflite-int8") in err


def test_cli_export_exits_1_when_an_export_fails_parity(baseline_run, views_data, capsys, monkeypatch):
    monkeypatch.setitem(RULES, "none", ("max_abs_diff", -1.0))
    code = main(
        ["export", str(baseline_run), "--format", "keras", "--latency-runs", "1", "--data-dir", str(views_data[0])]
    )
    out, err = capsys.readouterr()
    assert code == 1 and "**not shipped**: parity failed" in out and "keras: NOT shipped" in err


@pytest.mark.parametrize(
    "args,words",
    [
        (["--format", "keras", "--quantize", "int8"], "does not take --quantize int8"),
        (["--all", "--quantize", "int8"], "--all exports every quantization already"),
        (["--format", "tflite", "--latency-runs", "0"], "--latency-runs must be a positive integer"),
    ],
)
def test_cli_export_bad_options_exit_2(baseline_run, args, words, capsys):
    assert main(["export", str(baseline_run), *args]) == 2
    assert words in capsys.readouterr().err


def test_cli_export_of_an_unfinished_run_or_without_data_exits_2(tmp_path, baseline_run, capsys):
    (tmp_path / "half").mkdir()
    assert main(["export", str(tmp_path / "half"), "--format", "keras"]) == 2
    assert "not a finished run" in capsys.readouterr().err
    assert main(["export", str(baseline_run), "--format", "keras", "--data-dir", str(tmp_path / "nowhere")]) == 2
    assert "nowhere" in capsys.readouterr().err


# ---------------------------------------------------------------- a transfer model (nested, frozen backbone)


# The random backbone answers about 0.4997 for every image, so a label-agreement rule (int8, dynamic) is a coin toss
# here; integer exports of MobileNetV2 are checked with its ImageNet weights on the real data (test_integration.py).
@pytest.mark.parametrize(
    "fmt,quantize", [("savedmodel", "none"), ("tflite", "none"), ("tflite", "float16"), ("web", "none")]
)
def test_mobilenet_v2_exports_through_its_nested_backbone(mobilenet_run, views_data, fmt, quantize):
    source = ex.open_source(mobilenet_run, views_data[0], views_data[1], log=lambda s: None)
    result = ex.export(source, fmt, quantize, latency_runs=1)
    assert result.shipped, result.error
    labels = json.loads((result.path / "labels.json").read_text())
    assert labels["recipe"] == "mobilenet_v2" and labels["input_size"] == 64


def test_exports_table_escapes_pipes_in_cells():
    row = {
        key: "-"
        for key in (
            "export",
            "runtime",
            "file",
            "mb",
            "folder_mb",
            "ratio",
            "accuracy",
            "mean_abs_diff",
            "max_abs_diff",
            "agreement",
            "latency",
        )
    }
    header, rule, line = exports_table([{**row, "parity": "parity failed: max |dp| <= 0.01"}]).splitlines()
    assert line.replace("\\|", "").count("|") == header.count("|") and "max \\|dp\\|" in line


def test_latency_bench_times_every_export_against_keras(baseline_exports, baseline_run):
    import subprocess
    import sys
    from pathlib import Path

    bench = Path(__file__).resolve().parents[2] / "bench" / "bench_export.py"
    done = subprocess.run(
        [sys.executable, str(bench), str(baseline_run), "--rounds", "1", "--calls", "2"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    rows = {line.split(" | ")[0][2:] for line in done.stdout.splitlines() if line.startswith("| ")}
    assert {"keras model.predict (reference)", "keras predict_on_batch (reference)"} | set(baseline_exports) <= rows
    assert "| < 5 ms: " in done.stdout  # the int8 target is judged
