"""Experiments as data, run over several seeds, resumably, into one results document.

An experiment is a name, the TrainConfig settings that make it, optionally its own number of seeds and the
reference's claim about it; a TOML file lists them (experiments.toml beside this module: the reference project's
experiments, the default; `--experiments FILE` reads another with the same schema). A run is found again by its
resolved config (config.json of the runs under the experiments' runs directory), so re-running trains only what is
missing: finished runs (metrics.json) are kept, interrupted ones continue from their last completed epoch
(training.train's resume).
"""

from __future__ import annotations

import dataclasses
import platform
import tomllib
import types
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..config import HorsesHumansError, TrainConfig, check_positive, resolve_runs_dir
from ..core.atomic import write_text_atomic
from ..core.tables import fmt_mean_std, markdown_table, metric_cells, options_text
from ..core.workspace import Workspace
from ..models.recipes import get_recipe, resolve
from ..models.weights import resolve_weights
from ..runs import schema as runschema
from ..runs.store import CONFIG_FILE, METRICS_FILE, Run, load_run, warn

EXPERIMENTS_FILE = Path(__file__).with_name("experiments.toml")  # the reference's experiments (package data)
DEFAULT_OUT = Path("docs/reproduce.md")
DEFAULT_TITLE = "Experiments"  # the document's heading when the file sets no `title`
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
    seeds: int | None = None  # seeds 0..seeds-1; None: the command line's --seeds


@dataclass(frozen=True)
class ExperimentFile:
    """A TOML file of experiments: where it is, the results document's title, the experiments in file order."""

    path: Path
    title: str
    experiments: tuple[Experiment, ...]

    def select(self, only: str | None = None) -> list[Experiment]:
        """All experiments, or those named in a comma-separated list (an unknown name is an error)."""
        if not only:
            return list(self.experiments)
        names = [n.strip() for n in only.split(",") if n.strip()]
        known = {e.name: e for e in self.experiments}
        unknown = [n for n in names if n not in known]
        if unknown:
            raise HorsesHumansError(
                f"--only {', '.join(unknown)}: no such experiment in {self.path}; choose from {', '.join(known)}."
            )
        return [known[n] for n in names]


# ---------------------------------------------------------------- reading a file of experiments

FILE_KEYS = ("title", "experiment")
EXPERIMENT_KEYS = ("name", "settings", "seeds", "claim")


def load_experiments(path: str | Path | None = None) -> ExperimentFile:
    """Read a TOML file of experiments (None: the shipped experiments.toml); any problem is one error naming the
    file."""
    path = Path(path).expanduser() if path else EXPERIMENTS_FILE
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise HorsesHumansError(
            f"{path}: cannot read it ({getattr(exc, 'strerror', None) or exc}); "
            "give --experiments an existing TOML file."
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise HorsesHumansError(f"{path}: not valid TOML ({exc}); fix the syntax.") from None
    try:
        return parse_experiments(data, path)
    except HorsesHumansError as exc:
        raise HorsesHumansError(f"{path}: {exc}") from None


def parse_experiments(data: dict, path: Path) -> ExperimentFile:
    """The parsed TOML as an ExperimentFile; errors say what is wrong (the caller adds the file name)."""
    check_keys(data, FILE_KEYS, "", "the file holds `title` and [[experiment]] tables")
    tables = data.get("experiment")
    if not isinstance(tables, list) or not tables or not all(isinstance(t, dict) for t in tables):
        raise HorsesHumansError(
            'no [[experiment]] tables; add at least one (name = "...", settings = { recipe = "..." }).'
        )
    title = data.get("title", DEFAULT_TITLE)
    if not isinstance(title, str):
        raise HorsesHumansError(f"title = {title!r} should be a string.")
    experiments = [parse_experiment(table, i) for i, table in enumerate(tables, 1)]
    names = [e.name for e in experiments]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise HorsesHumansError(f"experiment {twice[0]!r} appears more than once; give each a unique name.")
    return ExperimentFile(path, title, tuple(experiments))


def parse_experiment(table: dict, number: int) -> Experiment:
    """One [[experiment]] table -> an Experiment whose settings make a valid TrainConfig."""
    name = table.get("name")
    if not isinstance(name, str) or not name.strip():
        raise HorsesHumansError(f'experiment {number} has no name; add name = "...".')
    where = f"experiment {name!r}"
    check_keys(table, EXPERIMENT_KEYS, f"{where}: ", f"an experiment has {', '.join(EXPERIMENT_KEYS)}")
    settings = checked_fields(table.get("settings", {}), TrainConfig, f"{where}: settings", exclude=("seed",))
    seeds = table.get("seeds")
    if seeds is not None and (not is_integer(seeds) or seeds <= 0):
        raise HorsesHumansError(f"{where}: seeds = {seeds!r} should be a positive integer.")
    try:
        get_recipe(settings.get("recipe", TrainConfig.recipe))
        TrainConfig(**settings)
    except HorsesHumansError as exc:
        raise HorsesHumansError(f"{where}: {exc}") from None
    claim = Claim(**checked_fields(table.get("claim", {}), Claim, f"{where}: claim"))
    return Experiment(name, settings, claim, seeds)


def check_keys(table: dict, known: Sequence[str], where: str, hint: str) -> None:
    """An error naming the first key of table that is not known (where: '' or "experiment 'x': ")."""
    unknown = [k for k in table if k not in known]
    if unknown:
        raise HorsesHumansError(f"{where}unknown key {unknown[0]!r}; {hint}.")


def checked_fields(table, cls, where: str, exclude: Sequence[str] = ()) -> dict:
    """table's entries, each a field of the dataclass cls with a value of its type (TOML has no None)."""
    if not isinstance(table, dict):
        raise HorsesHumansError(f"{where} should be a table, e.g. {where.rsplit(': ', 1)[-1]} = {{ ... }}.")
    hints = typing.get_type_hints(cls)
    fields = [f.name for f in dataclasses.fields(cls) if f.name not in exclude]
    for key, value in table.items():
        if key not in fields:
            hint = " (seeds come from --seeds or `seeds = N`)" if key in exclude else ""
            raise HorsesHumansError(f"{where}: unknown field {key!r}{hint}; known: {', '.join(fields)}.")
        if not fits(value, hints[key]):
            raise HorsesHumansError(f"{where}: {key} = {value!r} should be {type_text(hints[key])}.")
    return dict(table)


def is_integer(value) -> bool:
    """An int that is not a bool (TOML's true is not 1)."""
    return isinstance(value, int) and not isinstance(value, bool)


def fits(value, hint) -> bool:
    """Whether a TOML value fits a field's type: int | None, float, bool, str, tuple[int, ...] (a TOML array)."""
    if isinstance(hint, types.UnionType):
        return any(fits(value, option) for option in typing.get_args(hint))
    if typing.get_origin(hint) is tuple:
        return isinstance(value, list) and all(fits(v, typing.get_args(hint)[0]) for v in value)
    if hint is int:
        return is_integer(value)
    if hint is float:
        return is_integer(value) or isinstance(value, float)
    return hint is not type(None) and isinstance(value, hint)


def type_text(hint) -> str:
    """'an integer', 'a number', 'true or false', 'a string' or 'a list of integers'."""
    if isinstance(hint, types.UnionType):
        return " or ".join(type_text(h) for h in typing.get_args(hint) if h is not type(None))
    if typing.get_origin(hint) is tuple:
        return "a list of integers"
    return {int: "an integer", float: "a number", bool: "true or false", str: "a string"}.get(hint, str(hint))


@dataclass
class PlannedRun:
    """One (experiment, seed): its resolved config and where it stands."""

    experiment: Experiment
    seed: int
    config: TrainConfig
    run_dir: Path | None = None  # a finished run with this config
    interrupted: Path | None = None  # an unfinished one (no metrics.json): resumed, not started over
    skipped: str | None = None  # why it cannot run (e.g. its pretrained weights are not available)

    def status(self) -> str:
        """'finished DIR', 'skipped: REASON', 'resume (interrupted: DIR)' or 'train'."""
        if self.run_dir:
            return f"finished {self.run_dir}"
        if self.skipped:
            return f"skipped: {self.skipped}"
        return f"resume (interrupted: {self.interrupted})" if self.interrupted else "train"


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
        resolve_weights(get_recipe(config.recipe).backbone.name, config.weights, config.alpha)
    except HorsesHumansError as exc:
        return str(exc)
    return None


def index_runs(runs_dir: Path, log=warn) -> tuple[dict[TrainConfig, Path], dict[TrainConfig, Path]]:
    """(finished, unfinished) run directories under runs_dir, keyed by their config (checked by its schema); first by
    name wins; a damaged config.json is one warning through `log`, and its run is neither kept nor resumed."""
    finished, unfinished = {}, {}
    for path in sorted(Path(runs_dir).glob(f"*/{CONFIG_FILE}")):
        try:
            config = runschema.check_json(path, runschema.CONFIG)
        except HorsesHumansError as exc:
            log(f"warning: skipped {path.parent.name}: {exc}")
            continue
        target = finished if (path.parent / METRICS_FILE).exists() else unfinished  # metrics.json is written last
        target.setdefault(config, path.parent)
    return finished, unfinished


def plan(experiments: Sequence[Experiment], seeds: int, defaults: dict, runs_dir: Path) -> list[PlannedRun]:
    """Every (experiment, seed) in order, with its finished or interrupted run if there is one; an experiment's
    own `seeds` wins over the seeds given here."""
    check_positive("seeds", seeds)
    planned = []
    for experiment in experiments:
        configs = [experiment_config(experiment, seed, defaults) for seed in range(experiment.seeds or seeds)]
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


@dataclass(frozen=True)
class Selection:
    """Which runs to plan: the experiments named in `only` (comma-separated; None: all), each over `seeds` seeds
    (unless it sets its own), with `defaults` (TrainConfig fields from the command line) under its settings."""

    seeds: int
    defaults: dict = field(default_factory=dict)
    only: str | None = None


def reproduce(
    file: ExperimentFile,
    selection: Selection,
    workspace: Workspace,
    out: Path = DEFAULT_OUT,
    dry_run: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> Path | None:
    """Train every run the selection plans from the file's experiments that is not finished yet (into the workspace's
    runs folder), then (re)write the results document from the finished ones, also when interrupted. With dry_run,
    only print the plan. `progress(done, total)` is told of each planned run before it starts, and at the end.
    Returns the document's path (None on a dry run)."""
    runs_dir, log = workspace.runs_dir, workspace.log
    planned = plan(file.select(selection.only), selection.seeds, selection.defaults, runs_dir)
    if dry_run:
        for i, run in enumerate(planned, 1):
            log(progress_line(i, len(planned), run))
        log(f"dry run, nothing trained: {plan_summary(planned)}.")
        return None
    try:
        train_missing(planned, workspace, progress)
    finally:
        command = command_text(planned, file, selection, runs_dir)
        write_text_atomic(out, render_document(locate_runs(planned, runs_dir), command, file.title))
        log(f"wrote {out}")
    return Path(out)


def plan_summary(planned: list[PlannedRun]) -> str:
    """'24 runs: 3 finished, 18 to train (1 interrupted), 3 skipped'."""
    finished = sum(1 for r in planned if r.run_dir)
    skipped = sum(1 for r in planned if r.skipped and not r.run_dir)
    retries = sum(1 for r in planned if r.interrupted and not r.run_dir and not r.skipped)
    todo = len(planned) - finished - skipped
    return f"{len(planned)} runs: {finished} finished, {todo} to train ({retries} interrupted), {skipped} skipped"


def train_missing(planned: list[PlannedRun], workspace: Workspace, progress=None) -> None:
    """Train the planned runs that are neither finished nor skipped, each through training.train in the workspace (an
    interrupted one resumed from its last completed epoch); progress(done, total) before each and at the end."""
    from ..training import loop as training

    trained: dict[TrainConfig, Path] = {}  # two experiments may resolve to the same config: train it once
    for i, run in enumerate(planned, 1):
        run.run_dir = run.run_dir or trained.get(run.config)
        workspace.log(progress_line(i, len(planned), run))
        if progress:
            progress(i - 1, len(planned))
        if not run.run_dir and not run.skipped:
            trained[run.config] = training.train(run.config, workspace, resume=run.interrupted)
    if progress:
        progress(len(planned), len(planned))


# ---------------------------------------------------------------- the document

HEADER = [
    "experiment",
    "settings",
    "runs",
    "train acc %",
    "ref. train %",
    "val acc % (final)",
    "val acc % (best epoch)",
    "ref. val %",
    "gap (points)",
    "s/epoch",
    "ref. s/epoch",
    "parameters",
    "ref. parameters",
]


def settings_text(config: TrainConfig) -> str:
    """'baseline 150 px, 15 epochs, dropout 0.5, L2 0.001'."""
    options = options_text(config)
    epochs = f"{config.epochs} epoch" + ("s" if config.epochs != 1 else "")
    return f"{config.recipe} {config.image_size} px, {epochs}" + ("" if options == "-" else f", {options}")


def claim_cells(claim: Claim) -> dict[str, str]:
    """The reference's numbers as table cells ('-' where it claims nothing)."""
    percent = lambda v: "-" if v is None else f"{100 * v:.1f}"  # noqa: E731
    return {
        "train": percent(claim.train_accuracy),
        "val": percent(claim.val_accuracy),
        "epoch_seconds": "-" if claim.epoch_seconds is None else f"~{claim.epoch_seconds:g}",
        "parameters": claim.parameters or "-",
    }


def summary_row(runs: list[PlannedRun], loaded: dict[Path, Run]) -> list[str]:
    """One experiment's row: mean ± std over its finished runs next to the reference's claims."""
    first, claim = runs[0], claim_cells(runs[0].experiment.claim)
    done = [loaded[r.run_dir] for r in runs if r.run_dir]
    missing = [str(r.seed) for r in runs if not r.run_dir]
    count = f"{len(done)}/{len(runs)}"
    if missing:
        count += (
            ", skipped (see below)"
            if first.skipped
            else f", missing seed{'s' * (len(missing) > 1)} {', '.join(missing)}"
        )
    ours = metric_cells(done)  # '-' everywhere when none is finished
    return [
        first.experiment.name,
        settings_text(first.config),
        count,
        ours["train"],
        claim["train"],
        ours["val"],
        ours["best"],
        claim["val"],
        ours["gap"],
        ours["epoch_seconds"],
        claim["epoch_seconds"],
        ours["parameters"],
        claim["parameters"],
    ]


PER_RUN_HEADER = ["experiment", "seed", "run", "val acc % (final)", "val acc % (best epoch)", "val acc % per epoch"]


def per_run_rows(planned: list[PlannedRun], loaded: dict[Path, Run]) -> list[list[str]]:
    """Every (experiment, seed): its run directory, final/best and per-epoch validation accuracy, or
    why there is none."""
    rows = []
    for run in planned:
        done = loaded.get(run.run_dir)
        metrics = done.metrics if done else {}
        where = run.run_dir.name if run.run_dir else ("skipped" if run.skipped else "missing")
        rows.append(
            [
                run.experiment.name,
                str(run.seed),
                where,
                fmt_mean_std([metrics.get("val_accuracy")]),
                fmt_mean_std([metrics.get("best_val_accuracy")]),
                epochs_text(done),
            ]
        )
    return rows


def epochs_text(run: Run | None) -> str:
    """'62 80 84 ...': validation accuracy (%) of every epoch, so instability is seen, not averaged away."""
    history = run.history if run else []
    return " ".join(f"{100 * h['val_accuracy']:.0f}" for h in history if "val_accuracy" in h) or "-"


def command_text(planned: list[PlannedRun], file: ExperimentFile, selection: Selection, runs_dir: Path) -> str:
    """The command line that regenerates the document with these settings."""
    names = list(dict.fromkeys(r.experiment.name for r in planned))
    only = "" if names == [e.name for e in file.experiments] else f" --only {','.join(names)}"
    flags = "".join(f" --{k.replace('_', '-')} {v}" for k, v in selection.defaults.items())
    source = "" if file.path == EXPERIMENTS_FILE else f" --experiments {file.path}"
    return f"horses-humans experiment reproduce --seeds {selection.seeds}{only}{flags}{source} --runs-dir {runs_dir}"


def render_document(planned: list[PlannedRun], command: str, title: str = DEFAULT_TITLE) -> str:
    """The results document (Markdown) from whatever runs are finished; missing and skipped ones are marked."""
    by_name: dict[str, list[PlannedRun]] = {}
    for run in planned:
        by_name.setdefault(run.experiment.name, []).append(run)
    loaded = {r.run_dir: load_run(r.run_dir) for r in planned if r.run_dir}
    notes = "".join(
        f"- `{runs[0].experiment.name}` skipped: {runs[0].skipped}\n" for runs in by_name.values() if runs[0].skipped
    )
    env = next(iter(loaded.values())).environment if loaded else {}
    return (
        f"# {title}\n\n"
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
        f"{markdown_table(PER_RUN_HEADER, per_run_rows(planned, loaded))}\n"
    )
