"""MODEL_CARD.md from a run's files: the hub template's sections, the served checkpoint with the optimism note, the
data, recorded evaluations and calibration, and the limits this project found."""

import json

from horses_humans.cli.main import main
from horses_humans.config import TrainConfig
from horses_humans.runs.modelcard import model_card, write_model_card
from horses_humans.runs.store import BEST_MODEL_FILE, MODEL_FILE, labels_record, load_run, save_json

from ..fake_runs import write_run

SECTIONS = [
    "## Model details",
    "## Intended uses & out-of-scope uses",
    "## Training data",
    "## Evaluation results",
    "## Limitations, bias and risks",
    "## How to use",
    "## Versions",
]


def checkpointed_run(tmp_path):
    """A run with both checkpoints, its data record, a test evaluation and a calibration."""
    checkpoints = {
        "monitor": "val_accuracy",
        "default": "best",
        "best": {"file": BEST_MODEL_FILE, "epoch": 3, "val_accuracy": 0.815, "val_loss": 0.4},
        "last": {"file": MODEL_FILE, "epoch": 15, "val_accuracy": 0.592, "val_loss": 2.1},
    }
    path = write_run(
        tmp_path,
        TrainConfig(recipe="augmented"),
        {"val_accuracy": 0.592, "best_val_accuracy": 0.815, "parameters": 9494561, "checkpoints": checkpoints},
    )
    save_json(
        path,
        "data.json",
        {
            "data_dir": "/data/hh",
            "layout": "official",
            "class_names": ["horses", "humans"],
            "sides": {
                "train": {
                    "folder": "horse-or-human",
                    "files": {"horses/a.png": "x", "humans/b.png": "y", "humans/c.png": "z"},
                },
                "validation": {"folder": "validation-horse-or-human", "files": {"horses/d.png": "w"}},
            },
        },
    )
    (path / "evaluations").mkdir()
    save_json(
        path / "evaluations",
        "test-best.json",
        {
            "split": "test",
            "folder": "/data/hh/test",
            "checkpoint": "best",
            "images": 40,
            "accuracy": 0.775,
            "per_class": {"horses": {"recall": 0.9}, "humans": {"recall": 0.65}},
        },
    )
    save_json(
        path,
        "calibration.json",
        {
            "temperature": 2.5,
            "ece_before": 0.21,
            "ece_after": 0.02,
            "unsure": {"min_confidence": 0.8, "neither_class": None},
        },
    )
    return path


def test_card_has_the_hub_sections_in_order(tmp_path):
    card = model_card(load_run(checkpointed_run(tmp_path)))
    assert card.startswith("---\nlibrary_name: keras\n")
    positions = [card.index(heading) for heading in SECTIONS]
    assert positions == sorted(positions)


def test_card_shows_checkpoints_data_evaluations_calibration_and_limits(tmp_path):
    path = checkpointed_run(tmp_path)
    card = model_card(load_run(path))
    assert "| best | `model-best.keras` | 3 | 81.5 | 0.4000 | yes |" in card
    assert "| last | `model.keras` | 15 | 59.2 | 2.1000 |  |" in card
    assert "optimistic" in card and "9,494,561" in card
    assert "| train | 3 | 1 | 2 |" in card and "| validation | 1 | 1 | 0 |" in card  # images per side and class
    assert (
        "| test | `/data/hh/test` | best | 40 | 77.5 | horses 90.0, humans 65.0 | "
        f"`horses-humans evaluate {path.name} --split test --checkpoint best` |" in card
    )  # each number with the command that made it
    assert (
        "temperature: 2.50" in card
        and "after: 0.020" in card
        and "answers unsure when the top probability is under 80%" in card
        and "images of horses or humans" in card
    )
    assert "white-background shortcut" in card and "CGI-to-real gap" in card and "none of horses, humans" in card


def test_card_of_a_run_made_before_checkpoints_and_data_records(tmp_path):
    card = model_card(load_run(write_run(tmp_path, TrainConfig(recipe="baseline"))))
    assert "| best | `model.keras` | 3 | 85.0 |" in card and "| last | `model.keras` | 3 | 85.0 |" in card
    assert "Not recorded" in card and "evaluate" in card


def test_card_command_writes_and_prints_the_card(tmp_path, capsys):
    path = checkpointed_run(tmp_path)
    assert main(["card", str(path)]) == 0
    out = capsys.readouterr()
    assert out.out == (path / "MODEL_CARD.md").read_text() and "wrote" in out.err
    assert write_model_card(path) == path / "MODEL_CARD.md"
    assert (
        json.loads((path / "metrics.json").read_text())["checkpoints"]["default"] == "best"
    )  # the card changes no run file


def test_card_of_a_run_on_ones_own_photos_says_nothing_of_renders_and_words_its_rule(tmp_path):
    path = write_run(tmp_path, TrainConfig(recipe="mobilenet_v2"))
    save_json(path, "labels.json", labels_record(["cats", "dogs", "neither"], 224))
    save_json(
        path,
        "data.json",
        {
            "data_dir": "/photos/pets",
            "layout": "class-folders",
            "class_names": ["cats", "dogs", "neither"],
            "val_split": 0.2,
            "seed": 0,
            "sides": {"train": {"folder": ".", "files": {"cats/a.jpg": "x"}}},
        },
    )
    save_json(
        path,
        "calibration.json",
        {"temperature": 0.9, "unsure": {"min_confidence": 0.47207215428352356, "neither_class": "neither"}},
    )
    card = model_card(load_run(path))
    for claim in ("CGI", "render", "Horses or Humans", "60%", "97%"):
        assert claim not in card, claim
    assert "when the top probability is under 47%, or when the 'neither' class" in card
    assert "0.4720" not in card  # the rule in words, not as a raw number
    assert "images of cats or dogs" in card and 'no "none of these" answer' not in card


def test_card_names_the_recipe_asked_for_and_what_it_stands_for(tmp_path):
    alias = TrainConfig(recipe="mobilenet_v2", recipe_alias="recommended", tta=True)
    card = model_card(load_run(write_run(tmp_path, alias)))
    assert "- Recipe: `recommended` (`mobilenet_v2`, test-time flips)" in card
    plain = model_card(load_run(write_run(tmp_path / "plain", TrainConfig(recipe="baseline"))))
    assert "- Recipe: `baseline` (the full" in plain


def test_card_words_the_calibration_method_it_serves(tmp_path):
    path = write_run(tmp_path, TrainConfig(recipe="baseline"))
    save_json(path, "calibration.json", {"method": "none", "temperature": 1.0, "mistakes": 0, "ece_before": 0.2})
    card = model_card(load_run(path))
    assert "- none: the model's own probabilities are served (no validation mistakes to fit on)" in card
    assert "- temperature:" not in card
    save_json(path, "calibration.json", {"method": "temperature", "temperature": 0.5})
    assert "- temperature: 0.50 (sharpens the model's probabilities)" in model_card(load_run(path))


def test_card_says_how_a_split_without_mistakes_was_calibrated(tmp_path):
    path = write_run(tmp_path, TrainConfig(recipe="baseline"))
    fit = "no mistakes: mean confidence 0.700 -> 0.962 = (N+1)/(N+2), N = 24"
    save_json(path, "calibration.json", {"method": "temperature", "temperature": 0.3, "mistakes": 0, "fit": fit})
    card = model_card(load_run(path))
    assert "- temperature: 0.30 (sharpens" in card
    assert f"- rule of succession (validation held no mistake): {fit}" in card
    kept = "no mistakes: mean confidence 0.990 already at or above (N+1)/(N+2) = 0.962, N = 24: kept"
    save_json(path, "calibration.json", {"method": "none", "temperature": 1.0, "mistakes": 0, "fit": kept})
    assert f"- none: the model's own probabilities are served ({kept})" in model_card(load_run(path))
