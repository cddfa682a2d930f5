"""InfoGAN: the information loss, the codes in the latent, code parsing, traversals, the
Hungarian matching, a tiny real run and the representation probe on it."""

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

import gankit
from gankit.cli import main
from gankit.config import RunConfig, validate
from gankit.data import load_dataset
from gankit.data.base import TensorData
from gankit.errors import GankitError
from gankit.models import get_family
from gankit.models.augment import random_affine
from gankit.models.gan import GAN, MLPConfig
from gankit.models.infogan import InfoGANConfig, LatentCodes, parse_code_assignments, save_traversal
from gankit.probe import confusion, infogan_scores, matched_accuracy, probe, probe_run

from conftest import step_context

TINY = {"model.dense": "32", "model.channels": "8", "model.q_hidden": "16"}
NOISE = 62  # the default noise width; the default codes add 10 + 2 columns


@pytest.fixture(scope="module")
def mnist() -> TensorData:
    return load_dataset("mnist")


@pytest.fixture(scope="module")
def generator(mnist):
    torch.manual_seed(0)
    cfg = InfoGANConfig(dense=32, channels=8, q_hidden=16)
    return get_family("infogan")(cfg, mnist.info).generator.eval()


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "infogan"
    sets = [arg for key, value in TINY.items() for arg in ("--set", f"{key}={value}")]
    assert main(["train", "infogan", "--out", str(out), "--steps", "6", "--batch-size", "16", "--no-progress",
                 "--set", "train.log_every=1", "--set", "train.sample_every=3", *sets]) == 0
    return out


# --- the information loss ----------------------------------------------------------------------
def test_info_loss_is_cross_entropy_on_logits_plus_weighted_gaussian_nll():
    codes = LatentCodes((3,), 1)
    q = torch.tensor([[2.0, 0.0, 0.0, 0.5], [0.0, 1.0, 0.0, -0.2]])
    c = torch.tensor([[1.0, 0.0, 0.0, 0.1], [0.0, 0.0, 1.0, -0.2]])
    ce = (math.log(1 + 2 * math.exp(-2)) + math.log(2 + math.e)) / 2  # -log softmax of each target
    nll = (0.5 * 0.4**2 + 0.0) / 2  # unit variance: half the squared error, no constant
    assert codes.info_loss(q, c, 1.0, 0.1).item() == pytest.approx(ce + 0.1 * nll, rel=1e-6)
    assert codes.info_loss(q, c, 2.0, 0.0).item() == pytest.approx(2 * ce, rel=1e-6)


def test_info_loss_with_learnt_variance_and_several_codes():
    codes = LatentCodes((2, 2), 2, learn_variance=True)
    assert [c.describe() for c in codes.codes] == ["c1 (categorical, 0-1)", "c2 (categorical, 0-1)",
                                                   "c3 (continuous)", "c4 (continuous)"]
    assert (codes.width, codes.q_width) == (6, 8)
    #                  c1 logits   c2 logits   means       log-variances
    q = torch.tensor([[0.0, 0.0, 3.0, 1.0, 0.5, 0.0, math.log(4.0), 0.0]])
    c = torch.tensor([[1.0, 0.0, 0.0, 1.0, 0.1, 1.0]])
    expected_cat = math.log(2) + math.log(1 + math.exp(2))
    expected_cont = 0.5 * (math.log(4) + 0.16 / 4) + 0.5 * (0 + 1.0)
    assert codes.info_loss(q, c, 1.0, 0.1).item() == pytest.approx(expected_cat + 0.1 * expected_cont, rel=1e-6)


def test_info_loss_reads_nothing_back_and_matches_torchs_gaussian_nll():
    """On a GPU a value read back to the host waits for the step; torch's gaussian_nll_loss reads
    one (its check for negative variances), so gankit writes the loss out, with equal values and
    gradients, a variance below its floor included."""
    from torch.utils._python_dispatch import TorchDispatchMode

    from gankit.models.infogan import gaussian_nll

    class ReadBacks(TorchDispatchMode):
        count = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            if func in (torch.ops.aten._local_scalar_dense.default, torch.ops.aten.is_nonzero.default):
                ReadBacks.count += 1
            return func(*args, **(kwargs or {}))

    codes = LatentCodes((10,), 2, learn_variance=True)
    q = torch.randn(16, codes.q_width, requires_grad=True)
    c = codes.sample(16, torch.Generator().manual_seed(0), "cpu")
    with ReadBacks():
        codes.info_loss(q, c, 1.0, 0.1).backward()
    assert ReadBacks.count == 0
    mean, target = torch.randn(32, 2, requires_grad=True), torch.rand(32, 2)
    log_var = torch.linspace(-20, 5, 64).view(32, 2).requires_grad_()  # exp(-20) is below the 1e-6 floor
    ours = gaussian_nll(mean, target, log_var.exp())
    grads = torch.autograd.grad(ours.sum(), (mean, log_var))
    torchs = F.gaussian_nll_loss(mean, target, log_var.exp(), reduction="none")
    assert torch.equal(ours, torchs)
    assert all(torch.equal(a, b) for a, b in zip(grads, torch.autograd.grad(torchs.sum(), (mean, log_var))))


# --- codes in the latent ---------------------------------------------------------------------------
def test_sampled_latents_hold_valid_codes(generator):
    z = generator.sample_latent(500, torch.Generator().manual_seed(1))
    assert z.shape == (500, NOISE + 12) and generator.latent_dim == NOISE + 12
    codes = z[:, NOISE:]
    assert torch.equal(codes[:, :10].sum(1), torch.ones(500)) and set(codes[:, :10].unique().tolist()) == {0.0, 1.0}
    assert len(generator.code_values(z)["c1"].unique()) == 10
    assert codes[:, 10:].min() >= -1 and codes[:, 10:].max() <= 1 and codes[:, 10:].std() > 0.4


def test_latent_with_codes_round_trip(generator):
    z = generator.latent_with_codes(6, {"c1": 3, "c3": "-0.25"}, torch.Generator().manual_seed(2))
    values = generator.code_values(z)
    assert values["c1"].tolist() == [3] * 6 and values["c3"].tolist() == [-0.25] * 6
    assert values["c2"].unique().numel() == 6  # not fixed: drawn from the prior
    assert z[:, :NOISE].std(0).min() > 0  # each latent its own noise


def test_codes_given_to_forward_replace_those_in_z(generator):
    g = torch.Generator().manual_seed(3)
    z, other = generator.sample_latent(4, g), generator.sample_latent(4, g)
    with torch.no_grad():
        replaced = generator(z, other[:, NOISE:])
        expected = generator(torch.cat([z[:, :NOISE], other[:, NOISE:]], 1))
    assert torch.equal(replaced, expected) and not torch.allclose(replaced, generator(z))


def test_parse_code_assignments(generator):
    assert parse_code_assignments(["c1=3", " c2 = 0.5", "c3=-2"], generator) == {"c1": 3, "c2": 0.5, "c3": -2.0}
    assert parse_code_assignments([], generator) == {}
    errors = {"c9=1": "Unknown code 'c9'; this model's codes are c1 (categorical, 0-9), c2 (continuous), c3",
              "c1=10": "categorical with values 0-9, not '10'", "c1=2.5": "categorical with values 0-9, not '2.5'",
              "c2=abc": "continuous and needs a number between -1,000,000 and 1,000,000 such as 0.5 (its prior is "
                        "-1 to 1), not 'abc'", "c2=nan": "not 'nan'", "c2=1e308": "not '1e308'",
              "c1": "must look like NAME=VALUE", "=3": "must look like NAME=VALUE"}
    for assignment, message in errors.items():
        with pytest.raises(GankitError, match=message.replace("(", r"\(").replace(")", r"\)")):
            parse_code_assignments([assignment], generator)
    with pytest.raises(GankitError, match="c1 is given twice"):
        parse_code_assignments(["c1=1", "c1=2"], generator)


def test_codes_are_refused_for_models_without_them(mnist):
    mlp = GAN(MLPConfig(g_hidden=(8,), d_hidden=(8,)), mnist.info).generator
    with pytest.raises(GankitError, match="apply to infogan runs only"):
        parse_code_assignments(["c1=1"], mlp)


def test_traversal_of_a_continuous_code(generator):
    grid = generator.traverse("c2", steps=5, generator=torch.Generator().manual_seed(4))
    assert grid.shape == (10, 5, NOISE + 12)  # one row per value of c1
    values = [generator.code_values(row) for row in grid]
    assert [v["c1"].tolist() for v in values] == [[r] * 5 for r in range(10)]
    assert all(torch.allclose(v["c2"], torch.linspace(-2, 2, 5)) for v in values)
    assert all(v["c3"].abs().max() == 0 for v in values)
    assert torch.equal(grid[:, :1, :NOISE].expand(-1, 5, -1), grid[:, :, :NOISE])  # fixed noise per row
    assert grid[:, 0, :NOISE].std(0).min() > 0  # and different rows


def test_traversal_of_a_categorical_code_and_its_grid_file(generator, tmp_path):
    grid = generator.traverse("c1", steps=3, generator=torch.Generator().manual_seed(5))
    assert grid.shape == (3, 10, NOISE + 12)
    assert [generator.code_values(row)["c1"].tolist() for row in grid] == [list(range(10))] * 3
    path = save_traversal(generator, "c3", tmp_path / "t.png", steps=7)
    assert Image.open(path).size == (7 * 30 + 2, 10 * 30 + 2)
    for steps in (1, 65):
        with pytest.raises(GankitError, match=f"between 2 and 64 steps \\(--steps\\), not {steps}"):
            generator.traverse("c2", steps=steps)


# --- configuration ---------------------------------------------------------------------------------
@pytest.mark.parametrize("key, value, message", [
    ("categorical", (10, 1), "at least 2, not 1"), ("continuous", -1, "must not be negative"),
    ("lambda_cont", -0.5, "must not be negative"), ("dense", 0, "at least 1"),
    ("q_augment", -1.0, "between 0 \\(off\\) and 180"), ("q_augment", 200.0, "between 0 \\(off\\) and 180"),
])
def test_invalid_settings_are_refused(key, value, message):
    cfg = RunConfig("infogan", InfoGANConfig(**{key: value}))
    with pytest.raises(GankitError, match=message):
        validate(cfg)


def test_a_model_without_codes_and_vector_data_are_refused():
    with pytest.raises(GankitError, match="at least one code"):
        InfoGANConfig(categorical=(), continuous=0).validate()
    with pytest.raises(GankitError, match="infogan needs images"):
        get_family("infogan").check_data(load_dataset("toy:ring8").info)


# --- Hungarian matching ----------------------------------------------------------------------------
def test_matched_accuracy_finds_the_best_one_to_one_matching():
    # Taking each cluster's largest count first would match cluster 0 with class 0 (5) and leave
    # cluster 1 nothing (0): 8 right; the best matching swaps them: 4 + 4 + 3 = 11 right of 16.
    counts = np.array([[5, 4, 0],
                       [4, 0, 0],
                       [0, 0, 3]])
    accuracy, mapping = matched_accuracy(counts)
    assert mapping.tolist() == [1, 0, 2] and accuracy == pytest.approx(11 / 16)
    # more clusters than classes: the extra cluster stays unmatched and counts as wrong
    accuracy, mapping = matched_accuracy(np.array([[3, 0], [0, 2], [1, 1]]))
    assert mapping.tolist() == [0, 1, -1] and accuracy == pytest.approx(5 / 7)


def test_q_accuracy_reads_the_named_codes_own_columns(mnist):
    """With two categorical codes, c2's accuracy comes from Q's c2 columns (3-12 here), not from
    the first ones. The stand-in D's c2 head names each image's digit; its c1 head says 0 always."""
    from gankit.probe import q_accuracy

    codes = LatentCodes((3, 10), 0)
    labels = mnist.labels[:, 0]

    class Oracle(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.seen, self.anchor = 0, torch.nn.Parameter(torch.zeros(()))

        def forward(self, x):
            q = torch.zeros(len(x), codes.width)
            q[:, 0] = 5.0
            q[torch.arange(len(x)), 3 + labels[self.seen:self.seen + len(x)]] = 1.0
            self.seen += len(x)
            return torch.zeros(len(x), 1), q

    assert q_accuracy(Oracle(), codes, mnist, code="c2") == 1.0
    assert q_accuracy(Oracle(), codes, mnist, code="c1") == pytest.approx(0.1, abs=0.01)  # one cluster: one digit


def test_confusion_counts_pairs():
    counts = confusion(np.array([0, 0, 1, 2, 2]), np.array([1, 1, 0, 2, 0]), 3, 3)
    assert counts.tolist() == [[0, 2, 0], [1, 0, 0], [1, 0, 1]]


# --- training, sampling and probing a tiny run ------------------------------------------------
def test_tiny_run_writes_its_files_and_samples_with_codes(run, tmp_path):
    names = {p.relative_to(run).as_posix() for p in run.rglob("*") if p.is_file()}
    assert {"config.json", "generator.json", "generator.safetensors", "metrics.jsonl", "samples/step-000006.png",
            "checkpoints/step-000006/weights.safetensors"} <= names
    lines = (run / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 6 and all('"info"' in line for line in lines)
    train = json.loads((run / "config.json").read_text())["train"]
    assert (train["lr_g"], train["lr_d"], train["batch_size"]) == (1e-3, 2e-4, 16)  # InfoGAN's defaults, then flags
    pipe = gankit.load(run)
    assert pipe.sample(5, seed=1).shape == (5, 1, 28, 28)
    images = pipe.generate(4, seed=1, codes=parse_code_assignments(["c1=7"], pipe.generator))[0]
    assert images.shape == (4, 1, 28, 28) and torch.equal(images, pipe.generate(4, seed=1, codes={"c1": 7})[0])
    save_traversal(pipe.generator, "c2", tmp_path / "c2.png")


def test_sampled_npz_holds_the_codes_of_each_image(run, tmp_path):
    """So that samples can be grouped by code afterwards, as a conditional run's by label."""
    from gankit.cli import main

    assert main(["sample", str(run), "--n", "6", "--seed", "3", "--npz", str(tmp_path / "free.npz")]) == 0
    assert main(["sample", str(run), "--n", "6", "--seed", "3", "--code", "c1=4", "--code", "c2=0.5",
                 "--npz", str(tmp_path / "fixed.npz")]) == 0
    free, fixed = np.load(tmp_path / "free.npz"), np.load(tmp_path / "fixed.npz")
    assert sorted(free.files) == ["c1", "c2", "c3", "images"] and free["c1"].dtype == np.int64
    pipe = gankit.load(run)
    z, _ = pipe.inputs(6, seed=3)
    assert free["c1"].tolist() == z[:, pipe.generator.noise_dim:][:, :10].argmax(1).tolist()
    assert np.array_equal(free["images"], pipe.sample(6, seed=3).numpy())  # the codes of these very images
    assert fixed["c1"].tolist() == [4] * 6 and np.allclose(fixed["c2"], 0.5)
    assert not np.allclose(fixed["c3"], fixed["c3"][0])  # c3 stays random


def test_the_info_loss_trains_g_and_q_and_unlabelled_images_train(mnist):
    torch.manual_seed(0)
    model = get_family("infogan")(InfoGANConfig(dense=32, channels=8, q_hidden=16), mnist.info)
    ctx = step_context(model)
    stats = model.train_step([(mnist.samples[:16], None)], ctx)  # no labels: InfoGAN never reads them
    assert set(stats) == {"loss_d", "loss_g", "d_real", "d_fake", "info"} and stats["info"] > 0
    codes = model.fake_labels(8, ctx)
    fake = model.generator(model.generator.sample_latent(8, ctx.noise), codes)

    def gradients(lambda_cat: float, step: str) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        model.cfg.lambda_cat = lambda_cat
        model.zero_grad(set_to_none=True)
        if step == "d":
            model.d_loss(mnist.samples[:8], None, fake.detach(), codes, ctx)[0].backward()
        else:
            model.g_loss(fake, codes, ctx).backward(retain_graph=True)
        def grad(m):
            return None if m.weight.grad is None else m.weight.grad.clone()
        return grad(model.generator.net[0]), grad(model.discriminator.q_head[0])

    with_info, without_info = gradients(1.0, "g"), gradients(0.0, "g")
    assert not torch.allclose(with_info[0], without_info[0])  # G's loss holds L_I ...
    assert with_info[1].abs().sum() > 0  # ... and trains Q (the paper's min over G and Q)
    assert not gradients(1.0, "d")[1].any()  # D's loss does not, by default (a zero gradient, for DDP)
    model.cfg.q_update = "d"  # the paper's released code: D's loss trains D's body and Q on L_I
    assert gradients(1.0, "d")[1].abs().sum() > 0
    model.cfg.q_update = "g"  # a non-finite L_I is reported, but never reaches D's gradients
    model.info_loss = lambda q, codes: torch.tensor(float("inf"))
    model.zero_grad(set_to_none=True)
    loss, stats = model.d_loss(mnist.samples[:8], None, fake.detach(), codes, ctx)
    loss.backward()
    assert stats["info"] == float("inf") and loss.isfinite()
    assert all(p.grad is None or p.grad.isfinite().all() for p in model.discriminator.parameters())


@pytest.mark.parametrize("codes", [{"categorical": ()}, {"continuous": 0}])
def test_one_kind_of_code_alone_trains_with_the_other_kinds_settings_left_alone(mnist, codes):
    """The defaults of the missing kind's settings (q_augment 20, learn_variance) are not refused;
    the info loss then holds only the codes there are."""
    model = get_family("infogan")(InfoGANConfig(dense=32, channels=8, q_hidden=16, **codes), mnist.info)
    stats = model.train_step([(mnist.samples[:8], None)], step_context(model))
    assert stats["info"].isfinite() and stats["info"] != 0
    assert model.generator.codes.width == (2 if "categorical" in codes else 10)


def test_g_loss_adds_the_categorical_loss_of_moved_fakes(mnist):
    torch.manual_seed(0)
    model = get_family("infogan")(InfoGANConfig(dense=32, channels=8, q_hidden=16, q_augment=0.0), mnist.info)
    ctx = step_context()
    codes = model.fake_labels(16, ctx)
    with torch.no_grad():
        fake = model.generator(model.generator.sample_latent(16), codes)
        plain = model.g_loss(fake, codes, ctx)
        _, q_moved = model.discriminator(random_affine(fake, 20.0, torch.Generator().manual_seed(5)))
        by_hand = F.cross_entropy(q_moved[:, :10], codes[:, :10].argmax(1))  # c1's logits; c2, c3 left out
        for lambda_cat in (1.0, 2.0):
            model.cfg.q_augment, model.cfg.lambda_cat = 20.0, lambda_cat
            ctx.noise.manual_seed(5)  # the moves are drawn from the step's noise stream
            moved = model.g_loss(fake, codes, ctx)
            model.cfg.q_augment = 0.0
            assert moved - model.g_loss(fake, codes, ctx) == pytest.approx(lambda_cat * by_hand.item(), rel=1e-4)
    assert by_hand > 0 and plain.isfinite()


def test_q_learns_in_g_update_at_g_learning_rate(mnist):
    torch.manual_seed(0)
    model = get_family("infogan")(InfoGANConfig(dense=32, channels=8, q_hidden=16), mnist.info)
    opt_g = torch.optim.Adam(model.generator_parameters(), 1e-3)
    opt_d = torch.optim.Adam(model.discriminator_parameters(), 2e-4)
    D = model.discriminator
    q_ids = {id(p) for p in D.q_head.parameters()}
    assert q_ids <= {id(p) for p in opt_g.param_groups[0]["params"]}  # Q is stepped with G, at G's rate
    assert not q_ids & {id(p) for p in opt_d.param_groups[0]["params"]}
    ctx = step_context(opts=(opt_g, opt_d))
    before = {k: v.clone() for k, v in D.state_dict().items()}
    model.train_step([(mnist.samples[:16], None)], ctx)
    after = D.state_dict()
    assert not torch.equal(before["q_head.0.weight"], after["q_head.0.weight"])  # G's update moved Q
    assert not torch.equal(before["d_head.weight"], after["d_head.weight"])  # D's update moved D
    assert all(p.requires_grad for p in D.parameters())
    model.cfg.q_update = "d"  # the paper's released code: Q belongs to D's optimizer again
    assert model.trained_with_generator() == [] and len(model.discriminator_parameters()) == len(list(D.parameters()))


def test_continuous_r2_is_the_share_of_each_code_q_reads_back(generator):
    from gankit.probe import continuous_r2

    class Transparent(torch.nn.Module):  # G writes its whole input into the image's first pixels
        def __init__(self):
            super().__init__()
            self.noise_dim, self.codes, self.sample_latent = NOISE, generator.codes, generator.sample_latent
            self.anchor = torch.nn.Parameter(torch.zeros(()))

        def forward(self, z):
            image = torch.zeros(len(z), 1, 28, 28)
            image.view(len(z), -1)[:, :z.shape[1]] = z
            return image

    def reader(keep: list[int]):  # Q reads back the code columns in ``keep`` and guesses 0 for the others
        def read(x):
            q = x.flatten(1)[:, NOISE:NOISE + 12].clone()
            q[:, [i for i in (10, 11) if i not in keep]] = 0
            return torch.zeros(len(x), 1), q
        return read

    G = Transparent()
    assert continuous_r2(G, reader([10, 11])) == {"c2": 1.0, "c3": 1.0}
    partial = continuous_r2(G, reader([10]))
    assert partial["c2"] == 1.0 and abs(partial["c3"]) < 0.05


def test_probe_leaves_a_module_in_its_mode_and_refuses_a_d_that_reads_labels(mnist):
    some = torch.randperm(len(mnist), generator=torch.Generator().manual_seed(0))[:400]
    data = TensorData(mnist.samples[some], mnist.labels[some], mnist.info, "mnist")
    torch.manual_seed(0)
    dcgan = get_family("dcgan")(get_family("dcgan").default_config("mnist"), mnist.info).discriminator.train()
    probe(dcgan, data, n_labels=(20,), n_test=100)
    assert dcgan.training  # as the caller left it
    cgan = get_family("cgan")(get_family("cgan").default_config("mnist"), mnist.info).discriminator
    with pytest.raises(GankitError, match="needs labels to read an image"):
        probe(cgan, data, n_labels=(20,), n_test=100)


def test_probe_and_code_recovery_on_a_tiny_run(run, mnist):
    data = TensorData(mnist.samples[:600], mnist.labels[:600], mnist.info, "mnist")
    result = probe(run, data, n_labels=(20, 100), n_test=300)
    # conv 8 and 16 channels pooled to 4x4, dense 32, D's logit, Q's dense 16 and its 14 outputs (10 logits,
    # 2 means, 2 log-variances)
    assert result["features"] == 8 * 16 + 16 * 16 + 32 + 1 + 16 + 14 and result["test_images"] == 300
    assert 0.3 < result["accuracy_20"] <= result["accuracy_100"] <= 1  # chance is 0.1
    with pytest.raises(GankitError, match="need 1300 images but the dataset holds 600"):
        probe(run, data, n_labels=(1000,), n_test=300)
    scores = infogan_scores(run, data, per_value=20)
    r2 = scores.pop("continuous_r2")
    # probe_run finds the run's own data (generator.json's) when none is given
    assert probe_run(run, n_labels=(20,))["features"] == result["features"]
    assert set(scores) == {"code_recovery", "q_accuracy"} and all(0.1 <= v <= 1 for v in scores.values())
    assert set(r2) == {"c2", "c3"}  # its values: test_continuous_r2 (any value up to 1 is possible here)


def test_probe_prints_json_alone_on_stdout_and_a_skipped_checkpoint_once_on_stderr(run, tmp_path, capsys):
    import shutil

    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    assert main(["train", "infogan", "--resume", str(copy), "--steps", "7", "--no-progress",
                 "--set", "train.keep_checkpoints=2"]) == 0  # a second checkpoint to fall back from
    newest = sorted((copy / "checkpoints").iterdir())[-1]
    (newest / "weights.safetensors").write_bytes(b"damaged")
    capsys.readouterr()
    assert main(["probe", str(copy), "--budgets", "20"]) == 0
    out, err = capsys.readouterr()
    assert {"code_recovery", "q_accuracy", "accuracy_20"} <= json.loads(out).keys()
    assert err.count("warning: skipped") == 1


def test_probe_of_an_infogan_without_a_classifier_of_its_classes_leaves_code_recovery_out(tmp_path, capsys):
    out = tmp_path / "faces"
    sets = [arg for key, value in TINY.items() for arg in ("--set", f"{key}={value}")]
    assert main(["train", "infogan", "--data", "faces:3000", "--out", str(out), "--steps", "2", "--batch-size", "16",
                 "--no-progress", "--set", "data.channels=1", *sets]) == 0  # gray faces: no faces classifier
    capsys.readouterr()
    assert main(["probe", str(out), "--labels", "20"]) == 0  # --budgets by its other name
    result, err = capsys.readouterr()
    assert "code_recovery" not in json.loads(result) and "q_accuracy" in json.loads(result)
    assert "code recovery needs a classifier of" in err


def test_code_recovery_is_one_for_a_generator_that_draws_a_digit_per_code_value():
    from gankit.data.base import Attribute, DataInfo
    from gankit.probe import code_recovery

    info = DataInfo((1, 28, 28), (Attribute("digit", tuple("0123456789")),))
    generator = get_family("infogan").build_generator(InfoGANConfig(dense=8, channels=4, q_hidden=8), info)
    start = generator.noise_dim
    # value v of c1 becomes an image whose first pixel says v; the stub classifier calls it digit perm[v]
    generator.forward = lambda z: z[:, start:start + 10].argmax(1).float().view(-1, 1, 1, 1).expand(-1, 1, 28, 28)
    perm = torch.randperm(10, generator=torch.Generator().manual_seed(0))

    class Classifier:
        attributes = info.attributes

        def logits(self, images):
            return F.one_hot(perm[images[:, 0, 0, 0].long()], 10).float()

    assert code_recovery(generator, Classifier(), per_value=5) == 1.0
    perm[:2] = perm[:2].flip(0)  # still one digit per value: any one-to-one naming scores 1
    assert code_recovery(generator, Classifier(), per_value=5) == 1.0
    perm[1] = perm[0]  # two values draw the same digit: only 9 of 10 can be matched
    assert code_recovery(generator, Classifier(), per_value=5) == pytest.approx(0.9)


def test_a_class_too_rare_to_split_is_one_sentence():
    from gankit.probe import labelled_splits

    labels = np.array([0] * 60 + [1] * 60 + [2])  # one image of class 2
    with pytest.raises(GankitError, match=r"Class 2 has only 1 image\(s\) in the data"):
        labelled_splits(labels, (10,), 30, seed=0)


def test_an_interpolation_keeps_the_categorical_code_one_hot(run):
    pipe = gankit.load(run)
    G = pipe.generator
    z = pipe.latents(2, seed=3)
    walk = pipe.walk(z[:1], z[1:], 7)
    one_hot = walk[:, G.noise_dim:G.noise_dim + 10]
    assert torch.equal(one_hot.sum(1), torch.ones(7)) and set(one_hot.unique().tolist()) == {0.0, 1.0}
    assert torch.equal(one_hot[0], z[0, G.noise_dim:G.noise_dim + 10])
    assert torch.equal(one_hot[-1], z[1, G.noise_dim:G.noise_dim + 10])


def test_sampling_with_fixed_codes_goes_through_the_batches(run):
    pipe = gankit.load(run)
    in_one = pipe.generate(6, seed=2, codes={"c1": 3})[0]
    torch.testing.assert_close(pipe.generate(6, seed=2, codes={"c1": 3}, batch_size=4)[0], in_one)
    assert not torch.equal(pipe.generate(6, seed=2, codes={"c1": 4})[0], in_one)


def test_no_pass_over_moved_fakes_when_its_loss_weighs_nothing(mnist, monkeypatch):
    """model.lambda_cat=0 multiplies the moved fakes' categorical loss by 0: the pass (a quarter of
    a step) is not made."""
    from gankit.models.infogan import InfoGAN

    def forbidden(*args):
        raise AssertionError("moved_category_loss ran for a zero weight")

    monkeypatch.setattr(InfoGAN, "moved_category_loss", forbidden)
    model = get_family("infogan")(InfoGANConfig(dense=32, channels=8, q_hidden=16, lambda_cat=0.0), mnist.info)
    assert model.cfg.q_augment > 0
    ctx = step_context(model)
    assert torch.isfinite(model.train_step([(mnist.samples[:16], None)], ctx)["loss_g"])
