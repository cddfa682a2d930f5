"""A real two-process DistributedDataParallel run (gloo, CPU) started by torchrun."""

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from safetensors.torch import load_file

from gankit.cli import main
from gankit.train.checkpoint import latest_checkpoint

from conftest import free_port, read_metrics

WORKER = Path(__file__).with_name("ddp_worker.py")


def torchrun(*launcher_args: str, out: Path, variant: str, resume: bool = False) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", *launcher_args, str(WORKER), str(out), variant,
            *(["resume"] if resume else [])]


def launch(*commands: list[str], succeed: bool = True) -> None:
    """Run the torchrun commands side by side (one per machine) and check that each succeeds
    (or, with ``succeed=False``, that each fails and none is left hanging)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    logs = [tempfile.TemporaryFile("w+") for _ in commands]  # files, not pipes: a full pipe would stall a rank
    procs = [subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=log, text=True, env=env)
             for cmd, log in zip(commands, logs)]
    deadline = time.monotonic() + 240
    try:
        for proc in procs:
            proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        pass  # a rank that failed leaves the others waiting for it: their output says which
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()
    outputs = []
    for proc, log in zip(procs, logs):
        log.seek(0)
        outputs.append(f"launcher {len(outputs)}: exit {proc.returncode}\n" + log.read()[-3000:])
    assert all((proc.returncode == 0) == succeed and proc.returncode >= 0 for proc in procs), "\n".join(outputs)


def same_weights(rank0_file: Path, rank1_file: Path) -> tuple[dict, dict]:
    rank0, rank1 = load_file(rank0_file), load_file(rank1_file)
    assert rank0.keys() == rank1.keys() and len(rank0) > 0
    # DDP kept every weight identical. BatchNorm running statistics are broadcast from rank 0 at
    # the start of each forward, so only the last batch's update to them differs between ranks.
    weights = [k for k in rank0 if "running_" not in k and "num_batches" not in k]
    assert len(weights) > 8 and all(torch.equal(rank0[k], rank1[k]) for k in weights), \
        [k for k in weights if not torch.equal(rank0[k], rank1[k])]
    return rank0, rank1


def run_two_ranks(out: Path, variant: str, resume: bool = False) -> tuple[dict, dict]:
    """Two ranks on this machine, sharing the run folder."""
    launch(torchrun("--standalone", "--nproc_per_node", "2", out=out, variant=variant, resume=resume))
    return same_weights(out / "rank0.safetensors", out / "rank1.safetensors")


def run_on_two_machines(folders: list[Path], variant: str, resume: bool = False) -> None:
    """Two torchrun launchers, one rank each, as on two machines: each with its own run folder."""
    port = free_port()  # for the rendezvous
    launch(*(torchrun("--nnodes", "2", "--node_rank", str(n), "--nproc_per_node", "1", "--master_addr", "127.0.0.1",
                      "--master_port", str(port), out=folder, variant=variant, resume=resume)
             for n, folder in enumerate(folders)))


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


def test_a_distributed_run_resumes_exactly_on_all_its_ranks(tmp_path: Path):
    out = tmp_path / "run"
    run_two_ranks(out, "gan")
    run_two_ranks(out, "gan", resume=True)  # rank 0 reads the step-6 checkpoint and sends it to rank 1
    assert latest_checkpoint(out / "checkpoints")[0].step == 8
    # every rank's random streams were saved and restored: the same weights as eight steps at once
    straight, _ = run_two_ranks(tmp_path / "straight", "gan-8")
    resumed = load_file(out / "rank0.safetensors")
    assert all(torch.equal(straight[k], resumed[k]) for k in straight), \
        [k for k in straight if not torch.equal(straight[k], resumed[k])]


def test_ranks_read_back_together_on_scoring_steps_though_only_rank_0_scores(tmp_path: Path):
    out = tmp_path / "run"
    run_two_ranks(out, "gan-scored")  # on the GPU's schedule; this hung when only rank 0 read at step 3
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if "fid" in r] == [3, 6]


def test_ranks_follow_one_clock_when_the_learning_rates_decay_over_minutes(tmp_path: Path):
    run_two_ranks(tmp_path / "run", "gan-clock")  # every weight identical: the ranks stepped with the same rates


def test_two_machines_without_a_shared_folder_train_and_roll_back_together(tmp_path: Path):
    """Two torchrun launchers as on two machines, each with a folder of its own: only rank 0 writes
    the run, and when rank 1 alone sees a divergence both ranks roll back to the checkpoint that
    only rank 0's folder holds (rank 0 reads it and sends it)."""
    machines = [tmp_path / "machine0" / "run", tmp_path / "machine1" / "run"]
    run_on_two_machines(machines, "gan-rollback")
    same_weights(machines[0] / "rank0.safetensors", machines[1] / "rank1.safetensors")
    assert sorted(p.name for p in machines[1].iterdir()) == ["rank1.log", "rank1.safetensors"]
    records = [json.loads(line) for line in (machines[0] / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if r.get("event") == "rollback"] == [3]
    # rank 0 saw nothing wrong itself, and names what rank 1 saw
    assert "Training diverged at step 4 (rank 1: loss_g=nan): rolled back to step 3" \
        in (machines[0] / "rank0.log").read_text()
    assert latest_checkpoint(machines[0] / "checkpoints")[0].step == 6
    # A resume, with the checkpoint on the first machine only: rank 0 reads it and sends it. (The CLI
    # would also need config.json on the second machine; this worker builds its settings itself.)
    run_on_two_machines(machines, "gan", resume=True)
    same_weights(machines[0] / "rank0.safetensors", machines[1] / "rank1.safetensors")
    assert latest_checkpoint(machines[0] / "checkpoints")[0].step == 8
    assert not (machines[1] / "checkpoints").exists()


def test_a_rank_that_fails_stops_the_others_with_a_sentence(tmp_path: Path):
    out = tmp_path / "run"
    launch(torchrun("--standalone", "--nproc_per_node", "2", out=out, variant="gan-fails"), succeed=False)
    assert (out / "rank1.error").read_text() == "rank 1 cannot go on"
    # rank 0 did not wait at the end for a rank that had left: its collective failed, and it said so
    assert (out / "rank0.error").read_text().startswith("Rank 0 of the distributed run stopped (")
    assert f"continue with --resume {out} from the last checkpoint" in (out / "rank0.error").read_text()


def test_a_stop_asked_of_one_rank_stops_and_saves_every_rank_and_rank_0_says_so(tmp_path: Path):
    out = tmp_path / "run"
    run_two_ranks(out, "gan-stop")
    assert latest_checkpoint(out / "checkpoints")[0].step == 3
    assert f"A stop was asked of another rank: saving step 3 and stopping; continue with --resume {out}." \
        in (out / "rank0.log").read_text()
    assert "SIGTERM received: saving step 3" not in (out / "rank0.log").read_text()


def test_ranks_with_different_settings_stop_in_one_sentence_before_training(tmp_path: Path):
    out = tmp_path / "run"
    launch(torchrun("--standalone", "--nproc_per_node", "2", out=out, variant="gan-mismatch"), succeed=False)
    expected = ("Rank 1 of the distributed run has train.steps=9 where rank 0 has 6; give every machine the same "
                "command line, --config file, run config.json and data.")
    # Each rank writes it; torchrun may stop one before it has, once the other has exited.
    errors = [path.read_text() for path in out.glob("rank*.error")]
    assert errors and all(error == expected for error in errors)
    assert not (out / "checkpoints").exists()


def test_the_settings_ranks_compare_leave_out_each_machines_own(tmp_path: Path):
    """Paths, threads, the progress bar and the device choice may differ between machines; the data
    a rank loaded may not, so its size and labels join what the ranks compare."""
    from gankit.config import DataConfig, RunConfig, TrainConfig, set_value
    from gankit.models import get_family
    from gankit.models.srgan import SRGANConfig
    from gankit.train import Trainer
    from gankit.train.distributed import flattened
    from gankit.train.loop import MACHINE_SETTINGS

    family = get_family("cgan")
    cfg = RunConfig("cgan", family.default_config("mnist"))
    set_value(cfg, "train.precision", "fp32")
    settings = flattened(Trainer(cfg, tmp_path / "r")._rank_settings(resume=False))
    assert {"data.spec", "train.init", "train.threads", "train.progress", "train.device"}.isdisjoint(settings)
    assert settings["data.images"] == 5000 and settings["data.shape"] == (1, 28, 28)
    assert settings["data.attributes"] == [("digit", tuple("0123456789"))] and len(settings["data.content"]) == 16
    assert settings["train.precision"] == "float32" and settings["train.steps"] == cfg.train.steps
    assert settings["model.d_dropout"] == 0.4 and settings["family"] == "cgan" and settings["resume"] is False
    # Each left-out key names a real setting (a renamed one would be compared again): srgan's VGG19 file too.
    every = {"train": TrainConfig(), "data": DataConfig(), "model": SRGANConfig()}
    assert all(hasattr(every[section], key) for section, key in MACHINE_SETTINGS)


def test_a_rank_without_the_run_folder_says_the_folder_must_be_shared(tmp_path: Path, monkeypatch, capsys):
    monkeypatch.setenv("WORLD_SIZE", "2")  # as torchrun sets it; the check comes before the ranks connect
    assert main(["train", "gan", "--resume", str(tmp_path / "run")]) == 2
    assert "needs its folder on a filesystem they share" in capsys.readouterr().err
    monkeypatch.setenv("WORLD_SIZE", "1")
    assert main(["train", "gan", "--resume", str(tmp_path / "run")]) == 2
    assert "filesystem" not in capsys.readouterr().err


def test_an_error_of_a_rank_after_0_names_its_rank(tmp_path: Path, monkeypatch, capsys):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    assert main(["train", "gan", "--resume", str(tmp_path / "run")]) == 2
    assert capsys.readouterr().err.startswith("gankit: error on rank 1: ")
    monkeypatch.setenv("RANK", "0")
    assert main(["train", "gan", "--resume", str(tmp_path / "run")]) == 2
    assert capsys.readouterr().err.startswith("gankit: error: ")


def test_the_cli_under_torchrun_trains_and_reports_once(tmp_path: Path):
    """The README's command: `torchrun --nproc_per_node N -m gankit train ...`."""
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "gankit",
           "train", "gan", "--steps", "4", "--batch-size", "16", "--out", str(out), "--no-progress",
           "--set", "model.g_hidden=16,32", "--set", "model.d_hidden=32,16"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("run folder:") == 1 and proc.stdout.count("distributed: 2 ranks") == 1
    assert latest_checkpoint(out / "checkpoints")[0].step == 4
    assert json.loads((out / "config.json").read_text())["train"]["steps"] == 4


def test_launcher_variables_without_torchrun_are_one_sentence(tmp_path: Path, monkeypatch, capsys):
    for name in ("RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("WORLD_SIZE", "2")  # left over in a shell, say
    assert main(["train", "gan", "--steps", "1", "--out", str(tmp_path / "run")]) == 2
    assert "WORLD_SIZE is 2 but RANK, MASTER_ADDR, MASTER_PORT are not set, so this process was not started by " \
           "torchrun" in capsys.readouterr().err
    monkeypatch.setenv("WORLD_SIZE", "two")
    assert main(["train", "gan", "--steps", "1", "--out", str(tmp_path / "run")]) == 2
    assert "The environment variable WORLD_SIZE is 'two', not a whole number" in capsys.readouterr().err


def test_a_rank_that_fails_before_training_leaves_the_process_group(tmp_path: Path, monkeypatch):
    """Otherwise the other ranks wait in their next collective: on NCCL until its watchdog's timeout."""
    import pytest

    from gankit.config import RunConfig
    from gankit.errors import GankitError
    from gankit.models import get_family
    from gankit.train import distributed, loop

    closed = []

    class OneRankOfTwo(distributed.Distributed):
        def from_main(self, read):
            return read()

        def close(self, finished: bool = True) -> None:
            closed.append(finished)

    one_rank_of_two = OneRankOfTwo(rank=1, world=2, device=torch.device("cpu"))
    monkeypatch.setattr(distributed, "setup", lambda device, timeout: one_rank_of_two)
    family = get_family("gan")

    def unreadable(*args):
        raise GankitError("the data cannot be read")

    monkeypatch.setattr(family, "load_data", unreadable)
    cfg = RunConfig("gan", family.default_config("mnist"))
    with pytest.raises(GankitError, match="the data cannot be read"):
        loop.Trainer(cfg, tmp_path / "run")
    assert closed == [False]


def test_dist_timeout_bounds_every_wait_of_the_process_group(monkeypatch):
    """train.dist_timeout reaches init_process_group; 0 leaves the backend's own default."""
    from datetime import timedelta

    import pytest

    from gankit.config import RunConfig, validate
    from gankit.errors import GankitError
    from gankit.models import get_family
    from gankit.train import distributed

    calls = []
    monkeypatch.setattr(distributed.dist, "is_initialized", lambda: False)
    monkeypatch.setattr(distributed.dist, "init_process_group", lambda **kwargs: calls.append(kwargs))
    for name, value in {"WORLD_SIZE": "2", "RANK": "1", "LOCAL_RANK": "1", "MASTER_ADDR": "127.0.0.1",
                        "MASTER_PORT": "29500"}.items():
        monkeypatch.setenv(name, value)
    assert distributed.setup("cpu", 2.5).rank == 1
    assert distributed.setup("cpu").world == 2
    assert calls == [{"backend": "gloo", "timeout": timedelta(minutes=2.5)}, {"backend": "gloo"}]

    cfg = RunConfig("gan", get_family("gan").default_config("mnist"))
    for wrong in (0.5, 2000, -1):
        cfg.train.dist_timeout = wrong
        with pytest.raises(GankitError, match="train.dist_timeout must"):
            validate(cfg)


def test_a_backward_pass_failing_to_compile_falls_back_on_every_rank_in_step(tmp_path: Path):
    run_two_ranks(tmp_path / "run", "gan-compile-fails")  # finished, with identical weights
    for rank in (0, 1):  # each met the failure (without the fallback it would have stopped there)
        assert (tmp_path / f"run/rank{rank}.backward_compiles").read_text() == "2"
    assert [r["step"] for r in read_metrics(tmp_path / "run")] == [1, 2, 3, 4, 5, 6]
