"""Threads on a busy machine: how long a cgan run takes with PyTorch's thread count and with one
thread, on a quiet machine and beside one process that keeps a core busy.

With several threads every operation ends with the threads waiting for each other, so a thread
that has to share its core with another program holds all of them up. Each configuration runs
``gankit train cgan`` for ``--steps`` steps in a fresh process (start-up included, the same for
all). Prints a table and writes benchmarks/results/threads.json.

    python benchmarks/threads.py [--steps 600]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from gankit.train.runtime import cpu_description

RESULTS = Path(__file__).parent / "results"
# Settings of the runs (environment variables read when PyTorch starts), by name.
SETTINGS = {"PyTorch's threads": {}, "1 thread": {"OMP_NUM_THREADS": "1"},
            "passive waiting": {"OMP_WAIT_POLICY": "PASSIVE"}}
BUSY_LOOP = "while True: pass"


def run_seconds(steps: int, env: dict[str, str]) -> float:
    """Wall time of one cgan run of ``steps`` steps in a fresh process with ``env`` added."""
    with tempfile.TemporaryDirectory() as tmp:
        command = [sys.executable, "-m", "gankit", "train", "cgan", "--steps", str(steps), "--out", f"{tmp}/run",
                   "--no-progress", "--set", "train.sample_every=1000000", "--set", "train.checkpoint_every=1000000"]
        start = time.perf_counter()
        subprocess.run(command, env={**os.environ, **env}, check=True, capture_output=True)
        return time.perf_counter() - start


def measure(steps: int, busy: bool) -> dict[str, float]:
    """Seconds per setting, beside a busy process when ``busy``."""
    neighbour = subprocess.Popen([sys.executable, "-c", BUSY_LOOP]) if busy else None
    try:
        return {name: round(run_seconds(steps, env), 1) for name, env in SETTINGS.items()}
    finally:
        if neighbour is not None:
            neighbour.kill()
            neighbour.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=600)
    args = parser.parse_args()
    rows = {"quiet": measure(args.steps, busy=False), "beside one busy process": measure(args.steps, busy=True)}
    print(f"{'machine':<26}" + "".join(f"{name:>20}" for name in SETTINGS))
    for machine, seconds in rows.items():
        print(f"{machine:<26}" + "".join(f"{seconds[name]:>19.1f}s" for name in SETTINGS))
    result = {"machine": cpu_description(), "date": time.strftime("%Y-%m-%d"), "model": "cgan",
              "steps": args.steps, "seconds": rows}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "threads.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
