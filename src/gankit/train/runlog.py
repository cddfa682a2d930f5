"""What a run reports as it goes: ``metrics.jsonl``, TensorBoard when installed, a progress bar."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

from tqdm import tqdm


class RunLog:
    def __init__(self, folder: Path, total_steps: int, start_step: int, show_progress: bool):
        self.path = folder / "metrics.jsonl"
        self._file = open(self.path, "a", buffering=1)
        self._tb = _tensorboard_writer(folder / "tensorboard")
        self._bar = tqdm(total=total_steps, initial=start_step, unit="step", dynamic_ncols=True,
                         disable=not show_progress, file=sys.stderr)

    def write(self, record: dict[str, Any]) -> None:
        self._file.write(json.dumps(record) + "\n")
        if self._tb is not None:
            for key, value in record.items():
                if key != "step" and isinstance(value, (int, float)) and math.isfinite(value):
                    self._tb.add_scalar(key, value, record["step"])

    def progress(self, steps: int, shown: dict[str, float] | None = None) -> None:
        self._bar.update(steps)
        if shown:
            self._bar.set_postfix({k: f"{v:.3g}" for k, v in shown.items()}, refresh=False)

    def message(self, text: str) -> None:
        self._bar.write(text, file=sys.stderr)

    def close(self) -> None:
        self._bar.close()
        self._file.close()
        if self._tb is not None:
            self._tb.close()


def _tensorboard_writer(folder: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # the `tb` extra is not installed
        return None
    return SummaryWriter(str(folder))
