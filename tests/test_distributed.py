"""A real two-process DistributedDataParallel run (gloo, CPU) started by torchrun."""

import os
import subprocess
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file

from gankit.cli import main
from gankit.train.checkpoint import latest_checkpoint

WORKER = Path(__file__).with_name("ddp_worker.py")


def run_two_ranks(out: Path, model: str) -> tuple[dict, dict]:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           str(WORKER), str(out), model]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rank0, rank1 = load_file(out / "rank0.safetensors"), load_file(out / "rank1.safetensors")
    assert rank0.keys() == rank1.keys() and len(rank0) > 0
    # DDP kept every weight identical. BatchNorm running statistics are broadcast from rank 0 at
    # the start of each forward, so only the last batch's update to them differs between ranks.
    weights = [k for k in rank0 if "running_" not in k and "num_batches" not in k]
    assert len(weights) > 8 and all(torch.equal(rank0[k], rank1[k]) for k in weights), \
        [k for k in weights if not torch.equal(rank0[k], rank1[k])]
    return rank0, rank1


def test_infogan_q_head_stays_in_sync(tmp_path: Path):
    rank0, _ = run_two_ranks(tmp_path / "run", "infogan")
    assert any(k.startswith("d.q_head.") for k in rank0)


def test_adaptive_augmentation_keeps_one_probability_across_ranks(tmp_path: Path):
    rank0, rank1 = run_two_ranks(tmp_path / "run", "gan-ada")
    assert rank0["augment_p"].item() > 0 and torch.equal(rank0["augment_p"], rank1["augment_p"])


def test_srresnet_without_a_discriminator_runs_distributed(tmp_path: Path):
    rank0, _ = run_two_ranks(tmp_path / "run", "srresnet")
    assert not any(k.startswith("d.") for k in rank0)


def test_two_ranks_stay_in_sync_and_the_checkpoint_resumes_alone(tmp_path: Path):
    out = tmp_path / "run"
    rank0, rank1 = run_two_ranks(out, "gan")
    assert not all(torch.equal(rank0[k], rank1[k]) for k in rank0)  # the ranks saw different data
    assert latest_checkpoint(out / "checkpoints")[0].step == 6
    assert "effective batch 32" in (out / "rank0.log").read_text()
    # only rank 0 wrote grids and metrics: one record per logged step, not two
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 6
    assert main(["train", "gan", "--resume", str(out), "--steps", "8", "--no-progress"]) == 0
    assert latest_checkpoint(out / "checkpoints")[0].step == 8
