"""Markdown tables from finished runs (README's results table is made by `horses-humans runs`)."""

from __future__ import annotations

from collections import defaultdict

import numpy as np


def fmt_mean_std(values: list[float], scale: float = 100.0, digits: int = 1) -> str:
    """'85.2 ± 1.3' (mean ± sample std, scaled); a single value has no ±."""
    values = [v * scale for v in values if v is not None]
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{np.mean(values):.{digits}f} ± {np.std(values, ddof=1):.{digits}f}"


def group_key(run) -> tuple:
    """Runs that differ only by seed share a row."""
    c = run.config
    return (c.recipe, c.image_size, c.epochs, c.dropout, c.l2, c.early_stopping, c.reduce_lr, c.learning_rate, c.precision, c.augmentation if c.recipe == "augmented" or c.augment else "")


def options_text(config) -> str:
    """The non-default options of a config, short."""
    augmented = config.recipe == "augmented" or config.augment
    parts = [f"{config.augmentation} augmentation" if augmented and config.augmentation != "reference" else "",
             f"dropout {config.dropout}" if config.dropout else "", f"L2 {config.l2}" if config.l2 else "",
             "early stop" if config.early_stopping else "", "LR on plateau" if config.reduce_lr else ""]
    return ", ".join(p for p in parts if p) or "-"


def results_table(runs: list) -> str:
    """One row per configuration: mean ± std over seeds of final/best validation accuracy and more."""
    groups = defaultdict(list)
    for run in runs:
        groups[group_key(run)].append(run)
    lines = ["| recipe | size | epochs | options | seeds | train acc % | val acc % (final) | val acc % (best epoch) | s/epoch | precision |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for key, members in groups.items():
        m = [r.metrics for r in members]
        seeds = ",".join(str(r.config.seed) for r in members)
        secs = fmt_mean_std([x.get("mean_epoch_seconds") for x in m], scale=1.0, digits=2)
        precision = ",".join(sorted({r.environment.get("precision", "?") for r in members}))
        lines.append(f"| {key[0]} | {key[1]} | {key[2]} | {options_text(members[0].config)} | {seeds} | "
                     f"{fmt_mean_std([x.get('train_accuracy') for x in m])} | {fmt_mean_std([x.get('val_accuracy') for x in m])} | "
                     f"{fmt_mean_std([x.get('best_val_accuracy') for x in m])} | {secs} | {precision} |")
    if not groups:
        lines.append("| (no finished runs) | | | | | | | | | |")
    return "\n".join(lines)

