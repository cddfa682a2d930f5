"""The training loop shared by every family, with its checkpoints, logging and EMA."""

from gankit.train.loop import Trainer, train

__all__ = ["Trainer", "train"]
