"""`experiment reproduce`: the experiment files (the shipped one, a user's, bad ones), planning and resuming (with a
fake, instant training), the results document, and one real tiny run end to end through the CLI."""

from pathlib import Path

import pytest

from horses_humans.cli.main import main
from horses_humans.config import HorsesHumansError
from horses_humans.core.workspace import Workspace
from horses_humans.experiments import reproduce as experiments
from horses_humans.experiments.reproduce import (
    EXPERIMENTS_FILE,
    Selection,
    experiment_config,
    load_experiments,
    plan,
    reproduce,
)
from horses_humans.runs.store import HISTORY_FILE, METRICS_FILE, MODEL_FILE, save_json
from horses_humans.training import loop as training

from ..fake_runs import history_of, write_run
from ..synthetic import make_dataset

TINY = {"epochs": 1, "image_size": 32, "batch_size": 8, "precision": "float32"}
SHIPPED = load_experiments()
EXPERIMENTS = SHIPPED.experiments


class ResumeLog(list):
    """The configs the fake training trained, and the run directory it last resumed."""

    resumed = None


@pytest.fixture
def fake_train(monkeypatch):
    """Replace training.train with an instant one that writes a finished run; records the configs it trained."""
    trained = ResumeLog()

    def train(config, workspace, resume=None):
        trained.append(config)
        if resume:  # an interrupted run is continued in its own folder
            trained.resumed = resume
            save_json(
                resume,
                METRICS_FILE,
                {
                    "train_accuracy": 1.0,
                    "val_accuracy": 0.8,
                    "best_val_accuracy": 0.9,
                    "mean_epoch_seconds": 1.0,
                    "parameters": 1000,
                },
            )
            save_json(resume, HISTORY_FILE, history_of(1.0, 0.8))
            (resume / MODEL_FILE).write_bytes(b"")
            return resume
        return write_run(
            workspace.runs_dir,
            config,
            {
                "train_accuracy": 1.0,
                "val_accuracy": 0.8 + config.seed / 100,
                "best_val_accuracy": 0.9,
                "mean_epoch_seconds": 1.0,
                "parameters": 1000,
            },
        )

    monkeypatch.setattr(training, "train", train)
    return trained


@pytest.fixture(autouse=True)
def no_inception_weights(monkeypatch):
    """MobileNetV2's weights resolve, InceptionV3's do not (and nothing is downloaded)."""

    def resolve_weights(backbone, spec, alpha=0.35):
        if backbone == "inception_v3":
            raise HorsesHumansError("inception_v3 ImageNet weights not found (test)")
        return "/fake/mobilenet.h5"

    monkeypatch.setattr(experiments, "resolve_weights", resolve_weights)


def run_all(tmp_path, seeds=2, only=None, dry_run=False, file=SHIPPED):
    lines = []
    workspace = Workspace.from_env(tmp_path / "data", tmp_path / "runs", log=lines.append)
    doc = reproduce(file, Selection(seeds, TINY, only), workspace, tmp_path / "reproduce.md", dry_run)
    return doc, [line for line in lines if line.startswith("[")], lines


@pytest.mark.parametrize("experiment", EXPERIMENTS, ids=lambda e: e.name)
def test_every_experiment_makes_a_valid_config(experiment):
    config = experiment_config(experiment, 2, TINY)
    assert config.seed == 2 and config.epochs == 1 and config.precision == "float32"
    assert config.image_size == experiment.settings.get("image_size", 32)  # the experiment's own size wins


def test_the_reference_experiments_are_listed():
    assert SHIPPED.path == EXPERIMENTS_FILE and SHIPPED.title == "Reproducing the reference's experiments"
    assert [e.name for e in EXPERIMENTS] == [
        "baseline",
        "augmented",
        "baseline_300px",
        "baseline_dropout_l2",
        "baseline_early_stopping",
        "baseline_reduce_lr",
        "mobilenet_v2",
        "inception_v3",
    ]
    assert EXPERIMENTS[0].claim.val_accuracy == 0.856 and EXPERIMENTS[1].claim.val_accuracy == 0.918
    assert (
        EXPERIMENTS[3].settings == {"recipe": "baseline", "dropout": 0.5, "l2": 1e-3} and EXPERIMENTS[3].seeds is None
    )


def test_only_selects_and_rejects_unknown_names():
    assert [e.name for e in SHIPPED.select("augmented, baseline")] == ["augmented", "baseline"]
    with pytest.raises(HorsesHumansError, match="--only nope: no such experiment"):
        SHIPPED.select("baseline,nope")


def test_first_run_trains_all_but_skipped_second_run_trains_nothing(tmp_path, fake_train):
    doc, progress, _ = run_all(tmp_path)
    assert len(progress) == 16 and progress[0] == "[1/16] baseline seed 0: train"
    assert progress[3] == "[4/16] augmented seed 1: train"
    assert progress[-1].startswith("[16/16] inception_v3 seed 1: skipped: inception_v3 ImageNet weights not found")
    assert len(fake_train) == 14 and {c.recipe for c in fake_train} == {"baseline", "augmented", "mobilenet_v2"}
    fake_train.clear()
    doc, progress, _ = run_all(tmp_path)
    assert fake_train == [] and all(": finished " in line for line in progress[:14])
    text = doc.read_text()
    assert "- `inception_v3` skipped: inception_v3 ImageNet weights not found (test)" in text
    assert "| baseline | baseline 32 px, 1 epoch | 2/2 | 100.0 ± 0.0 | 100.0 | 80.5 ± 0.7 | 90.0 ± 0.0 | 85.6 |" in text
    assert "| baseline_300px | baseline 300 px, 1 epoch | 2/2 |" in text
    assert "| inception_v3 | inception_v3 32 px, 1 epoch | 0/2, skipped (see below) | - | - | - | - | 98.5 |" in text


def test_interrupted_run_is_resumed_and_dry_run_trains_nothing(tmp_path, fake_train):
    config = experiment_config(EXPERIMENTS[0], 0, TINY)
    interrupted = write_run(tmp_path / "runs", config, finished=False)
    write_run(tmp_path / "runs", experiment_config(EXPERIMENTS[0], 1, TINY))
    doc, progress, lines = run_all(tmp_path, only="baseline", dry_run=True)
    assert doc is None and fake_train == [] and not (tmp_path / "reproduce.md").exists()
    assert progress[0] == f"[1/2] baseline seed 0: resume (interrupted: {interrupted})"
    assert progress[1].startswith("[2/2] baseline seed 1: finished ")
    assert lines[-1] == "dry run, nothing trained: 2 runs: 1 finished, 1 to train (1 interrupted), 0 skipped."
    run_all(tmp_path, only="baseline")
    assert fake_train == [config] and fake_train.resumed == interrupted  # continued, not started over
    assert plan(SHIPPED.select("baseline"), 2, TINY, tmp_path / "runs")[0].run_dir == interrupted


def test_an_interrupted_session_still_writes_the_document(tmp_path, fake_train, monkeypatch):
    def train_then_stop(config, *args, **kwargs):
        if len(fake_train) == 1:
            raise KeyboardInterrupt
        return fake_train_original(config, *args, **kwargs)

    fake_train_original = training.train
    monkeypatch.setattr(training, "train", train_then_stop)
    with pytest.raises(KeyboardInterrupt):
        run_all(tmp_path, only="baseline,augmented")
    text = (tmp_path / "reproduce.md").read_text()
    assert "| baseline | baseline 32 px, 1 epoch | 1/2, missing seed 1 | 100.0 |" in text
    assert "| augmented | augmented 32 px, 1 epoch | 0/2, missing seeds 0, 1 | - |" in text
    assert "| baseline | 1 | missing | - | - |" in text


@pytest.mark.slow
def test_reproduce_end_to_end_through_the_cli(tmp_path, capsys):
    data = make_dataset(tmp_path / "data", train_per_class=8, val_per_class=4)
    argv = [
        "experiment",
        "reproduce",
        "--seeds",
        "1",
        "--only",
        "baseline,baseline_early_stopping",
        "--epochs",
        "1",
        "--image-size",
        "32",
        "--batch-size",
        "8",
        "--precision",
        "float32",
        "--data-dir",
        str(data),
        "--runs-dir",
        str(tmp_path / "runs"),
        "--cache-dir",
        str(tmp_path / "cache"),
        "--out",
        str(tmp_path / "doc.md"),
    ]
    assert main(argv) == 0
    out = capsys.readouterr().err  # the progress lines
    assert "[1/2] baseline seed 0: train" in out and "[2/2] baseline_early_stopping seed 0: train" in out
    runs = sorted((tmp_path / "runs").iterdir())
    assert len(runs) == 2 and all((r / "model.keras").stat().st_size > 0 for r in runs)
    assert main(argv) == 0
    out = capsys.readouterr().err  # the progress lines
    assert "[1/2] baseline seed 0: finished" in out and "epoch" not in out  # nothing trained again
    text = (tmp_path / "doc.md").read_text()
    assert "horses-humans experiment reproduce --seeds 1 --only baseline,baseline_early_stopping --epochs 1" in text
    assert "| baseline_early_stopping | baseline 32 px, 1 epoch, early stop | 1/1 |" in text
    assert main(["compare", *map(str, runs), "--out", str(tmp_path / "cmp")]) == 0
    assert "| early stop |" in capsys.readouterr().out and (tmp_path / "cmp" / "curves.png").exists()


# ---------------------------------------------------------------- experiment files

USER_FILE = """
title = "My experiments"

[[experiment]]
name = "small"
settings = { recipe = "baseline", conv_filters = [8, 16], kernel_size = 5 }
seeds = 1

[[experiment]]
name = "regularised"
settings = { recipe = "baseline", dropout = 0.25, early_stopping = true }
claim = { val_accuracy = 0.9 }
"""


def test_a_users_file_with_its_own_seeds_title_and_claims(tmp_path, fake_train):
    path = tmp_path / "mine.toml"
    path.write_text(USER_FILE)
    file = load_experiments(path)
    small, regularised = file.experiments
    assert file.title == "My experiments" and small.seeds == 1 and regularised.seeds is None
    assert experiment_config(small, 0, TINY).conv_filters == (8, 16) and regularised.claim.val_accuracy == 0.9
    doc, progress, _ = run_all(tmp_path, seeds=2, file=file)
    assert progress == [
        "[1/3] small seed 0: train",
        "[2/3] regularised seed 0: train",
        "[3/3] regularised seed 1: train",
    ]
    text = doc.read_text()
    assert text.startswith("# My experiments\n") and f" --experiments {path} --runs-dir " in text
    assert "| regularised | baseline 32 px, 1 epoch, dropout 0.25, early stop | 2/2 |" in text and "| 90.0 |" in text
    assert "| small | 0 | " in text and " | 27 53 80 |" in text  # validation accuracy of every epoch (fake history)


def test_the_results_script_runs_come_from_its_file(tmp_path):
    file = load_experiments(Path(__file__).resolve().parents[2] / "docs" / "results.toml")
    planned = plan(file.experiments, 3, {}, tmp_path / "runs")  # what scripts/reproduce_results.sh asks for
    runs = {}
    for run in planned:
        runs.setdefault(run.experiment.name, []).append(run.config)
    assert {name: len(configs) for name, configs in runs.items()} == {
        "baseline": 6,
        "baseline_float32": 6,
        "augmented": 3,
        "augmented_mild": 3,
        "augmented_flip": 3,
        "mobilenet_v2": 3,
    }
    assert [c.augmentation for c in (runs["augmented"][0], runs["augmented_mild"][0], runs["augmented_flip"][0])] == [
        "reference",
        "mild",
        "flip",
    ]
    assert runs["baseline_float32"][5].precision == "float32" and runs["baseline"][5].precision == "auto"
    assert runs["mobilenet_v2"][0].image_size == 224 and runs["mobilenet_v2"][0].epochs == 6


@pytest.mark.parametrize(
    "text, words",
    [
        ("[[experiment]]\nname = baseline", "not valid TOML (Invalid value (at line 2, column 8)); fix the syntax."),
        (
            '[[experiment]]\nname = "a"\nsettings = { epoch = 3 }',
            "experiment 'a': settings: unknown field 'epoch'; known: recipe,",
        ),
        (
            '[[experiment]]\nname = "a"\nsettings = { seed = 3 }',
            "unknown field 'seed' (seeds come from --seeds or `seeds = N`)",
        ),
        (
            '[[experiment]]\nname = "a"\nsettings = { epochs = "ten" }',
            "experiment 'a': settings: epochs = 'ten' should be an integer.",
        ),
        (
            '[[experiment]]\nname = "a"\nsettings = { early_stopping = 1 }',
            "early_stopping = 1 should be true or false.",
        ),
        ('[[experiment]]\nname = "a"\nsettings = { conv_filters = [8, "x"] }', "should be a list of integers."),
        (
            '[[experiment]]\nname = "a"\nsettings = { kernel_size = 4 }',
            "experiment 'a': --kernel-size 4: choose 1, 3, 5 or 7.",
        ),
        ('[[experiment]]\nname = "a"\nsettings = { recipe = "resnet" }', "experiment 'a': unknown recipe 'resnet'"),
        (
            '[[experiment]]\nname = "a"\nrepeats = 2',
            "experiment 'a': unknown key 'repeats'; an experiment has name, settings, seeds, claim.",
        ),
        ('[[experiment]]\nname = "a"\nseeds = 0', "experiment 'a': seeds = 0 should be a positive integer."),
        (
            '[[experiment]]\nname = "a"\nclaim = { val_accuracy = "high" }',
            "experiment 'a': claim: val_accuracy = 'high' should be a number.",
        ),
        ("[[experiment]]\nsettings = {}", "experiment 1 has no name"),
        ('[[experiment]]\nname = "a"\n[[experiment]]\nname = "a"', "experiment 'a' appears more than once"),
        (
            'titel = "x"\n[[experiment]]\nname = "a"',
            "unknown key 'titel'; the file holds `title` and [[experiment]] tables.",
        ),
        ('title = "x"', "no [[experiment]] tables"),
    ],
)
def test_a_bad_experiments_file_is_one_line_naming_it(tmp_path, capsys, text, words):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    argv = ["experiment", "reproduce", "--experiments", str(path), "--dry-run", "--runs-dir", str(tmp_path / "runs")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {path}: ") and words in err and err.count("\n") == 1


def test_a_missing_experiments_file_is_a_clear_error(tmp_path, capsys):
    assert main(["experiment", "reproduce", "--experiments", str(tmp_path / "none.toml"), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {tmp_path / 'none.toml'}: cannot read it (No such file") and err.count("\n") == 1
