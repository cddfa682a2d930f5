"""Divergence: a non-finite loss is caught in the step it appears (on a GPU, at the next log or
save step); the run rolls back with lower learning rates, or stops in one sentence keeping its
checkpoint; collapse is warned of."""

import json
import os
from pathlib import Path

import pytest
import torch

from gankit.cli import main
from gankit.models.gan import GAN
from gankit.train.checkpoint import latest_checkpoint, list_checkpoints, read_checkpoint
from gankit.train.loop import CollapseWatch

from faults import TINY


def poison_step(monkeypatch, at_calls: set[int], value: float = float("inf")) -> None:
    real_step, calls = GAN.train_step, {"n": 0}

    def step(self, batches, ctx):
        calls["n"] += 1
        stats = real_step(self, batches, ctx)
        if calls["n"] in at_calls:
            stats["loss_g"] = torch.tensor(value)
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
    steps = [r["step"] for r in records if "event" not in r]
    assert steps == list(range(1, 13))  # the abandoned steps 6 and 7 were dropped, then logged again once
    ckpt = latest_checkpoint(run / "checkpoints")[0]
    assert ckpt.step == 12 and ckpt.optimizers["g"]["param_groups"][0]["lr"] == 1e-4
    # A resume keeps the lowered rates (the full ones are those that diverged), and says so.
    assert main(["train", "gan", "--resume", str(run), "--steps", "14", "--no-progress"]) == 0
    assert "rolled back after diverging, so train.lr_g and train.lr_d (0.0002, 0.0002) train at x0.5" \
        in capsys.readouterr().err
    ckpt = latest_checkpoint(run / "checkpoints")[0]
    assert ckpt.step == 14 and ckpt.optimizers["d"]["param_groups"][0]["lr"] == 1e-4


def test_a_loss_that_explodes_without_overflowing_is_a_divergence_too(tmp_path: Path, monkeypatch, capsys):
    """lsgan at lr 0.99 trained 3,000 steps at losses of 1e15-1e17 and ended as if nothing were wrong."""
    poison_step(monkeypatch, {8}, value=1.7e17)
    assert main(["train", "gan", "--out", str(tmp_path / "run"), "--steps", "12", *TINY,
                 "--set", "train.checkpoint_every=5", "--set", "train.rollbacks=1"]) == 0
    assert "diverged at step 8 (loss_g=1.7e+17): rolled back to step 5" in capsys.readouterr().err
    poison_step(monkeypatch, {3}, value=9e5)  # large, but below the line
    assert main(["train", "gan", "--out", str(tmp_path / "fine"), "--steps", "4", *TINY]) == 0
    assert "diverged" not in capsys.readouterr().err


def test_on_a_cpu_the_divergence_is_named_to_the_step_between_logs(tmp_path: Path, monkeypatch, capsys):
    """A CPU reads every step's losses back, so a divergence between two log steps is named exactly."""
    poison_step(monkeypatch, {7})
    assert main(["train", "gan", "--out", str(tmp_path / "run"), "--steps", "12", *TINY, "--set", "train.log_every=4",
                 "--set", "train.checkpoint_every=5", "--set", "train.rollbacks=1"]) == 0
    assert "diverged at step 7 (loss_g=inf): rolled back to step 5" in capsys.readouterr().err


def test_when_rollbacks_run_out_the_run_stops_in_one_sentence(tmp_path: Path, monkeypatch, capsys):
    poison_step(monkeypatch, {8, 12})
    code = main(["train", "gan", "--out", str(tmp_path / "run"), "--steps", "20", *TINY,
                 "--set", "train.checkpoint_every=5", "--set", "train.rollbacks=1"])
    err = capsys.readouterr().err
    assert code == 2 and "train.rollbacks" in err and err.strip().splitlines()[-1].startswith("gankit: error:")
    assert latest_checkpoint(tmp_path / "run/checkpoints")[0].step == 5


@pytest.mark.load_notes
def test_slowdown_watch_warns_once_when_steps_stay_several_times_slower(tmp_path: Path):
    from gankit.train.loop import SlowdownWatch

    watch = SlowdownWatch(threads=2, run_dir=tmp_path)
    rates = [5000, 9000, 2000, 9000, 2000, 2500, 9000]  # single slow intervals: a grid or a score
    assert [watch.check({"step": i, "images_per_s": r}) for i, r in enumerate(rates)] == [None] * 7
    warnings = [watch.check({"step": 10 + i, "images_per_s": 1000}) for i in range(5)]
    assert warnings[:2] == [None, None] and warnings[3:] == [None, None]  # after 3 in a row, once
    assert warnings[2].startswith("warning: training has run 9x slower than its fastest for 3 log intervals (step 12)")
    assert f"--resume {tmp_path} --set train.threads=1" in warnings[2]
    one_thread = SlowdownWatch(threads=1, run_dir=tmp_path)  # nothing to wait for: no advice to give
    assert [one_thread.check({"step": 1, "images_per_s": r}) for r in (9000, 1, 1, 1, 1)] == [None] * 5


def test_a_busy_machine_is_noted_before_a_long_run(monkeypatch):
    from gankit.train import runtime

    assert runtime.contention_note(2, 1.0).startswith("note: other programs keep about 1.0 of this machine's")
    assert runtime.contention_note(2, 0.3) is None and runtime.contention_note(1, 2.0) is None
    assert runtime.contention_note(2, None) is None
    monkeypatch.setattr(runtime.os, "cpu_count", lambda: 64)
    assert runtime.contention_note(8, 2.0) is None  # idle cores enough for every thread
    busy = runtime.busy_cores(0.05)
    assert busy is None or 0 <= busy <= (os.cpu_count() or 1)
    monkeypatch.setattr(runtime.Path, "read_text", lambda self, *a, **k: "cpu  1 2 3")  # a kernel with fewer fields
    assert runtime.busy_cores(0.01) is None


def test_more_threads_than_cores_are_noted_and_a_log_gets_no_progress_bar(capsys, tmp_path, monkeypatch):
    from conftest import TINY
    from gankit.cli import main
    from gankit.train import runtime

    with_bar = [a for a in TINY if a != "--no-progress"]  # stderr here is not a terminal
    monkeypatch.setattr(runtime.os, "cpu_count", lambda: 2)
    assert runtime.oversubscription_note(2) is None
    code = main(["train", "gan", *with_bar, "--steps", "2", "--set", "train.threads=3", "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert code == 0 and "note: train.threads=3 is more than this machine's 2 cores" in err
    assert "\r" not in err and "step/s" not in err and "it/s" not in err


def test_collapse_watch_warns_once_after_patience():
    watch = CollapseWatch(patience=3)
    pinned = {"step": 1, "d_real": 0.999, "d_fake": 0.001}
    healthy = {"step": 1, "d_real": 0.7, "d_fake": 0.3}
    assert [watch.check(r) for r in (pinned, pinned, healthy, pinned, pinned)] == [None] * 5
    assert "told real from fake" in watch.check(pinned)
    assert watch.check(pinned) is None  # once is enough


# --- the GPU policy: statistics read back only at log and save steps ----------------------------
def tiny_trainer(run: Path, **train: str):
    """A tiny gan Trainer on the CPU that reads statistics back as it would on a GPU."""
    from gankit.config import RunConfig, set_value
    from gankit.train import Trainer

    cfg = RunConfig("gan", GAN.default_config("mnist"))
    settings = {"model.g_hidden": "16,32", "model.d_hidden": "32,16", "train.batch_size": "16",
                "train.progress": "false", "train.sample_every": "1000000", "train.lr_decay": "0", **train}
    for key, value in settings.items():
        set_value(cfg, key, value)
    trainer = Trainer(cfg, run)
    trainer.read_every_step = False
    return trainer


def test_on_a_gpu_statistics_are_read_back_only_at_log_and_save_steps(tmp_path: Path, monkeypatch):
    from gankit.train.loop import Meter

    reads, real_sound = [], Meter.sound
    monkeypatch.setattr(Meter, "sound", lambda self: reads.append(self.count) or real_sound(self))
    trainer = tiny_trainer(tmp_path / "run", **{"train.steps": "12", "train.log_every": "4",
                                                "train.checkpoint_every": "6"})
    trainer.run()
    # Steps 4, 6 (a checkpoint), 8 and 12; each read covers the steps since the last log record.
    assert reads == [4, 2, 4, 4]
    trainer.read_every_step = True  # the CPU's policy: every step
    assert trainer._reads_back({"log": False}, wants_stop=False)


def test_a_stop_request_is_read_at_once_unless_ranks_must_agree(tmp_path: Path):
    trainer = tiny_trainer(tmp_path / "run", **{"train.steps": "1"})
    nothing_due = {"log": False, "score": False, "samples": False, "checkpoint": False}
    assert not trainer._reads_back(nothing_due, wants_stop=False)
    assert trainer._reads_back(nothing_due, wants_stop=True)
    trainer.dist.world = 2  # ranks stop together, at the next read
    assert not trainer._reads_back(nothing_due, wants_stop=True)
    assert trainer._reads_back({**nothing_due, "log": True}, wants_stop=True)


def test_a_divergence_between_reads_is_rolled_back_and_never_saved(tmp_path: Path, monkeypatch, capsys):
    real_step, calls = GAN.train_step, {"n": 0}

    def nan_weights_at_step_6(self, batches, ctx):
        calls["n"] += 1
        if calls["n"] == 6:  # the weights themselves go bad: every later step is NaN until the rollback
            with torch.no_grad():
                self.generator.net[0].weight.fill_(float("nan"))
        return real_step(self, batches, ctx)

    monkeypatch.setattr(GAN, "train_step", nan_weights_at_step_6)
    run = tmp_path / "run"
    trainer = tiny_trainer(run, **{"train.steps": "12", "train.log_every": "4", "train.checkpoint_every": "3",
                                   "train.rollbacks": "1"})
    trainer.run()
    err = capsys.readouterr().err
    # Read at step 6, before its checkpoint, though no log record falls there.
    assert "Training diverged at steps 5-6 (" in err and "rolled back to step 3" in err
    for step_dir in list_checkpoints(run / "checkpoints"):
        ckpt = read_checkpoint(step_dir)
        assert all(torch.isfinite(w).all() for w in ckpt.weights.values() if w.is_floating_point()), step_dir
    assert latest_checkpoint(run / "checkpoints")[0].step == 12


def test_weights_made_non_finite_by_the_last_update_before_a_save_are_caught(tmp_path: Path, monkeypatch, capsys):
    """The losses of a step come before its update: only a look at the weights shows what it did."""
    real_step, calls = GAN.train_step, {"n": 0}

    def nan_weights_after_step_4(self, batches, ctx):
        calls["n"] += 1
        stats = real_step(self, batches, ctx)  # finite losses
        if calls["n"] == 4:
            with torch.no_grad():
                self.discriminator.net[0].weight.fill_(float("nan"))
        return stats

    monkeypatch.setattr(GAN, "train_step", nan_weights_after_step_4)
    run = tmp_path / "run"
    assert main(["train", "gan", "--out", str(run), "--steps", "6", *TINY, "--set", "train.checkpoint_every=2",
                 "--set", "train.rollbacks=1"]) == 0
    assert "diverged at step 4 (non-finite weights in the discriminator): rolled back to step 2" in \
        capsys.readouterr().err
    for step_dir in list_checkpoints(run / "checkpoints"):
        ckpt = read_checkpoint(step_dir)
        assert all(torch.isfinite(w).all() for w in ckpt.weights.values() if w.is_floating_point()), step_dir
    assert latest_checkpoint(run / "checkpoints")[0].step == 6


def test_batchnorm_statistics_count_as_weights_for_the_check_before_a_save():
    from gankit.train.loop import finite_weights

    net = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.BatchNorm1d(2))
    assert finite_weights(net)
    net[1].running_var[0] = float("inf")  # a buffer, not a parameter
    assert not finite_weights(net)
