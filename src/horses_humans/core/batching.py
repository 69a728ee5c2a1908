"""One batch loop: run a function over an array (or split a list) a slice at a time."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import numpy as np


def chunks(items: Sequence, size: int) -> Iterator[Sequence]:
    """Consecutive slices of at most `size` items (the last may be shorter)."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def batched(
    fn: Callable,
    array: np.ndarray,
    batch_size: int,
    trailing_shape: tuple = (),
    progress: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    """fn on `batch_size` rows at a time -> float32 (N, *trailing_shape); each output is reshaped to
    (len(batch), *trailing_shape), so (n, 1) probabilities come back as (n,). Empty in, empty out.
    progress(done, total), if given, is called after each batch (e.g. a progress.ProgressBar)."""
    out, done = [], 0
    for batch in chunks(array, batch_size):
        out.append(np.asarray(fn(batch), np.float32).reshape(len(batch), *trailing_shape))
        done += len(batch)
        if progress:
            progress(done, len(array))
    return np.concatenate(out) if out else np.zeros((0, *trailing_shape), np.float32)
