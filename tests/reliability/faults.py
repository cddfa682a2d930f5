"""Fault injection shared by the tests and benchmarks/faults.py: train in a real process,
SIGKILL it at a random moment (often in the middle of a checkpoint write, since tiny networks
checkpoint every step or two), then check that nothing was lost beyond one interval and that
the run resumes."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from gankit.train.checkpoint import latest_checkpoint

TINY = ["--set", "model.g_hidden=16,32", "--set", "model.d_hidden=32,16", "--batch-size", "16",
        "--no-progress", "--set", "train.log_every=1", "--set", "train.sample_every=1000000"]
INTERVAL = 2


@dataclass
class KillOutcome:
    logged_step: int  # the last step metrics.jsonl recorded before the kill
    checkpoint_step: int  # the newest complete checkpoint after it
    partial_folders: int  # .tmp-step-* left by the kill (never loaded as checkpoints)


def start_training(run: Path, resume: bool) -> subprocess.Popen:
    budget = ["--steps", "1000000"]
    cmd = [sys.executable, "-m", "gankit", "train", "gan", *budget, *TINY,
           "--set", f"train.checkpoint_every={INTERVAL}"]
    cmd += ["--resume", str(run)] if resume else ["--out", str(run)]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def last_logged_step(run: Path) -> int:
    steps = []
    for line in (run / "metrics.jsonl").read_text().splitlines():
        try:
            steps.append(json.loads(line)["step"])
        except (ValueError, KeyError):
            pass  # the kill may cut the last line short
    return max(steps, default=0)


def wait_for_progress(proc: subprocess.Popen, run: Path, beyond: int, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while True:
        if proc.poll() is not None:
            raise AssertionError(f"training exited early: {proc.stderr.read()[-2000:]}")
        if (run / "metrics.jsonl").exists() and last_logged_step(run) > beyond:
            return
        if time.time() > deadline:
            raise AssertionError("training made no progress")
        time.sleep(0.05)


def kill_once(run: Path, rng: random.Random) -> KillOutcome:
    """Start (or resume) the run, let it pass its last checkpoint, SIGKILL it at a random moment."""
    resume = (run / "checkpoints").exists()
    before = latest_checkpoint(run / "checkpoints")[0].step if resume else 0
    proc = start_training(run, resume)
    wait_for_progress(proc, run, before + INTERVAL)
    time.sleep(rng.uniform(0, 0.5))
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    proc.stderr.close()
    ckpt, skipped = latest_checkpoint(run / "checkpoints")
    assert not skipped, skipped  # every folder named step-* is complete and verifies
    return KillOutcome(last_logged_step(run), ckpt.step, len(list((run / "checkpoints").glob(".tmp-step-*"))))
