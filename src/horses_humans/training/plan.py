"""The stages a run fits, named: "fit" (a CNN, whole) or "head" (a transfer model's head, its backbone frozen),
then "fine_tune" (the top of the backbone too) when asked. The fit loop iterates them and the resume backup records
them by name."""

from __future__ import annotations

import dataclasses

from ..config import TrainConfig

FIT, HEAD, FINE_TUNE = "fit", "head", "fine_tune"


@dataclasses.dataclass(frozen=True)
class Stage:
    """One fit of a run: its name, its place among the run's stages (1, 2), the epoch count it begins at (the
    epochs of the stages before it) and how many epochs it runs unless early stopping ends it sooner."""

    name: str
    index: int
    first_epoch: int
    epochs: int

    @property
    def last_epoch(self) -> int:
        """The epoch count at which the stage ends, run to the full."""
        return self.first_epoch + self.epochs

    def starting_at(self, first_epoch: int) -> Stage:
        """The same stage, beginning at another epoch count (after an early-stopped stage, or as a backup says)."""
        return dataclasses.replace(self, first_epoch=first_epoch)


def plan_stages(config: TrainConfig, transfer: bool) -> list[Stage]:
    """The stages a config fits, each planned to begin where the one before it ends at full length."""
    stages = [Stage(HEAD if transfer else FIT, 1, 0, config.epochs)]
    if config.fine_tune_from:
        stages.append(Stage(FINE_TUNE, 2, config.epochs, config.fine_tune_epochs))
    return stages


def total_epochs(stages: list[Stage]) -> int:
    """Epochs of a run that no stage stops early."""
    return sum(stage.epochs for stage in stages)
