"""scripts/onnx_client_check.py and its client (issue 21's Done-when) on synthetic images against a small run.

The client must import nothing but onnxruntime, numpy and Pillow; on a run with a temperature and an unsure rule it
must agree with `predict --csv` on every image, and the check must fail (exit 1) when the file's metadata lies.
"""

import ast
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from horses_humans.data.layouts import VALIDATION
from horses_humans.inference.predictor import Predictor
from horses_humans.inference.unsure import UnsureRule, save_rule
from horses_humans.runs.store import update_calibration

from ..centroid_runs import centroid_setup

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"
ALLOWED = {"__future__", "json", "sys", "pathlib", "numpy", "onnxruntime", "PIL"}


def check(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(SCRIPTS / "onnx_client_check.py"), *args], capture_output=True, text=True, timeout=600
    )


@pytest.fixture
def ruled_run(tmp_path):
    """(run, validation folder): two classes, temperature 2.0, an unsure rule that holds back about half."""
    run, data = centroid_setup(tmp_path, 2)
    update_calibration(run, temperature=2.0)
    images = sorted((data / VALIDATION).rglob("*.png"))
    confidence = [r.probability for r in Predictor.from_run(run, runtime="keras").predict_files(images)]
    save_rule(run, UnsureRule(min_confidence=float(np.median(confidence))))
    return run, data / VALIDATION


def test_the_client_imports_only_onnxruntime_numpy_and_pillow():
    tree = ast.parse((SCRIPTS / "onnx_client.py").read_text())
    imported = {
        alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names
    }
    imported |= {node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert imported <= ALLOWED, imported - ALLOWED


@pytest.mark.parametrize("resize", ["squash", "crop", "pad"])
@pytest.mark.parametrize("shape", [(45, 70), (70, 45), (33, 33)])
def test_the_client_reads_a_photo_as_predict_does_in_every_resize_mode(tmp_path, resize, shape):
    """Written from the contract alone, the client's pixels are predict's (load_pixels) for wide, tall and square."""
    from PIL import Image

    from horses_humans.data.images import load_pixels

    sys.path.insert(0, str(SCRIPTS))
    from onnx_client import OnnxClient

    rng = np.random.default_rng(sum(shape))
    photo = tmp_path / "photo.png"
    Image.fromarray(rng.integers(0, 256, (*shape, 3), dtype=np.uint8), "RGB").save(photo)
    client = OnnxClient.__new__(OnnxClient)  # no model needed to read a photo
    client.size, client.resize = 24, resize
    np.testing.assert_array_equal(client.load(photo), load_pixels(photo, 24, resize=resize))


@pytest.mark.slow
def test_the_client_agrees_with_predict_on_every_image_unsure_included(ruled_run):
    run, photos = ruled_run
    done = check(str(run), "--photos", str(photos))
    assert done.returncode == 0, done.stderr
    summary = done.stdout.strip().splitlines()[-1]
    count = len(list(photos.rglob("*.png")))
    assert f"agrees with predict on 100.0% of {count} photos" in summary
    unsure = int(summary.split("photos (")[1].split(" unsure")[0])
    assert 0 < unsure < count  # the rule was in play: some held back, some answered


@pytest.mark.slow
def test_metadata_that_lies_makes_the_check_fail(ruled_run):
    import onnx

    run, photos = ruled_run
    assert check(str(run), "--photos", str(photos)).returncode == 0
    model_file = run / "export" / "onnx" / "model.onnx"
    model = onnx.load(str(model_file))
    kept = [entry for entry in model.metadata_props if entry.key != "unsure_threshold"]
    del model.metadata_props[:]
    model.metadata_props.extend(kept)  # the file forgets its unsure rule: the client answers where predict holds back
    onnx.save(model, str(model_file))
    done = check(str(run), "--photos", str(photos), "--skip-export")
    assert done.returncode == 1
    assert "differs:" in done.stdout and "predict unsure" in done.stdout
