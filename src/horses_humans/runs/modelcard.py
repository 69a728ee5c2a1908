"""RUN/MODEL_CARD.md: what a run's model is, what it is for, what it was trained and measured on, and where it fails,
in the sections model cards on public model hubs use (Hugging Face's template). Built from the run's files only."""

from __future__ import annotations

from pathlib import Path

from ..core.atomic import write_text_atomic
from ..core.tables import markdown_table
from . import schema as runschema
from .layout import EVALUATIONS_DIR
from .store import CHECKPOINT_FILES, MODEL_CARD_FILE, OPTIMISM_NOTE, Run, load_run, read_calibration

FINDINGS = "docs/findings.md in the horses-humans repository"


def write_model_card(run: str | Path | Run) -> Path:
    """Write (or rewrite) RUN/MODEL_CARD.md from the run's files; returns its path."""
    run = run if isinstance(run, Run) else load_run(run)
    path = run.path / MODEL_CARD_FILE
    write_text_atomic(path, model_card(run))
    return path


def model_card(run: Run) -> str:
    """The whole card as Markdown: YAML metadata, then one section per heading of the hub template."""
    sections = [
        front_matter(run),
        f"# Model card: {run.path.name}",
        details(run),
        uses(run),
        training_data(run),
        evaluation_results(run),
        limitations(run),
        how_to_use(run),
        versions(run),
    ]
    return "\n\n".join(sections) + "\n"


def front_matter(run: Run) -> str:
    """The metadata block hubs read (library, task, tags)."""
    return "\n".join(
        [
            "---",
            "library_name: keras",
            "pipeline_tag: image-classification",
            "tags: [horses-humans, " + ", ".join(run.class_names) + "]",
            "---",
        ]
    )


def details(run: Run) -> str:
    """## Model details: recipe, classes, size, how to read the output, which file is served."""
    m, served = run.metrics, run.checkpoint_record()
    params = f"{m['parameters']:,}" if m.get("parameters") else "unknown"
    return "\n".join(
        [
            "## Model details",
            "",
            f"- Recipe: `{run.config.recipe}` (the full training configuration is in `config.json`)",
            f"- Classes ({len(run.class_names)}): {', '.join(run.class_names)}",
            f"- Input: RGB images resized to {run.image_size}x{run.image_size}, raw 0-255 pixels (preprocessing is "
            "inside the model)",
            f"- Output: {run.output.record()['output']}",
            f"- Parameters: {params}",
            f"- Served checkpoint: `{run.checkpoint}` (`{served['file']}`, epoch {served.get('epoch', '?')}); "
            f"the other is chosen with `--checkpoint {other(run.checkpoint)}`",
        ]
    )


def uses(run: Run) -> str:
    """## Intended uses & out-of-scope uses."""
    names = ", ".join(run.class_names)
    return "\n".join(
        [
            "## Intended uses & out-of-scope uses",
            "",
            f"Intended: telling apart photos of {either(run.class_names)}, one subject per image, for "
            "demonstration and "
            "teaching.",
            "",
            f"Out of scope: any image that shows none of {names} (another animal, an object, food, a scene): the model "
            'has no "none of these" answer of its own and will name one of its classes, often with high confidence. '
            "Not for decisions about people (identity, age, any attribute): it was trained to find a person, "
            "nothing more.",
        ]
    )


def training_data(run: Run) -> str:
    """## Training data: folder, layout and image counts per side and class (data.json)."""
    data = run.data
    if not data:
        return "## Training data\n\nNot recorded (the run was made before runs remembered their data)."
    rows = [
        [side, len(entry["files"]), *class_counts(entry["files"], run.class_names)]
        for side, entry in data.get("sides", {}).items()
    ]
    rows += [
        [f"train, extra: `{entry['folder']}`", len(entry["files"]), *class_counts(entry["files"], run.class_names)]
        for entry in data.get("extra", [])
    ]  # train --extra-data
    made = (
        f" Validation is {data['val_split']:g} of each class, drawn with seed {data['seed']}."
        if "val_split" in data
        else ""
    )
    return "\n".join(
        [
            "## Training data",
            "",
            f"Folder `{data.get('data_dir')}`, layout `{data.get('layout')}`.{made} The exact files and their "
            "sha256 are in "
            "`data.json`. The official Horses or Humans images are computer-generated renders (CGI), not photos.",
            "",
            markdown_table(["side", "images", *run.class_names], rows),
        ]
    )


def class_counts(files, class_names: list[str]) -> list[int]:
    """Images per class of one side, by each file's class folder (the first folder of its path that is a class)."""
    counts = dict.fromkeys(class_names, 0)
    for name in files:
        found = next((part for part in Path(name).parts if part in counts), None)
        if found:
            counts[found] += 1
    return list(counts.values())


def evaluation_results(run: Run) -> str:
    """## Evaluation results: validation per checkpoint (with the optimism note), every recorded evaluation,
    calibration and unsure numbers where the run has them."""
    lines = [
        "## Evaluation results",
        "",
        "Validation accuracy per checkpoint (recorded during training):",
        "",
        checkpoints_table(run),
        "",
        f"Note: {OPTIMISM_NOTE}.",
    ]
    evaluations = load_evaluations(run.path)
    if evaluations:
        lines += ["", "Recorded evaluations (`horses-humans evaluate`):", "", evaluations_table(evaluations)]
    else:
        lines += [
            "",
            "No held-out test split or real-photo evaluation is recorded yet: run "
            f"`horses-humans evaluate {run.path} --split test` or `--data DIR` (this card is then rewritten).",
        ]
    calibration = read_calibration(run.path)
    if calibration:
        lines += ["", *calibration_lines(calibration)]
    return "\n".join(lines)


def checkpoints_table(run: Run) -> str:
    """One row per checkpoint: file, epoch, validation accuracy and loss, which one is served."""
    rows = []
    for name in CHECKPOINT_FILES:
        record = run.checkpoint_record(name)
        accuracy, loss = record.get("val_accuracy"), record.get("val_loss")
        rows.append(
            [
                name,
                f"`{record['file']}`",
                record.get("epoch") or "-",
                percent(accuracy),
                "-" if loss is None else f"{loss:.4f}",
                "yes" if name == run.checkpoint else "",
            ]
        )
    return markdown_table(["checkpoint", "file", "epoch", "val acc %", "val loss", "served"], rows)


def load_evaluations(run_dir: Path) -> list[dict]:
    """The run's recorded evaluations (RUN/evaluations/*.json), by name."""
    folder = Path(run_dir) / EVALUATIONS_DIR
    return [read_evaluation(p) for p in sorted(folder.glob("*.json"))] if folder.is_dir() else []


def evaluations_table(evaluations: list[dict]) -> str:
    """One row per evaluation: what was scored, with which checkpoint, images, accuracy, per-class recall."""
    rows = [
        [
            e.get("split", "?"),
            f"`{e.get('folder', '')}`",
            e.get("checkpoint", "-"),
            e.get("images", "-"),
            percent(e.get("accuracy")),
            ", ".join(f"{n} {percent(s.get('recall'))}" for n, s in e.get("per_class", {}).items()),
        ]
        for e in evaluations
    ]
    return markdown_table(["split", "folder", "checkpoint", "images", "accuracy %", "recall % per class"], rows)


def calibration_lines(calibration: dict) -> list[str]:
    """What calibration.json holds: temperature, expected calibration error before and after, the unsure rule."""
    lines = ["Calibration (`calibration.json`, fitted on validation data):", ""]
    for key, label in (
        ("temperature", "temperature"),
        ("ece_before", "expected calibration error before"),
        ("ece_after", "expected calibration error after"),
    ):
        if calibration.get(key) is not None:
            lines.append(f"- {label}: {calibration[key]:.4f}")
    unsure = calibration.get("unsure")
    if unsure:
        lines.append(
            "- unsure: " + ", ".join(f"{k} = {v}" for k, v in unsure.items() if not isinstance(v, (dict, list)))
        )
    return lines


def limitations(run: Run) -> str:
    """## Limitations, bias and risks: what this project found (docs/findings.md)."""
    return "\n".join(
        [
            "## Limitations, bias and risks",
            "",
            "- The white-background shortcut: Grad-CAM shows the baseline CNN calling horses on a plain white studio "
            'background "humans" because of the background, not the horse (section 2 of ' + FINDINGS + "). Expect "
            "answers to follow backgrounds and framing as much as the subject.",
            "- The CGI-to-real gap: the official images are renders; real photos are a different domain. Measured "
            "on real photos, the baseline CNN gets about 60% right (humans about 17%) and the best transfer model "
            "about "
            "97%. Measure this model with `horses-humans evaluate RUN --data DIR` on a folder of real photos.",
            f"- Out of scope inputs: an image of none of {', '.join(run.class_names)} still gets one of those labels "
            "unless the run has an unsure rule.",
            "- Validation accuracy is optimistic for the best checkpoint (it chose it) and the validation set is "
            "small.",
        ]
    )


def how_to_use(run: Run) -> str:
    """## How to use: the CLI, the server and the exports."""
    path = run.path
    return "\n".join(
        [
            "## How to use",
            "",
            "```sh",
            f"RUN={path}",
            'horses-humans predict "$RUN" photo.jpg         # label and probabilities',
            'horses-humans evaluate "$RUN" --data DIR       # score a folder of class folders',
            'horses-humans serve "$RUN"                     # upload page and REST API (/v1/predict, /v1/model/card)',
            'horses-humans export "$RUN" --format tflite    # exports carry this card',
            "```",
            "",
            f"In Python: `Predictor.from_run('{path}').predict_files(['photo.jpg'])` "
            "(`horses_humans.inference.predictor`). "
            f"Add `--checkpoint {other(run.checkpoint)}` (or `checkpoint=`) for the other checkpoint.",
        ]
    )


def versions(run: Run) -> str:
    """## Versions: the software that trained the model."""
    env = run.environment
    keys = ("horses_humans", "keras", "backend", "backend_version", "python", "numpy", "precision", "platform")
    known = [f"- {k}: {env[k]}" for k in keys if env.get(k)]
    return "\n".join(["## Versions", "", *(known or ["- not recorded"])])


def either(names: list[str]) -> str:
    """'horses or humans', 'a, b or c'."""
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"


def other(checkpoint: str) -> str:
    """The checkpoint that is not this one."""
    return next(name for name in CHECKPOINT_FILES if name != checkpoint)


def percent(value: float | None) -> str:
    """'81.5', or '-' when unknown."""
    return "-" if value is None else f"{100 * value:.1f}"


def read_evaluation(path: Path) -> dict:
    """One recorded evaluation (RUN/evaluations/NAME.json), checked against its schema: a damaged one is one error
    naming it."""
    return runschema.check_json(path, runschema.Evaluation, EVALUATION_FIX)


EVALUATION_FIX = "delete it, or evaluate the run again (`horses-humans evaluate RUN`) to rewrite it"
