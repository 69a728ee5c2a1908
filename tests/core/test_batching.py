"""batching.py: one loop for batch-by-batch calls."""

import numpy as np
import pytest

from horses_humans.core.batching import batched, chunks


def test_chunks_cover_every_item_once_in_order():
    assert [list(c) for c in chunks(list(range(7)), 3)] == [[0, 1, 2], [3, 4, 5], [6]]
    assert list(chunks([], 3)) == []


def test_batched_calls_in_batches_and_concatenates_float32():
    sizes = []

    def probability(batch):
        sizes.append(len(batch))
        return batch.sum(axis=(1, 2)).reshape(-1, 1) / 10  # (n, 1), as a Keras model's output

    x = np.arange(5 * 2 * 2).reshape(5, 2, 2).astype(np.uint8)
    out = batched(probability, x, 2)
    assert sizes == [2, 2, 1] and out.dtype == np.float32 and out.shape == (5,)
    np.testing.assert_allclose(out, x.sum(axis=(1, 2)) / 10, rtol=1e-6)


def test_batched_keeps_a_trailing_shape_and_empty_input_gives_an_empty_array_of_that_shape():
    x = np.ones((3, 4))
    assert batched(lambda b: b * 2, x, 2, (4,)).shape == (3, 4)
    calls = []
    empty = batched(calls.append, np.zeros((0, 4)), 2, (7, 7, 8))
    assert calls == [] and empty.shape == (0, 7, 7, 8) and empty.dtype == np.float32


def test_batched_refuses_an_output_with_the_wrong_number_of_rows():
    with pytest.raises(ValueError):
        batched(lambda b: b[:1], np.ones((4, 3)), 2, (3,))


def test_batched_reports_progress_after_each_batch():
    calls = []
    out = batched(
        lambda x: x * 2, np.arange(10, dtype=np.float32), 4, progress=lambda done, total: calls.append((done, total))
    )
    assert out.tolist() == [2.0 * i for i in range(10)]
    assert calls == [(4, 10), (8, 10), (10, 10)]
