"""`predict --engine ray`: the same prediction as a Ray Data pipeline, on a local Ray or an existing cluster.

    file list (driver: predict.collect_files) -> decode in tasks (images.load_pixels)
      -> map_batches(RunModel) on an actor pool (one Predictor per actor) -> rows streamed to one file, or stdout

Rows are those of the single-machine path, written by its writers (resultfiles.py: table, CSV, JSON Lines, JSON) or
as Parquet with the same columns; bad files are rows with their error, in input order.
Ray is an optional extra: nothing here imports it at module level, and the package never imports this module
except for `--engine ray`.
"""

from __future__ import annotations

import json
import logging
import socket
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..config import DEFAULT_RESIZE, HorsesHumansError
from ..core.atomic import atomic_path
from ..data.files import PassedOver
from ..runs.store import load_run
from . import resultfiles
from .predictor import Prediction, decode_file
from .resultfiles import (
    ModelStamp,
    csv_columns,
    file_sink,
    from_csv_row,
    model_stamp,
    text_cells,
    write_sidecar,
)

INSTALL_HINT = "--engine ray needs Ray Data: pip install 'horses-humans[ray]' (or pass --engine local)."
EXTENSIONS = {**resultfiles.EXTENSIONS, ".parquet": "parquet"}
DEFAULT_BATCH = 32
STAMP_KEY = b"horses_humans.model"  # Parquet metadata: the ModelStamp, as JSON


@dataclass(frozen=True)
class RayPredict:
    """What `predict --engine ray` was asked: the run and inputs, where the rows go, and how to run them."""

    run: Path
    paths: list[Path]
    output: Path | None = None
    fmt: str | None = None  # table, csv, jsonl, json (--format, --csv, --json); None: from --output, else CSV
    checkpoint: str | None = None
    runtime: str = "auto"
    workers: int | None = None
    address: str | None = None
    batch_size: int | None = None
    max_pixels: int | None = None
    strict: bool = False


def import_ray():
    """The ray module, or a one-line error that says how to install it."""
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise HorsesHumansError(INSTALL_HINT) from None
    return ray


def output_format(output: Path | None, fmt: str | None = None) -> str:
    """The format asked for, else --output's extension (.csv, .jsonl, .json, .parquet), else CSV; a one-line error
    for an extension the engine does not write."""
    if output is not None and Path(output).suffix.lower() == ".parquet":
        if fmt and fmt != "parquet":
            raise HorsesHumansError(f"--output {output}: a .parquet file holds Parquet; leave out --format {fmt}.")
        return "parquet"
    if fmt or output is None:
        return fmt or "csv"
    found = EXTENSIONS.get(Path(output).suffix.lower())
    if found is None:
        raise HorsesHumansError(
            f"--output {output}: --engine ray writes {', '.join(EXTENSIONS)}; name the file with one of them "
            "(or pass --format)."
        )
    return found


def arrow_schema(class_names: list[str], model: ModelStamp | None = None):
    """Fixed column types (the CSV's columns), so a batch of errors only (all labels None) has the same schema as
    any other; with `model`, the stamp of what answered in the schema's metadata."""
    import pyarrow as pa

    strings = {"file", "label", "unsure_reason", "error"}
    metadata = {STAMP_KEY: json.dumps(asdict(model)).encode()} if model else None
    columns = csv_columns(class_names)
    return pa.schema([(name, pa.string() if name in strings else pa.float64()) for name in columns], metadata=metadata)


def decode_batch(batch: dict, image_size: int, max_pixels: int | None = None, resize: str = DEFAULT_RESIZE) -> dict:
    """Ray task: {"file", "path"} -> {"file", "pixels" (N, S, S, 3) uint8, "error" ("" when decoded)}; "file" is the
    name as given (what rows and errors show), "path" its absolute form (a worker's folder is not the driver's)."""
    files = [str(f) for f in batch["file"]]
    pixels = np.zeros((len(files), image_size, image_size, 3), np.uint8)
    errors = []
    for i, (name, path) in enumerate(zip(files, batch["path"])):
        decoded = decode_file(str(path), image_size, max_pixels, name=name, resize=resize)  # the local path's decode
        if isinstance(decoded, str):
            errors.append(decoded)
        else:
            pixels[i] = decoded
            errors.append("")
    return {"file": np.array(files, object), "pixels": pixels, "error": np.array(errors, object)}


def answer(predictor, files: list[str], pixels: np.ndarray, errors: list[str]) -> list:
    """Predictions for decoded pixels (one row per file; a file with an error text has none), as the local path
    makes them: Predictor.predict_decoded."""
    return predictor.predict_decoded(files, [error or pixels[i] for i, error in enumerate(errors)])


def build_predictor(run: str, checkpoint: str | None, runtime: str | None):
    """The run's predictor (its default runtime: an export when it has one, else Keras; or the one asked for)."""
    from ..core.backend import configure
    from .predictor import Predictor

    configure()  # an actor is a fresh process: set TensorFlow's variables before Keras is imported
    return Predictor.from_run(run, checkpoint, **({"runtime": runtime} if runtime else {}))


class RunModel:
    """Ray actor: builds the run's predictor once, then turns decoded batches into pyarrow rows."""

    def __init__(self, run: str, checkpoint: str | None = None, runtime: str | None = None):
        self.predictor = build_predictor(run, checkpoint, runtime)
        self.schema = arrow_schema(self.predictor.class_names)

    def __call__(self, batch: dict):
        import pyarrow as pa

        files, errors = [str(f) for f in batch["file"]], [str(e) for e in batch["error"]]
        results = answer(self.predictor, files, np.asarray(batch["pixels"]), errors)
        rows = [text_cells(r.csv_row(self.predictor.class_names)) for r in results]  # Arrow strings are UTF-8
        return pa.Table.from_pylist(rows, schema=self.schema)


@contextmanager
def ray_session(address: str | None, workers: int | None) -> Iterator[object]:
    """A connected Ray: the caller's if one is running, else a cluster at `address`, else a local instance of
    `workers` CPUs; quiet (no dashboard, no progress bars, errors only). Disconnects what it connected."""
    from ..core.backend import quiet_native_stderr

    ray = import_ray()
    if address:
        check_reachable(address)
    # a small input gives the actor pool fewer blocks than actors: Ray warns, the answer is the same
    warnings.filterwarnings("ignore", "The minimum number of concurrent actors", UserWarning)
    with quiet_native_stderr():  # Ray's C++ core logs to fd 2 (e.g. about actor restarts) whatever its log level
        started = not ray.is_initialized()
        if started:
            # "local": always a new instance (with no address, ray.init joins whatever /tmp/ray names as current)
            options = (
                {"address": address}
                if address
                else {"address": "local", "num_cpus": workers, "include_dashboard": False}
            )
            connect(ray, options, address)
        logging.getLogger("ray.data").setLevel(logging.ERROR)  # "Starting execution ..." lines on every run
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = context.print_on_execution_start = False
        context.execution_options.preserve_order = True  # rows stream out in input order, as on one machine
        try:
            yield ray
        finally:
            if started:
                ray.shutdown()


def connect(ray, options: dict, address: str | None) -> None:
    """ray.init, with a cluster that does not answer as a one-line error."""
    try:
        ray.init(**options, logging_level=logging.ERROR, log_to_driver=False)
    except ConnectionError as exc:
        raise HorsesHumansError(
            f"--address {address}: no Ray cluster answers there ({exc}); check the address, and for "
            "a cluster with token authentication set RAY_AUTH_MODE=token here (docs/ray.md)."
        ) from None


def check_reachable(address: str, timeout: float = 5.0) -> None:
    """Refuse a HOST:PORT (or ray://HOST:PORT) nobody listens on: ray.init would retry it for minutes."""
    host, _, port = address.split("://")[-1].rpartition(":")
    if not host or not port.isdigit():
        return  # "auto", or a form Ray resolves itself
    try:
        socket.create_connection((host, int(port)), timeout).close()
    except OSError as exc:
        raise HorsesHumansError(
            f"--address {address}: nothing listens there ({exc.strerror or exc}); start the head "
            "node with `ray start --head` and pass the address it prints (docs/ray.md)."
        ) from None


def actor_count(request: RayPredict) -> int:
    """How many model actors (and local Ray CPUs) the request asks for: --workers, default 2."""
    return max(1, request.workers or 2)


def build_dataset(ray, files: list[Path], request: RayPredict):
    """The pipeline: file names -> decode tasks (images over the request's max_pixels refused) -> a pool of model
    actors (the request's run, checkpoint and runtime) -> pyarrow rows."""
    run, checkpoint, max_pixels = Path(request.run).resolve(), request.checkpoint, request.max_pixels
    workers, batch_size = actor_count(request), request.batch_size or DEFAULT_BATCH
    recorded = load_run(run, checkpoint)
    image_size, resize = recorded.image_size, recorded.resize
    blocks = max(1, min(len(files), workers * 4))  # a few blocks per worker: decode and predict overlap
    ds = ray.data.from_items(
        [{"file": str(f), "path": str(Path(f).absolute())} for f in files], override_num_blocks=blocks
    )
    # model actors reserve half a CPU, decode tasks a quarter: with one CPU, an actor and decode tasks still run side
    # by side (a whole CPU per actor would leave the decode tasks none: the pipeline would wait forever), and unequal
    # requests keep Ray from fusing decoding into the actors; the pool grows from one actor as batches queue up, so a
    # few files do not pay for loading the model `workers` times
    ds = ds.map_batches(
        decode_batch,
        fn_kwargs={"image_size": image_size, "max_pixels": max_pixels, "resize": resize},
        batch_size=batch_size,
        batch_format="numpy",
        num_cpus=0.25,
    )
    return ds.map_batches(
        RunModel,
        fn_constructor_kwargs={"run": str(run), "checkpoint": checkpoint, "runtime": request.runtime},
        batch_size=batch_size,
        batch_format="numpy",
        num_cpus=0.5,
        compute=ray.data.ActorPoolStrategy(min_size=1, max_size=workers),
    )


def stream_rows(ds) -> Iterator[dict]:
    """The dataset's rows as plain dicts (None stays None, floats exact), in order."""
    for table in ds.iter_batches(batch_format="pyarrow", batch_size=None):
        yield from table.to_pylist()


def stream_predictions(ds, class_names: list[str]) -> Iterator[list[Prediction]]:
    """The dataset's rows back as Predictions, a block at a time, in order (what the writers take)."""
    for table in ds.iter_batches(batch_format="pyarrow", batch_size=None):
        yield [from_csv_row(row, class_names) for row in table.to_pylist()]


def write_rows(
    batches: Iterator[list[Prediction]], class_names: list[str], model: ModelStamp, output: Path | None, fmt: str
) -> list[Prediction]:
    """Write the rows as they come, to stdout or atomically to `output` (a CSV's sidecar after it); return the
    error rows."""
    failed: list[Prediction] = []
    checked = (failed.extend(r for r in batch if r.error) or batch for batch in batches)
    if output is None:
        write_batches(checked, resultfiles.WRITERS[fmt](resultfiles.StdoutSink(), class_names, model))
        return failed
    with atomic_path(output, suffix=Path(output).suffix) as tmp:
        if fmt == "parquet":
            write_parquet(checked, class_names, model, tmp)
        else:
            with file_sink(tmp, 0, resumable=False, shown=Path(output)) as sink:
                write_batches(checked, resultfiles.WRITERS[fmt](sink, class_names, model))
    write_sidecar(Path(output), fmt, class_names, model)
    return failed


def write_batches(batches: Iterator[list[Prediction]], writer) -> None:
    """Every batch through one of resultfiles' writers, then its end (the JSON array's bracket)."""
    for batch in batches:
        writer.write(batch)
    writer.close()


def write_parquet(
    batches: Iterator[list[Prediction]], class_names: list[str], model: ModelStamp, path: Path, group: int = 4096
) -> None:
    """One Parquet file of csv_row rows, the model's stamp in its metadata, a row group every `group` rows (memory
    stays flat)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema, buffer = arrow_schema(class_names, model), []
    with pq.ParquetWriter(path, schema) as writer:
        for row in (r.csv_row(class_names) for batch in batches for r in batch):
            buffer.append(row)
            if len(buffer) == group:
                writer.write_table(pa.Table.from_pylist(buffer, schema=schema))
                buffer = []
        writer.write_table(pa.Table.from_pylist(buffer, schema=schema))


def predict_with_ray(request: RayPredict, passed: PassedOver | None = None) -> tuple[int, list[Prediction]]:
    """Predict every file under the request's paths on Ray and write the rows; return (rows written, error rows);
    `passed` counts the walked folders' files that are not images by name, as the local walk does."""
    from .predictor import collect_files

    fmt, run_record = output_format(request.output, request.fmt), load_run(request.run, request.checkpoint)
    model = model_stamp(run_record, request.checkpoint, request.runtime)  # bad options fail before Ray starts
    files, workers = collect_files(request.paths, passed), actor_count(request)
    names, output = run_record.class_names, request.output
    with ray_session(request.address, workers) as ray:
        if not files:
            return 0, write_rows(iter(()), names, model, output, fmt)
        ds = build_dataset(ray, files, request)
        try:
            return len(files), write_rows(stream_predictions(ds, names), names, model, output, fmt)
        except ray.exceptions.RayError as exc:
            raise user_error(exc) or exc


def user_error(exc: BaseException) -> HorsesHumansError | None:
    """The one-line error a worker raised (a run a node cannot load, ...), read from Ray's report of it (an actor's
    failed creation reaches the driver as text inside ActorDiedError), or None."""
    prefix = f"{HorsesHumansError.__module__}.{HorsesHumansError.__name__}: "
    lines = [line for line in str(exc).splitlines() if prefix in line]
    return HorsesHumansError(lines[-1].split(prefix, 1)[1].strip()) if lines else None
