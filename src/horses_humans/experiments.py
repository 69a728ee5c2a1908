"""The reference project's experiments as data, run over several seeds, resumably, into one results document.

Each experiment is a name and the TrainConfig settings that make it. A run is found again by its resolved
config (config.json of the runs under the experiments' runs directory), so re-running trains only what is
missing: finished runs are kept, interrupted ones (no model.keras) are trained again.
"""

from __future__ import annotations

import json
import platform
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .config import HorsesHumansError, TrainConfig, check_positive, resolve_runs_dir
from .atomic import write_text_atomic
from .recipes import get_recipe, resolve
from .runs import CONFIG_FILE, MODEL_FILE, Run, load_run
from .tables import fmt_mean_std, markdown_table, metric_cells, options_text
from .weights import resolve_weights

DEFAULT_OUT = Path("docs/reproduce.md")
RUNS_SUBDIR = "reproduce"  # under the runs directory ($HORSES_HUMANS_RUNS, else ./runs)


@dataclass(frozen=True)
class Claim:
    """What the reference says an experiment reaches (None: it says nothing)."""

    train_accuracy: float | None = None
    val_accuracy: float | None = None
    epoch_seconds: float | None = None  # on the reference's (unstated) hardware
    parameters: str | None = None


@dataclass(frozen=True)
class Experiment:
    """A named experiment: the TrainConfig settings that make it, and the reference's claim about it."""

    name: str
    settings: dict  # TrainConfig fields; they win over the command line's --epochs/--image-size/...
    claim: Claim = field(default_factory=Claim)


EXPERIMENTS = [
    Experiment("baseline", {"recipe": "baseline"}, Claim(1.0, 0.856, 7, "9.5M")),
    Experiment("augmented", {"recipe": "augmented", "augmentation": "reference"}, Claim(0.943, 0.918, 9)),
    Experiment("baseline_300px", {"recipe": "baseline", "image_size": 300}),
    Experiment("baseline_dropout_l2", {"recipe": "baseline", "dropout": 0.5, "l2": 1e-3}),
    Experiment("baseline_early_stopping", {"recipe": "baseline", "early_stopping": True}),
    Experiment("baseline_reduce_lr", {"recipe": "baseline", "reduce_lr": True}),
    Experiment("mobilenet_v2", {"recipe": "mobilenet_v2"}),
    Experiment("inception_v3", {"recipe": "inception_v3"}, Claim(val_accuracy=0.985, parameters="38M trainable")),
]


@dataclass
class PlannedRun:
    """One (experiment, seed): its resolved config and where it stands."""

    experiment: Experiment
    seed: int
    config: TrainConfig
    run_dir: Path | None = None  # a finished run with this config
    interrupted: Path | None = None  # an unfinished one (no model.keras)
    skipped: str | None = None  # why it cannot run (e.g. its pretrained weights are not available)

    def status(self) -> str:
        """'finished DIR', 'skipped: REASON', 'retry (interrupted: DIR)' or 'train'."""
        if self.run_dir:
            return f"finished {self.run_dir}"
        if self.skipped:
            return f"skipped: {self.skipped}"
        return f"retry (interrupted: {self.interrupted})" if self.interrupted else "train"


def select_experiments(only: str | None = None) -> list[Experiment]:
    """All experiments, or those named in a comma-separated list (an unknown name is an error)."""
    if not only:
        return list(EXPERIMENTS)
    names = [n.strip() for n in only.split(",") if n.strip()]
    known = {e.name: e for e in EXPERIMENTS}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise HorsesHumansError(f"--only {', '.join(unknown)}: no such experiment; choose from {', '.join(known)}.")
    return [known[n] for n in names]


def reproduce_runs_dir(runs_dir: str | Path | None = None) -> Path:
    """--runs-dir, else the runs directory's reproduce/ folder."""
    return Path(runs_dir).expanduser() if runs_dir else resolve_runs_dir() / RUNS_SUBDIR


def experiment_config(experiment: Experiment, seed: int, defaults: dict) -> TrainConfig:
    """The resolved config of one run: command-line defaults, then the experiment's settings, then the seed."""
    return resolve(TrainConfig(**{**defaults, **experiment.settings, "seed": seed}))


def weights_problem(config: TrainConfig) -> str | None:
    """Why a transfer recipe's pretrained weights are unavailable (None: they resolve, or none are needed)."""
    if not get_recipe(config.recipe).transfer:
        return None
    try:
        resolve_weights(config.recipe, config.weights, config.alpha)
    except HorsesHumansError as exc:
        return str(exc)
    return None


def index_runs(runs_dir: Path) -> tuple[dict[TrainConfig, Path], dict[TrainConfig, Path]]:
    """(finished, unfinished) run directories under runs_dir, keyed by their config; first by name wins."""
    finished, unfinished = {}, {}
    for path in sorted(Path(runs_dir).glob(f"*/{CONFIG_FILE}")):
        try:
            config = TrainConfig.from_dict(json.loads(path.read_text()))
        except (OSError, ValueError, TypeError, HorsesHumansError):  # unreadable, or not one of our configs
            continue
        target = finished if (path.parent / MODEL_FILE).exists() else unfinished
        target.setdefault(config, path.parent)
    return finished, unfinished


def plan(experiments: Sequence[Experiment], seeds: int, defaults: dict, runs_dir: Path) -> list[PlannedRun]:
    """Every (experiment, seed) in order, with its finished or interrupted run if there is one."""
    check_positive("seeds", seeds)
    planned = []
    for experiment in experiments:
        configs = [experiment_config(experiment, seed, defaults) for seed in range(seeds)]
        problem = weights_problem(configs[0])  # the same for every seed
        planned += [PlannedRun(experiment, c.seed, c, skipped=problem) for c in configs]
    return locate_runs(planned, runs_dir)


def locate_runs(planned: list[PlannedRun], runs_dir: Path) -> list[PlannedRun]:
    """Attach to each planned run the finished (or else the interrupted) run directory with its config."""
    finished, unfinished = index_runs(runs_dir)
    for run in planned:
        run.run_dir, run.interrupted = finished.get(run.config), unfinished.get(run.config)
    return planned


def progress_line(i: int, n: int, run: PlannedRun) -> str:
    """'[3/24] augmented seed 1: train'."""
    return f"[{i}/{n}] {run.experiment.name} seed {run.seed}: {run.status()}"


def reproduce(experiments: Sequence[Experiment], seeds: int, defaults: dict, runs_dir: Path, data_dir: Path,
              cache_dir: Path | None = None, out: Path = DEFAULT_OUT, dry_run: bool = False,
              log: Callable[[str], None] = print) -> Path | None:
    """Train every planned run that is not finished yet, then (re)write the results document from the finished
    ones, also when interrupted. With dry_run, only print the plan. Returns the document's path."""
    planned = plan(experiments, seeds, defaults, runs_dir)
    if dry_run:
        for i, run in enumerate(planned, 1):
            log(progress_line(i, len(planned), run))
        log(f"dry run, nothing trained: {plan_summary(planned)}.")
        return None
    try:
        train_missing(planned, runs_dir, data_dir, cache_dir, log)
    finally:
        write_text_atomic(out, render_document(locate_runs(planned, runs_dir), command_text(planned, seeds, defaults, runs_dir)))
        log(f"wrote {out}")
    return Path(out)


def plan_summary(planned: list[PlannedRun]) -> str:
    """'24 runs: 3 finished, 18 to train (1 interrupted), 3 skipped'."""
    finished = sum(1 for r in planned if r.run_dir)
    skipped = sum(1 for r in planned if r.skipped and not r.run_dir)
    retries = sum(1 for r in planned if r.interrupted and not r.run_dir and not r.skipped)
    todo = len(planned) - finished - skipped
    return f"{len(planned)} runs: {finished} finished, {todo} to train ({retries} interrupted), {skipped} skipped"


def train_missing(planned: list[PlannedRun], runs_dir: Path, data_dir: Path, cache_dir: Path | None, log) -> None:
    """Train the planned runs that are neither finished nor skipped, each through training.train."""
    from . import training

    trained: dict[TrainConfig, Path] = {}  # two experiments may resolve to the same config: train it once
    for i, run in enumerate(planned, 1):
        run.run_dir = run.run_dir or trained.get(run.config)
        log(progress_line(i, len(planned), run))
        if not run.run_dir and not run.skipped:
            trained[run.config] = training.train(run.config, data_dir, runs_dir, cache_dir, log=log)


# ---------------------------------------------------------------- the document

HEADER = ["experiment", "settings", "runs", "train acc %", "ref. train %", "val acc % (final)", "val acc % (best epoch)",
          "ref. val %", "gap (points)", "s/epoch", "ref. s/epoch", "parameters", "ref. parameters"]


def settings_text(config: TrainConfig) -> str:
    """'baseline 150 px, 15 epochs, dropout 0.5, L2 0.001'."""
    options = options_text(config)
    epochs = f"{config.epochs} epoch" + ("s" if config.epochs != 1 else "")
    return f"{config.recipe} {config.image_size} px, {epochs}" + ("" if options == "-" else f", {options}")


def claim_cells(claim: Claim) -> dict[str, str]:
    """The reference's numbers as table cells ('-' where it claims nothing)."""
    percent = lambda v: "-" if v is None else f"{100 * v:.1f}"  # noqa: E731
    return {"train": percent(claim.train_accuracy), "val": percent(claim.val_accuracy),
            "epoch_seconds": "-" if claim.epoch_seconds is None else f"~{claim.epoch_seconds:g}",
            "parameters": claim.parameters or "-"}


def summary_row(runs: list[PlannedRun], loaded: dict[Path, Run]) -> list[str]:
    """One experiment's row: mean ± std over its finished runs next to the reference's claims."""
    first, claim = runs[0], claim_cells(runs[0].experiment.claim)
    done = [loaded[r.run_dir] for r in runs if r.run_dir]
    missing = [str(r.seed) for r in runs if not r.run_dir]
    count = f"{len(done)}/{len(runs)}"
    if missing:
        count += ", skipped (see below)" if first.skipped else f", missing seed{'s' * (len(missing) > 1)} {', '.join(missing)}"
    ours = metric_cells(done)  # '-' everywhere when none is finished
    return [first.experiment.name, settings_text(first.config), count, ours["train"], claim["train"], ours["val"],
            ours["best"], claim["val"], ours["gap"], ours["epoch_seconds"], claim["epoch_seconds"], ours["parameters"],
            claim["parameters"]]


def per_run_rows(planned: list[PlannedRun], loaded: dict[Path, Run]) -> list[list[str]]:
    """Every (experiment, seed): its run directory and final/best validation accuracy, or why there is none."""
    rows = []
    for run in planned:
        metrics = loaded[run.run_dir].metrics if run.run_dir else {}
        where = run.run_dir.name if run.run_dir else ("skipped" if run.skipped else "missing")
        rows.append([run.experiment.name, str(run.seed), where, fmt_mean_std([metrics.get("val_accuracy")]),
                     fmt_mean_std([metrics.get("best_val_accuracy")])])
    return rows


def command_text(planned: list[PlannedRun], seeds: int, defaults: dict, runs_dir: Path) -> str:
    """The command line that regenerates the document with these settings."""
    names = list(dict.fromkeys(r.experiment.name for r in planned))
    only = "" if names == [e.name for e in EXPERIMENTS] else f" --only {','.join(names)}"
    flags = "".join(f" --{k.replace('_', '-')} {v}" for k, v in defaults.items())
    return f"horses-humans experiment reproduce --seeds {seeds}{only}{flags} --runs-dir {runs_dir}"


def render_document(planned: list[PlannedRun], command: str) -> str:
    """The results document (Markdown) from whatever runs are finished; missing and skipped ones are marked."""
    by_name: dict[str, list[PlannedRun]] = {}
    for run in planned:
        by_name.setdefault(run.experiment.name, []).append(run)
    loaded = {r.run_dir: load_run(r.run_dir) for r in planned if r.run_dir}
    notes = "".join(f"- `{runs[0].experiment.name}` skipped: {runs[0].skipped}\n" for runs in by_name.values() if runs[0].skipped)
    env = next(iter(loaded.values())).environment if loaded else {}
    return (
        "# Reproducing the reference's experiments\n\n"
        f"Generated by `{command}` on {env.get('platform', platform.platform())}, "
        f"Keras {env.get('keras', '?')} / {env.get('backend', '?')} {env.get('backend_version', '?')}. "
        "Re-running the command trains only the runs that are missing and rewrites this file.\n\n"
        "Ours: mean ± sample standard deviation over seeds; 'final' is the last epoch, 'best epoch' the best "
        "validation accuracy of any epoch (selected on the validation set, so optimistic); the gap is final training "
        "minus final validation accuracy in percentage points. 'ref.': the number the reference project claims "
        "(one run each; its seconds per epoch come from different hardware).\n\n"
        f"{markdown_table(HEADER, [summary_row(runs, loaded) for runs in by_name.values()])}\n\n"
        + (f"{notes}\n" if notes else "")
        + "## Every run\n\n"
        f"{markdown_table(['experiment', 'seed', 'run', 'val acc % (final)', 'val acc % (best epoch)'], per_run_rows(planned, loaded))}\n"
    )
