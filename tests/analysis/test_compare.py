"""`compare`: the side-by-side table (tables.compare_rows), compare.md / compare.html (compare.write_comparison)."""

import base64
import re

import pytest

from horses_humans.analysis.compare import write_comparison
from horses_humans.cli.main import main
from horses_humans.config import TrainConfig
from horses_humans.core.tables import COMPARE_HEADER, compare_rows, markdown_table
from horses_humans.runs.store import load_run

from ..fake_runs import write_run


def metrics(train, val, best, parameters=9_494_561, trainable=None):
    row = {
        "train_accuracy": train,
        "val_accuracy": val,
        "best_val_accuracy": best,
        "mean_epoch_seconds": 2.5,
        "parameters": parameters,
    }
    return row if trainable is None else {**row, "trainable_parameters": trainable}


@pytest.fixture
def runs(tmp_path):
    """Two baseline seeds, one augmented run, and an old transfer run whose metrics lack most keys."""
    d = tmp_path / "runs"
    return [
        write_run(d, TrainConfig(recipe="baseline", seed=0), metrics(1.0, 0.80, 0.85)),
        write_run(d, TrainConfig(recipe="baseline", seed=1), metrics(0.9, 0.80, 0.95)),
        write_run(d, TrainConfig(recipe="augmented", dropout=0.5), metrics(0.95, 0.60, 0.81, 1000, 1000)),
        write_run(d, TrainConfig(recipe="mobilenet_v2"), {"val_accuracy": 0.99}),
    ]


def cells(row):
    return dict(zip(COMPARE_HEADER, row))


def test_rows_group_seeds_and_compute_the_gap(runs):
    header, rows = compare_rows([load_run(p) for p in runs])
    assert header == COMPARE_HEADER and len(rows) == 3
    baseline, augmented, old = map(cells, rows)
    assert baseline["run"] == f"{runs[0].name}, {runs[1].name}" and baseline["seeds"] == "0,1"
    assert (baseline["recipe"], baseline["size"], baseline["epochs"]) == ("baseline", "150", "15")
    assert baseline["train acc %"] == "95.0 ± 7.1" and baseline["val acc % (final)"] == "80.0 ± 0.0"
    assert baseline["val acc % (best epoch)"] == "90.0 ± 7.1"
    assert baseline["gap train − val (points)"] == "15.0 ± 7.1"  # gaps 20 and 10 points
    assert baseline["parameters"] == "9,494,561" and baseline["s/epoch"] == "2.50 ± 0.00"
    assert augmented["options"] == "dropout 0.5" and augmented["gap train − val (points)"] == "35.0"
    assert old["run"] == runs[3].name and old["val acc % (final)"] == "99.0"
    assert old["train acc %"] == old["gap train − val (points)"] == old["parameters"] == old["s/epoch"] == "-"


def test_parameters_show_trainable_when_not_all_are(tmp_path):
    run = write_run(tmp_path, TrainConfig(recipe="inception_v3"), metrics(1.0, 0.98, 0.99, 47_512_481, 38_537_217))
    assert "| 47,512,481 (38,537,217 trainable) |" in markdown_table(*compare_rows([load_run(run)]))


def test_comparison_files_are_written_with_the_curves_embedded(runs, tmp_path):
    out = tmp_path / "cmp"
    markdown, paths = write_comparison(runs + [runs[0]], out)  # a run given twice counts once
    assert paths == [out / "compare.md", out / "compare.html"] and (out / "compare.md").read_text() == markdown
    assert markdown.count(runs[0].name) == 1 and "![Training curves](curves.png)" in markdown
    assert "4 runs overlaid" in markdown and "| 15.0 ± 7.1 |" in markdown
    html = (out / "compare.html").read_text()
    (src,) = re.findall(r'<img [^>]*src="([^"]*)"', html)
    assert base64.b64decode(src.split(",", 1)[1]) == (out / "curves.png").read_bytes()
    assert "<th>gap train − val (points)</th>" in html and "<td>15.0 ± 7.1</td>" in html
    assert "http://" not in html and "https://" not in html
    assert sorted(p.name for p in out.iterdir()) == ["compare.html", "compare.md", "curves.png"]  # no temporary files


def test_compare_command_prints_markdown(runs, tmp_path, capsys):
    assert main(["compare", *map(str, runs[:2]), "--out", str(tmp_path / "c")]) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith("# Comparison") and "| baseline | 150 | 15 | - | 0,1 |" in captured.out
    assert f"wrote {tmp_path / 'c' / 'compare.html'}" in captured.err


def test_compare_refuses_an_unfinished_run(tmp_path, capsys):
    unfinished = write_run(tmp_path, TrainConfig(recipe="baseline"), finished=False)
    assert main(["compare", str(unfinished), "--out", str(tmp_path / "c")]) == 2
    assert "not a finished run" in capsys.readouterr().err and not (tmp_path / "c").exists()


def test_runs_on_different_classes_are_flagged(runs, tmp_path):
    import json

    from horses_humans.runs.store import labels_record

    three = write_run(tmp_path / "runs", TrainConfig(recipe="baseline", seed=5), metrics(1.0, 0.7, 0.75))
    (three / "labels.json").write_text(json.dumps(labels_record(["cats", "dogs", "other"], 150)))
    markdown, _ = write_comparison([runs[0], three], tmp_path / "mixed")
    assert (
        "Caution: the runs classify different classes (horses, humans (1 run); cats, dogs, other (1 run)), "
        "so their accuracies are not comparable."
    ) in markdown
    assert "Caution" in (tmp_path / "mixed" / "compare.html").read_text()
    same, _ = write_comparison(runs[:2], tmp_path / "same")
    assert "Caution" not in same
