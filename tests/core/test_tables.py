from pathlib import Path

import pytest

from horses_humans.config import HorsesHumansError, TrainConfig
from horses_humans.core.tables import copy_table, fmt_mean_std, markdown_table, results_table
from horses_humans.runs.store import Run


def fake_run(seed, val, recipe="baseline", precision="auto", seconds=None, classes=None):
    metrics = {"train_accuracy": 1.0, "val_accuracy": val, "best_val_accuracy": val + 0.02, "mean_epoch_seconds": 2.0}
    if seconds is not None:
        metrics["train_seconds"] = seconds
    labels = {} if classes is None else {"class_names": classes}
    return Run(
        Path(f"/runs/{recipe}-{seed}"),
        TrainConfig(recipe=recipe, seed=seed, precision=precision),
        labels,
        metrics,
        [],
        {"precision": "float32" if precision == "float32" else "mixed_bfloat16"},
    )


def test_fmt_mean_std():
    assert fmt_mean_std([0.8, 0.9, 1.0]) == "90.0 ± 10.0"
    assert fmt_mean_std([0.85]) == "85.0"
    assert fmt_mean_std([None, None]) == "-"


def test_runs_differing_only_by_seed_share_a_row():
    runs = [
        fake_run(0, 0.8),
        fake_run(1, 0.9),
        fake_run(0, 0.7, precision="float32"),
        fake_run(0, 0.99, "mobilenet_v2", seconds=3.0),
    ]
    rows = table_rows(results_table(runs))
    assert len(rows) == 3
    # runs made before checkpoints serve model.keras, their last epoch: the served column is the final number
    assert rows[0].startswith(
        "| baseline | None | None | - | 0,1 | 100.0 ± 0.0 | 85.0 ± 7.1 | 87.0 ± 7.1 | 85.0 ± 7.1 | 2.00 ± 0.00 | - "
        "| mixed_bfloat16 |"
    )
    assert "| float32 |" in rows[1] and "| 70.0 |" in rows[1]
    assert rows[2].endswith("| 99.0 | 101.0 | 99.0 | 2.00 | 3.0 | mixed_bfloat16 | /runs/mobilenet_v2-0 |")


def table_rows(markdown: str) -> list[str]:
    """The body rows of the first table in a Markdown text."""
    return [line for line in markdown.split("\n\n")[0].splitlines()[2:]]


def test_the_served_column_reads_the_served_checkpoint_and_says_it_is_optimistic():
    run = fake_run(0, 0.8)
    run.metrics["checkpoints"] = {
        "best": {"file": "model-best.keras", "epoch": 2, "val_accuracy": 0.95},
        "last": {"file": "model.keras", "epoch": 5, "val_accuracy": 0.8},
    }
    text = results_table([run])
    assert "| 80.0 | 82.0 | 95.0 |" in table_rows(text)[0]  # final, best epoch (metrics), served (best checkpoint)
    assert "optimistic" in text.split("\n\n")[1]
    run.checkpoint = "last"
    assert "| 80.0 | 82.0 | 80.0 |" in table_rows(results_table([run]))[0]


def test_runs_on_other_classes_get_their_own_row_that_names_them():
    runs = [
        fake_run(0, 0.8, classes=["horses", "humans"]),
        fake_run(1, 0.9),
        fake_run(2, 0.7, classes=["cats", "dogs"]),
        fake_run(3, 0.6, classes=["a", "b", "c"]),
        fake_run(4, 0.5, classes=["a", "b", "c"]),
        fake_run(5, 0.4, classes=["a", "b", "c", "d", "e"]),
    ]
    rows = [row.split(" | ")[3:5] for row in table_rows(results_table(runs))]
    assert rows == [["-", "0,1"], ["cats vs dogs", "2"], ["3 classes", "3,4"], ["5 classes", "5"]]
    ten = fake_run(6, 0.3, classes=[f"c{i}" for i in range(10)])
    ten.config = TrainConfig(recipe="baseline", dropout=0.2)
    assert "| 10 classes, dropout 0.2 |" in results_table([ten])  # the classes first, then the options


def test_markdown_table_escapes_pipes_and_formats_cells():
    table = markdown_table(["a", "b"], [["max |dp|", 3]])
    assert table.splitlines() == ["| a | b |", "|---|---|", "| max \\|dp\\| | 3 |"]


def test_copy_table_replaces_only_the_marked_block(tmp_path):
    doc = tmp_path / "results.md"
    doc.write_text("# Results\n\nintro\n\n| x |\n|---|\n| 1 |\n\n## More\n\n| y |\n|---|\n")
    readme = tmp_path / "README.md"
    readme.write_text("top\n<!-- results:start -->\n| old |\n<!-- results:end -->\nbottom\n")
    copy_table(doc, readme, "results")
    assert readme.read_text() == "top\n<!-- results:start -->\n| x |\n|---|\n| 1 |\n<!-- results:end -->\nbottom\n"


def test_copy_table_errors_name_the_file(tmp_path):
    doc, readme = tmp_path / "doc.md", tmp_path / "README.md"
    doc.write_text("no table here\n")
    readme.write_text("<!-- results:start -->\n<!-- results:end -->\n")
    with pytest.raises(HorsesHumansError, match=f"{doc}: no Markdown table to copy"):
        copy_table(doc, readme, "results")
    doc.write_text("| x |\n|---|\n")
    with pytest.raises(
        HorsesHumansError, match=f"{readme}: needs one <!-- reproduce:start --> ... <!-- reproduce:end --> block"
    ):
        copy_table(doc, readme, "reproduce")


@pytest.mark.parametrize("marker, document", [("results", "docs/results.md"), ("reproduce", "docs/reproduce.md")])
def test_models_page_shows_the_documents_tables(tmp_path, marker, document):
    repo = Path(__file__).resolve().parents[2]
    page = tmp_path / "models.md"
    page.write_text((repo / "docs/models.md").read_text())
    copy_table(repo / document, page, marker)  # what scripts/readme_tables.py does
    assert page.read_text() == (repo / "docs/models.md").read_text()
