"""Command-line options derived from a config dataclass: one --field-name option per field, its type from the
annotation and its default, help, choices, group and metavar from the field (as nanoGPT's configurator does).
A `tuple[T, ...]` field is comma-separated (--conv-filters 16,32), or repeatable with metadata repeatable=True
(--extra-data A --extra-data B); the dataclass turns the None of an absent repeatable option into (). A field with
metadata hidden=True (internal, e.g. recipe_alias) still parses but stays out of --help."""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from collections.abc import Sequence

from ..config import HorsesHumansError

NOUNS = {int: "integers", float: "numbers", str: "names"}  # for the error of a comma-separated option


def add_config_options(parser: argparse.ArgumentParser, cls: type, choices: dict[str, Sequence] | None = None) -> None:
    """Add one option per field of the dataclass `cls`; `choices` gives fields choices known only at run time."""
    hints = typing.get_type_hints(cls)
    groups: dict[str, argparse._ArgumentGroup] = {}
    for field in dataclasses.fields(cls):
        title = field.metadata.get("group")
        target = groups.setdefault(title, parser.add_argument_group(title)) if title else parser
        extra = (choices or {}).get(field.name)
        target.add_argument(option_name(field.name), dest=field.name, **option_kwargs(field, hints[field.name], extra))


def config_from_args(cls: type, args: argparse.Namespace):
    """The dataclass `cls` built from the parsed options that add_config_options added."""
    return cls(**{field.name: getattr(args, field.name) for field in dataclasses.fields(cls)})


def option_name(name: str) -> str:
    """'fine_tune_from' -> '--fine-tune-from'."""
    return "--" + name.replace("_", "-")


def option_kwargs(field: dataclasses.Field, hint, choices: Sequence | None = None) -> dict:
    """argparse keywords for one field: type and action from its annotation, the rest from its default and metadata."""
    kind = without_none(hint)
    default = field_default(field)
    kwargs = {"default": default, "help": help_text(field.metadata.get("help", ""), default)}
    if field.metadata.get("hidden"):  # internal: it still parses, but --help does not list it
        kwargs["help"] = argparse.SUPPRESS
    if field.metadata.get("metavar"):
        kwargs["metavar"] = field.metadata["metavar"]
    if choices or field.metadata.get("choices"):
        kwargs["choices"] = list(choices or field.metadata["choices"])
    if kind is bool:  # a flag; one that is on by default gets a --no-NAME form
        kwargs["action"] = argparse.BooleanOptionalAction if default else "store_true"
    elif typing.get_origin(kind) is tuple and field.metadata.get("repeatable"):  # --dir A --dir B -> (A, B)
        kwargs.update(action="append", type=typing.get_args(kind)[0], default=None)
    elif typing.get_origin(kind) is tuple:
        kwargs["type"] = comma_separated(typing.get_args(kind)[0], default, option_name(field.name))
    elif kind in (int, float, str):
        kwargs["type"] = kind
    else:
        raise TypeError(
            f"{field.name}: no command-line form for a field of type {hint}; use bool, int, float, str, "
            "tuple[int, ...] or one of them | None."
        )
    return kwargs


def without_none(hint):
    """`int | None` -> int (the option is then optional, its default None); other types as they are."""
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        rest = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        if len(rest) == 1:
            return rest[0]
    return hint


def field_default(field: dataclasses.Field):
    """A field's default (a field without one cannot be an option: it would be required)."""
    if field.default is not dataclasses.MISSING:
        return field.default
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    raise TypeError(f"{field.name}: give the field a default to make it an option.")


def help_text(text: str, default) -> str:
    """The field's help plus its default; None adds nothing (the help says what it means), nor does an off flag."""
    if default is True:
        text = f"{text} (default: on)"
    elif default is not None and default is not False and default != ():
        text = f"{text} (default: {format_value(default)})"
    return text.replace("%", "%%")  # argparse %-formats help strings


def format_value(value) -> str:
    """A default as a user types it: 16,32,64 for a tuple, 0.35 for a float."""
    if isinstance(value, tuple):
        return ",".join(map(str, value))
    return f"{value:g}" if isinstance(value, float) else str(value)


def comma_separated(kind: type, example, option: str) -> typing.Callable[[str], tuple]:
    """argparse type for `tuple[kind, ...]`: '16,32,64' -> (16, 32, 64), or a one-line error naming the option
    (a HorsesHumansError, which argparse lets through to the CLI's error line, unlike its own usage dump)."""
    noun = NOUNS.get(kind, kind.__name__)

    def parse(text: str) -> tuple:
        try:
            return tuple(kind(part) for part in text.split(","))
        except ValueError:
            hint = f", e.g. {format_value(example)}" if example else ""
            raise HorsesHumansError(f"{option} {text!r}: give comma-separated {noun}{hint}.") from None

    return parse
