"""A user's own images end to end through the real CLI, as issue 11's "checked like a user would" asks: 3- and 5-class
synthetic sets in each layout are imported (as zips and as a folder), checked, trained, evaluated (also --split test
and --data), predicted, served (API and page), reported and exported; every format with its parity check for one
3- and one 5-class run; mobilenet_v2 without pretrained weights on class folders; CLI errors are one line."""

import csv
import io
import json
import shutil
import zipfile
from pathlib import Path
from types import SimpleNamespace

import pytest
from fastapi.testclient import TestClient

from horses_humans.cli.main import main
from horses_humans.data.files import visible_files
from horses_humans.data.layouts import CLASS_FOLDERS, OFFICIAL, SPLIT_FOLDERS
from horses_humans.export.pipeline import ALL
from horses_humans.inference.predictor import collect_files
from horses_humans.serve.app import create_app
from horses_humans.serve.settings import ServeSettings

from ..data.test_layouts import assert_one_line_error
from ..synthetic import LAYOUTS, class_names, make_own_dataset, zip_folder

PER_CLASS = 8  # training images per class (val/test get 2; class folders alone give round(0.2 * 8) = 2 to val)
EXPECTED_LAYOUT = {"official": OFFICIAL, "split-folders": SPLIT_FOLDERS, "class-folders": CLASS_FOLDERS}
AS_ZIP = {"official": True, "split-folders": True, "class-folders": False}  # how each layout is imported here
TRAIN_ARGS = ["--epochs", "1", "--image-size", "32", "--batch-size", "8", "--precision", "float32"]
CASES = [(layout, n) for layout in LAYOUTS for n in (3, 5)]


def cli(capsys, *argv) -> tuple[int, str, str]:
    """(exit status, stdout, stderr) of one in-process CLI call."""
    capsys.readouterr()
    status = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return status, out, err


def strict_json(text: str):
    """Parse JSON as JavaScript or jq would: NaN and Infinity are not JSON."""

    def refuse(constant):
        raise ValueError(f"{constant} is not JSON")

    return json.loads(text, parse_constant=refuse)


def import_own_set(root: Path, layout: str, n: int) -> tuple[Path, Path]:
    """(the user's source set, the data dir it was imported into with `data import`)."""
    source = make_own_dataset(root / "mine", n, layout, per_class=PER_CLASS, test=layout == "split-folders")
    given = zip_folder(source, root / "mine.zip", prefix="mine/") if AS_ZIP[layout] else source
    data_dir = root / "data"
    assert main(["data", "import", str(given), "--data-dir", str(data_dir)]) == 0
    return source, data_dir


def train_run(data_dir: Path, runs_dir: Path, cache: Path, *extra: str) -> Path:
    """Train through the CLI; the one run directory it made."""
    assert (
        main(
            [
                "train",
                "--recipe",
                "baseline",
                "--data-dir",
                str(data_dir),
                "--runs-dir",
                str(runs_dir),
                "--cache-dir",
                str(cache),
                *TRAIN_ARGS,
                *extra,
            ]
        )
        == 0
    )
    (run,) = [p for p in runs_dir.iterdir() if p.is_dir()]
    return run


@pytest.fixture(scope="module", params=CASES, ids=[f"{layout}-{n}" for layout, n in CASES])
def own(request, tmp_path_factory):
    """One imported, baseline-trained own set per (layout, classes), shared by every step below."""
    layout, n = request.param
    root = tmp_path_factory.mktemp(f"{layout}-{n}")
    source, data_dir = import_own_set(root, layout, n)
    run = train_run(data_dir, root / "runs", root / "cache", "--recipe", "baseline")
    return SimpleNamespace(
        layout=layout, n=n, names=class_names(n), source=source, data=data_dir, run=run, cache=root / "cache", root=root
    )


def test_check_names_the_layout_and_counts_every_class(own, capsys):
    status, out, _ = cli(capsys, "data", "check", "--data-dir", own.data, "--json")
    report = json.loads(out)
    assert status == 0 and report["layout"] == EXPECTED_LAYOUT[own.layout] and report["problems"] == []
    train_split = {"official": "horse-or-human", "split-folders": "train", "class-folders": "all"}[own.layout]
    assert report["splits"][train_split]["counts"] == dict.fromkeys(own.names, PER_CLASS)


def test_the_run_is_a_softmax_over_the_folders_classes(own):
    labels = json.loads((own.run / "labels.json").read_text())
    assert labels["class_names"] == own.names and labels["output_kind"] == "softmax"
    assert json.loads((own.run / "data.json").read_text())  # the run remembers its data


def test_evaluate_scores_every_class_on_the_runs_own_split(own, capsys):
    status, out, _ = cli(capsys, "evaluate", own.run, "--cache-dir", own.cache, "--json")
    metrics = strict_json(out)
    assert status == 0 and metrics["class_names"] == own.names and list(metrics["per_class"]) == own.names
    assert metrics["images"] == 2 * own.n and len(metrics["confusion_matrix"]) == own.n
    status, out, err = cli(capsys, "evaluate", own.run, "--cache-dir", own.cache, "--split", "test", "--json")
    if own.layout == "split-folders":  # the held-out test/ split
        assert status == 0 and json.loads(out)["split"] == "test" and json.loads(out)["images"] == 2 * own.n
    else:
        assert status == 2
        assert_one_line_error(err, "test")


@pytest.mark.parametrize("own", [("class-folders", 5)], indirect=True, ids=["class-folders-5"])  # once is enough
def test_evaluate_data_scores_a_folder_of_some_of_the_classes(own, capsys, tmp_path):
    subset = tmp_path / "subset"
    for name in own.names[1:3]:  # two of the five classes
        shutil.copytree(own.source / name, subset / name)
    status, out, _ = cli(capsys, "evaluate", own.run, "--cache-dir", own.cache, "--data", subset, "--json")
    metrics = strict_json(out)
    assert status == 0 and metrics["split"] == "data" and metrics["images"] == 2 * PER_CLASS
    assert metrics["class_names"] == own.names  # still scored as one of all five classes
    assert metrics["roc_auc"] is None  # undefined without every class: null, which any JSON parser reads (not NaN)
    assert strict_json((own.run / "evaluation.json").read_text())["roc_auc"] is None


BAD_DATA_FOLDERS = [  # evaluate --data on a folder that is not one of class folders (an unknown class: test_rundata)
    ("missing", lambda d: None, ["no such folder", "give a folder of class folders (class0, class1, class2)"]),
    (
        "flat",
        lambda d: shutil.copy(
            make_own_dataset(d.parent / "src", 3, "class-folders", per_class=2) / "class0" / "class0-00.png",
            d / "a.png",
        ),
        ["no class folders", "sub-folders named after"],
    ),
    ("empty-class", lambda d: (d / "class1").mkdir(), ["class1: class folder is empty", "add its images"]),
]


@pytest.mark.parametrize("own", [("official", 3)], indirect=True, ids=["official-3"])  # once is enough
@pytest.mark.parametrize("name, breaks, fragments", BAD_DATA_FOLDERS, ids=[b[0] for b in BAD_DATA_FOLDERS])
def test_evaluate_data_on_a_bad_folder_is_one_error_line(own, tmp_path, capsys, name, breaks, fragments):
    folder = tmp_path / "new-photos"
    if name != "missing":
        folder.mkdir()
        breaks(folder)
    status, _, err = cli(capsys, "evaluate", own.run, "--cache-dir", own.cache, "--data", folder)
    assert status == 2
    assert_one_line_error(err, str(folder), *fragments)


def test_predict_csv_gives_every_class_and_the_labels_own_probability(own, capsys):
    folder = own.source / "val" if own.layout == "split-folders" else own.source
    status, out, _ = cli(capsys, "predict", own.run, folder, "--csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert status == 0 and len(rows) == len(visible_files(folder))
    for row in rows:
        probs = {name: float(row[f"p_{name}"]) for name in own.names}
        answered = max(probs, key=probs.get)  # a one-epoch model may be unsure: then it names no class
        assert row["label"] == answered or (row["label"] == "unsure" and row["unsure_reason"])
        assert float(row["probability"]) == pytest.approx(probs[answered], abs=1e-6)
        assert sum(probs.values()) == pytest.approx(1.0, abs=5e-4)  # each rounded to 4 decimals in the CSV


def test_the_server_answers_every_class_and_serves_the_page(own):
    image = next(p for p in sorted(own.source.rglob("*.png")))
    with TestClient(create_app(ServeSettings(run=own.run))) as client:
        info = client.get("/v1/model").json()
        assert info["class_names"] == own.names and info["output_kind"] == "softmax"
        response = client.post("/v1/predict", files=[("files", (image.name, image.read_bytes(), "image/png"))])
        (result,) = response.json()["results"]
        assert response.status_code == 200 and (result["label"] in own.names or result["unsure_reason"])
        assert list(result["probabilities"]) == own.names
        assert sum(result["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)
        page = client.get("/")
        assert page.status_code == 200 and "<html" in page.text.lower()


def test_report_draws_an_n_by_n_confusion_matrix(own, capsys):
    status, out, _ = cli(capsys, "report", own.run, "--cache-dir", own.cache)
    path = own.run / "report" / "report.html"
    assert status == 0 and str(path) in out and path.is_file()
    html = path.read_text()
    assert all(name in html for name in own.names) and (own.run / "report" / "confusion.png").is_file()
    assert "predicted as the most probable class" in html and "one-vs-rest macro ROC AUC" in html


def test_export_keras_is_shipped(own, capsys):
    status, out, err = cli(
        capsys, "export", own.run, "--format", "keras", "--cache-dir", own.cache, "--latency-runs", 2
    )
    assert status == 0, err
    labels = json.loads((own.run / "export" / "keras" / "labels.json").read_text())
    assert labels["class_names"] == own.names and labels["output_kind"] == "softmax" and "| passed |" in out


# ---------------------------------------------------------------- every export format, for one 3- and one 5-class run


@pytest.mark.parametrize("layout, n", [("split-folders", 3), ("class-folders", 5)])
def test_export_all_ships_every_format_with_parity(tmp_path, layout, n, capsys):
    _, data_dir = import_own_set(tmp_path, layout, n)
    run = train_run(data_dir, tmp_path / "runs", tmp_path / "cache", "--recipe", "baseline")
    status, out, err = cli(capsys, "export", run, "--all", "--cache-dir", tmp_path / "cache", "--latency-runs", 2)
    assert status == 0, out + err
    rows = [line.split("|")[1:-1] for line in out.splitlines() if line.startswith("| ") and "---" not in line][1:]
    assert [r[0].strip() for r in rows] == [f"{f}-{q}".replace("-none", "") for f, q in ALL]
    assert all(r[-1].strip() == "passed" for r in rows), out  # every format shipped, its parity checked
    for name in (r[0].strip() for r in rows):
        assert json.loads((run / "export" / name / "labels.json").read_text())["class_names"] == class_names(n)
    assert (run / "export" / "exports.md").is_file()


# ---------------------------------------------------------------- mobilenet_v2 from scratch on class folders


def test_mobilenet_v2_without_weights_end_to_end(tmp_path, capsys):
    source, data_dir = import_own_set(tmp_path, "class-folders", 3)
    run = train_run(data_dir, tmp_path / "runs", tmp_path / "cache", "--recipe", "mobilenet_v2", "--weights", "none")
    status, out, _ = cli(capsys, "evaluate", run, "--cache-dir", tmp_path / "cache", "--json")
    assert status == 0 and list(json.loads(out)["per_class"]) == class_names(3)
    status, out, _ = cli(capsys, "predict", run, source / "class0", "--json")
    assert status == 0 and all(set(r["probabilities"]) == set(class_names(3)) for r in json.loads(out))
    status, out, err = cli(
        capsys, "export", run, "--format", "tflite", "--cache-dir", tmp_path / "cache", "--latency-runs", 2
    )
    assert status == 0, out + err


# ---------------------------------------------------------------- what an OS leaves in a user's photo folders


def test_os_junk_in_a_zip_is_not_data(tmp_path, capsys):
    source = make_own_dataset(tmp_path / "mine", 3, "class-folders", per_class=4)
    for folder in (source, source / "class0"):
        for junk in (".DS_Store", "Thumbs.db", "desktop.ini"):
            (folder / junk).write_bytes(b"not an image")
    archive = zip_folder(source, tmp_path / "mine.zip")  # no top folder, as Windows' "Send to zip" makes them
    with zipfile.ZipFile(archive, "a") as zf:
        zf.writestr("__MACOSX/class0/._class0-00.png", b"resource fork")
    assert main(["data", "import", str(archive), "--data-dir", str(tmp_path / "data")]) == 0
    status, out, _ = cli(capsys, "data", "check", "--data-dir", tmp_path / "data", "--json")
    report = json.loads(out)
    assert (
        status == 0
        and report["warnings"] == []
        and report["splits"]["all"]["counts"] == dict.fromkeys(class_names(3), 4)
    )
    assert collect_files([source]) == sorted(source.rglob("*.png"))
