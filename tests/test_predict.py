"""predict.py without a model: which files a folder contributes, and the CSV of predictions."""

from horses_humans.predict import Prediction, collect_files, format_predictions


def test_collect_files_skips_hidden_files_and_macos_resource_forks_like_the_data_set(tmp_path, make_image):
    folder = tmp_path / "photos"
    keep = [make_image(folder / "a.png"), make_image(folder / "sub" / "b.png")]
    make_image(folder / ".hidden.png")
    make_image(folder / "__MACOSX" / "sub" / "b.png")  # macOS zips carry a resource-fork copy of each folder
    make_image(folder / ".cache" / "c.png")
    (folder / "sub" / ".DS_Store").write_bytes(b"junk")
    named = tmp_path / ".named-directly.png"
    assert collect_files([folder, named]) == keep + [named]  # a file named directly is taken as given


def test_collect_files_of_a_folder_under_a_hidden_folder_keeps_its_files(tmp_path, make_image):
    folder = tmp_path / ".cache" / "photos"  # only the parts below the named folder count
    image = make_image(folder / "a.png")
    assert collect_files([folder]) == [image]


def test_csv_of_predictions_has_a_header_even_when_empty():
    rows = [Prediction("a.png", "humans", 0.75), Prediction("b.png", error="not an image")]
    assert format_predictions(rows, "csv").splitlines() == ["file,label,probability,error", "a.png,humans,0.75,",
                                                            "b.png,,,not an image"]
    assert format_predictions([], "csv") == "file,label,probability,error\n"
