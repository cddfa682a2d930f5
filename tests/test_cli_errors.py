"""Every error a user can cause is one sentence on stderr and exit status 2, never a traceback."""

import subprocess
import sys
from pathlib import Path

import pytest

from gankit.cli import main


def run_cli(capsys, *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    err = capsys.readouterr().err
    return code, err


@pytest.mark.parametrize("argv, words", [
    (["train", "stylegan"], "Unknown model 'stylegan'"),
    (["train", "gan", "--data", "cifar10"], "Unknown dataset 'cifar10'"),
    (["train", "gan", "--set", "train.speed=3"], "Unknown setting 'train.speed'"),
    (["train", "gan", "--set", "train.steps"], "section.key=value"),
    (["train", "gan", "--set", "model.loss=wgan"], "model.loss must be one of"),
    (["train", "gan", "--steps", "0"], "budget is empty"),
    (["train", "gan", "--batch-size", "100000", "--steps", "1"], "lower --batch-size"),
    (["train", "gan", "--config", "/nonexistent.toml"], "does not exist"),
    (["train", "cgan", "--resume", "/nonexistent-run"], "config.json is missing"),
    (["train", "gan", "--data", "mnist:/nonexistent/mnist.npz"], "does not exist"),
    (["sample", "/nonexistent-run"], "does not exist"),
])
def test_user_errors_are_one_line_exit_2(capsys, argv, words):
    code, err = run_cli(capsys, *argv)
    assert code == 2
    assert words in err and err.count("\n") == 1 and "Traceback" not in err


def test_label_errors(capsys, cgan_run: Path):
    code, err = run_cli(capsys, "sample", str(cgan_run), "--label", "12")
    assert code == 2 and "'12' is not a value of attribute 'digit'" in err
    code, err = run_cli(capsys, "sample", str(cgan_run), "--labels", "1,2,3", "--n", "10")
    assert code == 2 and "not a multiple" in err
    code, err = run_cli(capsys, "sample", str(cgan_run), "--n", "0")
    assert code == 2 and "between 1 and" in err


def test_unconditional_model_refuses_labels(capsys, tmp_path: Path):
    from conftest import train_cli

    assert train_cli("gan", tmp_path / "r", "--steps", "2") == 0
    code, err = run_cli(capsys, "sample", str(tmp_path / "r"), "--label", "3")
    assert code == 2 and "unconditional" in err


def test_corrupt_run_folders(capsys, cgan_run: Path, tmp_path: Path):
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "generator.json").write_text((cgan_run / "generator.json").read_text())
    weights = (cgan_run / "generator.safetensors").read_bytes()
    (broken / "generator.safetensors").write_bytes(weights[: len(weights) // 2])
    code, err = run_cli(capsys, "sample", str(broken))
    assert code == 2 and "checksum" in err
    (broken / "generator.json").write_text("{not json")
    code, err = run_cli(capsys, "sample", str(broken))
    assert code == 2 and "not readable JSON" in err
    (broken / "generator.json").unlink()
    code, err = run_cli(capsys, "sample", str(broken))
    assert code == 2 and "no finished generator" in err


def test_debug_shows_the_traceback(capsys):
    with pytest.raises(Exception, match="Unknown model"):
        main(["--debug", "train", "stylegan"])


def test_console_entry_point_exits_2():
    proc = subprocess.run([sys.executable, "-m", "gankit", "train", "nope"], capture_output=True, text=True)
    assert proc.returncode == 2 and proc.stderr.startswith("gankit: error: Unknown model 'nope'")
