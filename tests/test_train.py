"""Real (tiny) training runs: the files they write, sampling, exact resume, Ctrl-C, divergence."""

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

import gankit
from gankit.cli import main
from gankit.errors import GankitError
from gankit.train.checkpoint import latest_checkpoint, list_checkpoints

from conftest import TINY, backend_failing_backward, read_metrics, train_cli

LOSS_KEYS = ("loss_d", "loss_g", "d_real", "d_fake")


def test_a_run_writes_every_file(cgan_run: Path):
    names = {p.relative_to(cgan_run).as_posix() for p in cgan_run.rglob("*") if p.is_file()}
    for expected in ("config.json", "generator.json", "generator.safetensors", "metrics.jsonl",
                     "samples/step-000020.png", "samples/step-000040.png",
                     "checkpoints/step-000040/weights.safetensors", "checkpoints/step-000040/manifest.json"):
        assert expected in names
    assert not any(n.endswith((".pt", ".pth", ".pkl", ".tmp")) for n in names)
    records = read_metrics(cgan_run)
    assert [r["step"] for r in records] == list(range(1, 41))
    assert all(set(LOSS_KEYS) | {"images_per_s", "time"} <= set(r) for r in records)
    # one grid row per digit class, 10 columns: 10 x (28 + 2) + 2 pixels a side
    assert Image.open(cgan_run / "samples/step-000040.png").size == (302, 302)
    config = json.loads((cgan_run / "config.json").read_text())
    assert config["model"] == "cgan" and config["train"]["steps"] == 40


def test_checkpoint_holds_g_d_ema_and_optimizer_states(cgan_run: Path):
    ckpt, warnings = latest_checkpoint(cgan_run / "checkpoints")
    assert ckpt.step == 40 and not warnings
    prefixes = {k.split(".")[0] for k in ckpt.weights}
    assert prefixes == {"generator", "discriminator", "ema"}
    assert set(ckpt.optimizers) == {"g", "d"} and ckpt.optimizers["g"]["state"]
    assert {"torch", "noise"} <= set(ckpt.rng)


def test_sampling_by_label_from_python_and_cli(cgan_run: Path, tmp_path: Path):
    pipe = gankit.load(cgan_run)
    images = pipe.sample(12, labels=[3], seed=1)
    assert images.shape == (12, 1, 28, 28) and images.min() >= -1 and images.max() <= 1
    assert torch.equal(images, pipe.sample(12, labels=[3], seed=1))  # seeded
    assert main(["sample", str(cgan_run), "--labels", "0,1,2,3,4,5,6,7,8,9", "--n", "20",
                 "--npz", str(tmp_path / "s.npz"), "--out", str(tmp_path / "g.png")]) == 0
    with np.load(tmp_path / "s.npz") as f:
        assert f["images"].shape == (20, 1, 28, 28) and f["images"].dtype == np.float32
        assert f["labels"].tolist() == [d for d in range(10) for _ in range(2)]
        assert f["labels"].dtype == np.int64 and list(f["digit_names"]) == list("0123456789")
    assert Image.open(tmp_path / "g.png").size == (2 * 30 + 2, 10 * 30 + 2)


def test_generator_files_load_without_the_run(cgan_run: Path, tmp_path: Path):
    shared = tmp_path / "shared"
    shared.mkdir()
    for name in ("generator.json", "generator.safetensors"):
        (shared / name).write_bytes((cgan_run / name).read_bytes())
    assert gankit.load(shared).sample(4, labels=[7], seed=0).shape == (4, 1, 28, 28)
    ema = {k[4:]: v for k, v in load_file(cgan_run / "checkpoints/step-000040/weights.safetensors").items()
           if k.startswith("ema.")}
    saved = load_file(cgan_run / "generator.safetensors")
    assert all(torch.equal(ema[k], saved[k]) for k in saved)  # the shared generator is the EMA one


@pytest.mark.parametrize("every", [1, 4])
def test_ema_moves_every_step_in_its_warm_up_then_every_few_by_as_much(every):
    """After the warm-up the average skips steps, and makes up for them: one update by decay ** every."""
    from gankit.train import ema as ema_module

    live = torch.nn.Linear(1, 1, bias=False)
    average = ema_module.EMA(live, decay=0.999, every=every)
    last = 99  # the warm-up is the first 100 steps (ema.WARMUP_STEPS)
    with torch.no_grad():
        for step in range(last + 1):
            live.weight.fill_(step)  # a generator that keeps moving
            before = average.model.weight.item()
            average.update(live, step)
            assert average.model.weight.item() != before  # every step in the warm-up
        live.weight.fill_(1000.0)
    before = average.model.weight.item()
    for step in range(last + 1, last + every):
        average.update(live, step)
        assert average.model.weight.item() == before  # skipped
    step = last + every
    average.update(live, step)
    kept = min(0.999, (1 + step) / (10 + step)) ** every
    assert average.model.weight.item() == pytest.approx(before * kept + 1000 * (1 - kept), rel=1e-6)


def test_the_loop_moves_the_average_by_the_first_steps_warm_up_decay(tmp_path: Path):
    """The loop counts steps from 0 for the EMA: after one step the average is 10% the initial
    generator and 90% the trained one (decay (1 + 0) / (10 + 0)); a schedule one step late would
    keep 2/11 of the initial weights."""
    from gankit.config import RunConfig, set_value
    from gankit.models.gan import GAN
    from gankit.train import Trainer

    cfg = RunConfig("gan", GAN.default_config("mnist"))
    for key, value in {"model.g_hidden": "16,32", "model.d_hidden": "32,16", "train.steps": "1",
                       "train.progress": "false"}.items():
        set_value(cfg, key, value)
    trainer = Trainer(cfg, tmp_path / "r")
    initial = [p.detach().clone() for p in trainer.model.generator.parameters()]
    trainer.run()
    for start, trained, average in zip(initial, trainer.model.generator.parameters(),
                                       trainer.ema.model.parameters(), strict=True):
        assert not torch.equal(start, trained)
        torch.testing.assert_close(average, 0.1 * start + 0.9 * trained, rtol=1e-5, atol=1e-7)


def test_ema_copies_batchnorm_statistics_from_the_live_generator():
    """The average's BatchNorm statistics are the live generator's, not averaged and not left at
    their initial values (a DCGAN generator sampling with those draws garbage)."""
    from gankit.train import ema as ema_module

    live = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4))
    average = ema_module.EMA(live, decay=0.999)
    live(torch.randn(64, 3) * 5 + 2)  # training mode: the running statistics move
    average.update(live, step=0)
    assert torch.equal(average.model[1].running_mean, live[1].running_mean)
    assert torch.equal(average.model[1].running_var, live[1].running_var)
    assert not torch.allclose(average.model[1].running_var, torch.ones(4))


def test_resume_continues_exactly(tmp_path: Path):
    common = ["--set", "train.checkpoint_every=6", "--seed", "5"]
    assert train_cli("cgan", tmp_path / "straight", "--steps", "12", *common) == 0
    assert train_cli("cgan", tmp_path / "split", "--steps", "6", *common) == 0
    assert main(["train", "cgan", "--resume", str(tmp_path / "split"), "--steps", "12", "--no-progress"]) == 0
    straight = [[r[k] for k in LOSS_KEYS] for r in read_metrics(tmp_path / "straight")]
    split = [[r[k] for k in LOSS_KEYS] for r in read_metrics(tmp_path / "split")]
    assert split == straight
    a = load_file(tmp_path / "straight/generator.safetensors")
    b = load_file(tmp_path / "split/generator.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("model, small", [
    ("dcgan", ["--data", "mnist", "--set", "model.g_width=4", "--set", "model.d_width=4",
               "--set", "model.max_width=8"]),
    ("srresnet", ["--set", "model.blocks=1", "--set", "model.channels=8", "--set", "model.crop=32"]),
])
def test_resume_of_channels_last_networks_continues_exactly(tmp_path: Path, model, small):
    """The conv families keep weights channels_last, and a checkpoint holds Adam's moments
    contiguous: loaded as they are, the fused Adam paired each weight with another's moments."""
    common = ["--no-progress", "--batch-size", "8", "--seed", "5", "--set", "train.checkpoint_every=4",
              "--set", "train.lr_decay=0", "--device", "cpu", *small]
    assert main(["train", model, "--out", str(tmp_path / "straight"), "--steps", "8", *common]) == 0
    assert main(["train", model, "--out", str(tmp_path / "split"), "--steps", "4", *common]) == 0
    assert main(["train", model, "--resume", str(tmp_path / "split"), "--steps", "8", "--no-progress"]) == 0
    a = load_file(tmp_path / "straight/generator.safetensors")
    b = load_file(tmp_path / "split/generator.safetensors")
    assert any(v.dim() == 4 for v in a.values()) and all(torch.equal(a[k], b[k]) for k in a)


def test_resume_at_its_budget_trains_nothing_and_says_so(capsys, tmp_path: Path):
    assert train_cli("cgan", tmp_path / "r", "--steps", "6") == 0
    files = {p: p.read_bytes() for p in (tmp_path / "r").rglob("*") if p.is_file()}
    capsys.readouterr()
    assert main(["train", "cgan", "--resume", str(tmp_path / "r"), "--steps", "4", "--no-progress"]) == 0
    assert "at step 6, which reaches this budget of 4 steps, so nothing was trained" in capsys.readouterr().err
    assert {p: p.read_bytes() for p in (tmp_path / "r").rglob("*") if p.is_file()} == files


def test_resume_past_its_minutes_trains_nothing_and_says_so(capsys, tmp_path: Path):
    assert train_cli("gan", tmp_path / "r", "--steps", "3") == 0
    files = {p: p.read_bytes() for p in (tmp_path / "r").rglob("*") if p.is_file()}
    capsys.readouterr()
    assert main(["train", "gan", "--resume", str(tmp_path / "r"), "--minutes", "0.0001", "--no-progress"]) == 0
    err = capsys.readouterr().err
    assert "which reaches this budget of 0.0001 minutes, so nothing was trained; give a larger --minutes" in err
    assert {p: p.read_bytes() for p in (tmp_path / "r").rglob("*") if p.is_file()} == files


def test_the_last_step_is_saved_once_when_its_schedule_saves_it(tmp_path: Path, monkeypatch):
    import gankit.train.loop as loop

    saved, drawn = [], []
    real_save, real_grid = loop.save_checkpoint, loop.save_preview
    monkeypatch.setattr(loop, "save_checkpoint", lambda folder, ckpt, keep: saved.append(ckpt.step)
                        or real_save(folder, ckpt, keep))
    monkeypatch.setattr(loop, "save_preview", lambda *a, **k: drawn.append(1) or real_grid(*a, **k))
    assert train_cli("gan", tmp_path / "r", "--steps", "4", "--set", "train.checkpoint_every=2",
                     "--set", "train.sample_every=4") == 0
    assert saved == [2, 4] and len(drawn) == 1
    assert train_cli("gan", tmp_path / "s", "--steps", "3", "--set", "train.checkpoint_every=2") == 0
    assert saved[2:] == [2, 3]  # a last step off the schedule is saved after the loop ...
    assert len(drawn) == 2 and (tmp_path / "s/samples/step-000003.png").exists()  # ... and drawn
    assert train_cli("gan", tmp_path / "t", "--steps", "5", "--set", "train.log_every=2") == 0
    assert [r["step"] for r in read_metrics(tmp_path / "t")] == [2, 4, 5]  # ... and logged


def test_several_d_steps_take_their_own_batches_and_count_as_one_step(tmp_path: Path, monkeypatch):
    import gankit.train.loop as loop

    seen = []
    real_step = loop.GANFamily.train_step
    monkeypatch.setattr(loop.GANFamily, "train_step",
                        lambda self, batches, ctx: seen.append([b[0].sum().item() for b in batches])
                        or real_step(self, batches, ctx))
    assert train_cli("gan", tmp_path / "r", "--steps", "3", "--set", "train.d_steps=2") == 0
    assert [len(batches) for batches in seen] == [2, 2, 2]
    sums = [total for batches in seen for total in batches]
    assert len(set(sums)) == 6  # six distinct batches: none reused across or within steps
    assert [r["step"] for r in read_metrics(tmp_path / "r")] == [1, 2, 3]


def test_learning_rates_never_go_below_zero_past_the_clock(tmp_path: Path):
    from gankit.config import RunConfig, set_value
    from gankit.models.gan import GAN
    from gankit.train import Trainer

    cfg = RunConfig("gan", GAN.default_config("mnist"))
    for key, value in {"model.g_hidden": "16,32", "model.d_hidden": "32,16", "train.minutes": "1",
                       "train.lr_decay": "0.5", "train.progress": "false"}.items():
        set_value(cfg, key, value)
    trainer = Trainer(cfg, tmp_path / "r")
    trainer.clock = 45.0  # three quarters of the budget: half way down the decay
    trainer._set_learning_rates()
    assert trainer.opt_g.param_groups[0]["lr"] == pytest.approx(cfg.train.lr_g / 2)
    trainer.clock = 66.0  # ranks of a distributed run stop together, a few steps past the clock
    trainer._set_learning_rates()
    assert trainer.opt_g.param_groups[0]["lr"] == 0 and trainer.opt_d.param_groups[0]["lr"] == 0
    # A resume picks the clock up where the checkpoint left it: the rates go on falling from there.
    trainer.step, trainer.elapsed = 1, 45.0
    trainer.save()
    resumed = Trainer(cfg, tmp_path / "r", resume=True)
    resumed._set_learning_rates()
    assert resumed.clock == 45.0 and resumed.opt_g.param_groups[0]["lr"] == pytest.approx(cfg.train.lr_g / 2)


def test_a_resume_on_another_number_of_ranks_keeps_the_share_of_epochs_left_and_says_so(tmp_path: Path, monkeypatch,
                                                                                       capsys):
    from gankit.config import RunConfig, set_value
    from gankit.models.gan import GAN
    from gankit.train import Trainer

    cfg = RunConfig("gan", GAN.default_config("mnist"))
    for key, value in {"model.g_hidden": "16,32", "model.d_hidden": "32,16", "train.batch_size": "16",
                       "train.epochs": "2", "train.progress": "false"}.items():
        set_value(cfg, key, value)
    trainer = Trainer(cfg, tmp_path / "r")
    assert trainer.total_steps == 624  # 2 epochs of 5000 // 16 batches
    trainer.step = 78  # a quarter of the run as two ranks trained it: 2 epochs of 5000 // 32 batches
    saved = trainer._checkpoint

    def on_two_ranks(rng_states):
        checkpoint = saved(rng_states)
        assert checkpoint.state["world"] == 1 and checkpoint.state["epochs"] == 0.25  # 78 of 312 a pass
        checkpoint.state.update(world=2, epochs=0.5)  # as two ranks count them: 78 of 156 a pass
        return checkpoint

    monkeypatch.setattr(trainer, "_checkpoint", on_two_ranks)
    trainer.save()
    capsys.readouterr()
    resumed = Trainer(cfg, tmp_path / "r", resume=True)
    assert resumed.step == 78 and resumed.total_steps == 78 + 468  # three quarters of 624 to go
    assert "trained on 2 ranks (effective batch 32) and goes on with 1 (effective batch 16) at the same " \
           "learning rates" in capsys.readouterr().err
    resumed._restore(rolling_back=True)  # a rollback to that checkpoint keeps the budget and says nothing again
    assert resumed.total_steps == 546 and "ranks" not in capsys.readouterr().err
    resumed.step = 100  # a checkpoint on one rank: a second resume keeps the same end
    resumed.save()
    again = Trainer(cfg, tmp_path / "r", resume=True)
    assert again.step == 100 and again.total_steps == 546 and "ranks" not in capsys.readouterr().err


def test_a_run_resumed_on_another_kind_of_device_starts_a_new_noise_stream(tmp_path: Path, monkeypatch, capsys):
    import gankit.train.loop as loop

    assert train_cli("gan", tmp_path / "r", "--steps", "2") == 0
    real_latest = loop.latest_checkpoint

    def from_a_gpu(folder):  # a CUDA generator's state is 16 bytes; a CPU generator refuses it
        ckpt, warnings = real_latest(folder)
        ckpt.rng["noise"] = torch.zeros(16, dtype=torch.uint8)
        return ckpt, warnings

    monkeypatch.setattr(loop, "latest_checkpoint", from_a_gpu)
    capsys.readouterr()
    assert main(["train", "gan", "--resume", str(tmp_path / "r"), "--steps", "4", "--no-progress"]) == 0
    assert "trained on another kind of device" in capsys.readouterr().err
    assert list_checkpoints(tmp_path / "r/checkpoints")[-1].name == "step-000004"


def test_quick_fid_on_too_few_real_images_is_refused_before_training(tmp_path: Path, capsys):
    digits = np.stack([np.full((28, 28), 60 * i, np.uint8) for i in range(4)])
    np.savez(tmp_path / "mnist.npz", x_train=digits, y_train=np.arange(4))  # scored by the digits classifier
    capsys.readouterr()
    assert main(["train", "gan", "--out", str(tmp_path / "r"), "--data", f"mnist:{tmp_path / 'mnist.npz'}",
                 "--batch-size", "2", "--set", "train.eval_every=2", "--steps", "4", "--no-progress"]) == 2
    assert "holds 4 real samples; scoring needs at least 10" in capsys.readouterr().err
    assert not list_checkpoints(tmp_path / "r/checkpoints")


def test_same_seed_same_run_other_seed_other_run(tmp_path: Path):
    for name, seed in (("a", "1"), ("b", "1"), ("c", "2")):
        assert train_cli("gan", tmp_path / name, "--steps", "5", "--seed", seed) == 0
    a, b, c = ([r["loss_g"] for r in read_metrics(tmp_path / n)] for n in "abc")
    assert a == b and a != c


def test_checkpoints_are_pruned_to_the_newest_k(tmp_path: Path):
    assert train_cli("gan", tmp_path / "r", "--steps", "10", "--set", "train.checkpoint_every=2",
                     "--set", "train.keep_checkpoints=2") == 0
    assert [p.name for p in list_checkpoints(tmp_path / "r/checkpoints")] == ["step-000008", "step-000010"]


def test_epoch_and_minute_budgets(tmp_path: Path):
    assert train_cli("gan", tmp_path / "e", "--epochs", "0.5") == 0  # 5000 digits / 32 per batch / 2
    assert read_metrics(tmp_path / "e")[-1]["step"] == 78
    from gankit.config import RunConfig
    from gankit.models.gan import GAN
    from gankit.train.loop import budget_steps

    cfg = RunConfig("gan", GAN.default_config("mnist"))
    cfg.train.epochs, cfg.train.batch_size = 0.3, 32  # 156 whole batches an epoch: 46.8 steps, rounded up
    assert budget_steps(cfg, 5000, world=1) == 47
    cfg.train.d_steps = 2  # each step takes two batches
    assert budget_steps(cfg, 5000, world=1) == 24
    assert budget_steps(cfg, 5000, world=2) == 12  # each rank takes its own batches
    start = time.perf_counter()
    assert train_cli("gan", tmp_path / "m", "--minutes", "0.02") == 0
    assert time.perf_counter() - start < 20 and len(read_metrics(tmp_path / "m")) >= 1


def test_a_run_folder_is_not_overwritten(tmp_path: Path, capsys):
    assert train_cli("gan", tmp_path / "r", "--steps", "2") == 0
    assert train_cli("gan", tmp_path / "r", "--steps", "2") == 2
    assert "already holds a run" in capsys.readouterr().err
    # nor nested where the run's checkpoint pruning would delete it
    assert train_cli("gan", tmp_path / "r/checkpoints/step-000002/inner", "--steps", "2") == 2
    assert f"lies inside the checkpoints of the run in {(tmp_path / 'r').absolute()}" in capsys.readouterr().err


def test_a_new_run_never_replaces_a_generator_or_other_files(tmp_path: Path, capsys):
    import shutil
    assert train_cli("gan", tmp_path / "r", "--steps", "2") == 0
    shutil.rmtree(tmp_path / "r/checkpoints")  # a finished generator without its checkpoints
    before = (tmp_path / "r/generator.safetensors").read_bytes()
    assert train_cli("gan", tmp_path / "r", "--steps", "2") == 2
    assert "already holds a run" in capsys.readouterr().err
    assert main(["train", "gan", "--resume", str(tmp_path / "r"), "--steps", "4", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "still samples and exports. To train again, choose a new --out." in err
    assert "--out " + str(tmp_path) not in err
    assert (tmp_path / "r/generator.safetensors").read_bytes() == before
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "config.json").write_text('{"my": "settings"}')
    assert train_cli("gan", mine, "--steps", "2") == 2
    err = capsys.readouterr().err
    assert "holds files that are not a gankit run (config.json); choose a new or empty --out." in err
    (mine / "config.json").unlink()
    (mine / "notes.txt").write_text("mine")
    assert train_cli("gan", mine, "--steps", "2") == 2
    assert "(notes.txt)" in capsys.readouterr().err and (mine / "notes.txt").read_text() == "mine"
    (mine / "notes.txt").unlink()
    assert train_cli("gan", mine, "--steps", "2") == 0  # an empty folder takes a run


def test_a_run_that_stopped_before_its_first_checkpoint_can_start_again(tmp_path: Path, capsys):
    assert train_cli("gan", tmp_path / "r", "--steps", "2") == 0
    for leftover in ("generator.json", "generator.safetensors"):
        (tmp_path / "r" / leftover).unlink()
    import shutil
    shutil.rmtree(tmp_path / "r/checkpoints")  # config.json, metrics.jsonl and samples/ stay, as after a crash
    (tmp_path / "r/best").mkdir()  # and best/, when a quick score came before the first checkpoint
    assert main(["train", "gan", "--resume", str(tmp_path / "r"), "--steps", "4", "--no-progress"]) == 2
    assert "the run stopped before its first one; start it again with --out" in capsys.readouterr().err
    assert train_cli("gan", tmp_path / "r", "--steps", "2") == 0


def test_divergence_stops_with_one_sentence_and_keeps_the_checkpoint(tmp_path: Path, monkeypatch, capsys):
    from gankit.models.gan import GAN

    real_step = GAN.train_step
    calls = {"n": 0}

    def poisoned(self, batches, ctx):
        calls["n"] += 1
        stats = real_step(self, batches, ctx)
        if calls["n"] == 5:
            stats["loss_d"] = torch.tensor(float("nan"))
        return stats

    monkeypatch.setattr(GAN, "train_step", poisoned)
    assert train_cli("gan", tmp_path / "r", "--steps", "8", "--set", "train.checkpoint_every=2") == 2
    err = capsys.readouterr().err
    assert "diverged at step 5" in err and "loss_d=nan" in err and "Traceback" not in err
    assert latest_checkpoint(tmp_path / "r/checkpoints")[0].step == 4


def test_ctrl_c_saves_a_checkpoint_and_exits_cleanly(tmp_path: Path):
    out = tmp_path / "r"
    cmd = [sys.executable, "-m", "gankit", "train", "gan", "--out", str(out), "--steps", "100000", *TINY,
           "--set", "train.log_every=50"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while not (out / "metrics.jsonl").exists() or not (out / "metrics.jsonl").read_text():
        assert time.time() < deadline and proc.poll() is None, proc.communicate()
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 0, stderr
    assert "SIGINT received" in stderr and "Traceback" not in stderr
    step = latest_checkpoint(out / "checkpoints")[0].step
    assert step >= 50 and (out / "generator.safetensors").exists()
    assert main(["train", "gan", "--resume", str(out), "--steps", str(step + 3), "--no-progress"]) == 0
    assert latest_checkpoint(out / "checkpoints")[0].step == step + 3


def test_latent_tools(cgan_run: Path, tmp_path: Path):
    from gankit.pipeline import slerp

    a, b = torch.randn(16), torch.randn(16)
    path = slerp(a, b, torch.linspace(0, 1, 5))
    assert torch.allclose(path[0], a, atol=1e-5) and torch.allclose(path[-1], b, atol=1e-5)
    unit = slerp(a / a.norm(), b / b.norm(), torch.linspace(0, 1, 7))
    assert torch.allclose(unit.norm(dim=1), torch.ones(7), atol=1e-5)  # stays on the sphere
    pipe = gankit.load(cgan_run)
    assert pipe.interpolate(6, seed=2, labels=[4]).shape == (6, 1, 28, 28)
    # without labels, one drawn label row for the whole walk: frames 0-5 of one digit, as with it given
    drawn = pipe.labels_tensor(1, None, torch.Generator().manual_seed(2))
    torch.testing.assert_close(pipe.interpolate(6, seed=2), pipe.interpolate(6, seed=2, labels=drawn))
    z = pipe.latents(9, seed=0)
    assert torch.allclose(pipe.arithmetic(z[:3], z[3:6], z[6:])[0], z[:3].mean(0) - z[3:6].mean(0) + z[6:].mean(0))
    with pytest.raises(GankitError, match="number of steps must be a whole number between 2 and 64, not 1"):
        pipe.interpolate(1)
    with pytest.raises(GankitError, match=r"The latents have shape \(3, 7\); this generator takes \(n, 100\)"):
        pipe.decode(torch.zeros(3, 7))
    assert main(["sample", str(cgan_run), "--interpolate", "5", "--label", "2", "--out", str(tmp_path / "i.png")]) == 0
    assert Image.open(tmp_path / "i.png").size == (5 * 30 + 2, 32)


def test_eval_during_training_logs_fid_and_keeps_the_best_generator(tmp_path: Path):
    run = tmp_path / "r"
    assert train_cli("cgan", run, "--steps", "6", "--set", "train.eval_every=3",
                     "--set", "train.eval_samples=50") == 0
    scores = [r for r in read_metrics(run) if "fid" in r]
    assert [r["step"] for r in scores] == [3, 6]
    assert all(r["fid"] > 0 and 0 <= r["accuracy"] <= 1 for r in scores)
    best = json.loads((run / "best/scores.json").read_text())
    assert best["fid"] == min(r["fid"] for r in scores) and best["step"] in (3, 6)
    assert gankit.load(run / "best").sample(2, labels=[1], seed=0).shape == (2, 1, 28, 28)
    assert json.loads((run / "best/generator.json").read_text())["step"] == best["step"]


def test_a_resumed_run_replaces_best_only_with_a_better_score(tmp_path: Path, monkeypatch):
    import gankit.train.loop as loop

    fids = iter([5.0, 9.0, 7.0, 4.0])  # steps 3, 6, then after the resume 9 and 12
    monkeypatch.setattr(loop, "quick_scores", lambda *args, **kwargs: {"fid": next(fids)})
    run = tmp_path / "r"
    settings = ["--set", "train.eval_every=3", "--set", "train.eval_samples=50", "--set", "train.checkpoint_every=3"]
    assert train_cli("gan", run, "--steps", "6", *settings) == 0
    assert main(["train", "gan", "--resume", str(run), "--steps", "9", "--no-progress"]) == 0
    assert json.loads((run / "best/scores.json").read_text())["step"] == 3  # 7.0 at step 9 is worse than 5.0
    assert main(["train", "gan", "--resume", str(run), "--steps", "12", "--no-progress"]) == 0
    assert json.loads((run / "best/scores.json").read_text())["step"] == 12


def test_the_python_api_resumes_a_run_only_as_the_model_it_is(tmp_path: Path):
    """gan's and cgan's networks could take each other's weights where the shapes agree; the
    checkpoint's model name decides, as config.json does on the command line."""
    from gankit.config import RunConfig
    from gankit.models.gan import GAN
    from gankit.train import train

    assert train_cli("cgan", tmp_path / "r", "--steps", "2") == 0
    with pytest.raises(GankitError, match=r"holds a cgan run, not gan; resume it with the same model name"):
        train(RunConfig("gan", GAN.default_config("mnist")), tmp_path / "r", resume=True)


def test_learning_rates_decay_linearly_over_the_end_of_the_budget(tmp_path: Path):
    from gankit.train.checkpoint import read_checkpoint

    assert train_cli("gan", tmp_path / "r", "--steps", "8", "--lr", "0.001", "--set", "train.lr_decay=0.5",
                     "--set", "train.checkpoint_every=2", "--set", "train.keep_checkpoints=10") == 0
    lrs = {int(p.name[5:]): read_checkpoint(p).optimizers["g"]["param_groups"][0]["lr"]
           for p in list_checkpoints(tmp_path / "r/checkpoints")}
    # the lr used by the last step before each checkpoint: constant until half way, then linear to 0
    assert lrs == pytest.approx({2: 1e-3, 4: 1e-3, 6: 1e-3 * 3 / 4, 8: 1e-3 * 1 / 4})


def test_adam_betas_come_from_the_recipe(tmp_path: Path):
    """gan's image default trains Adam without momentum (models/gan.py); the seeds' recipe keeps theirs."""
    from gankit.train.checkpoint import read_checkpoint

    seeds_recipe = Path(__file__).parents[1] / "configs" / "gan-seeds.toml"
    assert train_cli("gan", tmp_path / "default", "--steps", "2") == 0
    assert train_cli("gan", tmp_path / "seeds", "--steps", "2", "--config", str(seeds_recipe)) == 0
    for run, betas in (("default", (0.0, 0.99)), ("seeds", (0.5, 0.999))):
        checkpoint = read_checkpoint(list_checkpoints(tmp_path / run / "checkpoints")[-1])
        for optimizer in ("g", "d"):
            assert tuple(checkpoint.optimizers[optimizer]["param_groups"][0]["betas"]) == betas, (run, optimizer)


def test_cgan_trains_label_embeddings_at_a_multiple_of_the_lr(tmp_path: Path):
    """D's label embedding at 10x lr_d and G's at 3x lr_g, each in an optimizer group of its own,
    through an exact resume; multipliers of 1, or concat conditioning, keep one group each."""
    held = ("--set", "model.embedding_lr_mult_steps=0")
    assert train_cli("cgan", tmp_path / "fast", "--steps", "2", "--lr", "1e-3", *held) == 0
    d_groups, g_groups = group_lrs(tmp_path / "fast", "d"), group_lrs(tmp_path / "fast", "g")
    assert [lr for _, lr in d_groups] == pytest.approx([1e-3, 1e-2]) and d_groups[1][0] == 1  # one embedding
    assert [lr for _, lr in g_groups] == pytest.approx([1e-3, 3e-3]) and g_groups[1][0] == 1
    assert main(["train", "cgan", "--resume", str(tmp_path / "fast"), "--steps", "4", "--no-progress"]) == 0
    assert group_lrs(tmp_path / "fast", "d") == [(n, pytest.approx(lr)) for n, lr in d_groups]
    ones = ("--set", "model.d_embedding_lr_mult=1", "--set", "model.g_embedding_lr_mult=1")
    for name, settings in (("ones", ones), ("concat", ("--set", "model.conditioning=concat"))):
        assert train_cli("cgan", tmp_path / name, "--steps", "2", "--lr", "1e-3", *settings) == 0
        assert [lr for _, lr in group_lrs(tmp_path / name, "d")] == pytest.approx([1e-3])
        assert [lr for _, lr in group_lrs(tmp_path / name, "g")] == pytest.approx([1e-3])


def test_cgan_embedding_multipliers_fall_to_one_over_their_steps(tmp_path: Path):
    """With embedding_lr_mult_steps=4, D's 10x falls linearly: the lr of step s is 1 + 9 (1 - s/4)
    times lr_d, and 1x from step 4 on, resumed or not."""
    run = tmp_path / "fade"
    assert train_cli("cgan", run, "--steps", "2", "--lr", "1e-3", "--set", "model.embedding_lr_mult_steps=4") == 0
    assert [lr for _, lr in group_lrs(run, "d")] == pytest.approx([1e-3, 1e-3 * (1 + 9 * 3 / 4)])  # step 1
    assert [lr for _, lr in group_lrs(run, "g")] == pytest.approx([1e-3, 1e-3 * (1 + 2 * 3 / 4)])
    assert main(["train", "cgan", "--resume", str(run), "--steps", "4", "--no-progress"]) == 0
    assert [lr for _, lr in group_lrs(run, "d")] == pytest.approx([1e-3, 1e-3 * (1 + 9 / 4)])  # step 3
    assert main(["train", "cgan", "--resume", str(run), "--steps", "6", "--no-progress"]) == 0
    assert [lr for _, lr in group_lrs(run, "d")] == pytest.approx([1e-3, 1e-3])


def test_resuming_a_cgan_run_from_before_the_embedding_multipliers_names_the_fix(tmp_path: Path, capsys):
    """A run whose config.json predates the multipliers trained one group each; the new defaults build
    two. Resuming it is one sentence saying what to write in config.json, and after that it resumes."""
    run = tmp_path / "old"
    ones = ("--set", "model.d_embedding_lr_mult=1", "--set", "model.g_embedding_lr_mult=1")
    assert train_cli("cgan", run, "--steps", "2", *ones) == 0
    config = json.loads((run / "config.json").read_text())
    for key in ("d_embedding_lr_mult", "g_embedding_lr_mult", "embedding_lr_mult_steps"):
        del config["model_cfg"][key]
    (run / "config.json").write_text(json.dumps(config))
    capsys.readouterr()
    assert main(["train", "cgan", "--resume", str(run), "--steps", "4", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "trains G in 1 optimizer group(s) and these settings build 2" in err and err.count("\n") == 1
    assert "before 2026-11-23, when their defaults changed, needs both set to 1 under model_cfg" in err
    config["model_cfg"].update(d_embedding_lr_mult=1, g_embedding_lr_mult=1)
    (run / "config.json").write_text(json.dumps(config))
    assert main(["train", "cgan", "--resume", str(run), "--steps", "4", "--no-progress"]) == 0
    assert list_checkpoints(run / "checkpoints")[-1].name == "step-000004"


def group_lrs(run: Path, optimizer: str) -> list[tuple[int, float]]:
    """(parameter count, lr) of each group of ``optimizer`` in ``run``'s newest checkpoint."""
    from gankit.train.checkpoint import read_checkpoint

    checkpoint = read_checkpoint(list_checkpoints(run / "checkpoints")[-1])
    return [(len(g["params"]), g["lr"]) for g in checkpoint.optimizers[optimizer]["param_groups"]]


@pytest.mark.parametrize("setting", ["d_embedding_lr_mult=0", "g_embedding_lr_mult=-1", "embedding_lr_mult_steps=-5"])
def test_a_bad_embedding_lr_setting_is_one_sentence(capsys, setting: str):
    assert main(["train", "cgan", "--set", f"model.{setting}", "--steps", "1"]) == 2
    err = capsys.readouterr().err
    assert f"model.{setting.split('=')[0]} must be" in err and err.count("\n") == 1


def test_compile_trains_the_same_run_and_saves_bare_weights(tmp_path: Path, monkeypatch):
    import torch._dynamo

    # The eager backend runs the same wiring (dynamo traces G and D) without minutes of code generation.
    monkeypatch.setattr("gankit.train.runtime.COMPILE_BACKEND", "eager")
    monkeypatch.setattr(torch._dynamo.config, "suppress_errors", False)  # restored after the test
    backends, real_compile = [], torch.compile
    monkeypatch.setattr(torch, "compile",
                        lambda module, **kw: backends.append(kw["backend"]) or real_compile(module, **kw))
    assert train_cli("gan", tmp_path / "eager", "--steps", "4", "--set", "train.precision=fp32") == 0
    assert train_cli("gan", tmp_path / "compiled", "--steps", "4", "--set", "train.precision=fp32",
                     "--set", "train.compile=true") == 0
    torch._dynamo.reset()
    assert backends == ["eager", "eager"]  # G and D
    eager, compiled = ([r["loss_g"] for r in read_metrics(tmp_path / n)] for n in ("eager", "compiled"))
    assert compiled == pytest.approx(eager, rel=1e-5)
    weights = load_file(tmp_path / "compiled/generator.safetensors")
    assert weights.keys() == load_file(tmp_path / "eager/generator.safetensors").keys()
    assert not any("_orig_mod" in k for k in weights)


def test_a_backward_pass_that_fails_to_compile_falls_back_to_eager_from_the_same_start(tmp_path: Path, monkeypatch,
                                                                                       capsys):
    """PyTorch compiles backward passes when they first run, beyond dynamo's suppress_errors. Here
    the second one fails (G's update, after D's has stepped): the run must go on eagerly from the
    snapshot, and so train exactly as a run without train.compile."""
    import torch._dynamo

    backend, compiled_backwards = backend_failing_backward(at=2)
    monkeypatch.setattr("gankit.train.runtime.COMPILE_BACKEND", backend)
    assert train_cli("gan", tmp_path / "eager", "--steps", "4", "--set", "train.precision=fp32") == 0
    assert train_cli("gan", tmp_path / "compiled", "--steps", "4", "--set", "train.precision=fp32",
                     "--set", "train.compile=true") == 0
    torch._dynamo.reset()
    assert len(compiled_backwards) == 2
    assert "the first step under train.compile failed (C++ compile error: no compiler here), as it does where the " \
           "backward passes cannot be compiled; training goes on without compiling" in capsys.readouterr().err
    eager, fallen_back = (read_metrics(tmp_path / n) for n in ("eager", "compiled"))
    assert [r["loss_g"] for r in fallen_back] == [r["loss_g"] for r in eager]
    for name in ("generator", "discriminator"):  # the first D update, taken before G's failed, is not doubled
        checkpoint = [load_file(list_checkpoints(tmp_path / n / "checkpoints")[-1] / "weights.safetensors")
                      for n in ("eager", "compiled")]
        assert all(torch.equal(checkpoint[0][k], checkpoint[1][k]) for k in checkpoint[0] if k.startswith(name))


def test_tensorboard_drops_the_events_after_the_checkpoint_on_resume(tmp_path: Path, monkeypatch):
    """As metrics.jsonl is trimmed to the checkpoint, TensorBoard purges what came after it
    (a stand-in SummaryWriter: the tb extra is not installed for the tests)."""
    import types

    from gankit.train.runlog import _tensorboard_writer

    from gankit.train.runlog import RunLog

    made = []

    class Writer:
        def __init__(self, folder, purge_step=None):
            made.append(purge_step)

        def add_scalar(self, *args):
            pass

        def close(self):
            pass

    fake = types.ModuleType("torch.utils.tensorboard")
    fake.SummaryWriter = Writer
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", fake)
    _tensorboard_writer(tmp_path, 0)
    _tensorboard_writer(tmp_path, 40)
    assert made == [None, 41]
    log = RunLog(tmp_path, 100, 0, show_progress=False)  # and a rollback to step 20 drops the events after it too
    log.rewind(20)
    log.close()
    assert made == [None, 41, None, 21]


def test_frozen_takes_d_out_of_the_g_update_and_restores_it_after_an_error():
    from gankit.models.base import frozen
    D = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Linear(4, 1))
    x = torch.randn(3, 4, requires_grad=True)
    with frozen(D, D[1]):  # D[1] as a part G's optimizer trains (InfoGAN's Q head)
        D(x).sum().backward()
    assert D[0].weight.grad is None and D[1].weight.grad is not None and x.grad is not None
    with pytest.raises(RuntimeError), frozen(D):
        assert not any(p.requires_grad for p in D.parameters())
        raise RuntimeError("a step that fails")
    assert all(p.requires_grad for p in D.parameters())


def test_log_rates_leave_out_the_time_spent_saving(monkeypatch):
    from gankit.train import loop

    clock = iter([0.0, 10.0, 10.0])  # the meter's start, the flush, its restart
    monkeypatch.setattr(loop.time, "perf_counter", lambda: next(clock))
    meter = loop.Meter(images_per_step=64, step=0)
    meter.add(torch.tensor([1.0, 3.0]))
    meter.exclude(6.0)  # a checkpoint and a sample grid took 6 of the 10 s
    record = meter.flush(["loss_d", "loss_g"], step=4)
    assert record == {"loss_d": 1.0, "loss_g": 3.0, "images_per_s": 64.0}  # 4 steps of 64 in 4 s, not 10


def test_auto_precision_is_bf16_only_on_gpus_with_bf16_units(monkeypatch):
    """torch.cuda.is_bf16_supported() also says yes where bf16 is only emulated (V100, T4), and
    there cuDNN has no bf16 convolutions: auto must keep those GPUs in fp32. The GPU asked about is
    the training one, not the current one."""
    from gankit.train.runtime import resolve_precision

    asked = []
    capabilities = {0: (8, 0), 1: (7, 0)}  # an A100 as cuda:0, a V100 as cuda:1
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda d: asked.append(d) or capabilities[d.index])
    assert resolve_precision("auto", torch.device("cuda", 0)) == torch.bfloat16
    assert resolve_precision("auto", torch.device("cuda", 1)) == torch.float32
    assert [d.index for d in asked] == [0, 1]
    assert resolve_precision("bf16", torch.device("cuda", 1)) == torch.bfloat16  # asked for: given


def test_optimizer_state_round_trips_through_a_checkpoint_tensors_and_numbers_alike():
    """Adam keeps its step as a tensor today; an optimizer that keeps Python numbers must get them back."""
    from gankit.train.checkpoint import _flatten_optimizer, _unflatten_optimizer

    state_dict = {"state": {0: {"exp_avg": torch.ones(2), "step": 3}, 1: {"momentum": 0.5}},
                  "param_groups": [{"lr": 0.1, "params": [0, 1]}]}
    tensors, meta = _flatten_optimizer("g", state_dict)
    back = _unflatten_optimizer("g", tensors, json.loads(json.dumps(meta)))
    assert back["state"][0]["step"] == 3 and torch.equal(back["state"][0]["exp_avg"], torch.ones(2))
    assert back["state"][1] == {"momentum": 0.5} and back["param_groups"] == state_dict["param_groups"]
