"""Shared fixtures: tiny synthetic images and data sets in tmp_path; a per-test cache folder."""

from horses_humans.core import backend

backend.configure()  # before anything imports TensorFlow: keep its C++ start-up notices out of the test output

from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PIL import Image  # noqa: E402

from horses_humans.data.layouts import TRAIN, VALIDATION  # noqa: E402

from .tiers import is_slow, slow_fixture  # noqa: E402

CLASSES = ("horses", "humans")


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path_factory, monkeypatch) -> Path:
    """Every test gets its own $HORSES_HUMANS_CACHE, so nothing is written to ~/.cache."""
    cache = tmp_path_factory.mktemp("cache")
    monkeypatch.setenv("HORSES_HUMANS_CACHE", str(cache))
    return cache


@pytest.fixture
def make_image():
    """Factory: write an image with unique random pixels (so no two files are duplicates); returns its path."""
    rng = np.random.default_rng(0)

    def make(
        path: Path, size: tuple[int, int] = (16, 16), mode: str = "RGB", fmt: str | None = None, **save_args
    ) -> Path:
        width, height = size
        pixels = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels).convert(mode).save(path, fmt, **save_args)
        return path

    return make


@pytest.fixture
def make_split(make_image):
    """Factory: one split's class folders under `folder`, `counts[i]` PNGs in class i; returns folder."""

    def make(folder: Path, counts=(3, 3), classes=CLASSES, size=(16, 16)) -> Path:
        for name, n in zip(classes, counts):
            for i in range(n):
                make_image(Path(folder) / name / f"{name}-{i:02d}.png", size)
        return Path(folder)

    return make


@pytest.fixture
def make_dataset(make_split):
    """Factory: the official layout (training and validation splits) under `root`; returns root."""

    def make(root: Path, train=(3, 3), validation=(2, 2), classes=CLASSES, size=(16, 16)) -> Path:
        make_split(Path(root) / TRAIN, train, classes, size)
        make_split(Path(root) / VALIDATION, validation, classes, size)
        return Path(root)

    return make


@pytest.fixture
def data_dir(tmp_path, make_dataset) -> Path:
    """A healthy synthetic data set: 3+3 training and 2+2 validation 16x16 RGB PNGs."""
    return make_dataset(tmp_path / "data")


@pytest.fixture
def imported_data_dir(tmp_path, data_dir) -> Path:
    """The healthy synthetic data set as `data import` left it (marked): a folder a later import may replace."""
    from horses_humans.data.importing import import_path

    import_path(data_dir, tmp_path / "imported", log=lambda line: None)
    return tmp_path / "imported"


@pytest.fixture(scope="session")
def views_data(tmp_path_factory) -> tuple[Path, Path]:
    """(data dir, cache dir): the learnable synthetic data set shared by the explain/plots/report tests."""
    from .synthetic import make_dataset

    return make_dataset(tmp_path_factory.mktemp("views-data")), tmp_path_factory.mktemp("views-cache")


@pytest.fixture(scope="session")
@slow_fixture
def baseline_run(views_data, tmp_path_factory) -> Path:
    """A one-epoch baseline run at 32 px on the synthetic data."""
    from horses_humans.config import TrainConfig
    from horses_humans.core.workspace import Workspace, quiet
    from horses_humans.training.loop import train

    config = TrainConfig(recipe="baseline", epochs=1, image_size=32, batch_size=8, precision="float32")
    return train(config, Workspace(views_data[0], tmp_path_factory.mktemp("views-runs"), views_data[1], quiet))


@pytest.fixture(scope="session")
@slow_fixture
def mobilenet_run(views_data, tmp_path_factory) -> Path:
    """A one-epoch MobileNetV2 run (random backbone weights, nested and frozen) at 64 px."""
    from horses_humans.config import TrainConfig
    from horses_humans.core.workspace import Workspace, quiet
    from horses_humans.training.loop import train

    config = TrainConfig(recipe="mobilenet_v2", weights="none", image_size=64, epochs=1, batch_size=8)
    return train(config, Workspace(views_data[0], tmp_path_factory.mktemp("views-runs"), views_data[1], quiet))


def pytest_collection_modifyitems(config, items):
    """Apply the `slow` marker by the rule in tests/tiers.py (folders and slow fixtures)."""
    for item in items:
        if is_slow(item) and item.get_closest_marker("slow") is None:
            item.add_marker(pytest.mark.slow)


def pytest_terminal_summary(terminalreporter):
    """Name the browser tests and their outcome at the end of every run, so a reader sees that they ran."""
    reports = [
        r
        for outcome in ("passed", "failed", "skipped", "error")
        for r in terminalreporter.stats.get(outcome, [])
        if "browser" in getattr(r, "keywords", {}) and (r.when == "call" or r.outcome != "passed")
    ]
    for r in reports:
        terminalreporter.write_line(f"browser test (headless Chromium via Playwright): {r.nodeid} {r.outcome}")
