"""The reject class: the class folder whose images teach the unsure answer ("none of these"), never a label.

`train --reject-class NAME` names it (default `neither`); `data check` says which folder it will be, and suggests the
option for a folder named the way other tools name theirs (Teachable Machine's "Background", "other", "unknown").
"""

from __future__ import annotations

from pathlib import Path

from ..config import DEFAULT_REJECT_CLASS, HorsesHumansError

REJECT_HINTS = ("background", "other", "none", "unknown")  # folder names (any case) that mean "none of these"


def reject_class_of(name: str, class_names: list[str], where: Path | str) -> str | None:
    """name when class_names (the data's class folders, with --extra-data's) hold it; None when it is the default and
    absent (a run without a reject class); else a one-line error naming the folders found and the fix."""
    if name in class_names:
        return name
    if name == DEFAULT_REJECT_CLASS:
        return None
    hint = suggested_reject_class(class_names)
    fix = f"pass --reject-class {hint}" if hint else f"add a {name}/ folder of 'none of these' images"
    raise HorsesHumansError(
        f"--reject-class {name}: {where} has no class folder of that name (found: {', '.join(class_names)}): {fix}, "
        "or name one of those folders."
    )


def suggested_reject_class(class_names: list[str]) -> str | None:
    """The first class folder named like a 'none of these' class (background, other, none, unknown in any case), when
    there is no folder of the default name; None otherwise."""
    if DEFAULT_REJECT_CLASS in class_names:
        return None
    return next((name for name in class_names if name.lower() in REJECT_HINTS), None)


def suggestion_line(folder: str) -> str:
    """One line saying that a folder looks like 'none of these' images and how to train it as such."""
    return (
        f"the folder {folder!r} looks like 'none of these' images: train with --reject-class {folder} to teach the "
        "unsure answer from it (otherwise it is a class like any other)."
    )
