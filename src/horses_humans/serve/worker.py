"""One dedicated thread for every model call; images that arrive together are predicted in one batch, answered by
the Predictor's own labelling (calibration, flips, unsure rule): the server and `predict` share one rule."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ..inference.predictor import Prediction, Predictor


class ModelWorker:
    """Queue of (name, pixels, future); a single task drains it into batches for the model thread.

    The event loop never runs the model: it only queues images and awaits futures. While one batch is
    in the model, new requests queue up and form the next batch, so batching costs no added wait.
    """

    def __init__(self, predictor: Predictor, max_batch: int = 32):
        self.predictor, self.max_batch = predictor, max_batch
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="model")
        self.queue: asyncio.Queue | None = None
        self.task: asyncio.Task | None = None

    async def start(self) -> ModelWorker:
        """Warm the model up in its thread (for one image and for a batch) and start draining the queue."""
        self.queue = asyncio.Queue()
        await self.run(self.predictor.warm_up)
        await self.run(self.warm_up_batches)
        self.task = asyncio.create_task(self.drain())
        return self

    def warm_up_batches(self) -> None:
        """One call on two blank images: the second batch shape makes Keras trace a shape-generic predict function
        (about 0.3 s on 2 cores), which the first concurrent requests would otherwise wait for."""
        size = self.predictor.image_size
        self.predictor.predict_proba(np.zeros((2, size, size, 3), np.uint8), 2)

    async def stop(self) -> None:
        """Stop draining and let the model thread finish."""
        if self.task:
            self.task.cancel()
        self.executor.shutdown(wait=True)

    async def run(self, fn, *args):
        """Run any model-touching function (Grad-CAM, warm-up) in the model thread."""
        return await asyncio.get_running_loop().run_in_executor(self.executor, fn, *args)

    async def predict(self, name: str, pixels: np.ndarray) -> Prediction:
        """One uint8 image's (S, S, 3) answer, as Predictor.predict_decoded labels it."""
        future = asyncio.get_running_loop().create_future()
        self.queue.put_nowait((name, pixels, future))
        return await future

    async def drain(self) -> None:
        """Forever: take what is queued (up to max_batch), predict it in one call, hand out the answers."""
        while True:
            items = [await self.queue.get()]
            while len(items) < self.max_batch and not self.queue.empty():
                items.append(self.queue.get_nowait())
            items = [item for item in items if not item[2].done()]  # requests whose client went away
            if not items:
                continue
            try:
                answers = await self.run(self.predictor.predict_decoded, *zip(*[(n, p) for n, p, _ in items]))
            except Exception as exc:  # a model failure fails these requests, never the worker
                for *_, future in items:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for (*_, future), answer in zip(items, answers):
                if not future.done():
                    future.set_result(answer)
