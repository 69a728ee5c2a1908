"""Honest probabilities: a calibration map fitted on validation and chosen by cross-validation, expected
calibration error, reliability bins.

A model trained to zero loss answers 99.99% even where it is often wrong; a frozen backbone with a small head can
answer 70% where it is right 95% of the time. The map, outputs.calibrated, is softmax(log p * scale / T + bias), one
of (METHODS, simplest first):
- "none": the model's own probabilities;
- "temperature": one T; T > 1 softens an overconfident model, T < 1 sharpens an underconfident one; labels never move;
- "temperature+bias" (two classes): T and a bias on class 1's logit, sigmoid(logit(p) / T + b) (Platt scaling on
  the logit), for a model that leans toward one class: saturated sigmoids that one T cannot spread;
- "vector" (three or more classes): a scale and a bias per class (vector scaling on log p).
RUN/calibration.json keeps the map, the held-out NLL of every method and the before/after numbers; Run.output applies
it, so predict, the server, evaluate, the report and every export serve calibrated probabilities.

The guard against a small validation split (a T fitted on a handful of mistakes could promise far more than the model
keeps) is two things, because each covers what the other cannot:
- Cross-validation chooses the method: the validation split is cut into FOLDS stratified folds, each method is fitted
  on all but one and scored by the NLL of the one left out; the method with the lowest held-out NLL wins, a richer
  one only when it beats the simpler ones by MIN_GAIN nats per image, so a T < 1 or a per-class bias is used only
  when it predicted images it had not seen. The chosen method is then fitted on the whole split.
- Shrinkage by evidence: every parameter (log T, each bias, each log scale) has a normal prior at 0 (the identity)
  with sd PRIOR_SD, added to the summed NLL: on a few images the fit stays near the model's own probabilities, on
  many the data decide.
Cross-validation alone would still refit the winner on the whole split with nothing to hold it back; the prior alone
cannot say whether 2C parameters earn their keep.

A split without a single mistake has no likelihood optimum (its NLL only falls toward certainty as T -> 0), and
no mistake to fit a bias or scale on, yet an underconfident model right on all of it should not keep its low
probabilities. N images all answered right support a confidence of about (N + 1) / (N + 2) (Laplace's rule of
succession: the mean accuracy after N successes under a uniform prior), not certainty; so such a split gets one
temperature, whatever method was chosen or asked for (but "none"), found by a root finder so that the served mean
confidence on the split equals that bound. A model already at or above the bound keeps its own probabilities: the
bound caps how sure the evidence lets the fit make it, and a model that made no mistake gave no evidence that it is
overconfident (24 of 24 right is what a model at 0.999 expects 98% of the time), so softening it would trade the
model's own knowledge for a uniform prior's. calibration.json says which happened in "fit".

Only "none" and "temperature" are chosen unless asked for (`calibrate RUN --method best` chooses among every
method; `--method NAME` fits one): a bias or per-class scale moves labels, and one fitted on the validation split
(1) makes that split's accuracy in-sample and (2) carries the renders' lean onto photos, where it does not hold. The
reference baseline showed both: temperature+bias won the held-out NLL on validation (0.222 against 0.356) but moved
its real-photo labels from 55 to 51 of 80 right, 11 of them wrong at p > 0.999 (docs/own-data.md).

A run with test-time flips serves the mean of the calibrated probabilities of an image and its mirror, so the map is
fitted and scored on exactly that: the fit takes a stack of views (V, N, C) and scores their calibrated mean.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..config import HorsesHumansError
from ..models.outputs import NONE, PROBABILITY_FLOOR, TEMPERATURE, TEMPERATURE_BIAS, VECTOR, calibrated
from ..runs.record import load_run_split
from ..runs.store import load_run, update_calibration
from .predictor import Predictor

logger = logging.getLogger(__name__)  # progress lines; the CLI sends them to stderr

ECE_BINS = 15
FOLDS = 5  # stratified folds of the validation split that choose the method
PRIOR_SD = 1.0  # sd of the normal prior on log T, each bias and each log scale (in nats of summed NLL: 1/2 per sd^2)
MIN_GAIN = 1e-3  # held-out NLL (nats per image) a richer method must win by
LOG_T_RANGE = (-3.0, 5.0)  # T from 0.05 (sharpens) to 148 (softens)
BIAS_RANGE = (-10.0, 10.0)
AUTO, BEST = "auto", "best"  # how the method is chosen: among the label-keeping ones (the default), or among all
KEEP_LABELS = (NONE, TEMPERATURE)
CHOSEN_BY = {
    AUTO: "held-out NLL, among the methods that keep every label",
    BEST: "held-out NLL, among every method (calibrate --method best)",
}
VIEWS = {1: "each image", 2: "each image and its mirror (test-time flips): fitted on their calibrated mean, as served"}


@dataclass(frozen=True)
class CalibrationMap:
    """A fitted map, softmax(log p * scale / T + bias) (outputs.calibrated): what calibration.json records."""

    method: str = NONE
    temperature: float = 1.0
    scale: tuple[float, ...] | None = None  # per class; None: 1
    bias: tuple[float, ...] | None = None  # per class; None: 0

    def apply(self, probabilities) -> np.ndarray:
        """Uncalibrated probabilities (N, C) or views (V, N, C) -> the served (N, C), float32, as Predictor gives."""
        return served(probabilities, self.temperature, self.scale, self.bias)

    def record(self) -> dict:
        """calibration.json's method, temperature, class_scale and class_bias (None clears a stale one)."""
        as_list = lambda values: None if values is None else list(values)  # noqa: E731
        return {
            "method": self.method,
            "temperature": self.temperature,
            "class_scale": as_list(self.scale),
            "class_bias": as_list(self.bias),
        }


@dataclass(frozen=True)
class Method:
    """A calibration method: which class counts it serves, its parameters' bounds, and the map they make."""

    name: str
    serves: Callable[[int], bool]  # classes -> whether the method applies
    bounds: Callable[[int], list[tuple[float, float]]]  # classes -> one (low, high) per parameter
    terms: Callable[[np.ndarray, int], tuple]  # (parameters, classes) -> (temperature, scale, bias)

    def map_of(self, theta, classes: int) -> CalibrationMap:
        """The CalibrationMap of parameters theta, rounded to 6 decimals as calibration.json stores them."""
        temperature, scale, bias = self.terms(np.round(np.asarray(theta, np.float64), 6), classes)
        rounded = lambda values: None if values is None else tuple(round(float(v), 6) for v in values)  # noqa: E731
        return CalibrationMap(self.name, round(float(temperature), 6), rounded(scale), rounded(bias))


METHODS = {  # simplest first: a later method must beat every earlier one by MIN_GAIN
    NONE: Method(NONE, lambda c: True, lambda c: [], lambda theta, c: (1.0, None, None)),
    TEMPERATURE: Method(TEMPERATURE, lambda c: True, lambda c: [LOG_T_RANGE], lambda t, c: (np.exp(t[0]), None, None)),
    TEMPERATURE_BIAS: Method(
        TEMPERATURE_BIAS,
        lambda c: c == 2,
        lambda c: [LOG_T_RANGE, BIAS_RANGE],
        lambda t, c: (np.exp(t[0]), None, (0.0, t[1])),
    ),
    VECTOR: Method(
        VECTOR,
        lambda c: c >= 3,
        lambda c: [LOG_T_RANGE] * c + [BIAS_RANGE] * c,
        lambda t, c: (1.0, np.exp(t[:c]), t[c:]),
    ),
}


def negative_log_likelihood(y_true, probabilities) -> float:
    """Mean -log p(true class) of class indices y_true (N,) under probabilities (N, C), p clipped as outputs does."""
    probabilities = np.asarray(probabilities, np.float64)
    p = probabilities[np.arange(len(probabilities)), np.asarray(y_true, int)]
    return float(-np.mean(np.log(np.clip(p, PROBABILITY_FLOOR, 1.0))))


def views_of(probabilities) -> np.ndarray:
    """Uncalibrated probabilities (N, C), or a stack of views (V, N, C) (an image and its mirror) -> (V, N, C)."""
    probabilities = np.asarray(probabilities, np.float32)
    return probabilities[None] if probabilities.ndim == 2 else probabilities


def served(probabilities, temperature: float = 1.0, scale=None, bias=None) -> np.ndarray:
    """(N, C) probabilities as a run serves them: the mean of each view's calibrated probabilities (what
    Predictor.predict_proba gives with the run's calibration and flips)."""
    return np.mean([calibrated(view, temperature, scale, bias) for view in views_of(probabilities)], axis=0)


def mapped_nll(y_true, log_views, weight, bias) -> tuple[float, np.ndarray, np.ndarray]:
    """Summed -log p(true class) of the views' mean of softmax(log p * weight + bias), in float64, with its gradient
    by weight (C,) and by bias (C,). log_views: clipped log p (V, N, C); weight is scale / T."""
    from scipy.special import log_softmax, logsumexp

    rows = np.arange(log_views.shape[1])
    log_q = log_softmax(log_views * weight + bias, axis=2)  # (V, N, C)
    log_mean = logsumexp(log_q[:, rows, y_true], axis=0) - np.log(len(log_q))  # log of the served p(true), (N,)
    share = np.exp(log_q[:, rows, y_true] - log_mean - np.log(len(log_q)))  # each view's part of it, (V, N)
    onehot = np.eye(log_views.shape[2])[y_true]
    by_logit = -share[:, :, None] * (onehot - np.exp(log_q))  # d NLL / d logit, (V, N, C)
    return float(-log_mean.sum()), (by_logit * log_views).sum(axis=(0, 1)), by_logit.sum(axis=(0, 1))


def weight_and_bias(spec: Method, theta, classes: int) -> np.ndarray:
    """The map's per-class weight (scale / T) and bias of parameters theta, as one (2C,) vector."""
    temperature, scale, bias = spec.terms(theta, classes)
    weight = (np.ones(classes) if scale is None else np.asarray(scale, np.float64)) / temperature
    return np.concatenate([weight, np.zeros(classes) if bias is None else np.asarray(bias, np.float64)])


def penalized_loss(spec: Method, y_true, log_views, penalty: float) -> Callable:
    """theta -> (summed NLL + penalty * |theta|^2, its gradient): what L-BFGS-B minimises. The map's own derivative
    by theta is taken by central differences (it holds no data: exact to ~1e-10), the data's analytically."""
    classes = log_views.shape[2]

    def loss(theta):
        nll, by_weight, by_bias = mapped_nll(y_true, log_views, *np.split(weight_and_bias(spec, theta, classes), 2))
        steps = np.eye(len(theta)) * 1e-6
        jacobian = np.stack(
            [
                (weight_and_bias(spec, theta + h, classes) - weight_and_bias(spec, theta - h, classes)) / 2e-6
                for h in steps
            ],
            axis=1,
        )  # (2C, parameters)
        gradient = jacobian.T @ np.concatenate([by_weight, by_bias]) + 2 * penalty * theta
        return nll + penalty * float(theta @ theta), gradient

    return loss


def fit_method(
    y_true, probabilities, method: str = TEMPERATURE, prior_sd: float | None = PRIOR_SD, perfect_by_succession=True
) -> CalibrationMap:
    """The map of `method` that maximises the likelihood of (y_true (N,), uncalibrated probabilities (N, C) or views
    (V, N, C)) plus a normal prior (sd prior_sd, None: none) on its parameters. When every image is answered right
    and perfect_by_succession, one temperature by the rule of succession instead (succession_map; the NLL then only
    falls toward certainty; cross-validation fits such a side by likelihood anyway, with its prior, so that a fold
    holding the only mistakes is scored by what the others teach)."""
    from scipy.optimize import minimize

    y_true, views = np.asarray(y_true, int), views_of(probabilities)
    spec, classes = METHODS[method], views.shape[2]
    bounds = spec.bounds(classes)
    if not bounds:
        return CalibrationMap()
    if perfect_by_succession and not mistakes(y_true, served(views)):
        return succession_map(y_true, views)
    log_views = np.log(np.clip(views.astype(np.float64), PROBABILITY_FLOOR, 1.0 - PROBABILITY_FLOOR))
    penalty = 0.0 if prior_sd is None else 0.5 / prior_sd**2
    loss = penalized_loss(spec, y_true, log_views, penalty)
    result = minimize(loss, np.zeros(len(bounds)), jac=True, method="L-BFGS-B", bounds=bounds)
    return spec.map_of(result.x, classes)


def fit_temperature(y_true, probabilities, prior_sd: float | None = PRIOR_SD) -> float:
    """The fitted T alone (fit_method's "temperature"; by the rule of succession when every image is answered right)."""
    return fit_method(y_true, probabilities, TEMPERATURE, prior_sd).temperature


def succession_bound(images: int) -> float:
    """Laplace's rule of succession: N images all answered right support a confidence of (N + 1) / (N + 2)."""
    return (images + 1) / (images + 2)


def mean_confidence(y_true, probabilities) -> float:
    """Mean probability of the true class over rows (on a split without mistakes: the mean served confidence)."""
    probabilities = np.asarray(probabilities, np.float64)
    return float(np.mean(probabilities[np.arange(len(probabilities)), np.asarray(y_true, int)]))


def succession_temperature(y_true, views) -> float:
    """The T whose served mean confidence on a split without mistakes is succession_bound(N), found by brentq on
    log T below 0: 1.0 when the model is already that sure (never softened), the sharpest T of LOG_T_RANGE when even
    that falls short (a near-uniform model). Where that T moves a label (three or more classes whose image and mirror
    disagree: the served mean of sharpened views can change its top class), a sharpest T that keeps every label."""
    from scipy.optimize import brentq

    target, log_t = succession_bound(len(y_true)), LOG_T_RANGE[0]
    confidence = lambda log_t: mean_confidence(y_true, served(views, float(np.exp(log_t))))  # noqa: E731
    keeps_labels = lambda log_t: not mistakes(y_true, served(views, float(np.exp(log_t))))  # noqa: E731
    if not len(y_true) or confidence(0.0) >= target:  # no image: nothing to claim
        return 1.0
    if confidence(log_t) > target:
        log_t = brentq(lambda log_t: confidence(log_t) - target, log_t, 0.0, xtol=1e-9)
    return float(np.exp(log_t if keeps_labels(log_t) else bisect_toward_identity(keeps_labels, log_t)))


def bisect_toward_identity(keeps_labels: Callable[[float], bool], log_t: float) -> float:
    """Bisection on log T between log_t, which moves a label, and 0, which keeps them all: the log T nearest log_t
    found that keeps them (to 1e-6)."""
    moves, keeps = log_t, 0.0
    while keeps - moves > 1e-6:
        middle = (moves + keeps) / 2
        moves, keeps = (moves, middle) if keeps_labels(middle) else (middle, keeps)
    return keeps


def succession_map(y_true, views) -> CalibrationMap:
    """The map of a split without mistakes: succession_temperature, or the identity where that is 1."""
    temperature = round(succession_temperature(y_true, views), 6)
    return CalibrationMap() if temperature == 1.0 else CalibrationMap(TEMPERATURE, temperature)


def succession_note(y_true, views, fit: CalibrationMap) -> str:
    """calibration.json's "fit" of a split without mistakes: the mean served confidence before and after, the bound."""
    n, bound = len(y_true), succession_bound(len(y_true))
    before, after = mean_confidence(y_true, served(views)), mean_confidence(y_true, fit.apply(views))
    if fit.method == NONE:
        return f"no mistakes: mean confidence {before:.3f} already at or above (N+1)/(N+2) = {bound:.3f}, N = {n}: kept"
    if abs(after - bound) < 1e-3:
        return f"no mistakes: mean confidence {before:.3f} -> {after:.3f} = (N+1)/(N+2), N = {n}"
    return f"no mistakes: mean confidence {before:.3f} -> {after:.3f}, short of (N+1)/(N+2) = {bound:.3f}, N = {n}"


def fold_ids(y_true, folds: int) -> np.ndarray:
    """A fold index (0 .. folds - 1) per image, stratified by class, shuffled with seed 0 (the same every time)."""
    y_true = np.asarray(y_true, int)
    rng = np.random.default_rng(0)
    order = np.concatenate([rng.permutation(np.flatnonzero(y_true == c)) for c in np.unique(y_true)])
    ids = np.empty(len(y_true), int)
    ids[order] = np.arange(len(y_true)) % folds
    return ids


def heldout_nll(y_true, views, method: str, folds: int) -> float:
    """Mean NLL of every image under `method` fitted on the other folds (cross-validation)."""
    y_true, ids, total = np.asarray(y_true, int), fold_ids(y_true, folds), 0.0
    for k in range(folds):
        fit = fit_method(y_true[ids != k], views[:, ids != k], method, perfect_by_succession=False)
        total += negative_log_likelihood(y_true[ids == k], fit.apply(views[:, ids == k])) * int(np.sum(ids == k))
    return total / len(y_true)


def candidate_methods(classes: int, choice: str = BEST) -> list[str]:
    """The methods that serve this many classes, simplest first; choice AUTO: only those that keep every label."""
    return [name for name, spec in METHODS.items() if spec.serves(classes) and (choice == BEST or name in KEEP_LABELS)]


def choose_method(y_true, views, folds: int = FOLDS, choice: str = AUTO) -> tuple[str, dict, int]:
    """(method, {method: held-out NLL}, folds used): the simplest of `choice`'s candidates that no richer one beats by
    MIN_GAIN."""
    folds = min(folds, len(y_true))
    if folds < 2:
        return NONE, {}, 0
    scores = {name: heldout_nll(y_true, views, name, folds) for name in candidate_methods(views.shape[2], choice)}
    best = NONE
    for name, score in scores.items():
        if score < scores[best] - MIN_GAIN:
            best = name
    return best, scores, folds


def mistakes(y_true, probabilities) -> int:
    """How many rows' largest probability is not the true class."""
    return int(np.sum(np.asarray(probabilities).argmax(axis=1) != np.asarray(y_true, int)))


def reliability_bins(y_true, probabilities, bins: int = ECE_BINS) -> dict:
    """Top-label reliability in equal-width confidence bins: edges (bins + 1,), then per bin the mean confidence,
    the accuracy (NaN where empty) and the count (bins,)."""
    probabilities = np.asarray(probabilities, np.float64)
    confidence = probabilities.max(axis=1)
    correct = (probabilities.argmax(axis=1) == np.asarray(y_true, int)).astype(np.float64)
    edges = np.linspace(0.0, 1.0, bins + 1)
    index = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, bins - 1)  # (lo, hi]; 0 goes to bin 0
    count = np.bincount(index, minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_confidence = np.bincount(index, confidence, bins) / count
        accuracy = np.bincount(index, correct, bins) / count
    return {"edges": edges, "confidence": mean_confidence, "accuracy": accuracy, "count": count}


def expected_calibration_error(y_true, probabilities, bins: int = ECE_BINS) -> float:
    """Top-label ECE: the count-weighted mean |accuracy - confidence| over equal-width confidence bins."""
    table = reliability_bins(y_true, probabilities, bins)
    filled = table["count"] > 0
    gaps = np.abs(table["accuracy"][filled] - table["confidence"][filled])
    return float(np.sum(gaps * table["count"][filled]) / max(int(table["count"].sum()), 1))


def bins_record(table: dict) -> dict:
    """reliability_bins as JSON lists (NaN -> None)."""
    clean = lambda a: [None if np.isnan(v) else round(float(v), 6) for v in a]  # noqa: E731
    return {
        "edges": clean(table["edges"]),
        "confidence": clean(table["confidence"]),
        "accuracy": clean(table["accuracy"]),
        "count": [int(c) for c in table["count"]],
    }


def calibration_record(y_true, raw_views, bins: int = ECE_BINS, method: str | None = None) -> dict:
    """Choose and fit the map on (y_true, uncalibrated probabilities (N, C) or views (V, N, C)) and describe it and
    the before and after, for calibration.json (`mistakes` 0: one temperature by the rule of succession, its "fit"
    says how; files from before it hold the identity there). `method`:
    None or "auto" chooses among the label-keeping methods, "best" among all, a method's name fits that one; the
    held-out NLL of the candidates (all of them for a name) is recorded either way."""
    y_true, views = np.asarray(y_true, int), views_of(raw_views)
    raw_probabilities = served(views)
    asked = method not in (None, AUTO, BEST)  # a method named: fitted as asked, every method scored beside it
    choice = AUTO if method in (None, AUTO) else BEST
    wrong = mistakes(y_true, raw_probabilities)
    chosen, scores, folds = choose_method(y_true, views, choice=choice) if wrong else (TEMPERATURE, {}, 0)
    fit = fit_method(y_true, views, method if asked else chosen)  # no mistakes: by the rule of succession
    by_succession = not wrong and method != NONE
    after = fit.apply(views)
    return {
        **fit.record(),
        "chosen_by": "asked (calibrate --method)" if asked else CHOSEN_BY[choice],
        "fit": succession_note(y_true, views, fit) if by_succession else None,  # None clears a stale note
        "fitted_on": "validation",
        "images": int(len(y_true)),
        "views": VIEWS[len(views)],
        "folds": folds,
        "heldout_nll": {name: round(score, 6) for name, score in scores.items()},
        "prior_sd": PRIOR_SD,
        "bins": bins,
        "mistakes": mistakes(y_true, raw_probabilities),
        "ece_before": expected_calibration_error(y_true, raw_probabilities, bins),
        "ece_after": expected_calibration_error(y_true, after, bins),
        "nll_before": negative_log_likelihood(y_true, raw_probabilities),
        "nll_after": negative_log_likelihood(y_true, after),
        "reliability_before": bins_record(reliability_bins(y_true, raw_probabilities, bins)),
        "reliability_after": bins_record(reliability_bins(y_true, after, bins)),
    }


def calibrate_run(run_dir, data_dir=None, cache_dir=None, log=logger.info, method: str | None = None) -> dict:
    """Choose (or, given `method`, fit that one) and fit the run's calibration on its validation images and record it
    in RUN/calibration.json; returns the record.

    The fit always starts from the model's own probabilities, so calibrating twice gives the same map."""
    run = load_run(run_dir)
    check_method(method, len(run.class_names))
    if run.has_distance_check and method not in (None, AUTO, NONE, TEMPERATURE):
        raise HorsesHumansError(
            f"{run.path}: calibration method {method!r} would tilt the uniform answers of the run's distance check "
            f"(train --distance-unsure) into a label: use --method auto or temperature."
        )
    split = load_run_split(run, "validation", data_dir, cache_dir, log)
    predictor, x = Predictor.uncalibrated(run), np.asarray(split.x)
    views = [predictor.predict_proba(x)] + ([predictor.predict_proba(x[:, :, ::-1])] if run.config.tta else [])
    record = calibration_record(split.y, np.stack(views), method=method)
    return update_calibration(run.path, **record)


def check_method(method: str | None, classes: int) -> None:
    """A method asked for by name must exist and serve this many classes, else a clear error."""
    if method not in (None, AUTO, BEST) and method not in candidate_methods(classes):
        raise HorsesHumansError(
            f"calibration method {method!r} does not serve {classes} classes: choose one of "
            f"{', '.join(candidate_methods(classes))} (or leave it out: cross-validation chooses)."
        )


def format_calibration(record: dict) -> str:
    """One line: the map, how it was chosen, and ECE and NLL before and after, on how many validation images."""
    scores = ", ".join(f"{name} {score:.4f}" for name, score in (record.get("heldout_nll") or {}).items())
    how = "asked for; " if record.get("chosen_by", "").startswith("asked") else "chosen by "
    chosen = f"{how}held-out NLL over {record['folds']} folds: {scores}; " if scores else ""
    chosen = f"{record['fit']}; " if record.get("fit") else chosen
    return (
        f"{map_words(record)} ({chosen}fitted on {record['images']} {record['fitted_on']} images): "
        f"ECE {record['ece_before']:.4f} -> {record['ece_after']:.4f}, "
        f"NLL {record['nll_before']:.4f} -> {record['nll_after']:.4f}"
    )


def describe_map(record: dict) -> str:
    """The calibration of a calibration.json record in words, with how a split without mistakes was fitted."""
    return map_words(record) + (f" ({record['fit']})" if record.get("fit") else "")


def map_words(record: dict) -> str:
    """The map of a calibration.json record in words (records with only a temperature, or from before the rule of
    succession, too)."""
    method, temperature = record.get("method", TEMPERATURE), record.get("temperature", 1.0)
    if method == NONE and record.get("fit"):
        return "no calibration"  # a split without mistakes whose model was already as sure as it supports
    if method == NONE and record.get("chosen_by", "").startswith("asked"):
        return "no calibration (asked for)"
    if record.get("mistakes") == 0 and not record.get("fit"):  # written before the rule of succession
        return "no calibration (no mistakes to fit on: the model's own probabilities)"
    if method == NONE:
        return "no calibration (no method beat the model's own probabilities on held-out folds)"
    if method == VECTOR:
        numbers = lambda key: ", ".join(f"{v:.3f}" for v in record[key])  # noqa: E731
        return f"vector scaling (class scales {numbers('class_scale')}; biases {numbers('class_bias')})"
    bias = record.get("class_bias")
    return f"temperature {temperature:.3f}" + (f" + bias {bias[1]:+.3f} on class 1's logit" if bias else "")
