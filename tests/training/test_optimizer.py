"""The fused RMSprop: the same numbers as Keras' RMSprop, and a plain RMSprop when Keras lacks what it reads."""

import logging

import keras
import numpy as np
import pytest

from horses_humans.training.optimizer import FUSED_RMSPROP_NEEDS, FusedRMSprop, make_optimizer

SHAPES = [(50, 7), (7,), (3, 3, 2, 4)]  # a dense kernel, a bias, a conv kernel
STEPS = 6


def run_steps(optimizer, learning_rates: dict) -> list[np.ndarray]:
    """Apply STEPS seeded float32 gradients to SHAPES variables; learning_rates maps a step to a new rate."""
    rng = np.random.default_rng(0)
    variables = [keras.Variable(rng.normal(size=shape).astype("float32")) for shape in SHAPES]
    for step in range(STEPS):
        if step in learning_rates:
            optimizer.learning_rate = learning_rates[step]  # as ReduceLROnPlateau does between epochs
        scale = 10.0 ** rng.integers(-3, 2)  # gradients of very different sizes, so epsilon and rho both matter
        grads = [keras.ops.convert_to_tensor((scale * rng.normal(size=shape)).astype("float32")) for shape in SHAPES]
        optimizer.apply(grads, variables)
    return [keras.ops.convert_to_numpy(v) for v in variables]


LEARNING_RATES = {
    "constant": (lambda: 1e-2, {}),
    "changed": (lambda: 1e-2, {2: 3e-3, 4: 5e-2}),
    "schedule": (lambda: keras.optimizers.schedules.ExponentialDecay(1e-2, decay_steps=1, decay_rate=0.5), {}),
}


@pytest.mark.parametrize("name", LEARNING_RATES)
def test_fused_rmsprop_matches_keras_rmsprop(name):
    rate, changes = LEARNING_RATES[name]
    fused = run_steps(FusedRMSprop(rate()), changes)
    reference = run_steps(keras.optimizers.RMSprop(rate()), changes)
    start = run_steps(keras.optimizers.SGD(0.0), {})
    for f, r, s in zip(fused, reference, start):
        assert not np.allclose(r, s, atol=1e-4)  # the variables did move
        np.testing.assert_allclose(f, r, rtol=1e-5, atol=1e-7)


def test_make_optimizer_uses_the_fused_kernel_on_this_keras(caplog):
    # Fails when a Keras upgrade drops an internal FusedRMSprop reads: fix the class or keep keras below that release.
    with caplog.at_level(logging.WARNING):
        assert type(make_optimizer(1e-3)) is FusedRMSprop
    assert not caplog.records


def lacking(name: str) -> type:
    """A FusedRMSprop on a Keras without `name` (a fresh class each call: make_optimizer caches per class)."""

    class Lacking(FusedRMSprop):
        def __getattribute__(self, attribute):
            if attribute == name:
                raise AttributeError(f"'RMSprop' object has no attribute '{name}'", name=name, obj=self)
            return super().__getattribute__(attribute)

    return Lacking


@pytest.mark.parametrize("name", FUSED_RMSPROP_NEEDS)
def test_make_optimizer_falls_back_to_keras_rmsprop_once_warned(name, caplog):
    fake = lacking(name)
    with caplog.at_level(logging.WARNING, logger="horses_humans.training"):
        optimizers = [make_optimizer(1e-2, fused=fake) for _ in range(2)]
    assert [type(o) for o in optimizers] == [keras.optimizers.RMSprop] * 2
    assert [name in r.getMessage() for r in caplog.records] == [True]  # one warning, naming what is missing
