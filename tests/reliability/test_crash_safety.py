"""Crash safety: SIGKILL at random moments, SIGTERM, a failing disk, an unwritable folder."""

import errno
import json
import random
import signal
from pathlib import Path

import pytest
import torch

from gankit.cli import main
from gankit.errors import GankitError
from gankit.train.checkpoint import latest_checkpoint, list_checkpoints, read_checkpoint

from faults import INTERVAL, TINY, kill_once, last_logged_step, start_training, wait_for_progress


def test_sigkill_at_random_moments_loses_at_most_one_interval(tmp_path: Path):
    run, rng = tmp_path / "run", random.Random(0)
    previous = 0
    for _ in range(3):  # benchmarks/faults.py repeats this many more times
        outcome = kill_once(run, rng)
        assert outcome.checkpoint_step >= previous  # nothing finished was lost
        assert outcome.logged_step - outcome.checkpoint_step <= INTERVAL
        previous = outcome.checkpoint_step
    target = previous + 3
    assert main(["train", "gan", "--resume", str(run), "--steps", str(target), "--no-progress"]) == 0
    steps = [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert steps == sorted(set(steps)) and steps[-1] == target  # one clean history, no repeats
    assert not list((run / "checkpoints").glob(".tmp-step-*"))  # crash leftovers cleaned up


def test_sigterm_saves_and_exits_zero(tmp_path: Path):
    run = tmp_path / "run"
    proc = start_training(run, resume=False)
    wait_for_progress(proc, run, 3)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0 and "SIGTERM received" in err
    assert latest_checkpoint(run / "checkpoints")[0].step >= last_logged_step(run)


def test_a_ctrl_c_during_the_final_save_waits_for_it(tmp_path: Path, monkeypatch):
    import os

    from gankit.train.loop import Trainer

    real_save, saves = Trainer.save, []

    def interrupted_save(self):
        saves.append(self.step)
        if self.step == 6:  # the budget's last step: the save after the loop
            os.kill(os.getpid(), signal.SIGINT)
        real_save(self)

    monkeypatch.setattr(Trainer, "save", interrupted_save)
    code = main(["train", "gan", "--out", str(tmp_path / "run"), "--steps", "6", *TINY])
    assert code == 0 and saves == [6] and latest_checkpoint(tmp_path / "run/checkpoints")[0].step == 6


def test_a_full_disk_under_the_metrics_log_is_one_sentence(tmp_path: Path, monkeypatch, capsys):
    """A log line that cannot be written stops the run in one sentence, and the file's close, which
    tries the same line again, does not hide it behind a traceback."""
    import io

    from gankit.train import runlog

    class FullDisk(io.StringIO):
        def write(self, text):
            raise OSError(errno.ENOSPC, "No space left on device")

        def close(self):
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(runlog, "open", lambda *args, **kwargs: FullDisk(), raising=False)
    code = main(["train", "gan", "--out", str(tmp_path / "run"), "--steps", "4", *TINY])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert f"Cannot write {tmp_path / 'run/metrics.jsonl'} (No space left on device); free disk space" in err


def test_a_full_disk_under_the_generator_files_names_the_saved_checkpoint(tmp_path: Path, monkeypatch, capsys):
    from gankit.train.loop import Trainer

    def full(self, folder):
        raise GankitError(f"Cannot write {folder / 'generator.safetensors'} (No space left on device); free disk "
                          "space or choose a writable path.")

    real = Trainer.save_generator_files
    monkeypatch.setattr(Trainer, "save_generator_files", full)
    run = tmp_path / "run"
    assert main(["train", "gan", "--out", str(run), "--steps", "3", *TINY]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"step 3's checkpoint is saved, and --resume {run} writes the generator" in err
    assert latest_checkpoint(run / "checkpoints")[0].step == 3
    monkeypatch.setattr(Trainer, "save_generator_files", real)  # space again: the resume the message names
    assert main(["train", "gan", "--resume", str(run), "--no-progress"]) == 0
    assert (run / "generator.json").is_file() and (run / "generator.safetensors").is_file()


def test_a_read_only_file_system_is_one_sentence(tmp_path: Path, monkeypatch):
    """There even removing the temporary file that was never made fails (EROFS, not ENOENT)."""
    from gankit import atomic

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(atomic, "_write_and_sync", read_only)
    monkeypatch.setattr(Path, "unlink", read_only)
    with pytest.raises(GankitError, match=r"Cannot write .*config.json \(Read-only file system\); choose a writable"):
        atomic.atomic_write_json(tmp_path / "config.json", {})


def test_a_full_disk_fails_in_one_sentence_and_keeps_the_last_checkpoint(tmp_path: Path, monkeypatch, capsys):
    import gankit.atomic

    real_fsync, calls = gankit.atomic.os.fsync, {"n": 0}

    def fsync_until_full(fd):
        calls["n"] += 1
        if calls["n"] > 12:  # the first checkpoint and generator files are written, then the disk fills
            raise OSError(errno.ENOSPC, "No space left on device")
        real_fsync(fd)

    monkeypatch.setattr(gankit.atomic.os, "fsync", fsync_until_full)
    code = main(["train", "gan", "--out", str(tmp_path / "run"), "--steps", "20", *TINY,
                 "--set", "train.checkpoint_every=5"])
    err = capsys.readouterr().err
    assert code == 2 and "No space left on device" in err and err.count("\n") == 1
    assert err.endswith("free disk space or make the folder writable, then resume the run (its earlier checkpoints, "
                        "if it has any, are intact).\n")  # the next step, taken below
    checkpoints = list_checkpoints(tmp_path / "run/checkpoints")
    assert [p.name for p in checkpoints] == ["step-000005"]
    assert latest_checkpoint(tmp_path / "run/checkpoints")[0].step == 5  # intact, verifies
    assert not list((tmp_path / "run/checkpoints").glob(".tmp-*"))
    monkeypatch.setattr(gankit.atomic.os, "fsync", real_fsync)
    assert main(["train", "gan", "--resume", str(tmp_path / "run"), "--steps", "7", "--no-progress"]) == 0


def test_an_unwritable_run_folder_is_one_sentence(tmp_path: Path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert main(["train", "gan", "--out", str(blocker / "run"), "--steps", "2", *TINY]) == 2
    err = capsys.readouterr().err
    assert "choose a writable --out" in err and err.count("\n") == 1


def test_a_corrupt_newest_checkpoint_falls_back_to_the_previous(tmp_path: Path, capsys):
    run = tmp_path / "run"
    assert main(["train", "gan", "--out", str(run), "--steps", "6", *TINY, "--set", "train.checkpoint_every=3"]) == 0
    newest = list_checkpoints(run / "checkpoints")[-1]
    weights = newest / "weights.safetensors"
    weights.write_bytes(weights.read_bytes()[:-10] + b"0123456789")
    ckpt, skipped = latest_checkpoint(run / "checkpoints")
    assert ckpt.step == 3 and "does not match its checksum" in skipped[0]
    assert main(["train", "gan", "--resume", str(run), "--steps", "8", "--no-progress"]) == 0
    assert "skipped" in capsys.readouterr().err
    # Reaching step 6 again replaced the damaged copy, and the copy moved aside is gone.
    assert read_checkpoint(run / "checkpoints/step-000006").step == 6
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["step-000003", "step-000006", "step-000008"]


@pytest.mark.parametrize("name", ["optimizers.safetensors", "rng.safetensors", "state.json"])
def test_every_checkpoint_file_is_checked_against_its_checksum(tmp_path: Path, name: str):
    run = tmp_path / "run"
    assert main(["train", "gan", "--out", str(run), "--steps", "6", *TINY, "--set", "train.checkpoint_every=3"]) == 0
    damaged = list_checkpoints(run / "checkpoints")[-1] / name
    data = bytearray(damaged.read_bytes())
    data[-2] ^= 1  # one bit of the content (a digit of state.json's last number, or of the last tensor)
    damaged.write_bytes(bytes(data))
    ckpt, skipped = latest_checkpoint(run / "checkpoints")
    assert ckpt.step == 3 and f"{name} does not match its checksum" in skipped[0]


def test_checkpoints_past_a_million_steps_sort_and_prune_by_number(tmp_path: Path):
    """train.steps allows up to 10^9: step-1000000 is newer than step-999999, though it sorts before it."""
    from gankit.train.checkpoint import Checkpoint, save_checkpoint

    folder = tmp_path / "checkpoints"
    for step in (999_998, 999_999, 1_000_000, 1_000_001):
        (folder / f"step-{step:06d}").mkdir(parents=True)
    assert [p.name for p in list_checkpoints(folder)] == ["step-999998", "step-999999", "step-1000000", "step-1000001"]
    tiny = Checkpoint(1_000_002, {"w": torch.zeros(1)}, {"g": {"state": {}, "param_groups": []}}, {}, {"elapsed": 0.0})
    save_checkpoint(folder, tiny, keep=2)
    assert sorted(p.name for p in folder.iterdir()) == ["step-1000001", "step-1000002"]
    assert latest_checkpoint(folder)[0].step == 1_000_002


def test_a_checkpoint_half_written_when_the_process_died_is_cleared_on_resume(tmp_path: Path):
    """A kill in the middle of writing step 6 leaves .tmp-step-000006 behind; reaching step 6
    again must not trip over it (the resume would fail there every time)."""
    run = tmp_path / "run"
    assert main(["train", "gan", "--out", str(run), "--steps", "3", *TINY, "--set", "train.checkpoint_every=3"]) == 0
    half = run / "checkpoints/.tmp-step-000006"
    half.mkdir()
    (half / "weights.safetensors").write_bytes(b"half")
    assert main(["train", "gan", "--resume", str(run), "--steps", "6", "--no-progress"]) == 0
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["step-000003", "step-000006"]


def test_an_encoder_that_fails_leaves_the_old_image_and_no_stray_file(tmp_path: Path):
    import pytest
    from PIL import Image

    from gankit.atomic import atomic_write_encoded, image_format

    path = tmp_path / "grid.png"
    atomic_write_encoded(path, lambda f: Image.new("RGB", (4, 4)).save(f, format=image_format(path)))
    before = path.read_bytes()

    def failing(f):
        f.write(b"half an image")
        raise OSError("disk went away mid-encode")

    def disk_full(f):  # the encoder streams into the temporary file, so the disk can fill mid-encode
        f.write(b"half an image")
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(OSError, match="mid-encode"):  # an encoder's own error (no errno) is passed on
        atomic_write_encoded(path, failing)
    with pytest.raises(GankitError, match=r"Cannot write .*grid.png \(No space left on device\); free disk space"):
        atomic_write_encoded(path, disk_full)
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["grid.png"]
    assert image_format(tmp_path / "x.JPG") == "JPEG" and image_format(tmp_path / "x") == "PNG"
    for suffix in (".foo", ".xbm", ".msp", ".h5", ".ico", ".icns", ".blp"):  # Pillow knows all but .foo
        with pytest.raises(GankitError, match=f"ends in \\{suffix}, which is not an image format gankit can write"):
            image_format(tmp_path / f"x{suffix}")


def test_a_failed_replace_names_the_file_not_its_temporary(tmp_path: Path, monkeypatch):
    import os

    import pytest

    from gankit.atomic import atomic_write_bytes

    def no_space(src, dst):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "replace", no_space)
    with pytest.raises(GankitError) as caught:
        atomic_write_bytes(tmp_path / "scores.json", b"{}")
    assert str(caught.value).startswith(f"Cannot write {tmp_path / 'scores.json'} (No space left on device)")
    assert "checkpoint" not in str(caught.value) and list(tmp_path.iterdir()) == []


def test_checkpoints_whose_content_gankit_never_writes_are_skipped(tmp_path: Path, capsys):
    import hashlib

    import pytest

    run = tmp_path / "run"
    assert main(["train", "gan", "--out", str(run), "--steps", "6", *TINY, "--set", "train.checkpoint_every=3"]) == 0
    newest = list_checkpoints(run / "checkpoints")[-1]
    manifest = json.loads((newest / "manifest.json").read_text())
    good_state = (newest / "state.json").read_text()
    for bad in ({"step": "x"}, {"step": -5}, {"optimizers": None}, {"optimizers": {}}, {"lr_scale": "x"},
                {"family": None}, {"elapsed": None}, {"elapsed": "gone"}, {"world": 0}, {"world": 1.5}):
        state = {**json.loads(good_state), **bad}
        if bad == {"elapsed": "gone"}:
            del state["elapsed"]
        data = json.dumps(state).encode()
        (newest / "state.json").write_bytes(data)  # checksummed again: content, not a torn write
        (newest / "manifest.json").write_text(json.dumps({**manifest, "state.json": hashlib.sha256(data).hexdigest()}))
        with pytest.raises(GankitError, match=f"Checkpoint {newest} is damaged"):
            read_checkpoint(newest)
    for listing in ([], {"weights.safetensors": manifest["weights.safetensors"]}):
        (newest / "manifest.json").write_text(json.dumps(listing))
        with pytest.raises(GankitError, match="its manifest does not list its files"):
            read_checkpoint(newest)
    capsys.readouterr()
    assert main(["train", "gan", "--resume", str(run), "--steps", "7", "--no-progress"]) == 0
    assert "skipped" in capsys.readouterr().err  # it fell back to step 3


def test_run_files_of_the_wrong_kind_are_one_sentence_on_resume(tmp_path: Path, capsys):
    import shutil

    run = tmp_path / "run"
    assert main(["train", "gan", "--out", str(run), "--steps", "2", *TINY]) == 0
    (run / "metrics.jsonl").unlink()
    (run / "metrics.jsonl").mkdir()
    assert main(["train", "gan", "--resume", str(run), "--steps", "3", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "metrics.jsonl is not readable (it is a folder); move it away" in err and err.count("\n") == 1
    shutil.rmtree(run / "checkpoints")
    (run / "checkpoints").write_text("")
    assert main(["train", "gan", "--resume", str(run), "--steps", "3", "--no-progress"]) == 2
    assert "checkpoints is a file, not the run's checkpoints folder" in capsys.readouterr().err


def test_a_crash_between_the_generator_files_is_mended_by_a_resume(tmp_path: Path, capsys):
    """generator.safetensors is written before generator.json, which records its checksum: a crash
    between the two leaves a pair that does not load, and a resume writes both again."""
    from gankit.artifacts import load_generator

    run = tmp_path / "run"
    assert main(["train", "gan", "--out", str(run), "--steps", "2", *TINY]) == 0
    weights = run / "generator.safetensors"
    weights.write_bytes(weights.read_bytes()[:-4] + b"\0\0\0\0")  # the next step's file, then the crash
    try:
        load_generator(run)
    except GankitError as e:
        assert "resuming the run writes both files again" in str(e)
    else:
        raise AssertionError("a mismatched pair loaded")
    capsys.readouterr()
    assert main(["train", "gan", "--resume", str(run), "--steps", "2", "--no-progress"]) == 0
    assert "rewrote the generator files from the checkpoint of step 2" in capsys.readouterr().err
    assert load_generator(run)[1]["step"] == 2


def test_train_ema_switched_on_at_a_resume_starts_from_g(tmp_path: Path, capsys):
    run = tmp_path / "run"
    assert main(["train", "gan", "--out", str(run), "--steps", "2", *TINY, "--set", "train.ema=0"]) == 0
    capsys.readouterr()
    assert main(["train", "gan", "--resume", str(run), "--steps", "3", "--no-progress",
                 "--set", "train.ema=0.999"]) == 0
    assert "trained without train.ema until step 2; the average generator starts there" in capsys.readouterr().err
    assert "ema.net.0.weight" in latest_checkpoint(run / "checkpoints")[0].weights


def test_every_image_suffix_gankit_accepts_writes_rgb_and_grayscale_grids(tmp_path: Path):
    """The allow-list holds no format that refuses the grid or changes its size."""
    import torch
    from PIL import Image

    from gankit.atomic import IMAGE_SUFFIXES
    from gankit.train.preview import save_grid

    for channels in (1, 3):
        images = torch.rand(4, channels, 8, 8) * 2 - 1
        save_grid(images, 2, tmp_path / "reference.png")
        size = Image.open(tmp_path / "reference.png").size
        for suffix in IMAGE_SUFFIXES:
            save_grid(images, 2, tmp_path / f"grid{suffix}")
            with Image.open(tmp_path / f"grid{suffix}") as written:
                assert written.size == size, suffix
