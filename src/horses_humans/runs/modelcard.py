"""RUN/MODEL_CARD.md: what a run's model is, what it is for, what it was trained and measured on, and where it fails,
in the sections model cards on public model hubs use (Hugging Face's template). Built from the run's files only."""

from __future__ import annotations

from pathlib import Path

from ..core.atomic import write_text_atomic
from ..core.tables import markdown_table
from ..data.images import describe_resize
from ..data.layouts import OFFICIAL
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
            f"- Recipe: {recipe_words(run)} (the full training configuration is in `config.json`)",
            f"- Classes ({len(run.class_names)}): {', '.join(run.class_names)}{reject_note(run)}",
            f"- Input: RGB images {describe_resize(run.resize, run.image_size)} with bilinear resampling "
            f"(`--resize {run.resize}`), raw 0-255 pixels (preprocessing is inside the model)",
            f"- Output: {run.output.record()['output']}",
            f"- Parameters: {params}",
            f"- Served checkpoint: `{run.checkpoint}` (`{served['file']}`, epoch {served.get('epoch', '?')}); "
            f"the other is chosen with `--checkpoint {other(run.checkpoint)}`",
        ]
    )


def recipe_words(run: Run) -> str:
    """`recommended` (`mobilenet_v2`, test-time flips) for an alias; `baseline` for a recipe asked for by its name."""
    config = run.config
    if not config.recipe_alias or config.recipe_alias == config.recipe:
        return f"`{config.recipe}`"
    flips = ", test-time flips" if config.tta else ""
    return f"`{config.recipe_alias}` (`{config.recipe}`{flips})"


def uses(run: Run) -> str:
    """## Intended uses & out-of-scope uses: what the run's classes and its unsure rule allow."""
    rule = unsure_rule(run)
    names = ", ".join(real_classes(run, rule))
    if rule.get("neither_class") or rule.get("min_confidence"):
        strangers = f"it answers unsure {unsure_words(rule)}, but that catches only some strangers; measure it"
    else:
        strangers = 'the model has no "none of these" answer and will name one of its classes'
    return "\n".join(
        [
            "## Intended uses & out-of-scope uses",
            "",
            f"Intended: telling apart images of {either(real_classes(run, rule))}, one subject per image, like the "
            "training images.",
            "",
            f"Out of scope: any image that shows none of {names}: {strangers} "
            "(`horses-humans evaluate RUN --data DIR` on a folder of such images). "
            "Not for decisions about people (identity, age, any attribute).",
        ]
    )


def reject_note(run: Run) -> str:
    """'; `background` stands for "none of these" ...' when the run has a reject class, else ''."""
    name = unsure_rule(run).get("neither_class")
    if name not in run.class_names:
        return ""
    return (
        f'; `{name}` stands for "none of these" (`--reject-class {name}`: its images teach the unsure answer, it is '
        "never an answer)"
    )


def unsure_rule(run: Run) -> dict:
    """The run's unsure rule as recorded in calibration.json ({} when it has none)."""
    return read_calibration(run.path).get("unsure") or {}


def real_classes(run: Run, rule: dict) -> list[str]:
    """The classes the model answers with: all but the one that stands for "none of these"."""
    return [name for name in run.class_names if name != rule.get("neither_class")] or run.class_names


def unsure_words(rule: dict) -> str:
    """'when the top probability is under 47%, or when the neither class wins', in plain words."""
    parts = []
    if rule.get("min_confidence") and rule.get("chosen") != "off":
        parts.append(f"when the top probability is under {100 * rule['min_confidence']:.0f}%")
    if rule.get("neither_class"):
        parts.append(f'when the {rule["neither_class"]!r} class ("none of these") wins')
    if rule.get("distance"):
        parts.append("when the image is farther from every training image (backbone features) than 98% of them are")
    return ", or ".join(parts)


def official_data(run: Run) -> bool:
    """Was the run trained on the official Horses or Humans renders (the official layout)?"""
    return (run.data or {}).get("layout") == OFFICIAL


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
            "sha256 are in `data.json`."
            + (
                " These are the official Horses or Humans images: computer-generated renders (CGI), not photos."
                if official_data(run)
                else ""
            ),
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
        "Validation accuracy per checkpoint (measured by `horses-humans train` on the validation split):",
        "",
        checkpoints_table(run),
        "",
        f"Note: {OPTIMISM_NOTE}.",
    ]
    evaluations = load_evaluations(run.path)
    if evaluations:
        lines += ["", "Recorded evaluations:", "", evaluations_table(evaluations, run.path)]
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


def evaluations_table(evaluations: list[dict], run_dir: Path) -> str:
    """One row per evaluation: what was scored, with which checkpoint, images, accuracy, per-class recall, and the
    command that made it."""
    rows = [
        [
            e.get("split", "?"),
            f"`{e.get('folder', '')}`",
            e.get("checkpoint", "-"),
            e.get("images", "-"),
            percent(e.get("accuracy")),
            ", ".join(f"{n} {percent(s.get('recall'))}" for n, s in e.get("per_class", {}).items()),
            f"`{evaluation_command(e, run_dir)}`",
        ]
        for e in evaluations
    ]
    header = ["split", "folder", "checkpoint", "images", "accuracy %", "recall % per class", "made by"]
    return markdown_table(header, rows)


def evaluation_command(evaluation: dict, run_dir: Path) -> str:
    """The `horses-humans evaluate` command that made a recorded evaluation."""
    split = evaluation.get("split", "validation")
    where = f"--data {evaluation.get('folder')}" if split == "data" else f"--split {split}"
    return f"horses-humans evaluate {Path(run_dir).name} {where} --checkpoint {evaluation.get('checkpoint', 'best')}"


def calibration_lines(calibration: dict) -> list[str]:
    """What calibration.json holds, in words: the temperature, the calibration error before and after, the rule."""
    lines = ["Calibration (`calibration.json`, fitted on the validation split by `horses-humans train`):", ""]
    if calibration.get("method") not in (
        None,
        "temperature",
        "temperature scaling",
        "none",
    ):  # records from before methods: a temperature
        lines.append(f"- method: {calibration['method']} (chosen by held-out log-loss on folds of validation)")
    if calibration.get("method") == "none":
        lines.append(f"- none: the model's own probabilities are served ({why_uncalibrated(calibration)})")
    elif calibration.get("temperature") is not None:
        t = calibration["temperature"]
        effect = "softens" if t > 1 else "sharpens" if t < 1 else "leaves"
        lines.append(f"- temperature: {t:.2f} ({effect} the model's probabilities)")
    if calibration.get("fit") and calibration.get("method") != "none":
        lines.append(f"- rule of succession (validation held no mistake): {calibration['fit']}")
    for key, label in (("class_scale", "scale"), ("class_bias", "bias")):
        if calibration.get(key) is not None:
            lines.append(f"- per-class {label} of log p: {', '.join(f'{v:.3f}' for v in calibration[key])}")
    for key, label in (("ece_before", "before"), ("ece_after", "after")):
        if calibration.get(key) is not None:
            lines.append(f"- expected calibration error {label}: {calibration[key]:.3f}")
    rule = calibration.get("unsure") or {}
    words = unsure_words(rule)
    if words:
        off = ", with no confidence threshold (`--min-confidence off`)" if rule.get("chosen") == "off" else ""
        lines.append(f"- unsure: the model answers unsure {words}{off} (`horses-humans unsure RUN` fits it again)")
    return lines


def why_uncalibrated(calibration: dict) -> str:
    """Why a calibration.json with method "none" serves the model's own probabilities, in a few words."""
    if calibration.get("fit"):  # a split without mistakes, the model already as sure as the rule of succession allows
        return calibration["fit"]
    return "no validation mistakes to fit on" if calibration.get("mistakes") == 0 else "no method beat it"


def limitations(run: Run) -> str:
    """## Limitations, bias and risks: what follows from this run's data, and nothing it does not show."""
    lines = ["## Limitations, bias and risks", ""]
    if official_data(run):
        lines += [
            "- The white-background shortcut: on the official renders, Grad-CAM shows models answering from the "
            "background as much as the subject (" + FINDINGS + "). Expect answers to follow backgrounds and framing.",
            "- The CGI-to-real gap: the official images are renders; real photos are a different domain, where "
            "accuracy is lower. Measure this model with `horses-humans evaluate RUN --data DIR` on real photos.",
        ]
    else:
        lines.append(
            "- The model knows only what its training folders show: photos unlike them (other cameras, light, "
            "framing) may be answered worse. Measure with `horses-humans evaluate RUN --data DIR`."
        )
    rule = unsure_rule(run)
    strangers = "the unsure rule above" if unsure_words(rule) else "no unsure rule"
    lines += [
        f"- Out of scope inputs: an image of none of {', '.join(real_classes(run, rule))} gets one of those labels "
        f"unless {strangers} catches it.",
        "- Validation accuracy is optimistic for the best checkpoint (it chose it) and the validation set is small.",
    ]
    return "\n".join(lines)


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
