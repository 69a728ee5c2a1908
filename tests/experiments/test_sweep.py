"""The architecture sweep: search space, resume from the study file, and the document."""

import pytest

from horses_humans.cli.main import main
from horses_humans.experiments.sweep import filters_for
from horses_humans.runs.store import load_run

from ..synthetic import make_dataset


def test_too_deep_for_the_image_is_a_clear_error():
    from horses_humans.config import HorsesHumansError, TrainConfig
    from horses_humans.models.recipes import build_model

    with pytest.raises(HorsesHumansError, match="4 conv blocks with kernel 5 shrink a 64px image to nothing"):
        build_model(TrainConfig(recipe="baseline", image_size=64, conv_filters=(8, 8, 8, 8), kernel_size=5))


def test_filters_double_up_to_128():
    assert filters_for(3, 16) == (16, 32, 64)
    assert filters_for(4, 64) == (64, 128, 128, 128)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("data"), train_per_class=8, val_per_class=4)


@pytest.mark.slow
def test_sweep_trains_resumes_and_documents(data, tmp_path, capsys):
    args = [
        "experiment",
        "sweep",
        "--trials",
        "2",
        "--epochs",
        "1",
        "--image-size",
        "96",
        "--precision",
        "float32",
        "--data-dir",
        str(data),
        "--runs-dir",
        str(tmp_path / "sweep"),
        "--out",
        str(tmp_path / "sweep.md"),
        "--cache-dir",
        str(tmp_path / "cache"),
    ]
    assert main(args) == 0
    runs = sorted(p for p in (tmp_path / "sweep").iterdir() if p.is_dir())
    assert len(runs) == 2 and (tmp_path / "sweep" / "study.db").is_file()
    doc = (tmp_path / "sweep.md").read_text()
    assert doc.count(runs[0].name) == 1 and doc.count(runs[1].name) == 1
    configs = [load_run(r).config for r in runs]
    assert all(c.kernel_size in (3, 5) and len(c.conv_filters) in (2, 3, 4) for c in configs)
    capsys.readouterr()

    assert main(args) == 0  # resumed: both trials finished, nothing trained
    assert "2 of 2 trials already finished, 0 to train" in capsys.readouterr().err
    assert len([p for p in (tmp_path / "sweep").iterdir() if p.is_dir()]) == 2

    assert main(args[:2] + ["--trials", "3"] + args[4:]) == 0  # one more trial on top
    assert len([p for p in (tmp_path / "sweep").iterdir() if p.is_dir()]) == 3
    assert "| 3 |" in (tmp_path / "sweep.md").read_text()


def test_train_cli_architecture_options(data, tmp_path, capsys):
    runs = tmp_path / "runs"
    assert (
        main(
            [
                "train",
                "--recipe",
                "baseline",
                "--conv-filters",
                "8,16",
                "--kernel-size",
                "5",
                "--epochs",
                "1",
                "--image-size",
                "32",
                "--precision",
                "float32",
                "--data-dir",
                str(data),
                "--runs-dir",
                str(runs),
                "--cache-dir",
                str(tmp_path / "c"),
            ]
        )
        == 0
    )
    (run,) = runs.iterdir()
    assert load_run(run).config.conv_filters == (8, 16)
    assert main(["train", "--conv-filters", "8,x"]) == 2
    assert "--conv-filters '8,x'" in capsys.readouterr().err
