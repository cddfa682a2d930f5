"""Divergence: a non-finite loss is caught in the step it appears; the run rolls back with
lower learning rates, or stops in one sentence keeping its checkpoint; collapse is warned of."""

import json
from pathlib import Path

import torch

from gankit.cli import main
from gankit.models.gan import GAN
from gankit.train.checkpoint import latest_checkpoint
from gankit.train.loop import CollapseWatch

from faults import TINY


def poison_step(monkeypatch, at_calls: set[int]) -> None:
    real_step, calls = GAN.train_step, {"n": 0}

    def step(self, batches, ctx):
        calls["n"] += 1
        stats = real_step(self, batches, ctx)
        if calls["n"] in at_calls:
            stats["loss_g"] = torch.tensor(float("inf"))
        return stats

    monkeypatch.setattr(GAN, "train_step", step)


def test_rollback_to_the_last_checkpoint_with_lower_learning_rates(tmp_path: Path, monkeypatch, capsys):
    poison_step(monkeypatch, {8})
    run = tmp_path / "run"
    assert main(["train", "gan", "--out", str(run), "--steps", "12", *TINY, "--lr", "2e-4",
                 "--set", "train.checkpoint_every=5", "--set", "train.lr_decay=0",  # gan's default decays
                 "--set", "train.rollbacks=1", "--set", "train.rollback_lr_factor=0.5"]) == 0
    assert "diverged at step 8 (loss_g=inf): rolled back to step 5" in capsys.readouterr().err
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert {"step": 5, "event": "rollback", "lr_g": 1e-4, "lr_d": 1e-4} in records
    ckpt = latest_checkpoint(run / "checkpoints")[0]
    assert ckpt.step == 12 and ckpt.optimizers["g"]["param_groups"][0]["lr"] == 1e-4


def test_when_rollbacks_run_out_the_run_stops_in_one_sentence(tmp_path: Path, monkeypatch, capsys):
    poison_step(monkeypatch, {8, 12})
    code = main(["train", "gan", "--out", str(tmp_path / "run"), "--steps", "20", *TINY,
                 "--set", "train.checkpoint_every=5", "--set", "train.rollbacks=1"])
    err = capsys.readouterr().err
    assert code == 2 and "train.rollbacks" in err and err.strip().splitlines()[-1].startswith("gankit: error:")
    assert latest_checkpoint(tmp_path / "run/checkpoints")[0].step == 5


def test_collapse_watch_warns_once_after_patience():
    watch = CollapseWatch(patience=3)
    pinned = {"step": 1, "d_real": 0.999, "d_fake": 0.001}
    healthy = {"step": 1, "d_real": 0.7, "d_fake": 0.3}
    assert [watch.check(r) for r in (pinned, pinned, healthy, pinned, pinned)] == [None] * 5
    assert "told real from fake" in watch.check(pinned)
    assert watch.check(pinned) is None  # once is enough
