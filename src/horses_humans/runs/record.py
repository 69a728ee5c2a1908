"""The data a run used. Training writes data.json: the data folder, its layout, the class names and every file of
each side (train, validation, and test if the data set has one) with its sha256. Evaluate, report and export read
the run's own side back from it, in the run's own data folder unless told otherwise, and say in one line when those
files changed since: an image added later never moves between sides silently.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

from ..config import HorsesHumansError, TrainConfig, resolve_data_dir
from ..data.files import visible_files
from ..data.layouts import CLASS_FOLDERS, DataSet, FileList, detect_layout, find_dataset, labelled_folder
from ..data.pixels import Split, file_digests, load_files
from .store import Run

logger = logging.getLogger(__name__)  # progress lines; the CLI sends them to stderr

# ---------------------------------------------------------------- writing the record


def data_record(dataset: DataSet, used: dict[str, Split], config: TrainConfig, extra: list[Split] = ()) -> dict:
    """data.json: folder, layout, classes (the run's: a `neither` from an extra folder included) and the exact files
    of each side with their sha256 (train and validation: the files that were decoded and used; test: as listed),
    one hash over them all, and each --extra-data folder with its files (the training side's too)."""
    sides = {
        side: side_record(dataset.root, found.root, used[side].files if side in used else found.files)
        for side, found in dataset.sides.items()
    }
    record = {
        "data_dir": str(Path(dataset.root).resolve()),
        "layout": dataset.layout,
        "class_names": list(used["train"].class_names if "train" in used else dataset.class_names),
    }
    if dataset.layout == CLASS_FOLDERS:  # what made the split
        record.update(val_split=config.val_split, seed=config.seed)
    record.update(sha256=sides_hash(sides), sides=sides)
    if extra:
        record["extra"] = [
            {
                "folder": str(Path(split.root).resolve()),
                "files": side_record(split.root, split.root, split.files)["files"],
            }
            for split in extra
        ]
    return record


def side_record(data_dir: Path, root: Path, files: list[str]) -> dict:
    """One side: its folder inside the data folder ("" for class folders alone) and {file: sha256}."""
    folder = Path(root).relative_to(data_dir).as_posix()
    return {"folder": "" if folder == "." else folder, "files": dict(zip(files, file_digests(root, files)))}


def sides_hash(sides: dict) -> str:
    """One sha256 over every side's file names and contents."""
    blob = json.dumps({side: entry["files"] for side, entry in sides.items()}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


# ---------------------------------------------------------------- reading it back


def run_data_dir(run: Run, data_dir: Path | str | None = None, log=logger.info) -> Path:
    """The data folder for a run: data_dir if given, else the one the run recorded (data.json, or environment.json
    for older runs), else $HORSES_HUMANS_DATA or the default."""
    if data_dir:
        return Path(data_dir).expanduser()
    recorded = run.data.get("data_dir") or run.environment.get("data_dir")
    if recorded and Path(recorded).is_dir():
        return Path(recorded)
    fallback = resolve_data_dir(None)
    if recorded:
        log(f"warning: {run.path.name}'s data folder {recorded} is gone; using {fallback} (choose one with --data-dir)")
    return fallback


def load_run_split(
    run: Run,
    side: str = "validation",
    data_dir: Path | str | None = None,
    cache_dir: Path | None = None,
    log=logger.info,
) -> Split:
    """Decoded pixels of the run's own train, validation or test files: the ones it recorded (one warning line when
    they changed since), or, for a run without a record, that side of the data set as found now."""
    root = run_data_dir(run, data_dir, log)
    found = recorded_side(run, side, root, log) if uses_record(run, root, log) else found_side(run, side, root)
    return load_files(found, run.class_names, run.image_size, cache_dir, log, run.resize)


def load_labelled(run: Run, folder: Path | str, cache_dir: Path | None = None, log=logger.info) -> Split:
    """Decoded pixels of any folder of class folders named after (some of) the run's classes."""
    found = labelled_folder(Path(folder), run.class_names)
    return load_files(found, run.class_names, run.image_size, cache_dir, log, run.resize)


def load_run_extra(run: Run, cache_dir: Path | None = None, log=logger.info) -> list[Split]:
    """Decoded pixels of the run's --extra-data folders: the files it recorded that are still there (one warning
    line per folder that changed), [] for a run without any."""
    splits = []
    for entry in run.data.get("extra", []):
        folder = Path(entry["folder"])
        present = [f for f in entry["files"] if (folder / f).is_file()]
        if not present:
            raise HorsesHumansError(
                f"--extra-data {folder}: none of the {len(entry['files'])} files {run.path.name} "
                "was trained on is there: put the folder back."
            )
        changed = sum(d != entry["files"][f] for f, d in zip(present, file_digests(folder, present)))
        if changed or len(present) < len(entry["files"]):
            log(
                f"warning: {folder}: {changed} changed, {len(entry['files']) - len(present)} missing since "
                f"{run.path.name} was trained"
            )
        labels = [run.class_names.index(Path(f).parts[0]) for f in present]
        splits.append(
            load_files(
                FileList(f"extra-{folder.name}", folder, present, labels),
                run.class_names,
                run.image_size,
                cache_dir,
                log,
                run.resize,
            )
        )
    return splits


def uses_record(run: Run, root: Path, log) -> bool:
    """Whether the run's recorded files apply to root: it has a record and root holds the same layout."""
    if not run.data.get("sides"):
        return False
    layout = detect_layout(root)
    if layout != run.data["layout"]:
        log(
            f"warning: {root} holds a {layout} data set, {run.path.name} was trained on a {run.data['layout']} one: "
            f"using {root}'s own split"
        )
        return False
    return True


def found_side(run: Run, side: str, root: Path) -> FileList:
    """A side of the data set in root as found now (the run's --val-split and seed split class folders alone)."""
    dataset = find_dataset(root, run.config.val_split, run.config.seed)
    if dataset.class_names != run.class_names:
        raise HorsesHumansError(f"{root}: classes {dataset.class_names} differ from the run's {run.class_names}.")
    if side not in dataset.sides:
        raise no_side(root, side, dataset.layout)
    return dataset.sides[side]


def no_side(root: Path, side: str, layout: str) -> HorsesHumansError:
    """The error for a side the data set does not have (only test can be missing)."""
    return HorsesHumansError(
        f"{root}: this {layout} data set has no {side} split (only DIR/train/ + DIR/val/ + "
        f"DIR/test/ has one): evaluate --split validation, or --data DIR for any folder of "
        "class folders."
    )


def recorded_side(run: Run, side: str, root: Path, log) -> FileList:
    """The run's recorded files of one side that are still in root, labelled by class folder; one warning line
    when files changed, went missing, or were added since training (added ones are not used)."""
    if side not in run.data["sides"]:
        raise no_side(root, side, run.data["layout"])
    entry = run.data["sides"][side]
    base = root / entry["folder"]
    present = [f for f in entry["files"] if (base / f).is_file()]
    if not present:
        raise HorsesHumansError(
            f"{base}: none of the {len(entry['files'])} {side} files {run.path.name} recorded is "
            "there: give its data folder with --data-dir."
        )
    changes = describe_changes(run, entry, base, present)
    if changes:
        log(
            f"warning: {base}: the {side} files changed since {run.path.name} was trained ({changes}): using the "
            f"{len(present)} recorded files still there"
        )
    labels = [run.class_names.index(Path(f).parts[0]) for f in present]
    return FileList(entry["folder"] or side, base, present, labels)


def describe_changes(run: Run, entry: dict, base: Path, present: list[str]) -> str:
    """'2 changed, 1 missing, 3 added (not used)' for one recorded side, or '' when nothing changed."""
    digests = dict(zip(present, file_digests(base, present)))
    recorded_here = {
        f for other in run.data["sides"].values() if other["folder"] == entry["folder"] for f in other["files"]
    }
    now = {
        str(p.relative_to(base))
        for name in run.class_names
        if (base / name).is_dir()
        for p in visible_files(base / name)
    }
    counts = {
        "changed": sum(digests[f] != entry["files"][f] for f in present),
        "missing": len(entry["files"]) - len(present),
        "added (not used)": len(now - recorded_here),
    }
    return ", ".join(f"{n} {what}" for what, n in counts.items() if n)
