"""Fault injection at full count: SIGKILL a real training run at random moments many times.

Each kill must leave a newest checkpoint that verifies, lose at most one checkpoint interval
of progress, and resume. Prints a summary and writes benchmarks/results/faults.json.

    python benchmarks/faults.py [--kills 50] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1] / "tests" / "reliability"))
from faults import INTERVAL, kill_once  # noqa: E402

RESULTS = Path(__file__).parent / "results"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng, start = random.Random(args.seed), time.perf_counter()
    lost, partial, survived, previous = [], 0, 0, 0
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp) / "run"
        for i in range(args.kills):
            outcome = kill_once(run, rng)
            assert outcome.checkpoint_step >= previous, "a finished checkpoint was lost"
            assert outcome.logged_step - outcome.checkpoint_step <= INTERVAL, "more than one interval lost"
            previous = outcome.checkpoint_step
            lost.append(outcome.logged_step - outcome.checkpoint_step)
            partial += outcome.partial_folders
            survived += 1
            print(f"kill {i + 1:3d}: logged step {outcome.logged_step}, resumable from {outcome.checkpoint_step}",
                  flush=True)
    summary = {"kills": args.kills, "survived": survived, "checkpoint_interval_steps": INTERVAL,
               "max_steps_lost": max(lost), "mean_steps_lost": sum(lost) / len(lost),
               "killed_mid_write": partial, "finished_checkpoints_lost": 0,
               "seconds": round(time.perf_counter() - start, 1)}
    print(json.dumps(summary, indent=2))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "faults.json").write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
