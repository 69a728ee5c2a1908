"""`data check`: counts, sizes, colour modes, unreadable files, duplicates and leakage, class balance."""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from .config import HorsesHumansError
from .data import SPLITS, list_files
from .images import ImageError, open_image


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
        names, files, labels = list_files(split_dir)
    except HorsesHumansError as exc:
        return {"problem": str(exc)}
    with ThreadPoolExecutor() as pool:
        infos = list(pool.map(lambda f: inspect_file(split_dir / f), files))
    counts = Counter(names[l] for l in labels)
    readable = Counter(names[l] for l, i in zip(labels, infos) if "error" not in i)
    return {
        "classes": names, "counts": dict(counts), "readable": dict(readable),
        "sizes": dict(Counter(i["size"] for i in infos if "size" in i)),
        "modes": dict(Counter(i["mode"] for i in infos if "mode" in i)),
        "unreadable": [i["error"] for i in infos if "error" in i],
        "hashes": {f: (names[l], i["sha256"]) for f, l, i in zip(files, labels, infos)},
    }


def duplicate_groups(entries: list[tuple[str, str]]) -> list[list[str]]:
    """Groups (of 2+) of names sharing a hash, from (name, sha256) pairs."""
    by_hash = defaultdict(list)
    for name, digest in entries:
        by_hash[digest].append(name)
    return [sorted(g) for g in by_hash.values() if len(g) > 1]


def check_dataset(data_dir: Path) -> dict:
    """The whole report; `problems` lists what makes training impossible, `warnings` the rest."""
    report = {"data_dir": str(data_dir), "splits": {}, "problems": [], "warnings": []}
    for split in SPLITS:
        info = check_split(Path(data_dir) / split)
        report["splits"][split] = info
        if "problem" in info:
            report["problems"].append(info["problem"])
            continue
        for name in info["classes"]:
            if info["readable"].get(name, 0) == 0:
                report["problems"].append(f"{split}/{name}: no readable image.")
        report["warnings"] += [f"unreadable: {e}" for e in info["unreadable"]]
        groups = duplicate_groups([(f"{split}/{f}", h) for f, (_, h) in info["hashes"].items()])
        info["duplicates"] = groups
        report["warnings"] += [f"duplicate files inside {split}: {', '.join(g)}" for g in groups]
        counts = list(info["counts"].values())
        if max(counts) > 1.5 * min(counts):
            report["warnings"].append(f"{split}: classes are imbalanced {info['counts']}.")
    add_cross_split(report)
    return report


def add_cross_split(report: dict) -> None:
    """Leakage: identical files in both training and validation; differing class names."""
    splits = [report["splits"][s] for s in SPLITS if "hashes" in report["splits"][s]]
    if len(splits) < 2:
        return
    train, val = splits
    if train["classes"] != val["classes"]:
        report["problems"].append(f"class folders differ between splits: {train['classes']} vs {val['classes']}.")
    val_hashes = defaultdict(list)
    for f, (_, h) in val["hashes"].items():
        val_hashes[h].append(f)
    leaks = [(f, val_hashes[h]) for f, (_, h) in train["hashes"].items() if h in val_hashes]
    report["leakage"] = [{"train": f, "validation": v} for f, v in leaks]
    if leaks:
        report["warnings"].append(f"{len(leaks)} training files also appear in validation (leakage), e.g. {leaks[0][0]}.")


def format_report(report: dict) -> str:
    """A readable table of the report."""
    lines = [f"data set: {report['data_dir']}", "", f"{'split':<28}{'class':<10}{'files':>7}{'readable':>10}{'share':>8}"]
    for split, info in report["splits"].items():
        if "problem" in info:
            lines.append(f"{split:<28}{'-':<10}  {info['problem']}")
            continue
        total = sum(info["counts"].values())
        for name in info["classes"]:
            n = info["counts"].get(name, 0)
            lines.append(f"{split:<28}{name:<10}{n:>7}{info['readable'].get(name, 0):>10}{n / total:>8.1%}")
        lines.append(f"{'':<28}sizes: {fmt_counter(info['sizes'])}; modes: {fmt_counter(info['modes'])}")
        lines.append(f"{'':<28}unreadable: {len(info['unreadable'])}; duplicate groups: {len(info.get('duplicates', []))}")
    if "leakage" in report:
        lines.append(f"\nidentical files in training and validation (leakage): {len(report['leakage'])}")
    for w in report["warnings"]:
        lines.append(f"warning: {w}")
    for p in report["problems"]:
        lines.append(f"problem: {p}")
    lines.append("\nresult: " + ("NOT usable for training" if report["problems"] else "usable for training"))
    return "\n".join(lines)


def fmt_counter(counter: dict) -> str:
    """'300x300: 1027, 150x150: 2' ordered by count."""
    return ", ".join(f"{k}: {v}" for k, v in sorted(counter.items(), key=lambda kv: -kv[1])) or "none"
