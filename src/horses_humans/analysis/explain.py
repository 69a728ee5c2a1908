"""Look inside a model, as arrays: intermediate activations, Grad-CAM heatmaps, augmentation draws and
misclassified images. Drawing them is plots.py's job.

Every recipe is a chain at its top level: pixels -> (augmentation) -> rescaling -> layers or a nested
"backbone" model -> a Sequential "head". Keras cannot hand out the inner layers of a nested model as
outputs of the outer one (tensorflow#44462, #72915), so the forward pass is rebuilt link by link: plain
layers are called with training=False (augmentation is then the identity), a nested model that holds a
requested layer is swapped for a model from its input to [that layer's output, its output], and the
final sigmoid or softmax Dense gives its logits (a saturated probability has vanishing gradients).
Layer paths are "conv3" for a top-level layer and "backbone/mixed7" for one inside a nested model.
"""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
from PIL import Image

from ..config import HorsesHumansError
from ..core.backend import require_tensorflow
from ..models.distance import GATE_LAYERS
from ..models.outputs import ClassOutput
from ..runs.layout import EXPLAIN_DIR

# ---------------------------------------------------------------- the model as a chain


def chain(model) -> list[tuple[str, object]]:
    """(path, layer) in call order; nested Sequential models are flattened, nested functional ones kept whole."""
    links = []
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer) or layer.name in GATE_LAYERS:
            continue  # the distance check (train --distance-unsure) is beside the chain: it explains nothing
        if isinstance(layer, keras.Sequential):
            links += [(f"{layer.name}/{path}", inner) for path, inner in chain(layer)]
        else:
            links.append((layer.name, layer))
    return links


def layer_paths(model) -> list[str]:
    """Every layer path activations() and gradcam() accept, in call order."""
    paths = []
    for path, layer in chain(model):
        paths.append(path)
        if isinstance(layer, keras.Model):
            paths += [
                f"{path}/{inner.name}" for inner in layer.layers if not isinstance(inner, keras.layers.InputLayer)
            ]
    return paths


def check_paths(model, paths: list[str]) -> None:
    """A clear error naming any unknown layer path and showing some that exist."""
    known = layer_paths(model)
    unknown = [p for p in paths if p not in known]
    if unknown:
        raise HorsesHumansError(
            f"no layer {', '.join(map(repr, unknown))} in model {model.name!r}; "
            f"layers include {', '.join(known[:4] + known[-6:])}."
        )


def logit(layer, x):
    """The output layer's value before its sigmoid or softmax, else the layer's output."""
    if isinstance(layer, keras.layers.Dense) and layer.activation in (
        keras.activations.sigmoid,
        keras.activations.softmax,
    ):
        z = keras.ops.matmul(x, layer.kernel)
        return z + layer.bias if layer.use_bias else z
    return layer(x, training=False)


def forward(model, x, paths: list[str]):
    """Run the chain on a float batch -> (final logits (N, 1) or (N, C), {path: activation}) for the requested paths."""
    links, taps = chain(model), {}
    for i, (path, layer) in enumerate(links):
        inner = (
            [p.split("/", 1)[1] for p in paths if p.startswith(path + "/")] if isinstance(layer, keras.Model) else []
        )
        if inner:
            split = keras.Model(layer.input, [layer.get_layer(n).output for n in inner] + [layer.output])
            *found, x = split(x, training=False)
            taps.update({f"{path}/{n}": a for n, a in zip(inner, found)})
        else:
            x = logit(layer, x) if i == len(links) - 1 else layer(x, training=False)
        if path in paths:
            taps[path] = x
    return x, taps


# ---------------------------------------------------------------- activations


def feature_layers(model, per_model: int = 6) -> list[str]:
    """Layers worth drawing: every top-level conv/pool layer (the reference's choice) and, inside a nested
    backbone, the last layer of each spatial resolution (one per stage), at most `per_model` of them."""
    conv_pool = (keras.layers.Conv2D, keras.layers.MaxPooling2D, keras.layers.AveragePooling2D)
    paths = []
    for path, layer in chain(model):
        if isinstance(layer, conv_pool):
            paths.append(path)
        elif isinstance(layer, keras.Model):
            paths += [f"{path}/{name}" for name in stage_ends(layer)[-per_model:]]
    return paths


def stage_ends(model) -> list[str]:
    """Names of the last 4-D layer at each spatial resolution of a functional model (padding layers,
    whose odd sizes are only a step towards the next stage, do not count)."""
    ends: dict[tuple, str] = {}
    for layer in model.layers:
        if isinstance(layer, (keras.layers.InputLayer, keras.layers.ZeroPadding2D)) or len(layer.output.shape) != 4:
            continue
        ends[tuple(layer.output.shape[1:3])] = layer.name  # insertion order is kept: stages in order
    return list(ends.values())


def activations(model, pixels: np.ndarray, layer_paths: list[str]) -> dict[str, np.ndarray]:
    """Outputs of the given layers for one uint8 image (S, S, 3) -> {path: (h, w, channels) float32}."""
    check_paths(model, layer_paths)
    _, taps = forward(model, np.asarray(pixels, np.float32)[None], layer_paths)
    return {p: keras.ops.convert_to_numpy(taps[p])[0] for p in layer_paths}


# ---------------------------------------------------------------- Grad-CAM


def gradcam(model, pixels: np.ndarray, layer: str, class_index=None) -> np.ndarray:
    """Grad-CAM at `layer` of the predicted class, or of class_index (one index, or one per image):
    (S, S, 3) -> (S, S) or (N, S, S, 3) -> (N, S, S), in [0, 1].

    Each map is ReLU'd and divided by its own maximum; a map with no positive evidence stays all zero.
    """
    batch = np.asarray(pixels, np.float32)
    maps, _ = class_activation_maps(model, batch[None] if batch.ndim == 3 else batch, layer, class_index)
    maps = np.maximum(maps.astype(np.float64), 0)
    peaks = maps.max(axis=(1, 2), keepdims=True)
    maps = np.divide(maps, peaks, out=np.zeros_like(maps), where=peaks > 0)  # scale-free: tiny maps are fine
    heatmaps = np.stack([upsample(m, batch.shape[-3:-1]) for m in maps])
    return heatmaps[0] if batch.ndim == 3 else heatmaps


def class_activation_maps(model, batch: np.ndarray, layer: str, class_index=None) -> tuple[np.ndarray, np.ndarray]:
    """Signed Grad-CAM maps (N, h, w) at `layer`, before ReLU, and the class scores (N,) they explain.

    The score of a class is its logit before the softmax; for a sigmoid it is the logit for class 1 and minus the
    logit for class 0, so a map shows what pushed the model towards that class (by default the one it answered).
    Each channel is weighted by its mean gradient; for a global-average-pooled linear head (MobileNetV2's) a map
    then sums to the score minus the class's share of the output bias.
    Works through frozen nested backbones: the input is watched, so every operation after it is on the
    tape whether or not its weights are trainable.
    """
    require_tensorflow("Grad-CAM")
    import tensorflow as tf  # Grad-CAM needs a tape; the rest of the package stays backend-neutral

    check_paths(model, [layer])
    x = tf.convert_to_tensor(np.asarray(batch, np.float32))
    with tf.GradientTape() as tape:
        tape.watch(x)
        out, taps = forward(model, x, [layer])
        scores = class_scores(out, explained_classes(out.numpy(), class_index))
        total = tf.reduce_sum(scores)
    act = taps[layer]
    if len(act.shape) != 4:
        raise HorsesHumansError(
            f"Grad-CAM needs a layer with a spatial output (h, w, channels); {layer!r} gives {tuple(act.shape[1:])}."
        )
    weights = tf.reduce_mean(tape.gradient(total, act), axis=(1, 2))  # (N, c): each channel's importance
    return tf.einsum("nhwc,nc->nhw", act, weights).numpy(), scores.numpy()


def explained_classes(logits: np.ndarray, class_index=None) -> np.ndarray:
    """The class index (N,) each image is explained for: class_index (one, or one per image), else the predicted one
    (a sigmoid logit >= 0 is class 1; a softmax's largest logit)."""
    classes = 2 if logits.shape[1] == 1 else logits.shape[1]
    if class_index is None:
        return (logits[:, 0] >= 0).astype(np.int64) if logits.shape[1] == 1 else np.argmax(logits, axis=1)
    found = np.broadcast_to(np.asarray(class_index, np.int64), (len(logits),))
    if found.min(initial=0) < 0 or found.max(initial=0) >= classes:
        raise HorsesHumansError(f"class index {class_index} is out of range: the model has {classes} classes.")
    return found


def class_scores(logits, classes: np.ndarray):
    """Each image's score for its class (N,): the softmax logit, or +z (class 1) / -z (class 0) of a sigmoid."""
    import tensorflow as tf

    if logits.shape[1] == 1:
        return logits[:, 0] * tf.constant(np.where(classes == 1, 1.0, -1.0), logits.dtype)
    return tf.gather(logits, tf.constant(classes), axis=1, batch_dims=1)


def upsample(heatmap: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of a (h, w) map to size (H, W), kept in [0, 1]."""
    image = Image.fromarray(np.asarray(heatmap, np.float32), "F").resize((size[1], size[0]), Image.Resampling.BILINEAR)
    return np.clip(np.asarray(image), 0.0, 1.0)


# ---------------------------------------------------------------- augmentation


def augmentation_layers(model) -> list:
    """The model's own random augmentation layers: the random ones in front of its first weighted layer."""
    found = []
    for _, layer in chain(model):
        if layer.weights or isinstance(layer, keras.Model):
            break
        if any(isinstance(v, keras.random.SeedGenerator) for v in vars(layer).values()):
            found.append(layer)
    return found


def augment(layers: list, pixels: np.ndarray, draws: int) -> np.ndarray:
    """`draws` random augmentations of one uint8 image (S, S, 3) -> (draws, S, S, 3) uint8 (training=True)."""
    x = np.repeat(np.asarray(pixels, np.float32)[None], draws, axis=0)
    for layer in layers:
        x = layer(x, training=True)
    return np.clip(np.rint(keras.ops.convert_to_numpy(x)), 0, 255).astype(np.uint8)


# ---------------------------------------------------------------- mistakes


def losses(y_true: np.ndarray, probabilities: np.ndarray) -> np.ndarray:
    """Per-image cross-entropy -log p(true class) (nats) from probabilities (N, C), clipped as Keras does."""
    p = np.asarray(probabilities, np.float64)[np.arange(len(y_true)), np.asarray(y_true, np.int64)]
    return -np.log(np.clip(p, 1e-7, 1 - 1e-7))


def misclassified(y_true: np.ndarray, probabilities: np.ndarray, output: ClassOutput) -> np.ndarray:
    """Indices of the wrongly labelled images (labels as `output` reads probabilities (N, C)), worst (highest
    -log p(true class)) first."""
    y_true = np.asarray(y_true, np.int64)
    probabilities = np.asarray(probabilities).reshape(len(y_true), len(output.class_names))
    wrong = np.flatnonzero(output.predicted(probabilities) != y_true)
    return wrong[np.argsort(-losses(y_true[wrong], probabilities[wrong]), kind="stable")]


# ---------------------------------------------------------------- `horses-humans explain`: one image file -> PNGs


def activation_figure(model, pixels: np.ndarray):
    """The tiled feature maps of the model's conv/pool (or backbone stage) layers for one image (a Figure)."""
    from . import plots  # drawing is plots.py's job; only the two composers at the end of this module call it

    return plots.activation_grids(activations(model, pixels, feature_layers(model)), pixels)


def write_explanation(
    run_dir: Path,
    image: Path,
    layer: str | None = None,
    out_dir: Path | None = None,
    class_name: str | None = None,
    checkpoint: str | None = None,
) -> dict:
    """Activation tiles and a Grad-CAM overlay of the predicted class (or class_name) for one image file
    -> {label, probability (of the label), probabilities {class: p}, explained (the class), paths}."""
    from ..data.images import ImageError, load_pixels
    from ..inference.predictor import Predictor
    from ..models.recipes import last_conv_layer
    from ..runs.store import load_run
    from . import plots  # imported here, as in activation_figure: the arrays above need none of these

    run = load_run(run_dir, checkpoint)  # the model of `checkpoint`, default the run's
    try:
        pixels = load_pixels(image, run.image_size, name=str(image), resize=run.resize)
    except ImageError as exc:
        raise HorsesHumansError(str(exc)) from None
    predictor = Predictor.from_run(run, runtime="keras")  # Grad-CAM needs the Keras graph, not an export
    layer = layer or last_conv_layer(run.config)
    check_paths(predictor.model, [layer])
    row = predictor.predict_proba(pixels[None])[0]
    predicted = int(predictor.output.predicted(row[None])[0])  # by the run's threshold (sigmoid) or argmax
    label, p = run.class_names[predicted], float(row[predicted])
    explained = class_name or label
    heatmap = gradcam(predictor.model, pixels, layer, class_index(predictor.output, explained))
    out, stem = Path(out_dir or run.path / EXPLAIN_DIR), Path(image).stem
    panel = f"Grad-CAM of {explained} at {layer}" + ("" if heatmap.max() > 0 else " (no positive evidence)")
    layout = plots.PairLayout(f"{Path(image).name}: {label}, p = {p:.4f}", pairs_per_row=1, cell=4.0)
    figure = plots.gradcam_grid([pixels], [heatmap], [panel], layout=layout)
    suffix = "" if class_name is None else f"-{class_name}"  # a chosen class does not overwrite the predicted one's
    paths = [
        plots.save_png(activation_figure(predictor.model, pixels), out / f"{stem}-activations.png"),
        plots.save_png(figure, out / f"{stem}-gradcam{suffix}.png"),
    ]
    return {
        "label": label,
        "probability": p,
        "explained": explained,
        "probabilities": dict(zip(run.class_names, map(float, row))),
        "paths": [str(x) for x in paths],
    }


def class_index(output: ClassOutput, name: str) -> int:
    """The index of a class name; a clear error naming the classes for one the model does not know."""
    if name not in output.class_names:
        raise HorsesHumansError(f"--class {name!r}: not one of the run's classes ({', '.join(output.class_names)}).")
    return output.class_names.index(name)
