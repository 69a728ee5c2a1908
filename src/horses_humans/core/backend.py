"""One environment set-up for the Keras backend: the variables TensorFlow reads at import, and a quiet import.

Every entry point (the CLI, the tests' conftest, the benches, the scripts) calls `configure()` before anything
imports TensorFlow, instead of setting the variables itself.
"""

from __future__ import annotations

import logging
import os
import sys
from contextlib import contextmanager

from ..config import HorsesHumansError

DEFAULTS = {
    "TF_CPP_MIN_LOG_LEVEL": "2",  # TensorFlow's C++ INFO/WARNING start-up notices off
    "TF_ENABLE_ONEDNN_OPTS": "1",  # TF's default; set explicitly, TF stops announcing it
    "KERAS_BACKEND": "tensorflow",
}


def configure() -> None:
    """Set the backend's environment variables (only those the user has not set); call before importing keras."""
    for name, value in DEFAULTS.items():
        os.environ.setdefault(name, value)


def require_tensorflow(feature: str) -> None:
    """Raise one clear line when the Keras backend in use is not TensorFlow, for code that needs TensorFlow's own
    API (Grad-CAM's GradientTape): a model under JAX or torch is not on TensorFlow's tape."""
    import keras

    backend = keras.backend.backend()
    if backend != "tensorflow":
        raise HorsesHumansError(
            f"{feature} needs the TensorFlow backend, and KERAS_BACKEND is {backend}: run it with "
            "KERAS_BACKEND=tensorflow (a run trained on any backend loads there)."
        )


def import_backend() -> None:
    """configure(), then import TensorFlow with its C++ start-up chatter hidden (absl/oneDNN notices are printed
    on import whatever TF_CPP_MIN_LOG_LEVEL says); a Python exception from the import is still raised and shown."""
    configure()
    if os.environ["KERAS_BACKEND"] != "tensorflow":
        return
    with quiet_native_stderr():
        import tensorflow  # noqa: F401


@contextmanager
def quiet_native_stderr():
    """Hide what C++ libraries (TensorFlow, its converter, LiteRT) print straight to file descriptor 2 for a block,
    while Python's own sys.stderr (our progress lines) still reaches the terminal; Python exceptions propagate as
    usual. HORSES_HUMANS_VERBOSE=1 shows everything."""
    if os.environ.get("HORSES_HUMANS_VERBOSE"):
        yield
        return
    sys.stderr.flush()
    saved, python_stderr = os.dup(2), sys.stderr
    try:
        with open(os.devnull, "w") as devnull, open(saved, "w", closefd=False) as visible:
            os.dup2(devnull.fileno(), 2)
            if writes_to_fd2(python_stderr):
                sys.stderr = visible
            try:
                yield
            finally:
                sys.stderr = python_stderr
                repoint_log_handlers(visible, python_stderr)
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def repoint_log_handlers(old, new) -> None:
    """Point logging handlers made inside the block on `old` (closed after it) at `new`: TensorFlow's logger is made
    during its import, and would otherwise print '--- Logging error ---' for every later warning."""
    loggers = [logging.getLogger(), *logging.Logger.manager.loggerDict.values()]
    for handler in (h for logger in loggers for h in getattr(logger, "handlers", [])):
        if isinstance(handler, logging.StreamHandler) and handler.stream is old:
            handler.setStream(new)


def writes_to_fd2(stream) -> bool:
    """Whether a text stream is file descriptor 2 itself (not, say, pytest's capture)."""
    try:
        return stream.fileno() == 2
    except (AttributeError, OSError, ValueError):
        return False
