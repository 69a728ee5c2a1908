"""Named training stages: what a config plans, and how a resume backup recognises the stage it is of, by name, or
by number in a state.json an older version wrote."""

import json

import pytest

from horses_humans.config import TrainConfig
from horses_humans.runs.store import RESUME_DIR
from horses_humans.training.plan import FINE_TUNE, FIT, HEAD, Stage, plan_stages, total_epochs
from horses_humans.training.resume import STATE_FILE, Backup


def test_a_cnn_fits_once_and_a_fine_tuned_transfer_model_twice():
    cnn = plan_stages(TrainConfig(recipe="baseline", epochs=4), transfer=False)
    assert cnn == [Stage(FIT, 1, 0, 4)] and total_epochs(cnn) == 4
    tuned = plan_stages(TrainConfig(recipe="mobilenet_v2", epochs=3, fine_tune_from="10", fine_tune_epochs=2), True)
    assert tuned == [Stage(HEAD, 1, 0, 3), Stage(FINE_TUNE, 2, 3, 2)] and total_epochs(tuned) == 5
    assert tuned[1].starting_at(2).last_epoch == 4  # after a head stage stopped early at epoch 2


def backup_of(tmp_path, state: dict) -> Backup:
    """A Backup reading this state.json (and an empty weights file of the name it gives)."""
    folder = tmp_path / RESUME_DIR
    folder.mkdir(parents=True)
    (folder / state["weights"]).write_bytes(b"")
    (folder / STATE_FILE).write_text(json.dumps(state))
    return Backup(tmp_path)


@pytest.mark.parametrize(
    "recorded",
    [
        {"stage": "fine_tune", "index": 2, "weights": "fine_tune-epoch4.npz"},  # this version
        {"stage": 2, "weights": "stage2-epoch4.npz"},  # before stages had names
    ],
    ids=["named", "older-numbered"],
)
def test_a_backup_of_fine_tuning_supersedes_the_head_and_resumes_fine_tuning(recorded, tmp_path):
    backup = backup_of(tmp_path, {**recorded, "stage_start": 2, "epochs": 3, "done": False, "best": None})
    head, tune = plan_stages(
        TrainConfig(recipe="baseline", epochs=3, fine_tune_from="10", fine_tune_epochs=2), transfer=True
    )
    assert backup.superseded(head) and not backup.holds(head)
    assert backup.holds(tune) and not backup.superseded(tune)
    resumed = backup.begin(tune.starting_at(3))
    assert resumed.first_epoch == 2 and backup.end(resumed, 3) == 4  # the head stopped early at 2: 2 more epochs


def test_a_finished_stage_ends_where_it_stopped_and_a_fresh_run_holds_nothing(tmp_path):
    (stage,) = plan_stages(TrainConfig(recipe="baseline", epochs=8), transfer=False)
    assert not Backup(tmp_path / "fresh").holds(stage) and Backup(tmp_path / "fresh").end(stage, 0) == 8
    state = {"stage": "fit", "index": 1, "stage_start": 0, "epochs": 4, "done": True, "weights": "fit-epoch4.npz"}
    assert backup_of(tmp_path, state).end(stage, 4) == 4  # early-stopped at 4 of 8: nothing more to fit
