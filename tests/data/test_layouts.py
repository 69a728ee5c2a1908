"""A user's own images: the three layouts (and their zips) with 2, 3 and 5 classes -- detect, import, check -- each
bad layout's one error line, and a run that remembers its split (evaluate, report) even after the data changed."""

import shutil

import pytest

from horses_humans.cli.main import main
from horses_humans.config import HorsesHumansError
from horses_humans.data import layouts
from horses_humans.data.check import check_dataset, format_report
from horses_humans.data.importing import MARKER
from horses_humans.data.layouts import CLASS_FOLDERS, OFFICIAL, SPLIT_FOLDERS, TRAIN, VALIDATION

from ..synthetic import LAYOUTS, class_names, make_own_dataset, zip_folder

PER_CLASS = 6  # training images per class; val/test get 2 (make_own_dataset's max(2, per_class // 3))
EXPECTED_LAYOUT = {"official": OFFICIAL, "split-folders": SPLIT_FOLDERS, "class-folders": CLASS_FOLDERS}
# images per class on each side: class folders alone hold 6, of which round(0.2 * 6) = 1 goes to validation
SIDE_COUNTS = {
    "official": {"train": 6, "validation": 2},
    "split-folders": {"train": 6, "validation": 2, "test": 2},
    "class-folders": {"train": 5, "validation": 1},
}


def own_dataset(root, n, layout):
    """A small own data set; split-folders gets a test/ split too."""
    return make_own_dataset(root, n, layout, per_class=PER_CLASS, test=layout == "split-folders")


def side_counts(dataset) -> dict:
    """{side: [images per class]}."""
    return {
        side: [found.labels.count(i) for i in range(len(dataset.class_names))] for side, found in dataset.sides.items()
    }


def assert_one_line_error(err: str, *fragments: str) -> None:
    """stderr is exactly one 'error: ...' line holding every fragment, and no traceback."""
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


# ---------------------------------------------------------------- detect, import, check: every layout x 2, 3, 5 classes


@pytest.mark.parametrize("n", [2, 3, 5])
@pytest.mark.parametrize("layout", LAYOUTS)
def test_each_layout_is_found_with_its_classes_and_sides(tmp_path, layout, n):
    root = own_dataset(tmp_path / "mine", n, layout)
    assert layouts.detect_layout(root) == EXPECTED_LAYOUT[layout]
    dataset = layouts.find_dataset(root)
    assert dataset.class_names == class_names(n)
    assert side_counts(dataset) == {side: [count] * n for side, count in SIDE_COUNTS[layout].items()}
    for found in dataset.sides.values():  # every file exists where the side says, under its own class folder
        assert all(
            (found.root / f).is_file() and f.split("/")[0] == dataset.class_names[label]
            for f, label in zip(found.files, found.labels)
        )


@pytest.mark.parametrize("n", [2, 3, 5])
@pytest.mark.parametrize("as_zip", [False, True], ids=["folder", "zip"])
@pytest.mark.parametrize("layout", LAYOUTS)
def test_import_copies_the_whole_data_set_in_its_layout(tmp_path, layout, n, as_zip, capsys):
    source = own_dataset(tmp_path / "mydata", n, layout)
    if as_zip:
        source = zip_folder(source, tmp_path / "mydata.zip", prefix="mydata/")  # one folder inside, as zips often are
    data_dir = tmp_path / "data"
    assert main(["data", "import", str(source), "--data-dir", str(data_dir)]) == 0
    assert f"imported the {EXPECTED_LAYOUT[layout]} data set" in capsys.readouterr().err
    assert side_counts(layouts.find_dataset(data_dir)) == side_counts(layouts.find_dataset(tmp_path / "mydata"))
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no staging folder left behind


@pytest.mark.parametrize("n", [2, 3, 5])
@pytest.mark.parametrize("layout", LAYOUTS)
def test_check_names_the_layout_and_counts_each_class_per_split(tmp_path, layout, n, capsys):
    root = own_dataset(tmp_path / "mine", n, layout)
    report = check_dataset(root)
    assert report["layout"] == EXPECTED_LAYOUT[layout] and report["problems"] == [] and report["warnings"] == []
    counts = {split: info["counts"] for split, info in report["splits"].items()}
    per_split = {
        "official": {TRAIN: 6, VALIDATION: 2},
        "split-folders": {"train": 6, "val": 2, "test": 2},
        "class-folders": {"all": 6},
    }[layout]
    assert counts == {split: dict.fromkeys(class_names(n), k) for split, k in per_split.items()}
    if layout == "class-folders":
        assert report["val_split"]["counts"] == dict.fromkeys(class_names(n), 1)
    assert main(["data", "check", "--data-dir", str(root)]) == 0
    out = capsys.readouterr().out
    assert f"layout: {EXPECTED_LAYOUT[layout]} (" in out and out.rstrip().endswith("result: usable for training")


@pytest.mark.parametrize("layout", LAYOUTS)
def test_check_warns_of_imbalance_and_suggests_class_weights(tmp_path, layout):
    root = own_dataset(tmp_path / "mine", 3, layout)
    train_dir = {"official": root / TRAIN, "split-folders": root / "train", "class-folders": root}[layout]
    for path in sorted((train_dir / "class2").iterdir())[:3]:  # 6 -> 3 images: largest / smallest = 2
        path.unlink()
    warnings = [w for w in check_dataset(root)["warnings"] if "imbalanced" in w]
    assert len(warnings) == 1 and "'class2': 3" in warnings[0] and "--class-weight balanced" in warnings[0]


@pytest.mark.parametrize("layout", LAYOUTS)
def test_check_finds_the_same_image_labelled_as_two_classes(tmp_path, layout):
    root = own_dataset(tmp_path / "mine", 3, layout)
    folder = {"official": root / VALIDATION, "split-folders": root / "val", "class-folders": root}[layout]
    shutil.copy(folder / "class0" / "class0-00.png", folder / "class1" / "copy.png")
    report = check_dataset(root)
    prefix = "" if layout == "class-folders" else f"{folder.name}/"
    both = [f"{prefix}class0/class0-00.png", f"{prefix}class1/copy.png"]
    assert report["cross_class_duplicates"] == [both]
    assert any(both[0] in w and both[1] in w and "labelled as class0" in w for w in report["warnings"])
    assert "identical files in two classes: 1" in format_report(report)


def test_stratified_split_is_deterministic_for_the_seed_and_keeps_each_side(tmp_path):
    root = make_own_dataset(tmp_path / "mine", 3, "class-folders", per_class=10)
    first, again = layouts.find_dataset(root, 0.3, seed=1), layouts.find_dataset(root, 0.3, seed=1)
    assert first.sides == again.sides
    assert side_counts(first) == {"train": [7, 7, 7], "validation": [3, 3, 3]}
    assert set(first.sides["train"].files).isdisjoint(first.sides["validation"].files)
    other = layouts.find_dataset(root, 0.3, seed=2)
    assert other.sides["validation"].files != first.sides["validation"].files
    tiny = make_own_dataset(tmp_path / "tiny", 2, "class-folders", per_class=2)
    assert side_counts(layouts.find_dataset(tiny, 0.9)) == {"train": [1, 1], "validation": [1, 1]}  # one each at least


def test_importing_class_folders_replaces_the_official_data_set_and_says_so(tmp_path, imported_data_dir, capsys):
    data_dir = imported_data_dir
    source = make_own_dataset(tmp_path / "mydata", 3, "class-folders", per_class=4)
    assert main(["data", "import", str(source), "--data-dir", str(data_dir)]) == 0
    assert f"it replaced the official data set ({TRAIN}, {VALIDATION})" in capsys.readouterr().err
    assert sorted(p.name for p in data_dir.iterdir() if p.name != MARKER) == class_names(3)
    assert main(["data", "check", "--data-dir", str(data_dir)]) == 0


def test_import_never_replaces_a_folder_holding_other_files(tmp_path, capsys):
    data_dir = tmp_path / "home"
    (data_dir / "photos").mkdir(parents=True)
    (data_dir / "notes.txt").write_text("mine")
    source = make_own_dataset(tmp_path / "mydata", 2, "class-folders", per_class=4)
    assert main(["data", "import", str(source), "--data-dir", str(data_dir)]) == 2
    assert_one_line_error(capsys.readouterr().err, str(data_dir), "notes.txt", "empty or new folder")
    assert (data_dir / "notes.txt").read_text() == "mine"


# ---------------------------------------------------------------- bad layouts: one error line each


def no_val_for_class2(root):
    shutil.rmtree(root / "val" / "class2")


def one_image_in_class1(root):
    for path in sorted((root / "class1").iterdir())[1:]:
        path.unlink()


def one_class_only(root):
    for name in ("class1", "class2"):
        shutil.rmtree(root / name)


def empty_class1(root):
    shutil.rmtree(root / "class1")
    (root / "class1").mkdir()


def no_folders(root):
    for name in ("class0", "class1", "class2"):
        shutil.move(root / name / f"{name}-00.png", root / f"{name}.png")
        shutil.rmtree(root / name)


def no_images(root):
    for name in ("class0", "class1", "class2"):
        shutil.rmtree(root / name)


def train_without_val(root):
    shutil.rmtree(root / "val")


def one_folder_too_deep(root):
    (root / "inner").mkdir()
    for name in ("class0", "class1", "class2"):
        shutil.move(root / name, root / "inner" / name)


BAD_LAYOUTS = [  # (layout, how it is broken, what the error line says)
    (
        "split-folders",
        no_val_for_class2,
        ["class folders differ between train/ and val/", "'class2' is only in train/", "val/class2/"],
    ),
    ("class-folders", one_image_in_class1, ["class1: 1 image, too few to split", "add at least one more"]),
    ("class-folders", one_class_only, ["needs at least two class folders, found ['class0']", "add a folder"]),
    ("class-folders", empty_class1, ["class1: class folder is empty", "add its images or remove the folder"]),
    (
        "class-folders",
        no_folders,
        [
            "no data set here (it holds class0.png, class1.png, class2.png",
            "(1) DIR/horse-or-human/<class>/",
            "(2) DIR/train/<class>/",
            "(3) DIR/<class>/",
        ],
    ),
    ("class-folders", no_images, ["no data set here (the folder is empty", "data import PATH"]),
    ("split-folders", train_without_val, ["train: no val/ (or valid/, validation/) beside it", "--val-split"]),
    ("class-folders", one_folder_too_deep, ["holds only inner/", "point --data-dir at"]),
]


@pytest.mark.parametrize("layout, breaks, fragments", BAD_LAYOUTS, ids=[b.__name__ for _, b, _ in BAD_LAYOUTS])
def test_bad_layout_is_one_error_line_for_train_import_and_check(tmp_path, layout, breaks, fragments, capsys):
    root = make_own_dataset(tmp_path / "mine", 3, layout, per_class=3)
    breaks(root)
    assert (
        main(
            [
                "train",
                "--recipe",
                "baseline",
                "--data-dir",
                str(root),
                "--runs-dir",
                str(tmp_path / "runs"),
                "--epochs",
                "1",
            ]
        )
        == 2
    )
    assert_one_line_error(capsys.readouterr().err, *fragments)
    assert not (tmp_path / "runs").exists()  # it failed before a run directory was made
    if breaks is not one_folder_too_deep:  # an import looks one folder down: there that set is fine
        assert main(["data", "import", str(root), "--data-dir", str(tmp_path / "data")]) == 2
        assert_one_line_error(capsys.readouterr().err, *fragments)
    report = check_dataset(root)
    assert any(all(f in p for f in fragments) for p in report["problems"]), report["problems"]


def test_a_class_the_run_does_not_know_is_named(tmp_path):
    with pytest.raises(HorsesHumansError, match="'zebras' is not one of the run's classes"):
        (tmp_path / "zebras").mkdir()
        layouts.labelled_folder(tmp_path, ["horses", "humans"])
