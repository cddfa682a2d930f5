"""What a run reports as it goes: ``metrics.jsonl``, TensorBoard when installed, a progress bar."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

from tqdm import tqdm

from gankit.atomic import atomic_write_bytes
from gankit.errors import GankitError

SHOWN = ("loss_d", "loss_g", "fid")


class RunLog:
    def __init__(self, folder: Path, total_steps: int, start_step: int, show_progress: bool):
        self.path = folder / "metrics.jsonl"
        keep_records_until(self.path, start_step)  # at 0: a fresh start where a run crashed before its first checkpoint
        self._file = open(self.path, "a", buffering=1)
        self._failed = False
        self._tb = _tensorboard_writer(folder / "tensorboard", start_step)
        # disable=None shows the bar on a terminal only: a log file gets no bar frames
        self._bar = tqdm(total=total_steps if total_steps < 10**12 else None, initial=start_step, unit="step",
                         dynamic_ncols=True, disable=None if show_progress else True, file=sys.stderr)

    def write(self, record: dict[str, Any]) -> None:
        try:
            self._file.write(json.dumps(record) + "\n")
        except OSError as e:  # the line stays in the buffer: close() must not try it again
            self._failed = True
            raise GankitError(f"Cannot write {self.path} ({e.strerror or e}); free disk space, then continue with "
                              f"--resume {self.path.parent} (its last checkpoint is intact).") from None
        if self._tb is not None:
            for key, value in record.items():
                if key != "step" and isinstance(value, (int, float)) and math.isfinite(value):
                    self._tb.add_scalar(key, value, record["step"])
        self._bar.update(record["step"] - self._bar.n)
        shown = {k: f"{record[k]:.3g}" for k in SHOWN if isinstance(record.get(k), float)}
        if shown:
            self._bar.set_postfix(shown, refresh=False)

    def rewind(self, step: int) -> None:
        """Drop the records after ``step``, for a run that went back to it (a rollback), from
        metrics.jsonl and from TensorBoard, as a resume drops them."""
        self._file.close()
        keep_records_until(self.path, step)  # an atomic replace: the file is opened anew
        self._file = open(self.path, "a", buffering=1)
        if self._tb is not None:
            self._tb.close()
            self._tb = _tensorboard_writer(self.path.parent / "tensorboard", step)

    def message(self, text: str) -> None:
        self._bar.write(text, file=sys.stderr)

    def close(self) -> None:
        self._bar.close()
        try:
            self._file.close()
        except OSError:
            if not self._failed:  # else write() has said so, and a second error would hide that sentence
                raise
        if self._tb is not None:
            self._tb.close()


def keep_records_until(path: Path, step: int) -> None:
    """On resume, drop what was logged after the checkpoint (it will be logged again) and any
    line a crash cut short, so the log reads as one uninterrupted run (at step 0: all of it)."""
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        return
    except (OSError, UnicodeDecodeError) as e:
        reason = "it is a folder" if path.is_dir() else getattr(e, "strerror", None) or "it is not UTF-8 text"
        raise GankitError(f"{path} is not readable ({reason}); move it away (the run logs anew from its "
                          "checkpoint) and resume again.") from None
    kept = []
    for line in lines:
        try:
            if json.loads(line)["step"] <= step:
                kept.append(line)
        except (ValueError, KeyError, TypeError):
            continue
    atomic_write_bytes(path, "".join(line + "\n" for line in kept).encode())


def _tensorboard_writer(folder: Path, start_step: int):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # the `tb` extra is not installed
        return None
    # On resume, events logged after the checkpoint are dropped, as metrics.jsonl's lines are.
    return SummaryWriter(str(folder), purge_step=start_step + 1 if start_step > 0 else None)
