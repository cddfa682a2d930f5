"""dcgan and acgan: network shapes per image size, the auxiliary loss, and tiny real runs."""

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
from gankit.config import RunConfig, set_value
from gankit.data.base import Attribute, DataInfo, TensorData
from gankit.errors import GankitError
from gankit.models import get_family
from gankit.models.acgan import auxiliary_loss
from gankit.train import train

from conftest import step_context

HAIR = Attribute("hair", tuple(f"h{i}" for i in range(12)))
EYES = Attribute("eyes", tuple(f"e{i}" for i in range(11)))
TINY = {"model.g_width": 8, "model.d_width": 8, "model.latent_dim": 8, "train.batch_size": 16,
        "train.progress": False, "train.log_every": 1}


def build(name: str, info: DataInfo, **cfg):
    family = get_family(name)
    config = family.Config(**{"g_width": 8, "d_width": 8, **cfg})
    return family(config, info)


@pytest.mark.parametrize("size", [16, 28, 32, 64, 128])
@pytest.mark.parametrize("channels", [1, 3])
def test_dcgan_sizes_its_networks_by_the_data(size: int, channels: int):
    model = build("dcgan", DataInfo((channels, size, size)))
    images = model.generator(torch.randn(3, 100))
    assert images.shape == (3, channels, size, size)
    assert images.abs().max() <= 1  # tanh
    assert model.discriminator(images).shape == (3, 1)


def test_dcgan_keeps_the_paper_layers():
    model = build("dcgan", DataInfo((3, 32, 32)))
    g_layers = [type(m) for m in model.generator.modules()]
    d_layers = list(model.discriminator.modules())
    assert g_layers.count(torch.nn.ConvTranspose2d) == 3 and torch.nn.Tanh in g_layers
    convs = [m for m in d_layers if isinstance(m, torch.nn.Conv2d)]
    assert [c.stride for c in convs] == [(2, 2)] * 3 + [(1, 1)]  # strided convs, then the 4x4 head
    assert not any(isinstance(m, (torch.nn.MaxPool2d, torch.nn.AvgPool2d, torch.nn.Linear)) for m in d_layers)
    # BatchNorm on every D layer but the first: the first conv keeps its bias
    assert convs[0].bias is not None and all(c.bias is None for c in convs[1:3])
    weights = torch.cat([c.weight.detach().flatten() for c in convs])
    assert abs(float(weights.std()) - 0.02) < 0.002  # N(0, 0.02) initialisation


@pytest.mark.parametrize("shape", [(3, 30, 30), (3, 32, 16), (2,)])
def test_unsupported_shapes_name_the_fix(shape):
    with pytest.raises(GankitError, match="data.image_size|image dataset"):
        build("dcgan", DataInfo(shape))


@pytest.mark.parametrize("attributes", [(HAIR,), (HAIR, EYES), (HAIR, EYES, Attribute("smile", ("no", "yes")))])
def test_acgan_has_a_real_fake_head_and_one_classifier_per_attribute(attributes):
    info = DataInfo((3, 32, 32), attributes)
    model = build("acgan", info)
    labels = torch.stack([torch.randint(a.num_classes, (5,)) for a in attributes], dim=1)
    images = model.generator(torch.randn(5, 100), labels)
    assert images.shape == (5, 3, 32, 32)
    adversarial, classes = model.discriminator(images)
    assert adversarial.shape == (5, 1)
    assert [tuple(c.shape) for c in classes] == [(5, a.num_classes) for a in attributes]


def test_a_discriminator_of_several_heads_scores_real_and_fake_in_one_pass_as_in_two():
    """ACGAN's D (BatchNorm: two passes when training) through the one-pass path, in eval mode,
    where BatchNorm's statistics do not depend on the batch: the same outputs, head by head."""
    model = build("acgan", DataInfo((3, 32, 32), (HAIR, EYES))).eval()
    real, fake = torch.randn(3, 3, 32, 32), torch.randn(3, 3, 32, 32)
    two = model.discriminate(real, None, fake, None)
    model.joint_d_batch = True
    one = model.discriminate(real, None, fake, None)
    for (adv_a, classes_a), (adv_b, classes_b) in zip(one, two):
        torch.testing.assert_close(adv_a, adv_b)
        assert len(classes_a) == 2 and all(torch.allclose(a, b, atol=1e-5) for a, b in zip(classes_a, classes_b))
    assert not torch.allclose(one[0][0], one[1][0])  # the halves are the reals' and the fakes'


def test_acgan_generator_depends_on_every_attribute():
    model = build("acgan", DataInfo((3, 32, 32), (HAIR, EYES))).eval()
    z = torch.randn(1, 100).expand(3, -1)
    images = model.generator(z, torch.tensor([[0, 0], [1, 0], [0, 1]]))
    assert not torch.allclose(images[0], images[1]) and not torch.allclose(images[0], images[2])


def test_cgan_reads_every_attribute_in_g_and_in_d():
    fam = get_family("cgan")
    model = fam(fam.Config(g_hidden=(16,), d_hidden=(16,)), DataInfo((1, 8, 8), (HAIR, EYES))).eval()
    z = torch.randn(1, model.cfg.latent_dim).expand(3, -1)
    labels = torch.tensor([[0, 0], [1, 0], [0, 1]])
    images = model.generator(z, labels)
    assert not torch.allclose(images[0], images[1]) and not torch.allclose(images[0], images[2])
    verdicts = model.discriminator(torch.randn(1, 1, 8, 8).expand(3, -1, -1, -1), labels)
    assert not torch.isclose(verdicts[0], verdicts[1]) and not torch.isclose(verdicts[0], verdicts[2])


def test_acgan_needs_labels_and_one_weight_per_attribute():
    with pytest.raises(GankitError, match="model dcgan"):
        build("acgan", DataInfo((3, 32, 32)))
    with pytest.raises(GankitError, match="one weight per attribute"):
        build("acgan", DataInfo((3, 32, 32), (HAIR, EYES)), aux_weights=(1.0,))


def test_auxiliary_loss_is_weighted_cross_entropy_on_logits():
    hair = torch.tensor([[4.0, 0.0, 0.0], [0.0, 0.0, 2.0]])
    eyes = torch.tensor([[1.0, -1.0], [0.0, 3.0]])
    labels = torch.tensor([[0, 1], [2, 1]])

    def ce(logits, label):  # -log softmax, by hand
        return -(logits[label] - torch.logsumexp(logits, 0))

    hair_ce = (ce(hair[0], 0) + ce(hair[1], 2)) / 2
    eyes_ce = (ce(eyes[0], 1) + ce(eyes[1], 1)) / 2
    loss = auxiliary_loss([hair, eyes], labels, (1.0, 0.5))
    assert torch.isclose(loss, hair_ce + 0.5 * eyes_ce)
    # Not softmax followed by cross-entropy (PyTorch-GAN's bug), which gives another value.
    wrong = F.cross_entropy(hair.softmax(1), labels[:, 0]) + 0.5 * F.cross_entropy(eyes.softmax(1), labels[:, 1])
    assert not torch.isclose(loss, wrong)


@pytest.mark.parametrize("d_fake_aux", [0.0, 1.0])
@torch.no_grad()
def test_acgan_losses_add_each_class_term_with_its_weight(d_fake_aux):
    """D: adversarial + the reals' class loss + d_fake_aux x the fakes'; G: adversarial + the fakes' class loss."""
    torch.manual_seed(0)
    model = build("acgan", DataInfo((3, 16, 16), (HAIR, EYES)), d_fake_aux=d_fake_aux, label_smoothing=0.0).eval()
    real, fake = torch.randn(4, 3, 16, 16), torch.randn(4, 3, 16, 16)
    real_labels = torch.tensor([[0, 1], [2, 3], [4, 5], [6, 7]])
    fake_labels = real_labels.flip(1)
    loss_d, stats = model.d_loss(real, real_labels, fake, fake_labels, step_context())
    (adv_real, cls_real), (adv_fake, cls_fake) = model.discriminator(real), model.discriminator(fake)
    adversarial = model.loss.d(adv_real.float(), adv_fake.float(), 1.0)
    assert stats["aux_real"] == pytest.approx(float(auxiliary_loss(cls_real, real_labels, model.aux_weights)), rel=1e-5)
    assert stats["aux_fake"] == pytest.approx(float(auxiliary_loss(cls_fake, fake_labels, model.aux_weights)), rel=1e-5)
    expected_d = adversarial + stats["aux_real"] + d_fake_aux * stats["aux_fake"]
    assert float(loss_d) == pytest.approx(float(expected_d), rel=1e-5)
    loss_g = model.g_loss(fake, fake_labels, step_context())
    expected_g = model.loss.g(adv_fake.float()) + stats["aux_fake"]
    assert float(loss_g) == pytest.approx(float(expected_g), rel=1e-5)
    assert float(loss_g) != pytest.approx(float(model.loss.g(adv_fake.float())), rel=1e-3)  # the class term counts


def test_a_batchnorm_discriminator_sees_reals_and_fakes_apart():
    """BatchNorm's statistics would mix real and fake samples in one batch (base.joint_d_batch)."""
    assert not build("dcgan", DataInfo((3, 16, 16))).joint_d_batch
    assert not build("acgan", DataInfo((3, 16, 16), (HAIR, EYES))).joint_d_batch
    model = build("dcgan", DataInfo((3, 16, 16)))
    sizes = []
    model.discriminator.register_forward_pre_hook(lambda module, args: sizes.append(len(args[0])))
    model.discriminate(torch.randn(4, 3, 16, 16), None, torch.randn(4, 3, 16, 16), None)
    assert sizes == [4, 4]


def tiny_faces(n: int = 64) -> TensorData:
    """Random 3x16x16 'faces' whose colour follows hair, so a few steps run on real labels."""
    g = torch.Generator().manual_seed(0)
    labels = torch.stack([torch.randint(12, (n,), generator=g), torch.randint(11, (n,), generator=g)], 1)
    images = (labels[:, :1, None, None].float() / 6 - 1).expand(n, 3, 16, 16).clone()
    return TensorData(images, labels, DataInfo((3, 16, 16), (HAIR, EYES)), "tiny-faces")


def tiny_config(model: str, steps: int) -> RunConfig:
    family = get_family(model)
    cfg = RunConfig(model, family.default_config("faces"))
    for key, value in {**TINY, "train.steps": steps, "train.sample_every": steps,
                       "train.checkpoint_every": steps}.items():
        set_value(cfg, key, value)
    return cfg


@pytest.mark.parametrize("model", ["dcgan", "acgan"])
def test_a_tiny_run_trains_saves_and_samples(model: str, tmp_path: Path):
    run = train(tiny_config(model, 6), tmp_path / model, data=tiny_faces())
    names = {p.relative_to(run).as_posix() for p in run.rglob("*") if p.is_file()}
    assert {"config.json", "generator.json", "generator.safetensors", "samples/step-000006.png",
            "checkpoints/step-000006/weights.safetensors"} <= names
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if '"loss_d"' in line]
    assert [r["step"] for r in records] == list(range(1, 7))
    assert all(math.isfinite(r["loss_d"]) and math.isfinite(r["loss_g"]) for r in records)
    grid = Image.open(run / "samples/step-000006.png").size
    pipe = gankit.load(run)
    if model == "dcgan":
        assert grid == (10 * 18 + 2,) * 2  # 10 x 10 unconditional grid
        assert pipe.sample(4, seed=0).shape == (4, 3, 16, 16)
        return
    assert grid == (11 * 18 + 2, 12 * 18 + 2)  # hair rows x eye columns
    assert {"aux_real", "aux_fake", "acc_fake"} <= set(records[-1])
    images, labels = pipe.generate(5, labels=[[3, 7]], seed=0)
    assert images.shape == (5, 3, 16, 16) and labels.tolist() == [[3, 7]] * 5
    assert torch.equal(images, pipe.generate(5, labels=[[3, 7]], seed=0)[0])


def test_acgan_cli_takes_tiny_widths_through_set(tmp_path: Path):
    out = tmp_path / "mnist"
    args = ["train", "acgan", "--data", "mnist", "--out", str(out), "--steps", "2", "--batch-size", "16",
            "--no-progress", "--set", "model.g_width=8", "--set", "model.d_width=8",
            "--set", "train.sample_every=2", "--set", "model.aux_weights=2"]
    assert main(args) == 0
    saved = json.loads((out / "generator.json").read_text())
    assert saved["model_cfg"]["g_width"] == 8 and saved["model_cfg"]["aux_weights"] == [2.0]
    assert gankit.load(out).sample(3, labels=[7], seed=0).shape == (3, 1, 28, 28)


def test_faces_extractor_reads_hair_and_eyes_of_real_faces_at_any_size():
    from gankit.data import load_dataset
    from gankit.metrics import load_extractor
    from gankit.metrics.attributes import attribute_accuracy  # also registers "faces"

    faces = load_dataset("faces:200")
    extractor = load_extractor("faces")
    features, logits = extractor.features_and_logits(faces.samples)
    assert features.shape == (200, 128) and logits.shape == (200, 12 + 11)
    assert set(attribute_accuracy(extractor.split_logits(logits), faces.labels).values()) == {1.0}
    doubled = F.interpolate(faces.samples, scale_factor=2, mode="nearest")  # 64x64 faces are resized
    assert min(attribute_accuracy(extractor.attribute_logits(doubled), faces.labels).values()) > 0.97
    # A face of one class for every label: the accuracy counts the requested column, not any column.
    assert attribute_accuracy(extractor.split_logits(logits), faces.labels.roll(1, 0))["hair"] < 0.3
    with pytest.raises(GankitError, match="square RGB"):
        extractor.features(torch.zeros(2, 1, 28, 28))


def test_sampling_by_attribute_from_the_cli(tmp_path: Path, capsys):
    run = train(tiny_config("acgan", 2), tmp_path / "acgan", data=tiny_faces())
    npz = tmp_path / "s.npz"
    blue, red = HAIR.values[8], HAIR.values[5]
    assert main(["sample", str(run), "--attr", f"hair={blue}", "--attr", "eyes=random", "--n", "8",
                 "--npz", str(npz)]) == 0
    with np.load(npz) as f:
        assert f["images"].shape == (8, 3, 16, 16) and f["labels"].shape == (8, 2)
        assert set(f["hair"]) == {8} and len(set(f["eyes"])) > 1
        assert list(f["hair_names"]) == list(HAIR.values) and list(f["eyes_names"]) == list(EYES.values)
    assert main(["sample", str(run), "--grid", "hair,eyes", "--out", str(tmp_path / "g.png")]) == 0
    assert Image.open(tmp_path / "g.png").size == (11 * 18 + 2, 12 * 18 + 2)  # every combination once
    assert main(["sample", str(run), "--grid", "eyes", "--attr", f"hair={red}", "--npz", str(npz)]) == 0
    with np.load(npz) as f:
        assert len(f["eyes"]) == 110 and set(f["hair"]) == {5}
    capsys.readouterr()
    for argv, words in ((["--label", red], "choose values with --attr hair="),
                        (["--attr", "hair=silver"], "'silver' is not a value of attribute 'hair'"),
                        (["--attr", "nose=big"], "no attribute 'nose'"),
                        (["--attr", "hair"], "must look like name=value"),
                        (["--grid", "hair,hair"], "one or two different attributes"),
                        (["--attr", f"hair={red}", "--attr", f"hair={blue}"], "--attr hair is given twice"),
                        (["--grid", "hair", "--attr", f"hair={red}"], "hair is both a --grid axis")):
        assert main(["sample", str(run), *argv]) == 2
        assert words in capsys.readouterr().err


def test_eval_reports_each_attributes_accuracy(tmp_path: Path):
    from gankit.metrics import evaluate, format_table, load_extractor, run_eval
    from gankit.data import load_dataset

    faces = load_dataset("faces:200")
    cfg = tiny_config("acgan", 2)
    cfg.data.spec = "faces:200"
    run = train(cfg, tmp_path / "acgan", data=TensorData(faces.samples, faces.labels, faces.info, "faces:200"))
    result = evaluate(gankit.load(run), faces, load_extractor("faces"), n=50)
    assert run_eval(run, n=20)["extractor"] == "faces"  # the API's default feature space follows the data
    assert {"accuracy_hair", "accuracy_eyes", "class_histogram_hair", "class_histogram_eyes"} <= set(result)
    assert "is_mean" not in result  # IS needs one distribution over classes
    assert sum(result["class_histogram_eyes"].values()) == 50
    assert "accuracy hair" in format_table(result)


def test_samples_may_fix_some_attributes_by_name_and_draw_the_others(tmp_path):
    from gankit.artifacts import save_generator
    from gankit.pipeline import load

    info = DataInfo((3, 32, 32), (HAIR, EYES))
    family = get_family("acgan")
    cfg = family.default_config("faces")
    torch.manual_seed(0)
    save_generator(tmp_path, "acgan", cfg, info, family.build_generator(cfg, info), step=0, data_spec="faces")
    pipe = load(tmp_path)
    images, labels = pipe.generate(40, labels={"hair": 3}, seed=0)
    assert images.shape == (40, 3, 32, 32) and set(labels[:, 0].tolist()) == {3} and len(set(labels[:, 1].tolist())) > 3
    all_fixed, y = pipe.generate(4, labels={"hair": 3, "eyes": 1}, seed=0)
    assert torch.equal(all_fixed, pipe.generate(4, labels=[3, 1], seed=0)[0]) and y.tolist() == [[3, 1]] * 4
    with pytest.raises(GankitError, match="Unknown attribute 'smile'"):
        pipe.generate(4, labels={"smile": 1})
    with pytest.raises(GankitError, match="Label 12 is outside 'hair'"):
        pipe.generate(4, labels={"hair": 12})
