"""Which way of using a few real photos (`train --extra-data`) holds up on photos from sources it never saw, and can
a model trained on real photos alone say "unsure" without neither examples? Measured on cached backbone features
(pooled MobileNetV2), so every candidate costs seconds: issue 23, items 3 and 4.

Every estimate is grouped by source (SOURCES.tsv's `source_repo`): leave one source out, each dev photo scored by
heads trained on the renders and the dev photos of the other sources. The head is the recommended recipe's (dropout
0.2, one Dense layer, Adam 1e-3, 6 epochs, batch 32), served with test-time flips, a temperature fitted on the 256
validation renders and the unsure rule's tau (at most 2% of them unsure), as `train` does.

    DATA=../shared/data nice python scripts/fewshot_study.py     about 15 minutes on 2 busy cores (features cached
                                                                 in runs/fewshot-study/, then a few minutes)
    STUDY=distance ...                                           item 4 alone; STUDY=extra item 3 alone
    ONLY="alpha 1.0 alone;ensemble alpha 0.35 + 1.0" ...         some item 3 candidates (names as printed)
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np

from horses_humans.config import TrainConfig
from horses_humans.data.layouts import labelled_folder
from horses_humans.data.pixels import load_dataset, load_files
from horses_humans.inference.calibration import fit_temperature, served
from horses_humans.inference.unsure import calibrate
from horses_humans.models.distance import knn_distance as knn  # what train --distance-unsure ships
from horses_humans.models.outputs import ClassOutput
from horses_humans.models.recipes import build_model, get_recipe
from horses_humans.training.features import extract

ROOT = Path(__file__).resolve().parent.parent
WEIGHTS = ROOT.parent / "shared" / "weights"
BACKBONES = {
    0.35: WEIGHTS / "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_224_no_top.h5",
    1.0: WEIGHTS / "mobilenet_v2_1.0_224_no_top.dequantized.weights.h5",
}
NAMES = ["horses", "humans", "neither"]
SIZE, SEED, VIEWS = 224, 0, 8  # VIEWS: augmented views of each extra photo
QUIET = lambda line: None  # noqa: E731


# ---------------------------------------------------------------- pixels, views and their pooled features


def photo_split(photos: Path):
    """The dev photos (horses, humans, neither) decoded at 224 px, and each one's source (SOURCES.tsv)."""
    split = load_files(labelled_folder(photos, NAMES), NAMES, SIZE, None, QUIET)
    with open(photos / "SOURCES.tsv", newline="") as f:
        source = {row["file"]: row["source_repo"] for row in csv.DictReader(f, delimiter="\t")}
    return split, np.asarray([source[f] for f in split.files])


def augmented(pixels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One random view of each image: a resized crop (35-100% of the area, aspect 3/4-4/3), a flip half the time,
    brightness, contrast and saturation jitter (+-20%)."""
    import tensorflow as tf

    out = np.empty_like(pixels)
    for i, image in enumerate(pixels):
        area, aspect = rng.uniform(0.35, 1.0), np.exp(rng.uniform(np.log(3 / 4), np.log(4 / 3)))
        h = int(min(SIZE, round(SIZE * np.sqrt(area / aspect))))
        w = int(min(SIZE, round(SIZE * np.sqrt(area * aspect))))
        top, left = rng.integers(0, SIZE - h + 1), rng.integers(0, SIZE - w + 1)
        crop = tf.image.resize(image[top : top + h, left : left + w].astype("float32"), (SIZE, SIZE)).numpy()
        crop = crop[:, ::-1] if rng.random() < 0.5 else crop
        gray = crop.mean(axis=2, keepdims=True)
        crop = gray + (crop - gray) * rng.uniform(0.8, 1.2)  # saturation
        crop = crop.mean() + (crop - crop.mean()) * rng.uniform(0.8, 1.2)  # contrast
        out[i] = np.clip(crop * rng.uniform(0.8, 1.2), 0, 255).astype(np.uint8)  # brightness
    return out


def five_crops(pixels: np.ndarray) -> list[np.ndarray]:
    """The centre and the four corners, each 80% of the side, resized back to 224."""
    import tensorflow as tf

    c = int(0.8 * SIZE)
    spots = [((SIZE - c) // 2, (SIZE - c) // 2), (0, 0), (0, SIZE - c), (SIZE - c, 0), (SIZE - c, SIZE - c)]
    return [tf.image.resize(pixels[:, t : t + c, s : s + c].astype("float32"), (SIZE, SIZE)).numpy() for t, s in spots]


def pooled(alpha: float, name: str, pixels, cache: Path) -> np.ndarray:
    """Spatially averaged backbone features (N, 1280) of pixels() (made only when not cached as NAME-ALPHA.npy)."""
    path = cache / f"{name}-{alpha}.npy"
    if path.exists():
        return np.load(path)
    pixels = pixels()
    config = TrainConfig(recipe="mobilenet_v2", alpha=alpha, weights=str(BACKBONES[alpha]))
    extractor = get_recipe("mobilenet_v2").feature_extractor(build_model(config, "float32", 3))
    vectors = extract(extractor, np.asarray(pixels, np.uint8), 32).mean(axis=(1, 2))
    cache.mkdir(parents=True, exist_ok=True)
    np.save(path, vectors)
    print(f"cached {path} {vectors.shape}", flush=True)
    return vectors


class Features:
    """{(set, view): (N, D) pooled features} of one backbone, computed on first use and cached: sets train, val
    (the renders) and photos; views id, flip, aug0-7 (augmented), crop0-4 and cropflip0-4 (five crops)."""

    def __init__(self, alpha: float, renders: tuple, photos, cache: Path):
        self.alpha, self.cache, self.found = alpha, cache, {}
        self.pixels = {"train": renders[0].x, "val": renders[1].x, "photos": photos.x}

    def __getitem__(self, key: tuple[str, str]) -> np.ndarray:
        if key not in self.found:
            name, view = key
            self.found[key] = pooled(self.alpha, f"{name}-{view}", lambda: self.view(name, view), self.cache)
        return self.found[key]

    def view(self, name: str, view: str) -> np.ndarray:
        """The pixels of one view of a set."""
        x = self.pixels[name]
        if view in ("id", "flip"):
            return x if view == "id" else x[:, :, ::-1]
        if view.startswith("aug"):
            rng = np.random.default_rng([SEED, int(view[3:])])
            return augmented(x, rng)
        crop = five_crops(x)[int(view[-1])]
        return crop[:, :, ::-1] if view.startswith("cropflip") else crop


# ---------------------------------------------------------------- the head, its calibration and its rule


def fit_head(x: np.ndarray, y: np.ndarray, classes: int, weights=None, seed: int = SEED):
    """The recommended recipe's head on pooled features: Dropout(0.2) -> Dense(classes, softmax), 6 epochs."""
    import keras

    keras.utils.set_random_seed(seed)
    head = keras.Sequential([keras.Input((x.shape[1],)), keras.layers.Dropout(0.2), keras.layers.Dense(classes)])
    head.add(keras.layers.Softmax())
    head.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy")
    head.fit(x, y, batch_size=32, epochs=6, shuffle=True, verbose=0, sample_weight=weights)
    return head


def proba(head, views: list[np.ndarray]) -> np.ndarray:
    """(V, N, C) raw probabilities of each view."""
    return np.stack([head.predict_on_batch(v) for v in views])


def boosted(views: np.ndarray, shift: float) -> np.ndarray:
    """Views (V, N, 3) with the neither logit raised by shift (what raising the head's neither bias does)."""
    logits = np.log(np.clip(views, 1e-12, 1.0))
    logits[..., 2] += shift
    e = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def neither_shift(val_views: np.ndarray, share: float) -> float:
    """The largest neither-logit shift (0-20, steps of 0.25) that lets neither win on at most `share` of the
    validation renders (their mean over views)."""
    allowed, best = int(np.floor(share * val_views.shape[1])), 0.0
    for shift in np.arange(0.25, 20.01, 0.25):
        if np.sum(boosted(val_views, shift).mean(axis=0).argmax(axis=1) == 2) > allowed:
            break
        best = float(shift)
    return best


def answers(val_views, photo_views, y_val, classes: list[str], share: float = 0.0) -> tuple[list, int]:
    """The photos' verdict labels under the served probabilities, temperature and tau fitted on validation (the
    neither logit raised first as far as `share` of validation allows); and how many validation renders the rule
    leaves unsure."""
    output = ClassOutput.for_classes(classes)
    if share:
        shift = neither_shift(val_views, share)
        val_views, photo_views = boosted(val_views, shift), boosted(photo_views, shift)
    t = fit_temperature(y_val, val_views)
    rule = calibrate(served(val_views, t), y_val, output)
    val_unsure = sum(v.label == "unsure" for v in rule.apply(served(val_views, t), output))
    return [v.label for v in rule.apply(served(photo_views, t), output)], val_unsure


# ---------------------------------------------------------------- item 3: extra photos, leave one source out


CANDIDATES = {
    # name: (alphas, extra photo views in training, photo weight, test-time views[, neither boost share])
    "neither raised, <= 1% of validation": ((0.35,), ["id"], 1.0, ["id", "flip"], 0.01),
    "neither raised, <= 2% of validation": ((0.35,), ["id"], 1.0, ["id", "flip"], 0.02),
    "augmented x8, neither raised <= 1%": (
        (0.35,),
        [f"aug{k}" for k in range(VIEWS)] + ["id"],
        1.0,
        ["id", "flip"],
        0.01,
    ),
    "as today: renders + photos, flips at test": ((0.35,), ["id"], 1.0, ["id", "flip"]),
    "photos x8 augmented views": ((0.35,), [f"aug{k}" for k in range(VIEWS)] + ["id"], 1.0, ["id", "flip"]),
    "photos weighted 5x": ((0.35,), ["id"], 5.0, ["id", "flip"]),
    "photos weighted as all renders": ((0.35,), ["id"], "balanced", ["id", "flip"]),
    "augmented x8 + weighted as all renders": (
        (0.35,),
        [f"aug{k}" for k in range(VIEWS)] + ["id"],
        "balanced",
        ["id", "flip"],
    ),
    "multi-crop test views (5 crops x 2)": (
        (0.35,),
        ["id"],
        1.0,
        ["id", "flip", *(f"crop{k}" for k in range(5)), *(f"cropflip{k}" for k in range(5))],
    ),
    "ensemble alpha 0.35 + 1.0": ((0.35, 1.0), ["id"], 1.0, ["id", "flip"]),
    "alpha 1.0 alone": ((1.0,), ["id"], 1.0, ["id", "flip"]),
    "alpha 1.0, neither raised <= 1%": ((1.0,), ["id"], 1.0, ["id", "flip"], 0.01),
    "ensemble 0.35 + 1.0, neither raised <= 1%": ((0.35, 1.0), ["id"], 1.0, ["id", "flip"], 0.01),
    "ensemble 0.35 + 1.0, neither raised <= 0.5%": ((0.35, 1.0), ["id"], 1.0, ["id", "flip"], 0.005),
}


def photo_weight(weight, renders: int, photos: int) -> float:
    """Each photo view's weight: a number, or 'balanced' (all photo views together weigh as all renders)."""
    return renders / photos if weight == "balanced" else float(weight)


def one_fold(found: dict, y: tuple, keep: np.ndarray, held: np.ndarray, spec: tuple) -> tuple[np.ndarray, int]:
    """Served probabilities (N held, C) and validation unsure count for one held-out source under a candidate."""
    alphas, train_views, weight, test_views = spec[:4]
    y_train, y_val, y_photos = y
    val_all, held_all = [], []
    for alpha in alphas:
        f = found[alpha]
        x = np.concatenate([f["train", "id"], *(f["photos", v][keep] for v in train_views)])
        labels = np.concatenate([y_train, *(y_photos[keep] for _ in train_views)])
        n_photo = len(labels) - len(y_train)
        w = np.concatenate([np.ones(len(y_train)), np.full(n_photo, photo_weight(weight, len(y_train), n_photo))])
        head = fit_head(x, labels, 3, w)
        val_all.append(proba(head, [f["val", "id"], f["val", "flip"]]))
        held_all.append(proba(head, [f["photos", v][held] for v in test_views]))
    # an ensemble averages its members' views: every member's every view is one view of the served mean
    return np.concatenate(val_all), np.concatenate(held_all)


def extra_study(found: dict, y: tuple, sources: np.ndarray) -> None:
    """Leave one source out for each candidate: real photos right, neither unsure, validation renders unsure; then
    the same per held-out source."""
    y_photos, y_val = y[2], y[1]
    print("\n## item 3, leave one source out (8 sources), seed 0")
    print("| candidate | real horses and humans right | neither unsure | validation unsure (max over folds) |")
    print("|---|---|---|---|")
    per_source = {}
    for name, spec in CANDIDATES.items():
        labels, worst = np.empty(len(y_photos), object), 0
        for source in sorted(set(sources)):
            held = sources == source
            val_views, held_views = one_fold(found, y, ~held, held, spec)
            labels[held], unsure = answers(val_views, held_views, y_val, NAMES, (*spec, 0.0)[4])
            worst = max(worst, unsure)
        right, neither, real = counts(labels, y_photos, np.ones(len(y_photos), bool))
        print(f"| {name} | {right} of {real} | {neither} of {len(y_photos) - real} | {worst} of {len(y_val)} |")
        per_source[name] = {s: counts(labels, y_photos, sources == s) for s in sorted(set(sources))}
    print("\nPer held-out source (real right of real, neither unsure of neither):")
    for name, found_by_source in per_source.items():
        cells = [f"{s.split('/')[0]} {r}/{n} {u}/{sum(sources == s) - n}" for s, (r, u, n) in found_by_source.items()]
        print(f"- {name}: " + "; ".join(cells))


def counts(labels: np.ndarray, y_photos: np.ndarray, mask: np.ndarray) -> tuple[int, int, int]:
    """(real photos right, neither photos unsure, real photos) among the masked photos."""
    real = mask & (y_photos < 2)
    right = sum(labels[i] == NAMES[y_photos[i]] for i in np.flatnonzero(real))
    return right, sum(labels[i] == "unsure" for i in np.flatnonzero(mask & (y_photos == 2))), int(real.sum())


# ---------------------------------------------------------------- item 4: real photos alone, a distance score


def mahalanobis(train: np.ndarray, labels: np.ndarray, query: np.ndarray, shrink: float = 0.5) -> np.ndarray:
    """Distance (N,) of each query to the nearest class mean under the shared, shrunk covariance of train."""
    means = np.stack([train[labels == c].mean(axis=0) for c in np.unique(labels)])
    centred = train - means[np.searchsorted(np.unique(labels), labels)]
    cov = np.cov(centred, rowvar=False)
    cov = (1 - shrink) * cov + shrink * np.trace(cov) / len(cov) * np.eye(len(cov))
    inverse = np.linalg.inv(cov)
    d = [np.einsum("nd,de,ne->n", query - m, inverse, query - m) for m in means]
    return np.sqrt(np.min(d, axis=0))


def distance_fold(f, y_photos, fit: np.ndarray, val: np.ndarray, query: np.ndarray, seed: int = SEED) -> dict:
    """For one fold: each score's query values, the threshold at 98% of its own validation photos, the head's
    answers (2 classes, trained on `fit` photos alone)."""
    x = f["photos", "id"]
    head = fit_head(np.concatenate([x[fit], f["photos", "flip"][fit]]), np.tile(y_photos[fit], 2), 2, seed=seed)
    p = proba(head, [x[query], f["photos", "flip"][query]]).mean(axis=0)
    pv = proba(head, [x[val], f["photos", "flip"][val]]).mean(axis=0)
    scores = {
        "mahalanobis": lambda q: mahalanobis(x[fit], y_photos[fit], q),
        "knn5": lambda q: knn(x[fit], q, 5),
        "1 - confidence": None,
    }
    found = {"predicted": p.argmax(axis=1)}
    for name, score in scores.items():
        on_val = 1 - pv.max(axis=1) if score is None else score(x[val])
        on_query = 1 - p.max(axis=1) if score is None else score(x[query])
        found[name] = on_query > np.quantile(on_val, 0.98)
    usable = np.flatnonzero(fit | val)  # every photo of the model's own, its distance cross-fitted over 5 folds
    for name, distance in (("mahalanobis", lambda a, b, q: mahalanobis(a, b, q)), ("knn5", lambda a, b, q: knn(a, q))):
        part = np.arange(len(usable)) % 5
        held = np.concatenate(
            [distance(x[usable[part != k]], y_photos[usable[part != k]], x[usable[part == k]]) for k in range(5)]
        )
        found[f"{name}, 5-fold"] = distance(x[usable], y_photos[usable], x[query]) > np.quantile(held, 0.98)
    return found


DISTANCE_SCORES = ("mahalanobis", "knn5", "1 - confidence", "mahalanobis, 5-fold", "knn5, 5-fold")


def distance_study(found: dict, y_photos: np.ndarray, sources: np.ndarray, seeds=(0, 1, 2)) -> None:
    """Item 4: heads trained on dev horse and human photos alone (no renders, no neither); a distance (or 1 -
    confidence) over the 98th percentile of its own validation photos (a random 20% of its photos) says unsure.
    Neither photos: one source out (trained on the horse and human photos of every other source). Horse and human
    photos: 5 stratified random folds, since 39 of 40 horses share one source (without it a model has one horse
    photo). Per seed (of the folds, the validation draw and the head)."""
    print("\n## item 4, photos alone (no renders, no neither), 98th percentile of own validation photos (5-fold: of")
    print("every own photo's distance, each measured from the other 4 fifths)")
    print("| score | seed | neither unsure (one source out) | real photos right, plain -> with the score (5 folds) |")
    print("|---|---|---|---|")
    for seed in seeds:
        flagged, plain, right = distance_seed(found[0.35], y_photos, sources, seed)
        for n in DISTANCE_SCORES:
            print(f"| {n} | {seed} | {flagged[n]} of {(y_photos == 2).sum()} | {plain} -> {right[n]} of 80 |")


def distance_seed(f, y_photos: np.ndarray, sources: np.ndarray, seed: int) -> tuple[dict, int, dict]:
    """({score: neither photos flagged}, real photos right without a score, {score: right and not flagged})."""
    real, rng = y_photos < 2, np.random.default_rng(seed)
    fold = np.zeros(len(y_photos), int)
    for c in (0, 1):
        idx = rng.permutation(np.flatnonzero(y_photos == c))
        fold[idx] = np.arange(len(idx)) % 5
    flagged = dict.fromkeys(DISTANCE_SCORES, 0)
    for source in sorted(set(sources[~real])):
        usable = real & (sources != source)
        val = usable & (rng.random(len(y_photos)) < 0.2)
        out = distance_fold(f, y_photos, usable & ~val, val, ~real & (sources == source), seed)
        for n in DISTANCE_SCORES:
            flagged[n] += int(out[n].sum())
    plain, right = 0, dict.fromkeys(DISTANCE_SCORES, 0)
    for k in range(5):
        usable, query = real & (fold != k), real & (fold == k)
        val = usable & (rng.random(len(y_photos)) < 0.2)
        out = distance_fold(f, y_photos, usable & ~val, val, query, seed)
        ok = out["predicted"] == y_photos[query]
        plain += int(ok.sum())
        for n in DISTANCE_SCORES:
            right[n] += int((ok & ~out[n]).sum())
    return flagged, plain, right


def main() -> None:
    photos_dir = Path(os.environ.get("REAL_PHOTOS", ROOT.parent / "shared" / "real-photos-dev"))
    cache = Path(os.environ.get("STUDY_CACHE", ROOT / "runs" / "fewshot-study"))
    study = os.environ.get("STUDY", "all")
    only = os.environ.get("ONLY")  # item 3 candidates, separated by ";" (default: all)
    if only:
        for name in set(CANDIDATES) - set(only.split(";")):
            del CANDIDATES[name]
    renders = load_dataset(Path(os.environ.get("DATA", ROOT.parent / "shared" / "data")), SIZE, None, QUIET)
    photos, sources = photo_split(photos_dir)
    found = {a: Features(a, renders, photos, cache) for a in (0.35, 1.0)}
    y = (renders[0].y, renders[1].y, photos.y)
    if study in ("all", "extra") and CANDIDATES:
        extra_study(found, y, sources)
    if study in ("all", "distance"):
        distance_study(found, photos.y, sources)


if __name__ == "__main__":
    main()
