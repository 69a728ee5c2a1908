"""datacheck.py: the `data check` report (counts, sizes, modes, unreadable files, duplicates, leakage, balance)."""

import json
import shutil

import pytest

from horses_humans.data.check import check_dataset, format_report
from horses_humans.data.layouts import TRAIN, VALIDATION


def test_healthy_data_set_has_counts_and_no_problems(data_dir):
    report = check_dataset(data_dir)
    train, val = report["splits"][TRAIN], report["splits"][VALIDATION]
    assert report["data_dir"] == str(data_dir)
    assert train["classes"] == ["horses", "humans"]
    assert train["counts"] == train["readable"] == {"horses": 3, "humans": 3}
    assert val["counts"] == val["readable"] == {"horses": 2, "humans": 2}
    assert train["sizes"] == {"16x16": 6} and train["modes"] == {"RGB": 6}
    assert train["unreadable"] == [] and train["duplicates"] == [] and report["leakage"] == []
    assert report["problems"] == [] and report["warnings"] == []


def test_report_is_json_serialisable(data_dir):
    assert json.loads(json.dumps(check_dataset(data_dir)))["splits"][TRAIN]["counts"] == {"horses": 3, "humans": 3}


def test_sizes_and_modes_are_tallied(data_dir, make_image):
    make_image(data_dir / TRAIN / "horses" / "gray.png", size=(30, 20), mode="L")
    make_image(data_dir / TRAIN / "humans" / "alpha.png", size=(30, 20), mode="RGBA")
    make_image(data_dir / TRAIN / "humans" / "photo.jpg", size=(9, 40))
    train = check_dataset(data_dir)["splits"][TRAIN]
    assert train["sizes"] == {"16x16": 6, "30x20": 2, "9x40": 1}
    assert train["modes"] == {"RGB": 7, "L": 1, "RGBA": 1}


def test_unreadable_file_is_listed_and_warned_about(data_dir):
    bad = data_dir / VALIDATION / "humans" / "oops.png"
    bad.write_text("not an image")
    report = check_dataset(data_dir)
    val = report["splits"][VALIDATION]
    assert val["counts"] == {"horses": 2, "humans": 3}
    assert val["readable"] == {"horses": 2, "humans": 2}
    assert len(val["unreadable"]) == 1 and str(bad) in val["unreadable"][0]
    assert any(str(bad) in w for w in report["warnings"])
    assert report["problems"] == []  # the rest is still usable
    assert "unreadable: 1" in format_report(report)


def test_duplicates_inside_a_split_are_grouped(data_dir):
    horses = data_dir / TRAIN / "horses"
    shutil.copy(horses / "horses-00.png", horses / "copy.png")
    shutil.copy(horses / "horses-00.png", data_dir / TRAIN / "humans" / "mislabelled.png")
    report = check_dataset(data_dir)
    expected = [f"{TRAIN}/horses/copy.png", f"{TRAIN}/horses/horses-00.png", f"{TRAIN}/humans/mislabelled.png"]
    assert report["splits"][TRAIN]["duplicates"] == [expected]
    assert report["splits"][VALIDATION]["duplicates"] == []
    assert any("duplicate files inside" in w and "copy.png" in w for w in report["warnings"])
    assert report["leakage"] == []


def test_leakage_across_splits_is_detected(data_dir):
    shutil.copy(data_dir / TRAIN / "humans" / "humans-01.png", data_dir / VALIDATION / "humans" / "leaked.png")
    report = check_dataset(data_dir)
    assert report["leakage"] == [{"train": "humans/humans-01.png", "validation": ["humans/leaked.png"]}]
    assert any("leakage" in w for w in report["warnings"])
    assert report["splits"][VALIDATION]["duplicates"] == []  # a leak is not a duplicate inside the split
    assert "(leakage): 1" in format_report(report)


def test_imbalanced_classes_are_warned_about(tmp_path, make_dataset):
    report = check_dataset(make_dataset(tmp_path / "data", train=(6, 2), validation=(3, 2)))
    assert [w for w in report["warnings"] if "imbalanced" in w] == [
        f"{TRAIN}: classes are imbalanced {{'horses': 6, 'humans': 2}} (largest / smallest 3.0): consider "
        "`horses-humans train --class-weight balanced`."
    ]  # validation's 3 / 2 is not above 1.5
    assert report["problems"] == []


@pytest.mark.parametrize("missing", [TRAIN, VALIDATION])
def test_missing_split_is_a_problem(data_dir, missing):
    shutil.rmtree(data_dir / missing)
    report = check_dataset(data_dir)
    assert len(report["problems"]) == 1 and str(data_dir / missing) in report["problems"][0]
    assert "not found" in report["splits"][missing]["problem"]
    assert "leakage" not in report  # needs both splits
    text = format_report(report)
    assert "NOT usable for training" in text and "problem: " in text


def test_class_without_a_readable_image_is_a_problem(data_dir):
    horses = data_dir / VALIDATION / "horses"
    for p in horses.iterdir():
        p.write_bytes(b"corrupt")
    report = check_dataset(data_dir)
    assert f"{VALIDATION}/horses: no readable image." in report["problems"]
    assert report["splits"][VALIDATION]["readable"].get("horses", 0) == 0


def test_empty_class_folder_is_a_problem(data_dir):
    shutil.rmtree(data_dir / TRAIN / "humans")
    (data_dir / TRAIN / "humans").mkdir()
    report = check_dataset(data_dir)
    assert any("class folder is empty" in p for p in report["problems"])


def test_different_class_folders_between_splits_is_a_problem(data_dir, make_split):
    shutil.rmtree(data_dir / VALIDATION)
    make_split(data_dir / VALIDATION, (1, 1), classes=("horses", "people"))
    report = check_dataset(data_dir)
    assert any("class folders differ" in p for p in report["problems"])


def test_format_report_shows_classes_counts_and_verdict(data_dir):
    text = format_report(check_dataset(data_dir))
    lines = text.splitlines()
    assert lines[0] == f"data set: {data_dir}"
    rows = [line.split() for line in lines if line.startswith((TRAIN, VALIDATION))]
    assert rows == [
        [TRAIN, "horses", "3", "3", "50.0%"],
        [TRAIN, "humans", "3", "3", "50.0%"],
        [VALIDATION, "horses", "2", "2", "50.0%"],
        [VALIDATION, "humans", "2", "2", "50.0%"],
    ]
    assert "sizes: 16x16: 6; modes: RGB: 6" in text
    assert lines[-1] == "result: usable for training"


def test_many_image_sizes_are_summarised_not_listed():
    from horses_humans.data.check import fmt_counter

    sizes = {f"{100 + i}x100": 10 - i if i < 10 else 1 for i in range(30)}
    text = fmt_counter(sizes)
    assert text.startswith("100x100: 10, 101x100: 9") and text.count(":") == 8
    assert text.endswith("and 22 more (23 files)")  # 2 + 1 + 20 x 1
    assert fmt_counter({}) == "none" and fmt_counter({"300x300": 3}) == "300x300: 3"


def add_class(data_dir, name: str) -> None:
    """A class folder `name` in both official splits (copies of horses: what it holds does not matter here)."""
    for split in (TRAIN, VALIDATION):
        shutil.copytree(data_dir / split / "horses", data_dir / split / name)


@pytest.mark.parametrize("name", ["Other", "Background", "unknown", "NONE"])
def test_a_folder_named_like_none_of_these_gets_the_reject_class_suggestion(data_dir, name):
    add_class(data_dir, name)
    report = check_dataset(data_dir)
    assert report["reject_class"] is None and report["problems"] == []
    [line] = report["suggestions"]
    assert f"the folder {name!r} looks like 'none of these' images: train with --reject-class {name} " in line
    assert f"\nsuggestion: {line}\n" in format_report(report)


def test_a_neither_folder_is_named_as_none_of_these_and_nothing_is_suggested(data_dir):
    add_class(data_dir, "other")
    add_class(data_dir, "neither")
    report = check_dataset(data_dir)
    assert report["reject_class"] == "neither" and "suggestions" not in report
    assert "\nnone of these: neither/ (its images teach the unsure answer; never a label)\n" in format_report(report)


def test_check_names_the_reject_class_it_is_given_or_says_it_is_missing(data_dir, capsys):
    from horses_humans.cli.main import main

    add_class(data_dir, "Other")
    assert main(["data", "check", "--data-dir", str(data_dir), "--reject-class", "Other"]) == 0
    out = capsys.readouterr().out
    assert "none of these: Other/" in out and "suggestion:" not in out
    assert main(["data", "check", "--data-dir", str(data_dir), "--reject-class", "bg"]) == 1
    [problem] = [line for line in capsys.readouterr().out.splitlines() if line.startswith("problem:")]
    assert problem == (
        f"problem: --reject-class bg: {data_dir} has no class folder of that name (found: Other, horses, humans): "
        "pass --reject-class Other, or name one of those folders."
    )
