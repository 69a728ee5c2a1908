"""`train` (or resume a run) and `experiment reproduce | sweep`."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from ..config import PRECISIONS, HorsesHumansError, TrainConfig
from .common import add_cache_dir, add_data_dir, log
from .options import add_config_options, config_from_args


def add_train(sub) -> None:
    """`train`: one option per TrainConfig field, the folders, --resume and the tracking extras."""
    from ..models.recipes import RECIPES

    p = sub.add_parser("train", help="train a recipe and write a run directory")
    p.set_defaults(handler=cmd_train)
    add_config_options(p, TrainConfig, choices={"recipe": sorted(RECIPES)})  # one option per TrainConfig field
    add_data_dir(p)
    add_cache_dir(p)
    p.add_argument("--runs-dir", help="where run directories go (default: $HORSES_HUMANS_RUNS, else ./runs)")
    p.add_argument(
        "--name",
        help="the run folder's name: RUNS_DIR/NAME (NAME-2, NAME-3, ... when taken; default "
        "RECIPE-SIZE-sSEED-TIMESTAMP); later commands take the name as RUN",
    )
    p.add_argument(
        "--resume",
        type=Path,
        metavar="RUN",
        help="continue an interrupted run from its last completed epoch, with its recorded options and data folder "
        "(RUN: its folder, or its name in --runs-dir)",
    )
    p.set_defaults(run_args=("resume",))
    t = p.add_argument_group("tracking (optional extras)")
    t.add_argument(
        "--tensorboard", action="store_true", help="TensorBoard logs in RUN/tensorboard (extra: tensorboard)"
    )
    t.add_argument(
        "--mlflow",
        action="store_true",
        help="an MLflow run: params, metrics per epoch, the run directory as "
        "artefacts; $MLFLOW_TRACKING_URI, else RUNS_DIR/mlflow (extra: mlflow)",
    )


def add_experiment(sub) -> None:
    """`experiment reproduce | sweep`."""
    p = sub.add_parser("experiment", help="the reference's experiments")
    p.set_defaults(handler=cmd_experiment)
    actions = p.add_subparsers(dest="experiment_command", required=True, metavar="ACTION")
    add_reproduce(actions)
    add_sweep(actions)


def add_reproduce(actions) -> None:
    e = actions.add_parser(
        "reproduce",
        help="train a file of experiments (default: the reference's) over several seeds (resumable), then write a "
        "results document",
    )
    e.add_argument("--seeds", type=int, default=3, help="seeds 0..N-1 per experiment (default 3)")
    e.add_argument(
        "--experiments",
        type=Path,
        metavar="FILE",
        help="a TOML file of experiments, same schema as the default: the package's experiments.toml (the reference's)",
    )
    e.add_argument("--only", metavar="NAME[,NAME]", help="only these experiments of the file (by name)")
    e.add_argument("--epochs", type=int, help="default: each recipe's")
    e.add_argument(
        "--image-size", type=int, help="for experiments that set no size of their own (default: each recipe's)"
    )
    e.add_argument("--batch-size", type=int, help=f"default {TrainConfig.batch_size}")
    e.add_argument("--precision", choices=PRECISIONS, help=f"default {TrainConfig.precision}")
    e.add_argument(
        "--runs-dir",
        help="where the runs are found and written (default: $HORSES_HUMANS_RUNS/reproduce, else ./runs/reproduce)",
    )
    e.add_argument(
        "--out", type=Path, default=Path("docs/reproduce.md"), help="the results document (default: docs/reproduce.md)"
    )
    e.add_argument(
        "--dry-run", action="store_true", help="print which runs exist and which would be trained; train nothing"
    )
    add_data_dir(e)
    add_cache_dir(e)


def add_sweep(actions) -> None:
    e = actions.add_parser(
        "sweep", help="Optuna sweep of the baseline CNN's architecture (conv layers, filters, kernel); resumable"
    )
    e.add_argument("--trials", type=int, default=12, help="finished trials to reach (default 12)")
    e.add_argument("--epochs", type=int, default=10, help="epochs per trial (default 10)")
    e.add_argument("--seed", type=int, default=0, help="seeds the sampler and every trial's training (default 0)")
    e.add_argument("--image-size", type=int, help="default 150")
    e.add_argument("--precision", default=TrainConfig.precision, choices=PRECISIONS)
    e.add_argument("--runs-dir", default="runs/sweep", help="trial runs and study.db (default runs/sweep)")
    e.add_argument(
        "--out", type=Path, default=Path("docs/sweep.md"), help="the results document (default docs/sweep.md)"
    )
    add_data_dir(e)
    add_cache_dir(e)


def cmd_train(args: argparse.Namespace) -> int:
    from ..core.workspace import Workspace
    from ..training.loop import resume_run, train

    if args.resume:
        check_resume_options(args)
        data_dir = args.data_dir and Path(args.data_dir).expanduser()
        run = resume_run(
            args.resume, data_dir, args.cache_dir, log=log, tensorboard=args.tensorboard, mlflow=args.mlflow
        )
    else:
        config = config_from_args(TrainConfig, args)
        workspace = Workspace.from_env(args.data_dir, args.runs_dir, args.cache_dir, log)
        run = train(config, workspace, tensorboard=args.tensorboard, mlflow=args.mlflow, name=args.name)
    print(run)  # the result: where the run is (RUN=$(horses-humans train ...) works)
    log(next_commands(run))
    return 0


def next_commands(run: Path) -> str:
    """What to do with a finished run, each command with its path (a line each, for the user to copy)."""
    return "\n".join(
        [
            f"next, with the run {run}:",
            f"  horses-humans evaluate {run}",
            f"  horses-humans predict {run} IMAGE_OR_DIR",
            f"  horses-humans report {run}",
            f"  horses-humans export {run} --format tflite",
        ]
    )


def check_resume_options(args: argparse.Namespace) -> None:
    """One error naming every option given with --resume that differs from the run's recorded config."""
    from ..training.resume import given_options, option_conflicts, resumable_config

    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig)}
    conflicts = option_conflicts(given_options(values), resumable_config(args.resume))
    if args.runs_dir and Path(args.runs_dir).expanduser().resolve() != args.resume.resolve().parent:
        conflicts.append(f"--runs-dir {args.runs_dir} (the run is in {args.resume.resolve().parent})")
    if args.name:
        conflicts.append(f"--name {args.name} (the run is {args.resume.name})")
    if conflicts:
        raise HorsesHumansError(
            f"--resume {args.resume}: {'; '.join(conflicts)}: a resumed run keeps its recorded "
            "options; drop these, or start a new run without --resume."
        )


def cmd_experiment(args: argparse.Namespace) -> int:
    return cmd_sweep(args) if args.experiment_command == "sweep" else cmd_reproduce(args)


def cmd_sweep(args: argparse.Namespace) -> int:
    from ..core.workspace import Workspace
    from ..experiments.sweep import run_sweep
    from ..models.recipes import resolve
    from ..training.loop import train

    base = resolve(
        TrainConfig(
            recipe="baseline", epochs=args.epochs, seed=args.seed, image_size=args.image_size, precision=args.precision
        )
    )
    workspace = Workspace.from_env(args.data_dir, args.runs_dir, args.cache_dir, log)
    run_sweep(args.trials, base, workspace, args.out, train)
    return 0


def cmd_reproduce(args: argparse.Namespace) -> int:
    from ..core.progress import ProgressBar
    from ..core.workspace import Workspace
    from ..experiments.reproduce import Selection, load_experiments, reproduce, reproduce_runs_dir

    given = {"epochs": args.epochs, "image_size": args.image_size, "batch_size": args.batch_size}
    given["precision"] = args.precision
    with ProgressBar("experiment runs", transient=True) as progress:  # erased at the end: the lines tell the story
        selection = Selection(args.seeds, {k: v for k, v in given.items() if v is not None}, args.only)
        workspace = Workspace.from_env(args.data_dir, reproduce_runs_dir(args.runs_dir), args.cache_dir, log)
        reproduce(load_experiments(args.experiments), selection, workspace, args.out, args.dry_run, progress)
    return 0
