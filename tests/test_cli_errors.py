"""Every error a user can cause is one sentence on stderr and exit status 2, never a traceback."""

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from gankit.cli import main
from gankit.errors import GankitError
from gankit.models import get_family


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
    (["train", "cgan", "--resume", "/nonexistent-run"], "Run folder /nonexistent-run does not exist"),
    (["train", "srgan", "--init", "/nonexistent-run"],  # before srgan looks for its VGG19 weights
     "Run folder /nonexistent-run does not exist; pass the folder that `gankit train` wrote as --init (the run"),
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
    code, err = run_cli(capsys, "sample", str(cgan_run), "--labels", "1,,2")  # a label left out, most likely
    assert code == 2 and err == "gankit: error: --labels 1,,2 has an empty item; give comma-separated labels such as " \
        "0,1,2.\n"
    code, err = run_cli(capsys, "sample", str(cgan_run), "--labels", " , ")
    assert code == 2 and "--labels is empty" in err


def test_outputs_never_overwrite_the_files_a_run_needs(capsys, cgan_run: Path, tmp_path: Path):
    kept = {p: p.read_bytes() for p in cgan_run.rglob("*") if p.is_file()}
    step = sorted((cgan_run / "checkpoints").iterdir())[-1]
    for argv in (["export", str(cgan_run), "--out", str(cgan_run / "generator.safetensors")],
                 ["export", str(cgan_run), "--format", "torchscript", "--out", str(step / "weights.safetensors")],
                 ["eval", str(cgan_run), "--n", "10", "--json", str(cgan_run / "config.json")],
                 ["sample", str(cgan_run), "--out", str(cgan_run / "generator.json")],
                 ["sample", str(cgan_run), "--npz", str(step / "samples.npz")]):  # inside a checkpoint
        code, err = run_cli(capsys, *argv)
        assert code == 2 and "would overwrite a file that the run in" in err and err.count("\n") == 1, argv
    assert {p: p.read_bytes() for p in cgan_run.rglob("*") if p.is_file()} == kept
    # A folder of the user's own that merely has a config.json is no run: its files are not guarded.
    from gankit.atomic import writable

    (tmp_path / "project").mkdir()
    (tmp_path / "project/config.json").write_text("{}")
    assert writable(tmp_path / "project/checkpoints/grid.png", "--out").parent.is_dir()


def test_outputs_never_replace_a_device_or_a_pipe(capsys, cgan_run: Path, tmp_path: Path):
    """`-o /dev/null` replaced the system's /dev/null with a regular file (the temp file was renamed
    over it); a FIFO stands in for the device here."""
    import os
    import stat

    for name, argv in (("pipe", ["sample", str(cgan_run), "--out"]), ("pipe.npz", ["sample", str(cgan_run), "--npz"]),
                       ("pipe", ["eval", str(cgan_run), "--n", "10", "--json"]),
                       ("pipe", ["export", str(cgan_run), "--format", "onnx", "--out"])):
        fifo = tmp_path / name
        if not fifo.exists():
            os.mkfifo(fifo)
        code, err = run_cli(capsys, *argv, str(fifo))
        assert code == 2 and err.count("\n") == 1, (argv, err)
        assert f"{fifo} is not a regular file (a device, pipe or socket)" in err, (argv, err)
        assert stat.S_ISFIFO(fifo.lstat().st_mode), argv


def test_resume_refuses_flags_it_would_drop_and_paths_that_are_not_run_folders(capsys, cgan_run: Path, tmp_path):
    import json

    for extra, flag in ((["--out", str(tmp_path / "elsewhere")], "--out"), (["--config", "c.toml"], "--config"),
                        (["--init", str(cgan_run)], "--init"), (["--set", f"train.init={cgan_run}"], "--init"),
                        (["--seed", "3"], "--seed"), (["--set", "train.seed=3"], "--set train.seed")):
        code, err = run_cli(capsys, "train", "cgan", "--resume", str(cgan_run), *extra)
        assert code == 2 and f"{flag} does not apply with --resume" in err and err.count("\n") == 1
    assert not (tmp_path / "elsewhere").exists()
    code, err = run_cli(capsys, "train", "cgan", "--resume", str(cgan_run), "--set", "model.activation=relu")
    assert code == 2 and f"--set model.activation changes what the weights of {cgan_run} compute (it trained with " \
        "leaky_relu)" in err
    code, err = run_cli(capsys, "train", "cgan", "--resume", "")
    assert code == 2 and "not an empty path" in err
    code, err = run_cli(capsys, "train", "cgan", "--resume", str(cgan_run / "config.json"))
    assert code == 2 and "is a file; give the run folder" in err
    (tmp_path / "config.json").write_text(json.dumps({"model": None, "train": {}, "data": {}, "model_cfg": {}}))
    code, err = run_cli(capsys, "train", "cgan", "--resume", str(tmp_path))
    assert code == 2 and "its model entry is None" in err and "gankit train None" not in err


def test_a_file_given_for_a_folder_or_a_folder_for_a_file_says_which(capsys, cgan_run: Path, tmp_path: Path):
    code, err = run_cli(capsys, "sample", str(cgan_run / "config.json"))
    assert code == 2 and "is a file, not a folder" in err
    code, err = run_cli(capsys, "train", "srgan", "--steps", "1", "--vgg-weights", str(tmp_path))
    assert code == 2 and f"VGG19 weights file {tmp_path} is a folder" in err


def test_generator_files_that_gankit_never_writes_are_one_sentence(capsys, cgan_run: Path, tmp_path: Path):
    import json
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(cgan_run, copy)
    meta = json.loads((copy / "generator.json").read_text())
    for change, words in ((("model_cfg", "latent_dim", -1), "model.latent_dim must be at least 1, not -1"),
                          (("model_cfg", "g_hidden", [64]), "does not hold the weights of the cgan generator"),
                          (("model_cfg", "latent_dim", 2**63), "describes a generator that cannot be built here")):
        section, key, value = change
        broken = json.loads(json.dumps(meta))
        broken[section][key] = value
        (copy / "generator.json").write_text(json.dumps(broken))
        code, err = run_cli(capsys, "sample", str(copy))
        assert code == 2 and words in err and err.count("\n") == 1 and "Traceback" not in err, err


def test_generator_weights_missing_or_adding_a_tensor_are_refused(capsys, cgan_run: Path, tmp_path: Path):
    """Shapes that differ fail on their own; a tensor missing or added would load, leaving layers at random."""
    import json
    import shutil

    from safetensors.torch import load_file, save_file

    from gankit.atomic import sha256_bytes

    copy = tmp_path / "copy"
    shutil.copytree(cgan_run, copy)
    state = load_file(copy / "generator.safetensors")
    weight = next(k for k in sorted(state) if k.endswith(".weight"))  # BatchNorm's step counter may go missing
    for changed in ({k: v for k, v in state.items() if k != weight}, {**state, "extra.weight": state[weight]}):
        save_file({k: v.clone() for k, v in changed.items()}, copy / "generator.safetensors")
        meta = json.loads((copy / "generator.json").read_text())
        meta["sha256"] = sha256_bytes((copy / "generator.safetensors").read_bytes())
        (copy / "generator.json").write_text(json.dumps(meta))
        code, err = run_cli(capsys, "sample", str(copy), "--out", str(tmp_path / "grid.png"))
        assert code == 2 and "does not hold the weights of the cgan generator" in err and err.count("\n") == 1, err
    assert not (tmp_path / "grid.png").exists()


def test_sample_refuses_flags_it_would_ignore(capsys, cgan_run: Path):
    for argv, words in [(["--interpolate", "0"], "--interpolate must be between 2 and 64, not 0"),
                        (["--interpolate", "4", "--npz", "x.npz"], "--npz does not apply with --interpolate"),
                        (["--traverse", "c2", "--code", "c1=3"], "--code does not apply with --traverse"),
                        (["--traverse", "c2", "--interpolate", "4"], "either --traverse or --interpolate"),
                        (["--traverse", "c2", "--n", "7"], "--n does not apply with --traverse"),
                        (["--interpolate", "3", "--n", "7"], "--n does not apply with --interpolate"),
                        (["--grid", "digit", "--label", "3"], "--label does not apply with --grid"),
                        (["--grid", "digit", "--n", "3"], "--n does not apply with --grid"),
                        (["--steps", "5", "--n", "4"], "--steps sets the columns of a --traverse grid"),
                        (["--interpolate", "5", "--steps", "30"], "--steps sets the columns of a --traverse grid"),
                        (["--interpolate", "5", "--labels", "3,5"], "--interpolate draws one row, for one label"),
                        (["--attr", "digit=5", "--label", "3"], "--attr and --label/--labels both choose the labels"),
                        (["--attr", "digit=5", "--labels", "3,4"], "--attr and --label/--labels both choose"),
                        (["--traverse", " "], "--traverse is empty; name a code, e.g. --traverse c2"),
                        (["--grid", ""], "--grid is empty; name one or two attributes")]:
        code, err = run_cli(capsys, "sample", str(cgan_run), *argv)
        assert code == 2 and words in err and err.count("\n") == 1, argv


def test_samples_that_would_not_fit_in_memory_are_refused():
    from gankit.data.base import DataInfo
    from gankit.pipeline import MAX_VALUES, GeneratorPipeline

    class Faces128:  # only the shape matters: nothing is generated
        info = DataInfo((3, 128, 128))

    pipe = GeneratorPipeline(Faces128(), {"family": "dcgan"})
    with pytest.raises(GankitError, match=r"1,000,000 samples of shape \(3, 128, 128\) would take 183 GiB of memory; "
                                          r"ask for at most 21,845 at a time"):
        pipe.generate(1_000_000)
    assert MAX_VALUES // (3 * 128 * 128) == 21_845 and 1_000_000 * 784 <= MAX_VALUES  # a million digits still fit


def test_sample_outputs_are_checked_before_sampling(capsys, cgan_run: Path, tmp_path: Path, monkeypatch):
    from gankit.pipeline import GeneratorPipeline

    monkeypatch.setattr(GeneratorPipeline, "generate", lambda *a, **k: pytest.fail("sampled before checking"))
    monkeypatch.setattr(GeneratorPipeline, "interpolate", lambda *a, **k: pytest.fail("sampled before checking"))
    (tmp_path / "afile").write_text("")
    for flags, words in ((["--out", str(tmp_path)], "is a folder; give a file path"),
                         (["--out", str(tmp_path / "grid.xyz")], "ends in .xyz, which is not an image format"),
                         (["--interpolate", "4", "--out", str(tmp_path / "i.xyz")], "ends in .xyz, which is not"),
                         (["--npz", str(tmp_path / "afile" / "s.npz")], "Cannot create the folder of --npz")):
        code, err = run_cli(capsys, "sample", str(cgan_run), *flags)
        assert code == 2 and words in err and err.count("\n") == 1, (flags, err)


def test_an_unwritable_output_folder_is_refused_before_sampling(capsys, cgan_run: Path, tmp_path: Path,
                                                                monkeypatch):
    """Tests run as root, for whom every folder is writable: os.access is made to say no for two folders."""
    from gankit.pipeline import GeneratorPipeline

    monkeypatch.setattr(GeneratorPipeline, "generate", lambda *a, **k: pytest.fail("sampled before checking"))
    access, locked = os.access, {tmp_path / "locked", cgan_run}
    monkeypatch.setattr(os, "access", lambda path, mode, **kw: Path(path) not in locked and access(path, mode, **kw))
    code, err = run_cli(capsys, "sample", str(cgan_run), "--out", str(tmp_path / "locked/grid.png"))
    assert code == 2 and f"The folder of --out {tmp_path / 'locked/grid.png'} is not writable; choose another " \
        "path." in err
    assert err.count("\n") == 1
    code, err = run_cli(capsys, "sample", str(cgan_run))  # a read-only run: the user gave no --out
    assert code == 2 and err == f"gankit: error: The folder of --out's default {cgan_run / 'sample.png'} is not " \
        "writable; choose another path.\n"


def test_unconditional_model_refuses_labels(capsys, tmp_path: Path):
    from conftest import train_cli

    import gankit

    assert train_cli("gan", tmp_path / "r", "--steps", "2") == 0
    code, err = run_cli(capsys, "sample", str(tmp_path / "r"), "--label", "3")
    assert code == 2 and "unconditional" in err
    with pytest.raises(GankitError, match="This gan model is unconditional"):  # the API has no CLI check before it
        gankit.load(tmp_path / "r").sample(2, labels=[3])


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


def test_a_folder_that_holds_runs_is_not_told_to_train(capsys, cgan_run: Path, tmp_path: Path):
    """A folder of runs (or any folder without a run) was told 'train it (or resume it) until a
    checkpoint is written', which neither command can do; it is named as no run, with the runs inside."""
    import gankit

    for argv in (["sample", str(cgan_run.parent)], ["export", str(cgan_run.parent)],
                 ["eval", str(cgan_run.parent)], ["upscale", str(cgan_run.parent), str(tmp_path / "x.png")]):
        code, err = run_cli(capsys, *argv)
        assert code == 2 and err.count("\n") == 1, (argv, err)
        assert f"{cgan_run.parent} is not a run folder (it has no generator.json)" in err, (argv, err)
        assert f"such as {cgan_run}" in err or f" or {cgan_run} inside it" in err, (argv, err)
    code, err = run_cli(capsys, "sample", str(tmp_path))
    assert code == 2 and f"{tmp_path} is not a run folder" in err and "such as" not in err
    with pytest.raises(GankitError, match="is not a run folder"):
        gankit.load(tmp_path)


def test_debug_shows_the_traceback(capsys):
    with pytest.raises(Exception, match="Unknown model"):
        main(["--debug", "train", "stylegan"])


def test_console_entry_point_exits_2():
    proc = subprocess.run([sys.executable, "-m", "gankit", "train", "nope"], capture_output=True, text=True)
    assert proc.returncode == 2 and proc.stderr.startswith("gankit: error: Unknown model 'nope'")


# --- found by a review of the error paths (2026-11-24): each of these used to end in a traceback ----
@pytest.mark.parametrize("argv, words", [
    (["train", "gan", "--set", "model.g_hidden=0"], "model.g_hidden must list one or more layer widths of at least 1"),
    (["train", "gan", "--set", "model.d_dropout=1.5"], "model.d_dropout must be 0 (off) or between 0.004 and 0.996"),
    (["train", "gan", "--set", "model.d_dropout=0.999"], "(it is rounded to a multiple of 1/256), not 0.999"),
    (["train", "gan", "--set", "model.d_dropout=0.001"], "model.d_dropout must be 0 (off) or between"),
    (["train", "gan", "--seed", "-1"], "train.seed must be a whole number between 0 and 2,147,483,647, not -1"),
    (["train", "gan", "--set", "train.seed=9223372036854775807"], "train.seed must be a whole number between 0 and"),
    (["train", "gan", "--set", "train.eval_every=1", "--set", "train.eval_samples=5"],
     "train.eval_samples must be at least 10 when train.eval_every is set, not 5"),
    (["train", "gan", "--vgg-weights", "vgg.pth"], "--vgg-weights applies to srgan's perceptual loss, not to gan"),
    (["train", "gan", "--steps", "5", "--set", "train.steps=7"],
     "--set train.steps and --steps/--epochs/--minutes both set train.steps; give one of them."),
    (["train", "gan", "--minutes", "1", "--set", "train.epochs=2"], "--set train.epochs and "
                                                                    "--steps/--epochs/--minutes"),
    (["train", "gan", "--lr", "1e-3", "--set", "train.lr_g=5e-4"], "--set train.lr_g and --lr both set train.lr_g"),
    (["train", "gan", "--data", "mnist", "--set", "data.spec=toy:ring8"], "--set data.spec and --data both set"),
    (["train", "gan", "--steps", "5", "--epochs", "1"], "--steps and --epochs both set how long to train; give one"),
    (["train", "gan", "--resume", "/nonexistent-run", "--seed", "7"], "--seed does not apply with --resume"),
    (["train", "gan", "--steps", "99999999999999999999999"], "train.steps must be at most 1,000,000,000, not 99,999"),
    (["train", "gan", "--minutes", "1e9"], "train.minutes must be at most 525,600, not 1,000,000,000"),
    (["train", "gan", "--set", "train.threads=100000"], "train.threads must be at most 1,024, not 100,000"),
    (["train", "gan", "--out", " "], "--out needs the folder for the new run, not an empty path"),
    (["train", "gan", "--batch-size", "0"], "train.batch_size must be at least 2, not 0"),
    (["train", "acgan", "--set", "model.loss=hinge"],
     "model.label_smoothing is 0.1, which the hinge loss cannot use (acgan smooths unless told not to); add --set "
     "model.label_smoothing=0."),
    (["train", "gan", "--set", "data.image_size=100000"], "data.image_size must be between 0 (the source's own size) "
                                                          "and 1,024 pixels, not 100000"),
    (["data", "export", "faces", "/tmp/gankit-never-written", "--n", "5", "--size", "100000"],
     "--size 100000 is larger than 1,024 pixels"),
    (["data", "export", "faces", "/tmp/gankit-never-written", "--n", "5", "--size", "3"],
     "--size 3 is too small to draw a face's eyes; give --size 8 or more"),
    (["data", "export", "faces", "/tmp/gankit-never-written", "--n", "0"], "--n 0 exports no face; give --n 1 or more"),
])
def test_out_of_range_settings_are_refused_before_training(capsys, argv, words):
    code, err = run_cli(capsys, *argv)
    assert code == 2 and words in err and "Traceback" not in err


# --- settings that used to be accepted and then did nothing (review of 2026-11-24) -------------------
@pytest.mark.parametrize("argv, words", [
    (["srresnet", "--set", "model.loss=lsgan", "--set", "model.d_dense=5"],
     "srresnet does not use model.loss, model.d_dense: it has no discriminator"),
    (["srresnet", "--vgg-weights", "vgg.pth"], "srresnet does not use model.vgg_weights: only the perceptual loss"),
    (["srresnet", "--set", "train.d_steps=2"], "srresnet has no discriminator, so train.d_steps does nothing"),
    (["srresnet", "--set", "train.eval_every=2"], "which srresnet on photos has none of (super-resolution is scored"),
    (["gan", "--data", "toy:ring8", "--set", "train.eval_every=2"], "which gan on toy:ring8 has none of (vector data"),
    (["srresnet", "--set", "data.image_size=64"], "drop data.image_size and data.channels (model.crop sets the crop)"),
    (["cgan", "--set", "model.conditioning=concat", "--set", "model.g_embedding_lr_mult=1"],
     "cgan does not use model.g_embedding_lr_mult: model.conditioning=concat has no label embeddings; drop it."),
    (["infogan", "--set", "model.categorical=", "--set", "model.lambda_cat=2", "--set", "model.q_augment=30"],
     "infogan does not use model.lambda_cat, model.q_augment: there is no categorical code"),
    (["infogan", "--set", "model.continuous=0", "--set", "model.lambda_cont=2", "--set", "model.learn_variance=false"],
     "infogan does not use model.lambda_cont: there is no continuous code (model.continuous is 0)"),
    # and in the review of 2026-11-24 evening
    (["dcgan", "--set", "model.augment_target=0.6"],
     "dcgan does not use model.augment_target: they adapt the transforms model.augment chooses, and it chooses none"),
    (["cgan", "--set", "model.augment=translation", "--set", "model.augment_ramp=1000"],
     "cgan does not use model.augment_ramp: model.augment_target is 0, so every image is transformed"),
    (["cgan", "--set", "model.g_embedding_lr_mult=1", "--set", "model.d_embedding_lr_mult=1",
      "--set", "model.embedding_lr_mult_steps=500"],
     "cgan does not use model.embedding_lr_mult_steps: both label-embedding multipliers are 1"),
    (["infogan", "--set", "model.lambda_cat=0", "--set", "model.q_augment=30"],
     "infogan does not use model.q_augment: model.lambda_cat is 0"),
    (["infogan", "--set", "model.lambda_cat=0", "--set", "model.lambda_cont=0"],
     "model.lambda_cat and model.lambda_cont are both 0, so nothing ties the codes to the images"),
    (["srgan", "--set", "model.adversarial_weight=0"],
     "model.adversarial_weight is 0, so srgan's D would train with nothing reading it"),
    (["dcgan", "--set", "model.loss=hinge", "--set", "model.label_smoothing=0.1"],
     "which the hinge loss cannot use (acgan smooths unless told not to)"),
    (["gan", "--set", "model.pack=3"], "train.batch_size (128) must be a multiple of model.pack (3)."),
])
def test_settings_a_model_would_ignore_are_refused(capsys, tmp_path, argv, words):
    code, err = run_cli(capsys, "train", *argv, "--steps", "1", "--out", str(tmp_path / "run"))
    assert code == 2 and words in err and "Traceback" not in err
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("family, settings", [
    ("infogan", {"lambda_cat": 0.0, "q_augment": 0.0}),
    ("infogan", {"categorical": (), "lambda_cat": 0.0, "q_augment": 0.0}),
    ("infogan", {"continuous": 0, "lambda_cont": 0.0, "learn_variance": False}),
])
def test_turning_off_a_part_that_cannot_run_is_not_refused(family, settings):
    """Set to 0 or false, these settings say what the run does anyway (a review found the first refused)."""
    cls = get_family(family)
    cls.refuse_ignored_settings(dataclasses.replace(cls.default_config(cls.default_data), **settings))


@pytest.mark.parametrize("toml, words", [
    ("[model]\ng_hidden = 256\n", "model.g_hidden in {} must be comma-separated whole numbers such as 256,512, not "
                                  "256"),
    ("[train]\nsteps = [1, 2]\n", "train.steps in {} must be an integer, not [1, 2]"),
    ("[train]\nsteps = 1979-05-27\n", "train.steps in {} must be an integer"),
    ("[train]\nsteps = 1e3\n", "train.steps in {} must be an integer, not 1000.0"),  # as --set refuses "1e3"
    ("[train]\nseed = 5.0\n", "train.seed in {} must be an integer, not 5.0"),
    ("[train]\nlr_g = 2020-01-01\n", "train.lr_g in {} must be a number"),
    ("[train]\nstep = 5\n", "Unknown setting 'train.step' in {}; valid keys in [train] are: steps,"),
    ("train = 5\n", "train in {} must be a table of settings, not 5; write [train] on its own line"),
    ("steps = 5\n[train]\nseed = 1\n", "steps in {} is outside any table; put it under [train]."),
    ("latent_dim = 5\n", "latent_dim in {} is outside any table; put it under [model]."),
    ("[optim]\nlr = 1\n", "Unknown config section [optim] in {}"),
])
def test_toml_errors_name_the_file_and_the_key(capsys, tmp_path, toml, words):
    (tmp_path / "c.toml").write_text(toml)
    code, err = run_cli(capsys, "train", "gan", "--config", str(tmp_path / "c.toml"))
    assert code == 2 and words.format(tmp_path / "c.toml") in err and err.count("\n") == 1


def test_a_damaged_config_json_is_named_on_resume_not_given_toml_advice(capsys, tmp_path):
    import json

    (tmp_path / "config.json").write_text(json.dumps({"model": "gan", "train": 5, "data": {}, "model_cfg": {}}))
    code, err = run_cli(capsys, "train", "gan", "--resume", str(tmp_path))
    assert code == 2 and err.count("\n") == 1
    assert f"train in {tmp_path / 'config.json'} must be a table of settings, not 5; restore the file" in err
    assert "key = value" not in err


@pytest.mark.parametrize("section, entry, words", [
    ("model_cfg", {"latent_dim": "x"}, "model_cfg.latent_dim in {} must be an integer, not 'x'; restore the file as "
                                       "gankit wrote it."),
    ("model_cfg", {"wings": 2}, "model_cfg.wings in {} is not a setting of this gankit version"),
    ("train", {"steps": "x"}, "train.steps in {} must be an integer, not 'x'; restore the file as gankit wrote it."),
    ("train", {"wings": 2}, "train.wings in {} is not a setting of this gankit version"),
])
def test_a_bad_entry_in_a_saved_config_json_names_the_file_and_the_fix(capsys, tmp_path, section, entry, words):
    import json

    run = tmp_path / "run"
    code, _ = run_cli(capsys, "train", "gan", "--steps", "2", "--batch-size", "8", "--no-progress", "--out", str(run))
    assert code == 0
    saved = json.loads((run / "config.json").read_text())
    saved[section].update(entry)
    (run / "config.json").write_text(json.dumps(saved))
    readers = [["train", "gan", "--resume", str(run), "--steps", "3"]]
    readers += [["probe", str(run)]] * (section == "model_cfg")
    for argv in readers:  # probe reads only model_cfg, to build D
        code, err = run_cli(capsys, *argv)
        assert code == 2 and words.format(run / "config.json") in err and err.count("\n") == 1


def test_unreadable_config_files_name_the_file(capsys, tmp_path):
    (tmp_path / "latin1.toml").write_bytes(b"[train]\n# caf\xe9\nsteps = 1\n")
    code, err = run_cli(capsys, "train", "gan", "--config", str(tmp_path / "latin1.toml"))
    assert code == 2 and "is not UTF-8 text" in err
    code, err = run_cli(capsys, "train", "gan", "--config", str(tmp_path))
    assert code == 2 and f"Cannot read the config file {tmp_path}" in err


def test_sample_arguments_out_of_range(capsys, cgan_run: Path, tmp_path: Path):
    for argv, words in [(["--n", "-1"], "--n must be between 1 and 1,000,000, not -1"),
                        (["--n", "0", "--code", "c1=3"], "--n must be between 1"),
                        (["--seed", str(2**70)], "--seed must be a whole number between 0 and "
                                                 "9,223,372,036,854,775,807")]:
        code, err = run_cli(capsys, "sample", str(cgan_run), *argv)
        assert code == 2 and words in err
    code, err = run_cli(capsys, "sample", str(cgan_run), "--traverse", "c2", "--out", str(tmp_path))
    assert code == 2 and "is a folder; give a file path" in err


def test_outputs_in_unwritable_places_fail_before_the_work(capsys, cgan_run: Path, tmp_path: Path):
    (tmp_path / "file").write_text("")
    code, err = run_cli(capsys, "eval", str(cgan_run), "--n", "20", "--json", str(tmp_path / "file" / "x.json"))
    assert code == 2 and "Cannot create the folder of --json" in err
    assert not (tmp_path / "file" / "x.json").exists()


def test_eval_takes_a_seed_and_records_it(capsys, cgan_run: Path, tmp_path: Path):
    import json

    runs = {}
    for seed in ("0", "7", None):
        out = tmp_path / f"{seed}.json"
        assert run_cli(capsys, "eval", str(cgan_run), "--n", "50", "--json", str(out),
                       *(["--seed", seed] if seed else []))[0] == 0
        runs[seed] = json.loads(out.read_text())
    assert runs["7"]["seed"] == 7 and runs[None]["seed"] == 0 and runs[None]["fid"] == runs["0"]["fid"]
    assert runs["7"]["fid"] != runs["0"]["fid"]  # other samples
    code, err = run_cli(capsys, "eval", str(cgan_run), "--n", "50", "--seed", "-1")
    assert code == 2 and "--seed must be a whole number between 0 and" in err


def test_probe_and_eval_refuse_runs_they_cannot_read_in_one_sentence(capsys, tmp_path: Path):
    import json
    import shutil

    from conftest import train_cli

    from gankit.artifacts import FORMAT
    from gankit.probe import labelled_splits

    sr = tmp_path / "sr"
    sr.mkdir()
    (sr / "generator.json").write_text(json.dumps({"format": FORMAT, "family": "srresnet", "model_cfg": {},
                                                   "data": {"shape": [3, 32, 32], "attributes": []}}))
    code, err = run_cli(capsys, "probe", str(sr))
    assert code == 2 and "is a super-resolution run" in err and "drop --data" not in err
    assert train_cli("gan", tmp_path / "gan", "--steps", "2") == 0
    shutil.rmtree(tmp_path / "gan/checkpoints")
    code, err = run_cli(capsys, "probe", str(tmp_path / "gan"), "--budgets", "20")
    assert code == 2 and "has no checkpoint, which is where D is kept" in err and "--resume" not in err
    with pytest.raises(GankitError, match="holds out 2000 test images .* probe a larger dataset"):
        labelled_splits(np.arange(200) % 10, (10,), 2000, 0)
    with pytest.raises(GankitError, match="need 250 images but the dataset holds 200; lower the label budgets"):
        labelled_splits(np.arange(200) % 10, (150,), 100, 0)
    assert train_cli("gan", tmp_path / "toy", "--steps", "2", "--data", "toy:ring8") == 0
    code, err = run_cli(capsys, "eval", str(tmp_path / "toy"), "--n", "20")
    assert code == 2 and "These scores compare images" in err and "Inception" not in err
    code, err = run_cli(capsys, "probe", str(tmp_path / "toy"), "--budgets", "20")
    assert code == 2 and "toy trained on vectors of shape (2,), not images; probe reads the discriminator" in err
    saved = json.loads((tmp_path / "gan/config.json").read_text())
    saved["model_cfg"]["d_hidden"] = [-1]  # a D no settings gankit accepts can build
    (tmp_path / "gan/config.json").write_text(json.dumps(saved))
    code, err = run_cli(capsys, "probe", str(tmp_path / "gan"), "--budgets", "20")
    assert code == 2 and "config.json holds settings gankit never writes" in err and "Traceback" not in err


def test_networks_too_large_to_allocate_are_one_sentence(capsys, tmp_path: Path, monkeypatch):
    from conftest import train_cli

    from gankit.models.gan import GAN

    def unallocatable(self, cfg, info):
        raise RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 102400000000 bytes.")
    monkeypatch.setattr(GAN, "__init__", unallocatable)
    assert train_cli("gan", tmp_path / "big", "--steps", "2", "--set", "model.latent_dim=100000000") == 2
    err = capsys.readouterr().err
    assert "The gan networks that these model settings build do not fit in memory on cpu (DefaultCPUAllocator" in err
    assert err.count("\n") == 1 and "lower the model sizes given with --set model.KEY=VALUE." in err


def test_a_reader_that_leaves_early_gets_no_traceback():
    reader = subprocess.Popen([sys.executable, "-m", "gankit", "models"], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE)
    reader.stdout.close()  # as `gankit models | head -0` does, before gankit writes a line
    assert reader.wait(timeout=120) == 141
    assert reader.stderr.read() == b""


def test_probe_and_serve_arguments(capsys, cgan_run: Path):
    code, err = run_cli(capsys, "probe", str(cgan_run), "--budgets", ",")
    assert code == 2 and "--budgets must list label budgets of at least 1" in err
    # other data are loaded at the run's size and channels, then must be large enough to probe
    code, err = run_cli(capsys, "probe", str(cgan_run), "--data", "faces:300", "--budgets", "20")
    assert code == 2 and "The probe holds out 2000 test images" in err and "the dataset holds 300" in err
    code, err = run_cli(capsys, "probe", str(cgan_run), "--data", "toy:ring8")
    assert code == 2 and "--data toy:ring8 holds vectors, not images" in err and "image_size" not in err
    if not torch.cuda.is_available():  # a GPU asked for is an error before anything loads, not a CPU run
        for argv in (["probe", str(cgan_run), "--data", "faces:300"], ["sample", str(cgan_run)]):
            code, err = run_cli(capsys, *argv, "--device", "cuda")
            assert code == 2 and "PyTorch sees no CUDA GPU; use --device cpu (or auto)." in err
    for port in ("70000", "0"):
        code, err = run_cli(capsys, "serve", str(cgan_run), "--port", port)
        assert code == 2 and f"--port must be between 1 and 65535, not {port}" in err


def test_resume_with_networks_of_another_shape_is_refused(capsys, tmp_path: Path):
    from conftest import train_cli

    assert train_cli("gan", tmp_path / "r", "--steps", "2", "--set", "train.checkpoint_every=1") == 0
    code, err = run_cli(capsys, "train", "gan", "--resume", str(tmp_path / "r"), "--steps", "3",
                        "--set", "model.latent_dim=50")
    assert code == 2 and "does not fit the one these settings build" in err


def test_a_run_that_crashed_before_its_first_checkpoint_starts_again_in_place(capsys, tmp_path: Path):
    """--resume sends such a folder to --out, and --out must then accept it (it used to send it back)."""
    from conftest import read_metrics, train_cli

    import shutil

    run = tmp_path / "r"
    assert train_cli("gan", run, "--steps", "5") == 0
    shutil.rmtree(run / "checkpoints")  # as if it had crashed while writing its first checkpoint,
    (run / "checkpoints" / ".tmp-step-000005").mkdir(parents=True)
    for written_after in ("generator.json", "generator.safetensors"):  # which the generator files follow
        (run / written_after).unlink()
    code, err = run_cli(capsys, "train", "gan", "--resume", str(run), "--steps", "3")
    assert code == 2 and f"start it again with --out {run} instead of --resume" in err
    assert train_cli("gan", run, "--steps", "2") == 0
    assert [r["step"] for r in read_metrics(run) if "loss_d" in r] == [1, 2]  # the crashed run's records are gone


def test_corrupt_checkpoints_only_are_not_a_loop(capsys, tmp_path: Path):
    from conftest import train_cli

    run = tmp_path / "r"
    assert train_cli("gan", run, "--steps", "2", "--set", "train.checkpoint_every=1") == 0
    for weights in (run / "checkpoints").glob("step-*/weights.safetensors"):
        weights.write_bytes(b"broken")
    code, err = run_cli(capsys, "train", "gan", "--resume", str(run), "--steps", "3")
    assert code == 2 and "None of the 2 checkpoints" in err and "its generator" in err
    assert "To train again, choose a new --out." in err and f"--out {run}" not in err  # which would replace it
    for name in ("generator.json", "generator.safetensors"):
        (run / name).unlink()
    code, err = run_cli(capsys, "train", "gan", "--resume", str(run), "--steps", "3")
    assert code == 2 and "start the run again in a new folder, or delete" in err


def test_nan_before_the_first_checkpoint_does_not_promise_one(capsys, tmp_path: Path):
    code, err = run_cli(capsys, "train", "gan", "--out", str(tmp_path / "nan"), "--data", "toy:gauss1d,mean=1e38",
                        "--set", "model.loss=lsgan", "--steps", "3", "--no-progress")
    assert code == 2 and "before its first checkpoint; start it again with lower learning rates" in err
    assert "is intact" not in err


def test_npz_path_reported_is_the_file_written(capsys, cgan_run: Path, tmp_path: Path):
    assert main(["sample", str(cgan_run), "--n", "4", "--npz", str(tmp_path / "s")]) == 0
    assert f"wrote 4 samples to {tmp_path / 's.npz'}" in capsys.readouterr().out
    assert (tmp_path / "s.npz").exists()


def test_face_export_count_is_capped(capsys, tmp_path: Path):
    code, err = run_cli(capsys, "data", "export", "faces", str(tmp_path / "f"), "--n", "2000000")
    assert code == 2 and "more than 1,000,000 faces" in err and not (tmp_path / "f" / "tags.csv").exists()


@pytest.mark.parametrize("name, text", [("generator.json", "[]"), ("generator.json", '{"format": "x"}'),
                                        ("config.json", "[1]"), ("config.json", '{"model": "cgan"}')])
def test_run_files_of_valid_json_but_the_wrong_content(capsys, cgan_run: Path, tmp_path: Path, name, text):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(cgan_run, run)
    (run / name).write_text(text)
    command = ["sample", str(run)] if name == "generator.json" else ["train", "cgan", "--resume", str(run)]
    code, err = run_cli(capsys, *command)
    assert code == 2 and name in err and "Traceback" not in err
    code, err = run_cli(capsys, "probe", str(run), "--budgets", "20")
    assert code == 2 and name in err


@pytest.mark.parametrize("entry, value", [("data", {"shape": [1, 28, 28]}),
                                          ("data", {"shape": "abc", "attributes": []}), ("data", [1, 2]),
                                          ("family", ["cgan"]), ("model_cfg", [1]), ("data_spec", 5),
                                          ("step", "x")])
def test_generator_json_entries_of_the_wrong_content(capsys, cgan_run: Path, tmp_path: Path, entry, value):
    import json
    import shutil

    run = tmp_path / "run"
    shutil.copytree(cgan_run, run)
    meta = json.loads((run / "generator.json").read_text())
    meta[entry] = value
    (run / "generator.json").write_text(json.dumps(meta))
    for command in (["sample", str(run)], ["eval", str(run), "--n", "20"], ["export", str(run)]):
        code, err = run_cli(capsys, *command)
        assert code == 2 and f"its {entry} entry" in err and "copy the run folder again" in err, command


def test_sample_of_a_toy_run_saves_the_points(capsys, tmp_path: Path):
    import numpy as np

    run = tmp_path / "ring"
    assert main(["train", "gan", "--data", "toy:ring8", "--out", str(run), "--steps", "2", "--batch-size", "64",
                 "--no-progress"]) == 0
    assert main(["sample", str(run), "--n", "50"]) == 0
    assert np.load(run / "samples.npz")["images"].shape == (50, 2)
    code, err = run_cli(capsys, "sample", str(run), "--interpolate", "5")
    assert code == 2 and "generates 2-d points, not images; drop --interpolate, and use --npz" in err
    code, err = run_cli(capsys, "sample", str(run), "--out", str(tmp_path / "p.png"))  # names what was given
    assert code == 2 and "generates 2-d points, not images; drop --out, and use --npz" in err


# --- a second review (2026-11-24): the Python API and the data edges --------------------------------
def test_batch_of_one_is_refused_before_batchnorm_sees_it(capsys):
    code, err = run_cli(capsys, "train", "cgan", "--batch-size", "1", "--steps", "2")
    assert code == 2 and "train.batch_size must be at least 2, not 1" in err


def test_pipeline_names_labels_beyond_int64_and_latents_that_are_not_a_tensor(cgan_run: Path):
    import gankit

    pipe = gankit.load(cgan_run)
    width = pipe.generator.latent_dim
    for call, words in [(lambda: pipe.sample(1, labels={"digit": 2**70}), "Label 1180591620717411303424 is outside"),
                        (lambda: pipe.sample(1, labels={"digit": 1e20}), "Label 1e\\+20 is outside 'digit'"),
                        # a cast to int64 wrapped these into -2**63 and -1, named as the label given
                        (lambda: pipe.sample(1, labels=[1e20]), r"not \[1e\+20\]"),
                        (lambda: pipe.sample(1, labels=[float("inf")]), r"not \[inf\]"),
                        (lambda: pipe.sample(1, labels=np.array([2**64 - 1], dtype=np.uint64)), "18446744073709551615"),
                        (lambda: pipe.decode(np.zeros((2, width))), "must be a tensor of real numbers"),
                        (lambda: pipe.decode([[0.0] * width]), "must be a tensor of real numbers"),
                        (lambda: pipe.generate(2, codes=[1]), "codes must be a dict"),
                        (lambda: pipe.decode(torch.zeros(0, width)), r"shape \(0, 100\); this generator takes "
                                                                     r"\(n, 100\) with n at least 1"),
                        (lambda: pipe.walk(torch.zeros(1, 3), torch.zeros(1, width), 5),  # was a NaN tensor
                         r"walk's za must be one latent of shape \(1, 100\), as latents\(1\) draws it, not \(1, 3\)"),
                        (lambda: pipe.walk(torch.zeros(1, width), [0.0] * width, 5), "walk's zb must be one latent"),
                        (lambda: pipe.walk(torch.zeros(1, width), torch.ones(1, width), 0),  # was an empty tensor
                         "A walk's number of steps must be")]:
        with pytest.raises(GankitError, match=words):
            call()
    z = pipe.latents(2, seed=3)
    assert torch.equal(pipe.decode(z.double(), labels=[4]), pipe.decode(z, labels=[4]))  # float64 latents work


def test_a_generator_json_naming_an_unknown_model_is_called_damaged(cgan_run: Path, tmp_path: Path):
    import json
    import shutil

    import gankit

    copy = tmp_path / "copy"
    shutil.copytree(cgan_run, copy)
    meta = json.loads((copy / "generator.json").read_text())
    (copy / "generator.json").write_text(json.dumps({**meta, "family": "bogus"}))  # was: Unknown model 'bogus'
    with pytest.raises(GankitError, match="names the model 'bogus', which gankit does not have \\(.*cgan.*\\); "
                                          "the file is damaged: copy the run folder again."):
        gankit.load(copy)


def test_load_expands_the_home_folder_and_names_a_path_that_is_not_one(cgan_run: Path, monkeypatch):
    import gankit

    monkeypatch.setenv("HOME", str(cgan_run.parent))
    assert gankit.load(f"~/{cgan_run.name}").family == "cgan"  # was: Run folder ~/cgan does not exist
    for bad in (None, 5):  # a TypeError from pathlib
        with pytest.raises(GankitError, match=f"gankit.load takes the path of a run folder, not {bad}"):
            gankit.load(bad)


def test_train_from_python_validates_the_config(tmp_path: Path):
    from gankit.config import RunConfig
    from gankit.errors import GankitError
    from gankit.models import get_family
    from gankit.train import train

    cfg = RunConfig("gan", get_family("gan").default_config("mnist"))
    cfg.train.steps = 0  # no budget at all: it used to run until killed
    with pytest.raises(GankitError, match="budget is empty"):
        train(cfg, tmp_path / "r")
    cfg.train.steps, cfg.train.d_steps = 2, 0
    with pytest.raises(GankitError, match="train.d_steps must be at least 1"):
        train(cfg, tmp_path / "r")


@pytest.mark.parametrize("key, value, words", [
    ("steps", 2.5, "train.steps must be an integer, not 2.5"),  # it trained a fractional budget
    ("steps", "ten", "train.steps must be an integer, not 'ten'"),  # a TypeError from the range checks
    ("lr_g", None, "train.lr_g must be a number, not None"),
    ("precision", "fp16", "train.precision must be one of 'auto', 'fp32', 'bf16', not 'fp16'"),  # ran as auto
])
def test_train_from_python_checks_the_type_of_each_setting(tmp_path: Path, key, value, words):
    from gankit.config import RunConfig
    from gankit.train import train

    cfg = RunConfig("gan", get_family("gan").default_config("mnist"))
    setattr(cfg.train, key, value)
    with pytest.raises(GankitError, match=words):
        train(cfg, tmp_path / "r")
    assert not (tmp_path / "r").exists()


def test_train_from_python_takes_numpy_numbers_and_refuses_another_models_settings(tmp_path: Path):
    from gankit.config import RunConfig, validate
    from gankit.train import train

    cfg = RunConfig("gan", get_family("gan").default_config("mnist"))
    cfg.train.steps, cfg.train.lr_g = np.int64(3), np.float32(1e-3)
    validate(cfg)
    assert type(cfg.train.steps) is int and type(cfg.train.lr_g) is float  # config.json can hold them
    with pytest.raises(GankitError, match="cfg.model_cfg is a .*, not the settings of model cgan"):
        train(RunConfig("cgan", get_family("gan").default_config("mnist")), tmp_path / "r")  # an AttributeError


def test_data_built_in_python_is_checked_as_the_loaders_guarantee():
    from gankit.data import load_dataset
    from gankit.data.base import DataInfo, TensorData

    mnist = load_dataset("mnist")
    pixels, labels = mnist.stored[:64], mnist.labels[:64]
    grey = DataInfo((1, 28, 28))
    for build, words in [
        # each trained on into a traceback inside the model, or quietly on unscaled pixels
        (lambda: TensorData(pixels, labels.float(), mnist.info, "d"), "holds torch.float32 labels; store class num"),
        (lambda: TensorData(pixels, labels + 10, mnist.info, "d"), "'digit' from 10 to 10; its classes are 0-9"),
        (lambda: TensorData(pixels.float(), None, grey, "d"),
         "float images with values from 0 to 255; store uint8 pixels"),
        (lambda: TensorData(pixels.double(), None, grey, "d"), "holds torch.float64 samples"),
    ]:
        with pytest.raises(GankitError, match=words):
            build()
    assert len(TensorData(mnist.take(slice(0, 64)), labels, mnist.info, "d")) == 64  # floats in [-1, 1]


def test_pipeline_refuses_counts_seeds_and_labels_that_are_not_whole(cgan_run: Path):
    import gankit
    from gankit.errors import GankitError

    pipe = gankit.load(cgan_run)
    for call, words in [(lambda: pipe.sample(2.5), "number of samples must be a whole number"),
                        (lambda: pipe.sample(True), "number of samples must be a whole number"),
                        (lambda: pipe.generate(5, batch_size=0), "batch_size must be a whole number between 1"),
                        (lambda: pipe.sample(4, seed=1.5), "The seed must be a whole number"),
                        (lambda: pipe.sample(4, seed=2**70), "The seed must be a whole number"),
                        (lambda: pipe.interpolate(5.0), "number of steps must be a whole number"),
                        (lambda: pipe.sample(1, labels=[7.5]), "Labels must be whole class numbers"),
                        (lambda: pipe.sample(1, labels=[True]), "Labels must be whole class numbers"),
                        (lambda: pipe.sample(1, labels=torch.tensor([float("nan")])), "whole class numbers"),
                        # a dict fixing attributes by name: the same rule, and value names too
                        (lambda: pipe.sample(1, labels={"digit": 7.9}), "'digit' must be a whole class number"),
                        (lambda: pipe.sample(1, labels={"digit": True}), "'digit' must be a whole class number"),
                        (lambda: pipe.sample(1, labels={"digit": "seven"}), "'seven' is not a value of attribute"),
                        (lambda: pipe.sample(1, labels={"digit": 10}), "Label 10 is outside 'digit'"),
                        (lambda: pipe.sample(2, labels=[-1]), "Label -1 is outside 'digit', whose classes are 0-9"),
                        (lambda: pipe.sample(2, labels={"colour": 1}),  # a typo fixes nothing: refused, not ignored
                         "Unknown attribute 'colour'; this model's attributes are digit")]:
        with pytest.raises(GankitError, match=words):
            call()
    assert pipe.sample(3, labels=[7.0], seed=np.int64(4)).shape == (3, 1, 28, 28)  # whole floats and numpy ints
    by_class = pipe.generate(3, labels={"digit": 7}, seed=4)
    for same in ({"digit": "7"}, {"digit": 7.0}, {"digit": np.int64(7)}):  # a value name, as --attr takes
        images, labels = pipe.generate(3, labels=same, seed=4)
        assert labels.flatten().tolist() == [7, 7, 7] and torch.equal(images, by_class[0])


@pytest.mark.parametrize("device, words", [("gpu", "Unknown device 'gpu'"), ("cuda:x", "Unknown device"),
                                           ("cpu:1", "Unknown device")])
def test_device_names_are_checked(device, words):
    from gankit.device import resolve_device
    from gankit.errors import GankitError

    with pytest.raises(GankitError, match=words):
        resolve_device(device)
    assert resolve_device("cpu").type == "cpu"


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the machine without a GPU")
def test_cuda_without_a_gpu_is_an_error_not_the_cpu(cgan_run: Path):
    import gankit
    from gankit.device import resolve_device
    from gankit.errors import GankitError

    for device in ("cuda", "cuda:0"):
        with pytest.raises(GankitError, match="PyTorch sees no CUDA GPU"):
            resolve_device(device)
    with pytest.raises(GankitError, match="sees no CUDA GPU"):
        gankit.load(cgan_run, device="cuda")


def test_python_api_output_paths_are_checked_before_the_work(cgan_run: Path, tmp_path: Path):
    from gankit.errors import GankitError
    from gankit.metrics import run_eval

    with pytest.raises(GankitError, match="The JSON path .* is a folder"):
        run_eval(cgan_run, n=20, json_path=tmp_path)
    assert not list(tmp_path.parent.glob(f".{tmp_path.name}.tmp*"))  # no stray temporary file beside it


def test_toy_values_past_float32_are_named():
    from gankit.data import load_dataset
    from gankit.errors import GankitError

    with pytest.raises(GankitError, match="beyond float32's range"):
        load_dataset("toy:gauss1d,mean=1e39")


def test_a_new_run_saves_its_data_path_absolute(tmp_path: Path, monkeypatch, capsys):
    import json

    from conftest import train_cli

    from gankit.data.registry import absolute_spec

    monkeypatch.chdir(tmp_path)
    assert absolute_spec("celeba:data,attrs=hair") == f"celeba:{tmp_path / 'data'},attrs=hair"
    assert absolute_spec("folder:~/x") == f"folder:{Path.home() / 'x'}"
    assert absolute_spec("anime:/abs/a,b") == "anime:/abs/a,b"  # a whole-argument path keeps its commas
    for spec in ("mnist", "faces:200", "toy:ring8,modes=8", "photos:train=astronaut,held=chelsea", "anime:"):
        assert absolute_spec(spec) == spec
    assert main(["data", "export", "faces", "exported", "--n", "32"]) == 0
    assert train_cli("gan", Path("r"), "--steps", "1", "--data", "folder:exported/faces",
                     "--set", "data.image_size=16") == 0
    assert json.loads((tmp_path / "r/config.json").read_text())["data"]["spec"] == f"folder:{tmp_path}/exported/faces"
    monkeypatch.chdir("/")  # the run still finds its data from elsewhere
    assert main(["train", "gan", "--resume", str(tmp_path / "r"), "--steps", "2", "--no-progress"]) == 0
    monkeypatch.chdir(tmp_path)  # a PATH given on resume is saved absolute too
    assert main(["train", "gan", "--resume", "r", "--steps", "3", "--no-progress",
                 "--data", "folder:exported/faces"]) == 0
    assert json.loads((tmp_path / "r/config.json").read_text())["data"]["spec"] == f"folder:{tmp_path}/exported/faces"
    (tmp_path / "exported").rename(tmp_path / "moved")  # the resume is told how to follow it
    capsys.readouterr()
    code, err = run_cli(capsys, "train", "gan", "--resume", "r", "--steps", "4", "--no-progress")
    assert code == 2 and err.count("\n") == 1
    assert f"The data of r, folder:{tmp_path}/exported/faces, cannot be loaded (" in err
    assert err.endswith("if it has moved, resume with --data naming its new place.\n")
    assert main(["train", "gan", "--resume", "r", "--steps", "4", "--no-progress", "--data", "folder:moved/faces"]) == 0


def test_missing_run_folders_and_files_for_folders_are_named_as_such(capsys, tmp_path: Path):
    from gankit.atomic import atomic_write_bytes

    missing = tmp_path / "nonexistent"
    for argv in (["probe", str(missing)], ["eval", str(missing)], ["train", "gan", "--resume", str(missing)]):
        code, err = run_cli(capsys, *argv)
        assert code == 2 and f"Run folder {missing} does not exist; pass the folder that `gankit train` wrote." in err
    (tmp_path / "small.png").write_bytes(b"mine")
    code, err = run_cli(capsys, "train", "gan", "--out", str(tmp_path / "small.png"), "--steps", "1")
    assert code == 2 and "is a file, not a folder; choose a folder for the run." in err
    with pytest.raises(GankitError) as raised:
        atomic_write_bytes(missing / "x.json", b"{}")
    assert "choose a writable path" in str(raised.value) and "disk space" not in str(raised.value)


def test_version_and_debug_after_the_command(capsys, tmp_path: Path):
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0 and capsys.readouterr().out.startswith("gankit 0.")
    (tmp_path / "small.png").write_bytes(b"mine")
    for argv in (["--debug", "train", "gan"], ["train", "gan", "--debug"]):  # the traceback, not the sentence
        with pytest.raises(GankitError, match="is a file, not a folder"):
            main([*argv, "--out", str(tmp_path / "small.png"), "--steps", "1"])


def test_no_progress_is_this_invocations_choice_not_the_runs(tmp_path: Path):
    from gankit.cli import build_config, make_parser
    from conftest import train_cli

    assert train_cli("gan", tmp_path / "r", "--steps", "1") == 0  # TINY passes --no-progress
    resumed = build_config(make_parser().parse_args(["train", "gan", "--resume", str(tmp_path / "r"), "--steps", "2"]))
    assert resumed.train.progress is True
    quiet = build_config(make_parser().parse_args(["train", "gan", "--resume", str(tmp_path / "r"), "--no-progress"]))
    assert quiet.train.progress is False


def test_eval_names_n_when_it_asks_for_too_many(capsys, cgan_run: Path):
    code, err = run_cli(capsys, "eval", str(cgan_run), "--n", "10000000")
    assert code == 2 and "--n must be at most 1,000,000, not 10,000,000." in err


def test_a_grid_too_large_to_open_is_refused_before_sampling(capsys, cgan_run: Path, tmp_path: Path, monkeypatch):
    import gankit.pipeline

    monkeypatch.setattr(gankit.pipeline.GeneratorPipeline, "generate", lambda *a, **k: pytest.fail("sampled first"))
    code, err = run_cli(capsys, "sample", str(cgan_run), "--n", "10001", "--out", str(tmp_path / "big.png"))
    assert code == 2 and "A grid picture of 10,001 images is too large to open (at most 10,000)" in err


def test_eval_of_a_missing_run_makes_no_json_folder(capsys, tmp_path: Path):
    code, err = run_cli(capsys, "eval", str(tmp_path / "missing"), "--json", str(tmp_path / "out/a/b.json"))
    assert code == 2 and "does not exist" in err and not (tmp_path / "out").exists()


def test_a_resume_in_a_folder_it_cannot_write_says_how_to_go_on(capsys, cgan_run: Path, monkeypatch):
    """--resume takes no --out, so 'choose a writable path' (what the first write used to say) was no fix."""
    import gankit.train.loop as loop

    real_access = os.access
    monkeypatch.setattr(loop.os, "access", lambda path, mode: mode != os.W_OK and real_access(path, mode))
    files = {p: p.stat().st_mtime_ns for p in cgan_run.rglob("*")}
    code, err = run_cli(capsys, "train", "cgan", "--resume", str(cgan_run), "--steps", "60")
    assert code == 2 and err.count("\n") == 1
    assert f"{cgan_run} is not writable, and a resume goes on writing in the run's own folder; make it writable, or " \
           "copy the run to a writable place and resume the copy." in err
    assert {p: p.stat().st_mtime_ns for p in cgan_run.rglob("*")} == files  # refused before anything was written
