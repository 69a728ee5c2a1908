from pathlib import Path

from horses_humans.config import TrainConfig
from horses_humans.runs import Run
from horses_humans.tables import fmt_mean_std, markdown_table, results_table


def fake_run(seed, val, recipe="baseline", precision="auto", seconds=None):
    metrics = {"train_accuracy": 1.0, "val_accuracy": val, "best_val_accuracy": val + 0.02, "mean_epoch_seconds": 2.0}
    if seconds is not None:
        metrics["train_seconds"] = seconds
    return Run(Path(f"/runs/{recipe}-{seed}"), TrainConfig(recipe=recipe, seed=seed, precision=precision), {}, metrics, [],
               {"precision": "float32" if precision == "float32" else "mixed_bfloat16"})


def test_fmt_mean_std():
    assert fmt_mean_std([0.8, 0.9, 1.0]) == "90.0 ± 10.0"
    assert fmt_mean_std([0.85]) == "85.0"
    assert fmt_mean_std([None, None]) == "-"


def test_runs_differing_only_by_seed_share_a_row():
    runs = [fake_run(0, 0.8), fake_run(1, 0.9), fake_run(0, 0.7, precision="float32"), fake_run(0, 0.99, "mobilenet_v2", seconds=3.0)]
    rows = results_table(runs).splitlines()[2:]
    assert len(rows) == 3
    assert rows[0].startswith("| baseline | None | None | - | 0,1 | 100.0 ± 0.0 | 85.0 ± 7.1 | 87.0 ± 7.1 | 2.00 ± 0.00 | - | mixed_bfloat16 |")
    assert "| float32 |" in rows[1] and "| 70.0 |" in rows[1]
    assert rows[2].endswith("| 99.0 | 101.0 | 2.00 | 3.0 | mixed_bfloat16 |")


def test_markdown_table_escapes_pipes_and_formats_cells():
    table = markdown_table(["a", "b"], [["max |dp|", 3]])
    assert table.splitlines() == ["| a | b |", "|---|---|", "| max \\|dp\\| | 3 |"]
