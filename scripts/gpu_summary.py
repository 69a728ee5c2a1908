"""The summary of one `scripts/gpu_bench.sh` folder as Markdown: each step's numbers on the GPU beside the CPU.

python scripts/gpu_summary.py gpu-results/STAMP > summary.md
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

PASSES = ("device", "cpu")


def training_rows(out: Path) -> list[str]:
    """bench_training's medians per pipeline and pass, with the speed-up over the reference in the same pass."""
    rows = ["| pipeline | pass | s/epoch (median) | x reference |", "|---|---|---|---|"]
    for name in PASSES:
        path = out / f"training-{name}.json"
        if not path.is_file():
            continue
        results = json.loads(path.read_text())
        ref = results[0]["median_seconds"]
        rows += [
            f"| {r['name']} | {name} | {r['median_seconds']:.2f} | {ref / r['median_seconds']:.2f}x |" for r in results
        ]
    return rows


def fine_tune_rows(out: Path) -> list[str]:
    """Seconds per epoch of the MobileNetV2 head and fine-tuning run, per pass (metrics.json)."""
    rows = ["| pass | epoch seconds (head, then fine-tuning) |", "|---|---|"]
    for name in PASSES:
        path = out / f"runs-{name}" / "fine-tune" / "metrics.json"
        if path.is_file():
            seconds = json.loads(path.read_text())["epoch_seconds"]
            rows.append(f"| {name} | {' '.join(f'{s:.1f}' for s in seconds)} |")
    return rows


def tables(out: Path, step: str) -> list[str]:
    """The Markdown table lines a bench printed, per pass."""
    lines = []
    for name in PASSES:
        path = out / f"{step}-{name}.txt"
        if path.is_file():
            lines += [f"{name}:", ""] + [line for line in path.read_text().splitlines() if line.startswith("|")] + [""]
    return lines


def text(path: Path) -> str:
    return path.read_text().strip() if path.is_file() else "(none)"


def last_line(path: Path) -> str:
    """A step's verdict line (TensorFlow's start-up chatter before it left out)."""
    lines = text(path).splitlines()
    return f"{path.stem.split('-')[-1]}: {lines[-1] if lines else '(nothing)'}"


def summary(out: Path) -> str:
    """The whole page: devices, status of each step, then each step's numbers."""
    devices = [last_line(out / f"devices-{name}.txt") for name in PASSES if (out / f"devices-{name}.txt").is_file()]
    parts = [
        f"# GPU measurements ({out.name})",
        "",
        f"nvidia-smi: {text(out / 'nvidia-smi.txt')}",
        "",
        *[f"- {line}" for line in devices],
        "",
        "Steps:",
        "",
        *[f"- {line}" for line in text(out / "status.txt").splitlines()],
        "",
        "## Baseline epoch (bench/bench_training.py)",
        "",
        *training_rows(out),
        "",
        "## MobileNetV2 head (bench/bench_transfer.py)",
        "",
        *tables(out, "transfer"),
        "## MobileNetV2 head and fine-tuning (horses-humans train)",
        "",
        *fine_tune_rows(out),
        "",
        "## Predict, phone JPEGs (bench/bench_predict.py --corpus phone)",
        "",
        *tables(out, "predict"),
    ]
    return "\n".join(parts)


if __name__ == "__main__":
    print(summary(Path(sys.argv[1])))
