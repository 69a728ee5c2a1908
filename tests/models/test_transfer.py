"""Transfer recipes: parameter counts, offline weights resolution, feature-cached head training, fine-tuning."""

import json
from pathlib import Path

import keras
import numpy as np
import pytest

from horses_humans.cli.main import main
from horses_humans.config import HorsesHumansError, TrainConfig
from horses_humans.core.workspace import Workspace, quiet
from horses_humans.inference.predictor import Predictor
from horses_humans.models import weights as weights_mod
from horses_humans.models.backbones import BACKBONES, build_inception_base, get_backbone
from horses_humans.models.recipes import RECIPES, build_model, get_recipe
from horses_humans.runs.store import load_run
from horses_humans.training.loop import train
from horses_humans.training.stages import unfreeze

from ..synthetic import make_dataset

SHARED_WEIGHTS = Path(__file__).resolve().parents[3] / "shared" / "weights"


@pytest.fixture(autouse=True)
def offline_keras_home(tmp_path, monkeypatch):
    """An empty Keras cache and no network: downloads fail at once, as on these machines."""
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))

    def no_network(*args, **kwargs):
        raise Exception("URL fetch failure on https://storage.googleapis.com/...: None -- network unreachable")

    monkeypatch.setattr(keras.utils, "get_file", no_network)


def trainable_count(model) -> int:
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


def test_inception_v3_matches_the_reference_parameter_counts():
    model = build_model(TrainConfig(recipe="inception_v3", weights="none"))
    assert model.count_params() == 47_512_481  # the reference: 47.5M in total
    assert trainable_count(model) == 38_537_217  # the reference: 38.5M trainable (the head)
    assert get_recipe("inception_v3").backbone_layer(model).output.shape[1:] == (7, 7, 768)  # cut at mixed7


def test_mobilenet_v2_builds_with_a_trainable_head_only():
    model = build_model(TrainConfig(recipe="mobilenet_v2", weights="none", image_size=96))
    assert trainable_count(model) == 1281  # GlobalAveragePooling(1280) -> Dense(1)
    assert get_recipe("mobilenet_v2").backbone_layer(model).trainable is False


def test_offline_without_weights_is_a_clear_error_naming_file_hash_and_place():
    with pytest.raises(HorsesHumansError) as err:
        build_model(TrainConfig(recipe="inception_v3"))
    message = str(err.value)
    assert "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5" in message
    assert "bcbd6486424b2319ff4ef7d526e38f63" in message
    assert "keras_home/models" in message and "--weights" in message


def test_train_offline_without_weights_is_one_line_naming_install_and_baseline(tmp_path, capsys, monkeypatch):
    """`train` with no --recipe takes recommended, which needs the ImageNet weights: offline without them it says, in
    one line and before looking for data (there is none here), how to install them or train the baseline."""
    runs = tmp_path / "runs"

    def chatty_no_network(*args, **kwargs):  # as Keras' get_file does offline: a line on stdout, then the failure
        print("Downloading data from https://storage.googleapis.com/...")
        raise Exception("URL fetch failure on https://storage.googleapis.com/...: None -- network unreachable")

    monkeypatch.setattr(keras.utils, "get_file", chatty_no_network)
    assert main(["train", "--data-dir", str(tmp_path / "nowhere"), "--runs-dir", str(runs)]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("error: mobilenet_v2 ImageNet weights not found") and err.count("\n") == 1
    assert "`horses-humans weights install FILE --backbone mobilenet_v2`" in err and "--recipe baseline" in err
    assert not runs.exists()  # no run folder was started


def test_resolution_order_path_then_keras_cache_then_download(tmp_path, monkeypatch):
    official = get_backbone("mobilenet_v2").weights_file(0.35)
    explicit = tmp_path / "mine.h5"
    explicit.write_bytes(b"x")
    cached = weights_mod.keras_cache_dir() / official.file
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"x")
    assert weights_mod.resolve_weights("mobilenet_v2", str(explicit)) == str(explicit)  # 1. --weights PATH
    assert weights_mod.resolve_weights("mobilenet_v2", None) == str(cached)  # 2. the Keras cache
    cached.unlink()
    calls = []
    monkeypatch.setattr(keras.utils, "get_file", lambda *a, **k: calls.append((a, k)) or "/downloaded.h5")
    assert weights_mod.resolve_weights("mobilenet_v2", "imagenet") == "/downloaded.h5"  # 3. the download
    assert calls[0][0] == (official.file, official.url) and calls[0][1]["cache_subdir"] == "models"
    assert weights_mod.resolve_weights("mobilenet_v2", "none") is None
    with pytest.raises(HorsesHumansError, match="no such file"):
        weights_mod.resolve_weights("mobilenet_v2", str(tmp_path / "missing.h5"))


def test_official_weights_files_come_from_the_backbone_registration():
    mobilenet = get_backbone("mobilenet_v2").weights_file(1.0)
    assert mobilenet.file == "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5"
    assert mobilenet.url.endswith("/keras-applications/mobilenet_v2/" + mobilenet.file) and mobilenet.file_hash is None
    inception = get_backbone("inception_v3").weights_file(alpha=1.0)  # one width: alpha does not matter
    assert inception.file == "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5"
    with pytest.raises(HorsesHumansError, match="--alpha 0.6: mobilenet_v2 ImageNet weights exist only for 0.35"):
        get_backbone("mobilenet_v2").weights_file(0.6)
    with pytest.raises(HorsesHumansError, match="unknown backbone 'resnet'.*inception_v3, mobilenet_v2"):
        weights_mod.resolve_weights("resnet", None)


@pytest.mark.parametrize("name", sorted(name for name, recipe in RECIPES.items() if recipe.transfer))
def test_transfer_recipes_take_their_facts_from_their_backbone(name):
    """Input size, preprocessing and Grad-CAM layer are data on the backbone, and the recipe finds each part."""
    recipe = get_recipe(name)
    assert recipe.backbone in BACKBONES.values() and recipe.image_size == recipe.backbone.image_size
    model = build_model(TrainConfig(recipe=name, weights="none", image_size=96))
    backbone = recipe.backbone_layer(model)
    assert recipe.last_conv_layer == f"{backbone.name}/{recipe.backbone.last_conv_layer}"
    backbone.get_layer(recipe.backbone.last_conv_layer)  # the layer exists inside the backbone
    preprocess = recipe.preprocess_layer(model)
    assert (preprocess.scale, preprocess.offset) == (recipe.backbone.scale, recipe.backbone.offset)
    pixels = np.random.default_rng(0).integers(0, 256, (2, 96, 96, 3)).astype("float32")
    features = np.asarray(recipe.feature_extractor(model)(pixels))
    np.testing.assert_allclose(
        np.asarray(recipe.head_layer(model)(features)), np.asarray(model(pixels)), rtol=1e-5, atol=1e-6
    )


def test_a_cnn_recipe_has_no_backbone_and_says_so():
    recipe = get_recipe("baseline")
    assert not recipe.transfer and recipe.backbone is None
    with pytest.raises(HorsesHumansError, match="recipe 'baseline' has no backbone: only transfer recipes"):
        recipe.backbone_layer(build_model(TrainConfig(recipe="baseline", image_size=48)))


@pytest.mark.slow
def test_inception_trains_from_a_local_weights_file(tmp_path):
    """InceptionV3's ImageNet file is not available here: its loading path runs on a saved file of the same
    architecture."""
    donor = keras.applications.InceptionV3(include_top=False, weights=None, input_shape=(75, 75, 3))
    path = tmp_path / "inception.weights.h5"
    donor.save_weights(path)
    base = build_inception_base(75, str(path))
    reference = keras.Model(donor.input, donor.get_layer("mixed7").output)
    x = np.random.default_rng(0).uniform(-1, 1, (1, 75, 75, 3)).astype("float32")
    np.testing.assert_allclose(np.asarray(base(x)), np.asarray(reference(x)), rtol=1e-4, atol=1e-4)


def test_weights_install_checks_then_copies_into_keras_cache(tmp_path, capsys):
    shared = SHARED_WEIGHTS / "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_224_no_top.h5"
    assert shared.is_file(), f"needs ../shared/weights beside the checkout ({shared})"
    assert main(["weights", "install", str(shared), "--backbone", "mobilenet_v2"]) == 0
    installed = weights_mod.keras_cache_dir() / shared.name
    assert installed.read_bytes() == shared.read_bytes() and str(installed) in capsys.readouterr().out
    assert weights_mod.resolve_weights("mobilenet_v2", None) == str(installed)
    wrong = tmp_path / "wrong.h5"
    wrong.write_bytes(b"not weights")
    assert main(["weights", "install", str(wrong), "--backbone", "inception_v3"]) == 2
    assert "does not load into inception_v3" in capsys.readouterr().err
    assert not (weights_mod.keras_cache_dir() / get_backbone("inception_v3").weights_file().file).exists()


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("data"), train_per_class=16, val_per_class=8)


@pytest.mark.slow
def test_head_trains_on_cached_features_and_saves_the_full_model(dataset, tmp_path):
    config = TrainConfig(
        recipe="mobilenet_v2", weights="none", image_size=64, epochs=3, batch_size=8, learning_rate=1e-2
    )
    lines = []
    run = train(config, Workspace(dataset, tmp_path / "runs", tmp_path / "cache", lines.append))
    assert sum("computing mobilenet_v2 features" in line for line in lines) == 2  # train + validation, once
    assert len(list((tmp_path / "cache" / "features").glob("*.npy"))) == 2
    model = load_run(run).load_model()
    assert model.input.shape[1:] == (64, 64, 3)  # raw pixels in: backbone + head in one model
    predictor = Predictor.from_run(run)
    files = sorted((dataset / "validation-horse-or-human").rglob("*.png"))
    results = predictor.predict_files(files)
    # the saved model reproduces the head's last validation accuracy from raw pixels
    accuracy = np.mean([r.label == f.parent.name for r, f in zip(results, files)])
    assert accuracy == pytest.approx(json.loads((run / "metrics.json").read_text())["val_accuracy"], abs=1e-6)

    lines.clear()
    train(config, Workspace(dataset, tmp_path / "runs", tmp_path / "cache", lines.append))
    assert not any("computing" in line for line in lines)  # second run reads the feature cache


@pytest.mark.slow
def test_fine_tuning_unfreezes_top_layers_but_not_batchnorm(dataset, tmp_path):
    config = TrainConfig(
        recipe="mobilenet_v2",
        weights="none",
        image_size=64,
        epochs=1,
        batch_size=8,
        fine_tune_from="10",
        fine_tune_epochs=1,
    )
    run = train(config, Workspace(dataset, tmp_path / "runs", tmp_path / "cache", quiet))
    history = json.loads((run / "history.json").read_text())
    assert [h["epoch"] for h in history] == [1, 2]
    assert history[1]["learning_rate"] == pytest.approx(history[0]["learning_rate"] / 10)
    # the saved model (rebuilt, weights copied over) carries the fine-tuned weights: same val accuracy
    files = sorted((dataset / "validation-horse-or-human").rglob("*.png"))
    results = Predictor.from_run(run).predict_files(files)
    assert np.mean([r.label == f.parent.name for r, f in zip(results, files)]) == pytest.approx(
        history[1]["val_accuracy"]
    )

    model = build_model(TrainConfig(recipe="mobilenet_v2", weights="none", image_size=64))
    backbone = get_recipe("mobilenet_v2").backbone_layer(model)
    assert unfreeze(backbone, "10") > 0
    assert all(not layer.trainable for layer in backbone.layers if isinstance(layer, keras.layers.BatchNormalization))
    assert not backbone.layers[0].trainable or not backbone.layers[0].weights
    with pytest.raises(HorsesHumansError, match="no such layer"):
        unfreeze(backbone, "nope")


@pytest.mark.slow
def test_mobilenet_v2_alpha_1_loads_the_approximate_shared_file():
    path = SHARED_WEIGHTS / "mobilenet_v2_1.0_224_no_top.dequantized.weights.h5"
    assert path.is_file(), f"needs ../shared/weights beside the checkout ({path})"
    model = build_model(TrainConfig(recipe="mobilenet_v2", alpha=1.0, weights=str(path), image_size=96))
    assert model.get_layer("backbone").count_params() == 2_257_984  # MobileNetV2 1.0 without top
    random_init = build_model(TrainConfig(recipe="mobilenet_v2", alpha=1.0, weights="none", image_size=96))
    loaded, fresh = model.get_layer("backbone").get_weights(), random_init.get_layer("backbone").get_weights()
    assert not np.allclose(loaded[0], fresh[0])  # the file's weights, not an initialisation
