"""`data check`: layout, per-class counts per split, sizes, colour modes, unreadable files, duplicates (also across
classes) and leakage, class balance, and the folder train will treat as "none of these" (the reject class)."""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ..config import DEFAULT_REJECT_CLASS, HorsesHumansError
from .files import shown, unrecordable_folder
from .images import ImageError, open_image
from .layouts import (
    CLASS_FOLDERS,
    LAYOUTS,
    VAL_FOLDERS,
    VALIDATION,
    detect_layout,
    find_dataset,
    read_class_folders,
    split_folders,
)
from .reject import reject_class_of, suggested_reject_class, suggestion_line

ALL = "all"  # the report's name for class folders alone: one "split" holding every image
IMBALANCE = 1.5  # largest / smallest class above this is worth a warning


def inspect_file(path: Path) -> dict:
    """sha256, size and mode of one file, or the reason it cannot be read."""
    blob = path.read_bytes()
    info = {"sha256": hashlib.sha256(blob).hexdigest()}
    try:
        im = open_image(blob, name=str(path))
        info.update(size=f"{im.width}x{im.height}", mode=im.mode)
    except ImageError as exc:
        info["error"] = str(exc)
    return info


def check_split(split_dir: Path) -> dict:
    """Per-split facts; a split that cannot be listed records its problem instead."""
    try:
        found = read_class_folders(split_dir)
    except HorsesHumansError as exc:
        return {"problem": str(exc)}
    names, files, labels = found.names, found.files, found.labels(found.names)
    with ThreadPoolExecutor() as pool:
        infos = list(pool.map(lambda f: inspect_file(split_dir / f), files))
    counts = Counter(names[label] for label in labels)
    readable = Counter(names[label] for label, i in zip(labels, infos) if "error" not in i)
    return {
        "classes": names,
        "counts": dict(counts),
        "readable": dict(readable),
        "sizes": dict(Counter(i["size"] for i in infos if "size" in i)),
        "modes": dict(Counter(i["mode"] for i in infos if "mode" in i)),
        "unreadable": [i["error"] for i in infos if "error" in i] + [item["reason"] for item in found.skipped],
        "hashes": {f: (names[label], i["sha256"]) for f, label, i in zip(files, labels, infos)},
    }


def duplicate_groups(entries: list[tuple[str, str]]) -> list[list[str]]:
    """Groups (of 2+) of names sharing a hash, from (name, sha256) pairs."""
    by_hash = defaultdict(list)
    for name, digest in entries:
        by_hash[digest].append(name)
    return [sorted(g) for g in by_hash.values() if len(g) > 1]


def check_dataset(
    data_dir: Path, val_split: float = 0.2, seed: int = 0, reject_class: str = DEFAULT_REJECT_CLASS
) -> dict:
    """The whole report; `problems` lists what makes training impossible, `warnings` the rest (reject_class: the
    --reject-class train will be given)."""
    report = {"data_dir": str(data_dir), "layout": None, "splits": {}, "problems": [], "warnings": []}
    unrecordable = unrecordable_folder(data_dir)
    if unrecordable:  # train refuses such a folder: say it here, where the rest of the check still helps
        report["problems"].append(unrecordable)
    try:
        report["layout"] = detect_layout(Path(data_dir))
        folders = check_folders(Path(data_dir), report["layout"])
    except HorsesHumansError as exc:
        report["problems"].append(str(exc))
        return report
    for split, folder in folders.items():
        check_one_split(report, split, folder)
    add_dataset_problems(report, Path(data_dir), val_split, seed)
    add_cross_split(report, folders)
    add_cross_class(report)
    add_reject_class(report, Path(data_dir), reject_class)
    return report


def add_reject_class(report: dict, data_dir: Path, reject_class: str) -> None:
    """report["reject_class"]: the class folder train will treat as "none of these" (None when there is none); a
    missing --reject-class folder is a problem, a folder named like one (Other, Background ...) a suggestion."""
    names = sorted({name for info in report["splits"].values() for name in info.get("classes", [])})
    if not names:
        return
    try:
        report["reject_class"] = reject_class_of(reject_class, names, data_dir)
    except HorsesHumansError as exc:
        report["reject_class"] = None
        report["problems"].append(str(exc))
        return
    hint = suggested_reject_class(names) if report["reject_class"] is None else None
    if hint:
        report["suggestions"] = [suggestion_line(hint)]


def check_folders(data_dir: Path, layout: str) -> dict[str, Path]:
    """{split as the report names it: its folder}: the split folders, or the data folder itself ("all") for class
    folders alone."""
    if layout == CLASS_FOLDERS:
        return {ALL: data_dir}
    return {folder: data_dir / folder for folder in split_folders(data_dir, layout).values()}


def check_one_split(report: dict, split: str, folder: Path) -> None:
    """One split's facts into the report, with its problems and warnings."""
    info = check_split(folder)
    report["splits"][split] = info
    if "problem" in info:
        report["problems"].append(info["problem"])
        return
    for name in info["classes"]:
        if info["readable"].get(name, 0) == 0:
            report["problems"].append(f"{split}/{name}: no readable image.")
    report["warnings"] += [f"unreadable: {e}" for e in info["unreadable"]]
    groups = duplicate_groups([(f"{split}/{f}", h) for f, (_, h) in info["hashes"].items()])
    info["duplicates"] = groups
    report["warnings"] += [f"duplicate files inside {split}: {', '.join(g)}" for g in groups]
    counts = list(info["counts"].values())
    if max(counts) > IMBALANCE * min(counts):
        report["warnings"].append(
            f"{split}: classes are imbalanced {info['counts']} (largest / smallest "
            f"{max(counts) / min(counts):.1f}): consider `horses-humans train --class-weight "
            "balanced`."
        )


def add_dataset_problems(report: dict, data_dir: Path, val_split: float, seed: int) -> None:
    """What finding the data set as training does reports (classes differing between splits, a class too small to
    split, ...), unless a split already said it; for class folders, the validation split train would make."""
    try:
        dataset = find_dataset(data_dir, val_split, seed)
    except HorsesHumansError as exc:
        if str(exc) not in report["problems"]:
            report["problems"].append(str(exc))
        return
    if dataset.layout == CLASS_FOLDERS:
        found = dataset.sides["validation"]
        counts = Counter(dataset.class_names[label] for label in found.labels)
        report["val_split"] = {
            "fraction": val_split,
            "seed": seed,
            "counts": {name: counts.get(name, 0) for name in dataset.class_names},
        }


def add_cross_split(report: dict, folders: dict[str, Path]) -> None:
    """Leakage: identical files in the training split and a held-out one (validation, test)."""
    checked = [s for s in folders if "hashes" in report["splits"][s]]
    if len(folders) < 2 or len(checked) < len(folders):
        return
    train, *held_out = checked
    report["leakage"] = []
    for split in held_out:
        held = defaultdict(list)
        for f, (_, h) in report["splits"][split]["hashes"].items():
            held[h].append(f)
        name = "validation" if split in (VALIDATION, *VAL_FOLDERS) else split
        leaks = [(f, held[h]) for f, (_, h) in report["splits"][train]["hashes"].items() if h in held]
        report["leakage"] += [{"train": f, name: v} for f, v in leaks]
        if leaks:
            report["warnings"].append(
                f"{len(leaks)} training files also appear in {split} (leakage), e.g. {leaks[0][0]}."
            )


def add_cross_class(report: dict) -> None:
    """Exact duplicates labelled as two classes (the same bytes in two class folders, in any splits)."""
    entries = [
        (f"{split}/{f}" if split != ALL else f, cls, h)
        for split, info in report["splits"].items()
        for f, (cls, h) in info.get("hashes", {}).items()
    ]
    by_hash = defaultdict(list)
    for name, cls, digest in entries:
        by_hash[digest].append((name, cls))
    groups = [sorted(g) for g in by_hash.values() if len({cls for _, cls in g}) > 1]
    report["cross_class_duplicates"] = [[name for name, _ in g] for g in groups]
    for g in groups:
        report["warnings"].append(
            "the same image is labelled as "
            + " and ".join(f"{cls} ({name})" for name, cls in g)
            + ": keep it in one class folder only."
        )


def format_report(report: dict) -> str:
    """A readable table of the report."""
    layout = report.get("layout")
    width = max([10] + [len(c) + 2 for info in report["splits"].values() for c in info.get("classes", [])])
    lines = [f"data set: {report['data_dir']}"]
    if layout:
        lines.append(f"layout: {layout} ({LAYOUTS[layout]})")
    lines += ["", f"{'split':<28}{'class':<{width}}{'files':>7}{'readable':>10}{'share':>8}"]
    for split, info in report["splits"].items():
        if "problem" in info:
            lines.append(f"{split:<28}{'-':<{width}}  {info['problem']}")
            continue
        total = sum(info["counts"].values())
        for name in info["classes"]:
            n = info["counts"].get(name, 0)
            lines.append(f"{split:<28}{name:<{width}}{n:>7}{info['readable'].get(name, 0):>10}{n / total:>8.1%}")
        lines.append(f"{'':<28}sizes: {fmt_counter(info['sizes'])}; modes: {fmt_counter(info['modes'])}")
        lines.append(
            f"{'':<28}unreadable: {len(info['unreadable'])}; duplicate groups: {len(info.get('duplicates', []))}"
        )
    if "val_split" in report:
        made = report["val_split"]
        lines.append(
            f"\nvalidation split that train makes (--val-split {made['fraction']:g}, seed {made['seed']}): "
            + ", ".join(f"{name} {n}" for name, n in made["counts"].items())
        )
    if "leakage" in report:
        lines.append(f"\nidentical files in training and held-out splits (leakage): {len(report['leakage'])}")
    if report.get("cross_class_duplicates") is not None:
        lines.append(f"identical files in two classes: {len(report['cross_class_duplicates'])}")
    if report.get("reject_class"):
        lines.append(f"none of these: {report['reject_class']}/ (its images teach the unsure answer; never a label)")
    for s in report.get("suggestions", []):
        lines.append(f"suggestion: {s}")
    for w in report["warnings"]:
        lines.append(f"warning: {w}")
    for p in report["problems"]:
        lines.append(f"problem: {p}")
    lines.append("\nresult: " + ("NOT usable for training" if report["problems"] else "usable for training"))
    return "\n".join(shown(line) for line in "\n".join(lines).split("\n"))  # names may hold escapes or non-UTF-8


def fmt_counter(counter: dict, most: int = 8) -> str:
    """'300x300: 1027, 150x150: 2' ordered by count; past `most` entries (photos come in every size) the rest are
    counted, not listed (--json has them all)."""
    ranked = sorted(counter.items(), key=lambda kv: -kv[1])
    text = ", ".join(f"{k}: {v}" for k, v in ranked[:most]) or "none"
    rest = ranked[most:]
    return text + (f", and {len(rest)} more ({sum(v for _, v in rest)} files)" if rest else "")
