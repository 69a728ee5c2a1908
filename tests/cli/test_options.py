"""The train options are derived from TrainConfig: every field is an option, a new field needs no other edit."""

import argparse
import dataclasses

import pytest

from horses_humans.cli import main as cli
from horses_humans.cli import train as cli_train
from horses_humans.cli.options import add_config_options, config_from_args, option_name
from horses_humans.config import TrainConfig, option
from horses_humans.core.tables import options_text
from horses_humans.training import loop as training


def sample_value(field: dataclasses.Field, hint: str) -> tuple[list[str], object]:
    """(command-line words, the value they should give) for a non-default value of a TrainConfig field."""
    flag = option_name(field.name)
    if hint == "bool":
        return [flag], True
    if field.metadata.get("choices"):
        value = next(c for c in field.metadata["choices"] if c != field.default)
        return [flag, str(value)], value
    samples = {"int": 64, "int | None": 64, "float": 0.5, "float | None": 0.5, "str": "x", "str | None": "x"}
    if hint == "tuple[int, ...]":
        return [flag, "8,16"], (8, 16)
    if hint == "tuple[str, ...]":  # repeatable
        return [flag, "a", flag, "b"], ("a", "b")
    if field.name == "recipe":
        return [flag, "augmented"], "augmented"
    if field.name == "min_confidence":  # auto, off or a probability
        return [flag, "off"], "off"
    return [flag, str(samples[hint])], samples[hint]


@pytest.mark.parametrize("field", dataclasses.fields(TrainConfig), ids=lambda f: f.name)
def test_every_trainconfig_field_is_a_train_option(field):
    words, value = sample_value(field, field.type)
    args = cli.build_parser().parse_args(["train", *words])
    config = config_from_args(TrainConfig, args)
    assert getattr(config, field.name) == value
    assert config == dataclasses.replace(TrainConfig(), **{field.name: value})  # and nothing else moved


def test_train_option_defaults_are_the_config_defaults():
    assert config_from_args(TrainConfig, cli.build_parser().parse_args(["train"])) == TrainConfig()


def derived_config():
    """TrainConfig plus three fields of the kinds a new option may have (int, optional float, tuple, a True flag)."""
    return dataclasses.make_dataclass(
        "Derived",
        [
            ("warmup_epochs", int, option(2, "epochs of warm-up")),
            ("label_smoothing", float | None, option(None, "label smoothing (default: none)")),
            ("milestones", tuple[int, ...], option((5, 10), "epochs at which the learning rate drops")),
            ("shuffle", bool, option(True, "reshuffle every epoch")),
        ],
        bases=(TrainConfig,),
        frozen=True,
    )


def test_a_new_field_becomes_a_working_option():
    derived = derived_config()
    parser = argparse.ArgumentParser()
    add_config_options(parser, derived)
    config = config_from_args(
        derived,
        parser.parse_args(
            [
                "--warmup-epochs",
                "4",
                "--label-smoothing",
                "0.1",
                "--milestones",
                "3,6,9",
                "--no-shuffle",
                "--dropout",
                "0.2",
            ]
        ),
    )
    assert (config.warmup_epochs, config.label_smoothing, config.milestones, config.shuffle) == (
        4,
        0.1,
        (3, 6, 9),
        False,
    )
    assert config.dropout == 0.2
    defaults = config_from_args(derived, parser.parse_args([]))
    assert (defaults.warmup_epochs, defaults.label_smoothing, defaults.milestones, defaults.shuffle) == (
        2,
        None,
        (5, 10),
        True,
    )
    help_text = " ".join(parser.format_help().split())  # unwrapped
    assert (
        "--warmup-epochs WARMUP_EPOCHS" in help_text and "(default: 2)" in help_text and "(default: 5,10)" in help_text
    )


def test_a_new_trainconfig_field_reaches_train_with_no_other_edit(monkeypatch, tmp_path, capsys):
    """What adding a field to TrainConfig does: `train --warmup-epochs 5` builds a config holding it."""
    derived = derived_config()
    trained = []
    monkeypatch.setattr(cli_train, "TrainConfig", derived)
    monkeypatch.setattr(training, "train", lambda config, *args, **kwargs: trained.append(config) or tmp_path / "run")
    assert cli.main(["train", "--warmup-epochs", "5", "--runs-dir", str(tmp_path)]) == 0
    (config,) = trained
    assert isinstance(config, derived) and config.warmup_epochs == 5 and config.recipe == "recommended"
    with pytest.raises(SystemExit):
        cli.main(["train", "--help"])
    assert "--warmup-epochs" in capsys.readouterr().out


def test_unsupported_field_type_is_named():
    odd = dataclasses.make_dataclass("Odd", [("sizes", dict, dataclasses.field(default_factory=dict))])
    with pytest.raises(TypeError, match="sizes: no command-line form"):
        add_config_options(argparse.ArgumentParser(), odd)


def test_options_text_compares_with_the_config_defaults():
    assert options_text(TrainConfig()) == "-"
    assert (
        options_text(TrainConfig(recipe="baseline", dropout=0.5, conv_filters=(8, 16), early_stopping=True))
        == "dropout 0.5, early stop, conv 8-16 k3"
    )
    shifted = dataclasses.make_dataclass("Shifted", [("dropout", float, 0.5)], bases=(TrainConfig,), frozen=True)
    assert options_text(shifted()) == "-" and options_text(shifted(dropout=0.0)) == "dropout 0.0"
