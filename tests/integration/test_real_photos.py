"""Integration: the dev photos (../shared/real-photos-dev, never committed) as --extra-data, and the unsure rule that
a run trained with half of them gives on the other half."""

import os
from pathlib import Path

import numpy as np
import pytest

from horses_humans.analysis.answers import score_folder
from horses_humans.config import TrainConfig
from horses_humans.core.workspace import Workspace, quiet
from horses_humans.data.pixels import load_extra
from horses_humans.training.loop import train

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]
PHOTOS = Path(os.environ.get("REAL_PHOTOS") or REPO.parent / "shared" / "real-photos-dev")
DATA = Path(os.environ.get("HORSES_HUMANS_DATA") or REPO.parent / "shared" / "data")
W035 = REPO.parent / "shared" / "weights" / "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_224_no_top.h5"


@pytest.fixture(scope="module")
def halves(tmp_path_factory) -> tuple[Path, Path]:
    """(train, held-out): every fourth photo of each class (sorted names) held out, the rest to train on, as links."""
    assert (PHOTOS / "neither").is_dir(), f"these tests need the dev photos at {PHOTOS} (or REAL_PHOTOS)"
    root = tmp_path_factory.mktemp("halves")
    for name in ("horses", "humans", "neither"):
        for i, path in enumerate(sorted((PHOTOS / name).iterdir())):
            target = root / ("train" if i % 4 else "heldout") / name / path.name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.symlink_to(path.resolve())
    return root / "train", root / "heldout"


def test_the_dev_photos_load_as_extra_data_with_neither(tmp_path):
    names, (photos,) = load_extra([PHOTOS], ["horses", "humans"], 64, tmp_path, lambda s: None, ("neither",))
    assert names == ["horses", "humans", "neither"]
    assert np.bincount(photos.y).tolist() == [40, 40, 40] and photos.x.shape[1:] == (64, 64, 3)


def test_three_quarters_of_the_dev_photos_teach_the_rest_unsure(halves, tmp_path):
    """Official data alone catches 4 of 40 neither photos (README); three quarters of the dev photos as extra data
    make the held-out quarter's neither photos unsure while the real ones stay right."""
    config = TrainConfig(recipe="mobilenet_v2", weights=str(W035), tta=True, extra_data=(str(halves[0]),))
    run = train(config, Workspace(DATA, tmp_path / "runs", tmp_path / "cache", quiet))
    found = score_folder(run, halves[1], tmp_path / "cache", log=lambda s: None)
    counts = found["counts"]
    assert counts["horses"]["right"] + counts["humans"]["right"] >= 18  # of 20 held-out real photos
    assert counts["neither"]["unsure"] >= 8  # of 10 held-out neither photos
    assert found["validation_unsure"] <= 0.02 * found["validation_images"]


def test_leaving_one_dev_source_out_trains_on_no_photo_of_it(tmp_path):
    """scripts/real_photos.py's grouped folds over the real SOURCES.tsv: every dev photo has a source, and no fold
    trains on a photo of the source it holds out."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("real_photos", REPO / "scripts" / "real_photos.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    sources = script.photo_sources(PHOTOS)
    assert len(sources) == sum(len(list((PHOTOS / c).iterdir())) for c in ("horses", "humans", "neither"))
    triples = script.source_folders(PHOTOS, tmp_path)
    assert len(triples) == len(set(sources.values()))
    for source, trained_on, heldout in triples:
        trained = {f"{p.parent.name}/{p.name}" for p in trained_on.rglob("*") if p.is_symlink()}
        held = {f"{p.parent.name}/{p.name}" for p in heldout.rglob("*") if p.is_symlink()}
        assert held and {sources[f] for f in held} == {source}
        assert source not in {sources[f] for f in trained}
