"""The plain baseline loop the speed and quality benchmarks compare against: it must train what it
claims to train, or every ratio in the README is measured against the wrong thing."""

import json
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks"))
from plain import CONV_FAMILIES, plain_loop, plain_model  # noqa: E402

from gankit.data.base import Attribute, DataInfo  # noqa: E402

INFO = {"dcgan": DataInfo((3, 16, 16)),
        "acgan": DataInfo((3, 16, 16), (Attribute("hair", ("a", "b", "c")), Attribute("eyes", ("d", "e", "f", "g")))),
        "infogan": DataInfo((1, 28, 28))}


def tiny_data(info: DataInfo, n: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    images = torch.rand(n, *info.shape) * 2 - 1
    labels = torch.stack([torch.randint(0, k, (n,)) for k in info.num_classes], 1) if info.num_classes \
        else torch.zeros(n, 1, dtype=torch.long)
    return images, labels


@pytest.mark.parametrize("name", CONV_FAMILIES)
def test_plain_loop_trains_the_family_networks(name):
    info = INFO[name]
    images, labels = tiny_data(info)
    torch.manual_seed(0)
    before = plain_model(name, info)
    model, steps, seconds = plain_loop(name, images, labels, 8, 0.5, info=info)
    assert steps >= 1 and seconds >= 0.5
    g_moved = [not torch.equal(a, b) for a, b in zip(before.g_parameters(), model.g_parameters())]
    d_moved = [not torch.equal(a, b) for a, b in zip(before.d_parameters(), model.d_parameters())]
    assert g_moved and d_moved and all(g_moved) and all(d_moved)  # every weight of both networks learned
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_plain_sr_loop_trains_the_srgan_networks():
    from plain import plain_sr_loop

    from gankit.models.srgan import SRGAN, SRGANConfig

    info = DataInfo((3, 96, 96))
    tiles = torch.rand(4, 3, 128, 128) * 2 - 1
    torch.manual_seed(0)  # the loop's own order of construction: G, then D
    SRGAN.build_generator(SRGANConfig(), info)
    d_before = SRGAN.build_discriminator(SRGANConfig(), info).state_dict()
    torch.manual_seed(0)
    G, D, steps, seconds = plain_sr_loop("srgan", tiles, 2, 0.01, info)
    assert steps >= 1 and seconds >= 0.01
    # G's last conv starts at zero (bicubic skip), so in the first steps only it can move.
    assert G.tail[0].weight.abs().sum() > 0
    assert all(not torch.equal(d_before[k], v) for k, v in D.state_dict().items() if v.is_floating_point()
               and not k.endswith("running_var"))
    _, srresnet_d, _, _ = plain_sr_loop("srresnet", tiles, 2, 0.01, info)
    assert not list(srresnet_d.parameters())  # srresnet trains G alone


def test_results_name_the_cpu_and_its_bf16_unit():
    """Benchmark JSON records the machine; two machines of one architecture must not read the same."""
    import os

    from gankit.train.runtime import cpu_description

    amx = "model name\t: Intel(R) Xeon(R) Processor\nflags\t\t: fpu avx512f avx512_bf16 amx_bf16 amx_tile\n"
    assert cpu_description(amx) == f"Intel(R) Xeon(R) Processor, {os.cpu_count()} cores, AMX"
    # Two EPYC generations a VM names alike: the family and model numbers tell them apart.
    zen4, zen5 = ("processor\t: 0\ncpu family\t: %d\nmodel\t\t: %d\nmodel name\t: AMD EPYC\n"
                  "flags\t\t: fpu avx512f avx512_bf16\nprocessor\t: 1\ncpu family\t: 0\n" % numbers
                  for numbers in ((25, 17), (26, 2)))
    assert cpu_description(zen5) == f"AMD EPYC (family 26, model 2), {os.cpu_count()} cores, AVX512-BF16"
    assert cpu_description(zen4) != cpu_description(zen5)
    assert cpu_description("flags : fpu sse2\n").endswith("cores, no fast bf16")


def test_speed_results_keep_unmeasured_rows_with_the_machine_that_measured_them(tmp_path: Path):
    from speed import save_rows

    out = tmp_path / "results/speed.json"
    xeon = {"model": "dcgan", "batch": 64, "cpu": "Xeon", "ratio": 2.1}
    old_gan = {"model": "gan", "batch": 64, "cpu": "Xeon", "ratio": 1.5}
    save_rows(out, [xeon, old_gan], {"cpu": "Xeon"})
    new_gan = {"model": "gan", "batch": 64, "cpu": "EPYC", "ratio": 2.4}
    save_rows(out, [new_gan], {"cpu": "EPYC"})
    saved = json.loads(out.read_text())
    assert saved["rows"] == [xeon, new_gan]  # the re-measured row replaced, the other kept as measured
    assert saved["latest_run"] == {"cpu": "EPYC"}


def test_the_matmul_bound_counts_the_products_the_step_computes():
    """No input gradient for a first layer whose input trains nothing: gan's G sees noise and D's
    update sees data and detached fakes; cgan's label embeddings before them do train."""
    from speed import step_products

    gan = step_products("gan", 64)
    g_layers, d_layers = 4, 3  # 100-256-512-1024-784 and 784-512-256-1
    assert len(gan) == (3 * g_layers - 1) + (3 * d_layers - 1) + 2 * d_layers
    assert (128, 784, 512, "din") not in gan and (64, 784, 512, "din") in gan  # D's first layer: G's update only
    assert (64, 100, 256, "din") not in gan and (64, 100, 256, "dw") in gan
    cgan = step_products("cgan", 64)
    assert (128, 784, 512, "din") in cgan and (64, 100, 256, "din") in cgan
    assert not [p for p in cgan if p[0] == 64 and p[3] == "dw" and p[1] == 784]  # D's weights: no grad in G's update


def test_infogan_q_head_learns_with_g_not_d():
    model = plain_model("infogan", INFO["infogan"])
    q_head = {id(p) for p in model.D.q_head.parameters()}
    assert q_head <= {id(p) for p in model.g_parameters()}
    assert not q_head & {id(p) for p in model.d_parameters()}
    z, codes = model.draw(5, torch.device("cpu"))
    assert z.shape == (5, model.G.latent_dim) and torch.equal(z[:, model.G.noise_dim:], codes)


def test_gpu_utilisation_is_polled_from_nvidia_smi_or_left_out(tmp_path, monkeypatch):
    import os
    import time

    from speed import GpuUtilisation, matmul_bound

    monkeypatch.setenv("PATH", str(tmp_path))  # no nvidia-smi: no figure rather than a wrong one
    with GpuUtilisation(interval=0.01) as util:
        time.sleep(0.1)
    assert util.mean is None
    fake = tmp_path / "nvidia-smi"  # answers as `nvidia-smi --query-gpu=utilization.gpu ...` does
    fake.write_text("#!/bin/sh\necho 40\n")
    fake.chmod(0o755)
    with GpuUtilisation(interval=0.01) as util:
        time.sleep(0.3)
    assert util.mean == 40.0 and len(util.samples) >= 5
    with GpuUtilisation(interval=0.01, enabled=False) as util:  # a CPU measurement polls nothing
        time.sleep(0.05)
    assert util.mean is None and util.samples == []
    monkeypatch.setenv("PATH", os.defpath)
    assert 0 < matmul_bound("gan", 8, torch.float32, "cpu", repeats=2, rounds=1) < 1
    assert matmul_bound("dcgan", 8, torch.float32, "cpu") is None  # convolutions: no matmul bound


def test_the_plain_loop_runs_in_a_fresh_process():
    import os

    from plain import in_fresh_process

    # Its own process: nothing a gankit run left in this one reaches it.
    assert in_fresh_process(os.getpid) != os.getpid()
    assert in_fresh_process(max, 2, 7) == 7


def test_sr_benchmark_photo_choice_reaches_the_training_data():
    """`benchmarks/sr.py --photos` must change what SR trains on, or its table would compare the
    same run with itself; the held-out photographs stay the same."""
    import sr
    from gankit.data import photos

    quarter = photos.photo_set(sr.photos_spec(sr.PHOTO_SETS["quarter"]))
    chosen = list(sr.PHOTO_SETS["quarter"])
    assert len(chosen) == 4 and [p.name for p in quarter.train][:4] == chosen
    assert len(quarter.train) == 4 * (1 + len(photos.TRAIN_RESCALES))  # each also shrunk
    widened = photos.photo_set(sr.photos_spec(sr.PHOTO_SETS["with-validation"]))
    trained = {p.name for p in widened.train}
    assert {"chelsea", "rocket", "chelsea@0.5"} <= trained
    assert len(widened.train) == len(sr.PHOTO_SETS["with-validation"]) * (1 + len(photos.TRAIN_RESCALES))
    assert [p.name for p in widened.validation] == ["chelsea", "rocket"]


def test_sr_benchmark_folds_hold_out_every_photograph_once():
    """`benchmarks/sr.py --folds` must score each bundled photograph once, with a model that never
    trained on it (nor on its shrunk copies, nor on the other half of its stereo pair)."""
    import sr
    from gankit.data import photos

    everything = set(photos.BUNDLED_PHOTOS)
    split = sr.folds(4)
    assert len(split) == 4 and sorted(n for fold in split for n in fold) == sorted(everything)
    assert [len(fold) for fold in split] == [4, 4, 4, 4]
    pair = next(fold for fold in split if "motorcycle_left" in fold)
    assert "motorcycle_right" in pair
    for held in split:
        data = photos.photo_set(sr.hold_out(held))
        assert [p.name for p in data.validation] == list(held)
        trained = {p.name.split("@")[0] for p in data.train}
        assert trained == everything - set(held)
        assert len(data.train) == len(trained) * (1 + len(photos.TRAIN_RESCALES))


def test_infogan_benchmark_scores_one_run_at_each_budget(tmp_path: Path):
    """`benchmarks/infogan.py --budgets` must continue one run (not start a new one per budget) and
    score it at every step count."""
    import argparse
    import json

    import infogan
    from gankit.data import load_dataset

    sets = ["model.dense=32", "model.channels=8", "model.q_hidden=16"]
    args = argparse.Namespace(budgets="6,3", steps=None, minutes=None, batch_size=16, threads=1, seed=0,
                              set=sets, per_value=10)
    result = infogan.scored_budgets(tmp_path / "run", args, load_dataset("mnist"))
    assert [row["steps"] for row in result["budgets"]] == [3, 6] and result["steps"] == 6
    assert all(0 <= row["code_recovery"] <= 1 and 0 <= row["q_accuracy"] <= 1 for row in result["budgets"])
    logged = [json.loads(line)["step"] for line in (tmp_path / "run/metrics.jsonl").read_text().splitlines()]
    assert logged == sorted(logged) and logged[-1] == 6 and len(set(logged)) == len(logged)  # one run, resumed
