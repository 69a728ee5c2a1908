"""scripts/real_photos.py's cross-validation folders: leave one source out holds out exactly one source's photos and
trains on every other's, random folds hold out every photo once; both link the photos, never copy them."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SOURCES = {  # class/file: source, lopsided as the dev photos are (one source holds most of a class)
    **{f"horses/h{i}.jpg": "repo/a" for i in range(5)},
    "horses/h5.jpg": "repo/b",
    **{f"humans/p{i}.jpg": "repo/c" for i in range(4)},
    "humans/p4.jpg": "repo/b",
    **{f"neither/n{i}.jpg": "repo/d" if i % 2 else "repo/b" for i in range(4)},
}


@pytest.fixture(scope="module")
def script():
    spec = importlib.util.spec_from_file_location("real_photos", ROOT / "scripts" / "real_photos.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def photos_folder(root: Path, sources: dict[str, str]) -> Path:
    """A dev-photo folder: a small file per photo and SOURCES.tsv naming each one's source_repo."""
    for file in SOURCES:
        (root / file).parent.mkdir(parents=True, exist_ok=True)
        (root / file).write_bytes(file.encode())
    rows = "".join(f"{file.split('/')[0]}\t{file}\t{source}\tabc\n" for file, source in sources.items())
    (root / "SOURCES.tsv").write_text("class\tfile\tsource_repo\tcommit\n" + rows)
    return root


def linked(folder: Path) -> dict[str, Path]:
    """{class/file: what it links to} of a fold folder; fails on anything that is not a link."""
    found = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        assert path.is_symlink(), f"{path} is a copy"
        found[str(path.relative_to(folder))] = path.resolve()
    return found


def test_leave_one_source_out_holds_out_each_source_once(script, tmp_path):
    photos = photos_folder(tmp_path / "photos", SOURCES)
    triples = script.source_folders(photos, tmp_path / "folds")
    assert [name for name, _, _ in triples] == ["repo/a", "repo/b", "repo/c", "repo/d"]
    for source, train, heldout in triples:
        held, trained = linked(heldout), linked(train)
        assert set(held) == {f for f, s in SOURCES.items() if s == source}
        assert set(trained) == {f for f, s in SOURCES.items() if s != source}
        assert all(target == (photos / f).resolve() for f, target in {**held, **trained}.items())


def test_random_folds_hold_out_every_photo_once(script, tmp_path):
    photos = photos_folder(tmp_path / "photos", SOURCES)
    triples = script.fold_folders(photos, tmp_path / "folds", 3)
    held = [f for _, _, heldout in triples for f in linked(heldout)]
    assert sorted(held) == sorted(SOURCES)
    for _, train, heldout in triples:
        assert set(linked(train)) == set(SOURCES) - set(linked(heldout))


def test_a_photo_without_a_source_row_is_named(script, tmp_path):
    photos = photos_folder(tmp_path / "photos", {f: s for f, s in SOURCES.items() if f != "humans/p2.jpg"})
    with pytest.raises(SystemExit, match=r"SOURCES.tsv: no source_repo for humans/p2.jpg \(1 photos\)"):
        script.source_folders(photos, tmp_path / "folds")


def test_lopsided_says_how_much_one_source_holds(script, tmp_path):
    photos = photos_folder(tmp_path / "photos", SOURCES)
    assert script.lopsided(photos) == (
        "horses: 5 of 6 from one source, humans: 4 of 5 from one source, neither: 2 of 4 from one source"
    )
