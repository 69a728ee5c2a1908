"""horses-humans: get the Horses or Humans data set, train, compare, explain, serve and export classifiers.

The public Python API (docs/python-api.md), loaded on first use so that `import horses_humans` stays light:

    import horses_humans as hh
    run = hh.train("data/", recipe="baseline", epochs=2)
    run.predict(["horse.png"])
"""

__version__ = "0.1.0"

# name -> the module that defines it; importing horses_humans imports none of them (nor TensorFlow)
_LAZY = {
    "train": "api",
    "load_run": "api",
    "Run": "api",
    "Prediction": "inference.predictor",
    "TrainConfig": "config",
    "HorsesHumansError": "config",
}
__all__ = ["__version__", *_LAZY]


def __getattr__(name: str):
    """The public names, imported when first asked for (PEP 562)."""
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
