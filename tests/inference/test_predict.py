"""predict.py without a trained model: which files a folder contributes, what a prediction says, its CSV and JSON."""

import csv
import io
import json

import numpy as np
import pytest

from horses_humans.data.files import PassedOver
from horses_humans.inference.predictor import Prediction, Predictor, collect_files
from horses_humans.inference.resultfiles import WRITERS, ModelStamp

STAMP = ModelStamp("run-1", "model-best.keras", "keras")


def format_predictions(rows: list[Prediction], fmt: str = "table", class_names: list[str] | None = None) -> str:
    """The text resultfiles' writer of `fmt` gives for these rows, written as one batch."""
    names = class_names or next((list(r.probabilities) for r in rows if r.probabilities), [])
    sink = io.StringIO()
    writer = WRITERS[fmt](sink, names, STAMP)
    writer.write(rows)
    writer.close()
    return sink.getvalue()


def rendered(rows: list[Prediction], fmt: str, class_names=("horses", "humans")) -> str:
    """What `predict --format FMT` writes for these rows, through its own writer."""
    return format_predictions(rows, fmt, list(class_names))


def test_collect_files_skips_hidden_files_and_macos_resource_forks_like_the_data_set(tmp_path, make_image):
    folder = tmp_path / "photos"
    keep = [make_image(folder / "a.png"), make_image(folder / "sub" / "b.png")]
    make_image(folder / ".hidden.png")
    make_image(folder / "__MACOSX" / "sub" / "b.png")  # macOS zips carry a resource-fork copy of each folder
    make_image(folder / ".cache" / "c.png")
    (folder / "sub" / ".DS_Store").write_bytes(b"junk")
    (folder / "notes.txt").write_text("not an image")
    named = tmp_path / ".named-directly.png"
    passed = PassedOver()
    assert collect_files([folder, named], passed) == keep + [named]  # a file named directly is taken as given
    assert passed.not_images == 3  # .hidden.png, .DS_Store, notes.txt; a hidden folder's files are not counted


def test_collect_files_of_a_folder_under_a_hidden_folder_keeps_its_files(tmp_path, make_image):
    folder = tmp_path / ".cache" / "photos"  # only the parts below the named folder count
    image = make_image(folder / "a.png")
    assert collect_files([folder]) == [image]


def test_csv_of_predictions_has_one_column_per_class_and_a_header_even_when_empty():
    rows = [
        Prediction("a.png", "humans", 0.75, {"horses": 0.25, "humans": 0.75}),
        Prediction("b.png", error="not an image"),
    ]
    assert format_predictions(rows, "csv").splitlines() == [  # one writer for every path: resultfiles
        "file,label,probability,p_horses,p_humans,unsure_reason,unsure_score,error",
        "a.png,humans,0.7500,0.2500,0.7500,,,",
        "b.png,,,,,,,not an image",
    ]
    assert (
        format_predictions([], "csv", ["cats", "dogs", "owls"])
        == "file,label,probability,p_cats,p_dogs,p_owls,unsure_reason,unsure_score,error\r\n"
    )


def test_table_and_csv_give_four_decimals_while_json_keeps_every_digit():
    p = np.float32(0.123456789)  # what a float32 model gives: 17 digits of noise once it is a Python float
    rows = [Prediction("a.png", "unsure", float(p), {"horses": 1 - float(p), "humans": float(p)}, None, "close", 0.3)]
    (row,) = csv.DictReader(io.StringIO(rendered(rows, "csv")))
    assert (row["probability"], row["p_horses"], row["p_humans"], row["unsure_score"]) == (
        "0.1235",
        "0.8765",
        "0.1235",
        "0.3000",
    )
    assert "0.1235" in rendered(rows, "table").splitlines()[1]
    for fmt in ("json", "jsonl"):
        (record,) = json.loads(rendered(rows, fmt)) if fmt == "json" else [json.loads(rendered(rows, fmt))]
        assert record["probability"] == float(p) and record["probabilities"]["horses"] == 1 - float(p)


def test_json_of_predictions_gives_every_class_in_a_dict_and_the_table_the_label_and_its_probability():
    rows = [
        Prediction("a.png", "horses", 0.9, {"horses": 0.9, "humans": 0.1}),
        Prediction("b.png", error="not an image"),
    ]
    assert json.loads(rendered(rows, "json")) == [
        {
            "file": "a.png",
            "label": "horses",
            "probability": 0.9,
            "probabilities": {"horses": 0.9, "humans": 0.1},
            "unsure_reason": None,
            "unsure_score": None,
            "error": None,
            "model": {"run": "run-1", "checkpoint": "model-best.keras", "runtime": "keras"},
        },
        {
            "file": "b.png",
            "label": None,
            "probability": None,
            "probabilities": None,
            "unsure_reason": None,
            "unsure_score": None,
            "error": "not an image",
            "model": {"run": "run-1", "checkpoint": "model-best.keras", "runtime": "keras"},
        },
    ]
    table = rendered(rows, "table").splitlines()
    assert table[1].split() == ["a.png", "horses", "0.9000"] and table[2].split() == [
        "b.png",
        "error:",
        "not",
        "an",
        "image",
    ]


class Constant:
    """A stand-in model: the same raw output for every image."""

    def __init__(self, raw):
        self.raw = np.asarray(raw, np.float32)

    def predict_on_batch(self, x):
        return np.repeat(self.raw[None], len(x), axis=0)


@pytest.mark.parametrize(
    "names,raw,label,probability",
    [
        (["horses", "humans"], [3.7e-10], "horses", 1.0),  # a sure horse reads 1.0 for horses, not 3.7e-10
        (["horses", "humans"], [0.8], "humans", 0.8),
        (["cats", "dogs", "owls"], [0.2, 0.1, 0.7], "owls", 0.7),
    ],
)
def test_predicted_probability_is_that_of_the_label(tmp_path, make_image, names, raw, label, probability):
    predictor = Predictor(Constant(raw), names, 16)
    (result,) = predictor.predict_files([make_image(tmp_path / "a.png")])
    assert (result.label, result.error) == (label, None) and result.probability == pytest.approx(probability)
    expected = predictor.output.probabilities(np.asarray(raw)[None])[0]
    assert result.probabilities == pytest.approx(dict(zip(names, expected))) and list(result.probabilities) == names


# ---------------------------------------------------------------- streaming: the walk, the batches, the output files


def test_the_lazy_walk_gives_the_folder_order_of_the_data_sets_rule(tmp_path, make_image):
    from horses_humans.data.files import visible_files, walk_inputs

    folder = tmp_path / "photos"
    for name in ("b.png", "a/z.png", "a/b/c.png", "a.png", "A.png", "a-b/x.png", ".hidden/y.png", "c/.d.png"):
        make_image(folder / name)
    walk = walk_inputs([folder])
    assert iter(walk) is walk  # a generator: nothing is listed before it is asked for
    assert list(walk) == [(path, None) for path in visible_files(folder)]


def test_batches_are_predicted_from_a_generator_without_reading_it_all(tmp_path, make_image):
    import itertools

    image = make_image(tmp_path / "a.png")
    endless = ((image, None) for _ in itertools.count())  # a list of it would never end
    batches = Predictor(Constant([0.8]), ["horses", "humans"], 16).predict_batches(endless, batch_size=3, workers=2)
    first, second = itertools.islice(batches, 2)
    batches.close()
    assert [len(first), len(second)] == [3, 3] and all(r.label == "humans" for r in first + second)


def test_a_skip_reason_in_a_batch_becomes_that_files_error_and_the_others_are_answered(tmp_path, make_image):
    good = make_image(tmp_path / "a.png")
    entries = [
        (good, None),
        (tmp_path / "pipe", "pipe: a FIFO (named pipe), not a regular file; skipped"),
        (good, None),
    ]
    rows = [
        r for batch in Predictor(Constant([0.8]), ["horses", "humans"], 16).predict_batches(entries, 2) for r in batch
    ]
    assert [r.error for r in rows] == [None, entries[1][1], None] and rows[2].label == "humans"


def rows_of(n: int, start: int = 0) -> list[Prediction]:
    return [
        Prediction(f"f{i:03d}.png", "humans", 0.75, {"horses": 0.25, "humans": 0.75}) for i in range(start, start + n)
    ]


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "json"])
def test_resume_keeps_complete_rows_cuts_a_torn_one_and_writes_nothing_twice(tmp_path, fmt):
    from horses_humans.inference.resultfiles import open_results

    output = tmp_path / f"out.{fmt}"
    with open_results(output, fmt, ["horses", "humans"], STAMP) as writer:
        writer.write(rows_of(3))
        writer.write(rows_of(2, 3))
    torn = output.read_bytes()
    cut = torn.rindex(b"f004.png") + 3  # a kill in the middle of the last row
    output.write_bytes(torn[:cut])
    with open_results(output, fmt, ["horses", "humans"], STAMP, resume=True) as writer:
        assert writer.done == {f"f{i:03d}.png" for i in range(4)}
        writer.write(rows_of(3, 4))
    text = output.read_text()
    if fmt == "csv":
        files = [line.split(",")[0] for line in text.splitlines()[1:]]
    elif fmt == "jsonl":
        files = [json.loads(line)["file"] for line in text.splitlines()]
    else:
        files = [record["file"] for record in json.loads(text)]
    assert files == [f"f{i:03d}.png" for i in range(7)]


def test_resume_of_a_finished_json_array_appends_inside_the_bracket(tmp_path):
    from horses_humans.inference.resultfiles import open_results

    output = tmp_path / "out.json"
    with open_results(output, "json", ["horses", "humans"], STAMP) as writer:
        writer.write(rows_of(2))
    with open_results(output, "json", ["horses", "humans"], STAMP, resume=True) as writer:
        writer.write(rows_of(1, 2))
    assert [r["file"] for r in json.loads(output.read_text())] == ["f000.png", "f001.png", "f002.png"]


def test_resume_refuses_another_runs_csv_a_table_and_a_missing_output(tmp_path):
    from horses_humans.config import HorsesHumansError
    from horses_humans.inference.resultfiles import open_results

    output = tmp_path / "out.csv"
    with open_results(output, "csv", ["cats", "dogs", "owls"], STAMP) as writer:
        writer.write(rows_of(1))
    with pytest.raises(HorsesHumansError, match="is not this run's"):
        with open_results(output, "csv", ["horses", "humans"], STAMP, resume=True):
            pass
    with pytest.raises(HorsesHumansError, match="a table cannot be"):
        with open_results(tmp_path / "out.txt", "table", ["horses", "humans"], STAMP, resume=True):
            pass
    with pytest.raises(HorsesHumansError, match="--resume continues an --output FILE"):
        with open_results(None, "csv", ["horses", "humans"], STAMP, resume=True):
            pass


def test_the_streamed_table_lines_up_with_the_first_batch(capsys):
    from horses_humans.inference.resultfiles import open_results

    with open_results(None, "table", ["horses", "humans"], STAMP) as writer:
        writer.write(rows_of(2))
        writer.write([Prediction("a-much-longer-name.png", error="not an image")])
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["file", "label", "probability"] and lines[1].split() == ["f000.png", "humans", "0.7500"]
    assert lines[3].split(maxsplit=1) == ["a-much-longer-name.png", "error: not an image"]
