"""The run files' schema: strict types, consistent labels, and keys from newer versions accepted and kept."""

import json

import pytest

from horses_humans.config import HorsesHumansError, TrainConfig
from horses_humans.runs.store import CONFIG_FILE, LABELS_FILE, METRICS_FILE, load_run

from ..fake_runs import write_run


def edit(path, **changes):
    """Rewrite a JSON file with some keys changed (a value of None drops the key)."""
    record = {**json.loads(path.read_text()), **changes}
    path.write_text(json.dumps({k: v for k, v in record.items() if v is not None}))


def test_keys_from_newer_versions_are_accepted_and_kept(tmp_path):
    run_dir = write_run(tmp_path, TrainConfig(recipe="baseline", image_size=32))
    edit(run_dir / LABELS_FILE, future_key={"x": 1})
    edit(run_dir / METRICS_FILE, future_metric=[1, 2])
    edit(run_dir / CONFIG_FILE, future_option=True)
    run = load_run(run_dir)
    assert run.labels["future_key"] == {"x": 1} and run.metrics["future_metric"] == [1, 2]
    assert run.config.image_size == 32 and not hasattr(run.config, "future_option")


@pytest.mark.parametrize(
    "name, changes, problem",
    [
        (LABELS_FILE, {"threshold": "0.5"}, "threshold: Input should be a valid number"),  # strict: no quoted numbers
        (LABELS_FILE, {"class_names": ["horses", "horses"]}, "repeat a name"),
        (LABELS_FILE, {"output_kind": "softmax"}, "output_kind 'softmax' does not fit 2 classes"),
        (LABELS_FILE, {"input_shape": [64, 64, 3]}, "input_shape [64, 64, 3] differs from input_size 32"),
        (METRICS_FILE, {"checkpoints": {"best": {"epoch": 2}}}, "checkpoints.best.file: Field required"),
        (CONFIG_FILE, {"dropout": 1.5}, "--dropout 1.5 must be in [0, 1)"),  # TrainConfig's own check
        (CONFIG_FILE, {"epochs": None}, "epochs missing"),
    ],
)
def test_inconsistent_values_name_the_file_and_key(tmp_path, name, changes, problem):
    run_dir = write_run(tmp_path, TrainConfig(recipe="baseline", image_size=32))
    edit(run_dir / name, **changes)
    with pytest.raises(HorsesHumansError) as error:
        load_run(run_dir)
    message = str(error.value)
    assert message.startswith(f"{run_dir / name}: ") and problem in message and "\n" not in message


def test_a_run_from_before_resize_reads_as_squash_and_a_bad_mode_is_named(tmp_path):
    from ..centroid_runs import write_centroid_run

    run = write_centroid_run(tmp_path, 2, resize="pad")
    assert load_run(run).resize == "pad"
    for name in ("config.json", "labels.json"):  # as a run made before --resize wrote them
        record = json.loads((run / name).read_text())
        del record["resize"]
        (run / name).write_text(json.dumps(record))
    assert load_run(run).resize == "squash"
    labels = json.loads((run / "labels.json").read_text())
    (run / "labels.json").write_text(json.dumps({**labels, "resize": "stretch"}))
    with pytest.raises(HorsesHumansError, match=r"labels.json: resize: Input should be 'squash', 'crop' or 'pad'"):
        load_run(run)
