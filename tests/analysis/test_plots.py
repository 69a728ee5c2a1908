"""plots.py: figures from plain arrays (no model), the notebook's activation tiling, overlays, PNG output."""

import numpy as np
import pytest
from matplotlib.figure import Figure
from PIL import Image
from sklearn.metrics import roc_auc_score, roc_curve

from horses_humans.analysis import plots

RNG = np.random.default_rng(0)
IMAGES = RNG.integers(0, 256, (6, 24, 24, 3)).astype(np.uint8)


def saved(fig: Figure, tmp_path, name="figure.png") -> Image.Image:
    """Save atomically, check nothing else was left behind, and open the PNG."""
    path = plots.save_png(fig, tmp_path / name)
    assert [p.name for p in tmp_path.iterdir()] == [name]
    image = Image.open(path)
    assert image.format == "PNG"
    return image


def test_normalise_map_is_the_reference_notebooks():
    x = np.arange(16, dtype=np.float32).reshape(4, 4)
    out = plots.normalise_map(x)
    np.testing.assert_allclose(out, np.clip((x - x.mean()) / x.std() * 64 + 128, 0, 255))
    assert (plots.normalise_map(np.full((3, 3), 7.0)) == 128).all()  # a constant map is mid-grey, not NaN


def test_tile_maps_lays_out_every_channel_with_gaps():
    act = RNG.random((5, 5, 10)).astype(np.float32)
    mosaic, shown = plots.tile_maps(act)
    assert shown == 10 and mosaic.shape == (3 * 6 - 1, 4 * 6 - 1)  # 4 columns x 3 rows of 5x5, 1-pixel gaps
    assert np.isnan(mosaic[5]).all() and np.isnan(mosaic[:, 5]).all()
    np.testing.assert_allclose(mosaic[:5, :5], plots.normalise_map(act[..., 0]))
    assert np.isfinite(mosaic).sum() == 10 * 25


def test_tile_maps_keeps_the_most_active_channels_in_order():
    act = np.zeros((2, 2, 6), np.float32)
    act[..., [1, 4]] = RNG.random((2, 2, 2)) + 1
    act[..., 5] = RNG.random((2, 2)) + 0.5
    mosaic, shown = plots.tile_maps(act, max_maps=2)
    assert shown == 2
    np.testing.assert_allclose(mosaic[:2, :2], plots.normalise_map(act[..., 1]))
    np.testing.assert_allclose(mosaic[:2, 3:5], plots.normalise_map(act[..., 4]))


def test_overlay_blends_jet_colours():
    image = np.full((4, 4, 3), 200, np.uint8)
    heat = np.zeros((4, 4))
    heat[0, 0] = 1.0
    out = plots.overlay(image, heat, alpha=0.5)
    assert out.shape == image.shape and out.dtype == np.uint8
    assert out[0, 0, 0] > out[0, 0, 2]  # hot: red
    assert out[3, 3, 2] > out[3, 3, 0]  # cold: blue


def test_image_grids_save_as_png(tmp_path):
    fig = plots.sample_grid(IMAGES, [0, 0, 0, 1, 1, 1], ["horses", "humans"], cols=3)
    assert [ax.get_title() for ax in fig.axes] == ["horses"] * 3 + ["humans"] * 3
    assert saved(fig, tmp_path).size[0] > 300
    fig = plots.augmentation_grid(IMAGES[0], IMAGES[1:], "Draws through the augmented recipe's layers")
    assert [ax.get_title() for ax in fig.axes][:2] == ["original", "draw 1"]


def test_long_titles_are_wrapped_to_their_cell():
    fig = plots.image_grid(
        IMAGES[:1], ["a-very-long-file-name-0001.png\nhorses -> humans  p=0.705 and more words"], cell=2.0
    )
    assert all(len(line) <= 28 for line in fig.axes[0].get_title().split("\n"))


def test_training_curves_overlay_runs(tmp_path):
    history = [
        {"epoch": e, "accuracy": 0.5 + e / 10, "val_accuracy": 0.5 + e / 20, "loss": 1 / e, "val_loss": 1.2 / e}
        for e in (1, 2, 3)
    ]
    fig = plots.training_curves({"run-a": history, "run-b": history[:2]})
    accuracy, loss = fig.axes
    assert len(accuracy.lines) == len(loss.lines) == 4  # 2 runs x (train, validation)
    assert [t.get_text() for t in accuracy.get_legend().get_texts()] == [
        "run-a train",
        "run-a validation",
        "run-b train",
        "run-b validation",
    ]
    np.testing.assert_allclose(loss.lines[1].get_ydata(), [1.2, 0.6, 0.4])
    assert accuracy.lines[0].get_color() == accuracy.lines[1].get_color() != accuracy.lines[2].get_color()
    saved(fig, tmp_path)


def test_activation_grids_one_panel_per_layer(tmp_path):
    acts = {"conv1": RNG.random((8, 8, 4)), "backbone/out_relu": RNG.random((2, 2, 100))}
    fig = plots.activation_grids(acts, IMAGES[0])
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert titles == ["input image", "conv1  8x8x4", "backbone/out_relu  2x2x100, 64 most active shown"]
    saved(fig, tmp_path)


def test_gradcam_grid_pairs_image_and_overlay(tmp_path):
    heat = RNG.random((3, 24, 24))
    colours = ["black", plots.WRONG_COLOUR, "black"]
    fig = plots.gradcam_grid(IMAGES[:3], heat, ["a", "b", "c"], colours, plots.PairLayout("Grad-CAM", pairs_per_row=3))
    shown = [ax.get_images()[0].get_array() for ax in fig.axes if ax.get_images()]
    assert len(shown) == 6
    np.testing.assert_array_equal(shown[0], IMAGES[0])
    np.testing.assert_array_equal(shown[1], plots.overlay(IMAGES[0], heat[0]))
    saved(fig, tmp_path)


def test_confusion_matrix_shows_counts_and_row_percentages(tmp_path):
    fig = plots.plot_confusion_matrix([[81, 47], [0, 128]], ["horses", "humans"])
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert texts == ["81\n63.3%", "47\n36.7%", "0\n0.0%", "128\n100.0%"]
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["horses", "humans"]
    saved(fig, tmp_path)


@pytest.mark.parametrize("seed", [0, 1])
def test_roc_plot_of_sklearn_points_integrates_to_the_auc(seed, tmp_path):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, 300)
    scores = np.round(rng.random(300) * 0.6 + y * 0.3, 1)  # many ties
    fpr, tpr, _ = roc_curve(y, scores)
    assert (fpr[0], tpr[0], fpr[-1], tpr[-1]) == (0, 0, 1, 1)
    assert (np.diff(fpr) >= 0).all() and (np.diff(tpr) >= 0).all()
    assert np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2) == pytest.approx(roc_auc_score(y, scores))  # trapezoids
    fig = plots.plot_roc({"model": (fpr, tpr, roc_auc_score(y, scores))}, "ROC curve (positive class: humans)")
    assert fig.axes[0].get_legend().get_texts()[0].get_text() == f"model (AUC {roc_auc_score(y, scores):.3f})"
    assert fig.axes[0].get_title() == "ROC curve (positive class: humans)"
    saved(fig, tmp_path)


def test_roc_plot_draws_one_curve_per_class(tmp_path):
    curves = {
        name: ([0, 0.5, 1], [0, 0.9, 1], auc) for name, auc in (("class0", 0.95), ("class1", 0.8), ("class2", 0.5))
    }
    fig = plots.plot_roc(curves, "ROC curves, each class against the rest")
    ax = fig.axes[0]
    assert len(ax.lines) == 4  # three classes and the chance diagonal
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [
        "class0 (AUC 0.950)",
        "class1 (AUC 0.800)",
        "class2 (AUC 0.500)",
        "chance",
    ]
    assert len({line.get_color() for line in ax.lines[:3]}) == 3
    saved(fig, tmp_path)


def test_confusion_matrix_of_five_classes(tmp_path):
    cm = np.diag([8, 7, 6, 5, 4]) + np.eye(5, k=1, dtype=int)
    fig = plots.plot_confusion_matrix(cm, [f"class{i}" for i in range(5)])
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert len(texts) == 25 and texts[0] == "8\n88.9%" and texts[1] == "1\n11.1%" and texts[-1] == "4\n100.0%"
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == [f"class{i}" for i in range(5)]
    assert saved(fig, tmp_path).size[0] > 600  # grows with the classes


def test_sample_titles_take_a_colour_per_class():
    fig = plots.sample_grid(IMAGES[:5], [0, 1, 2, 3, 4], [f"c{i}" for i in range(5)], cols=5)
    assert len({ax.title.get_color() for ax in fig.axes}) == 5
    two = plots.sample_grid(IMAGES[:2], [0, 1], ["horses", "humans"], cols=2)
    assert [ax.title.get_color() for ax in two.axes] == list(plots.CLASS_COLOURS)
