"""DiffAugment (models/augment.py): what each transform does, its gradient, and its wiring into training."""

import math
from pathlib import Path

import pytest
import torch
from torch.nn.modules.module import register_module_forward_pre_hook

from gankit.cli import main
from gankit.errors import GankitError
from gankit.models.augment import (SHIFT, adapt_probability, augment, color, cutout, parse_policy, random_affine,
                                   translation,
                                   with_probability)
from gankit.models.gan import MLPDiscriminator

from conftest import read_metrics, train_cli


def dot_images(n: int = 64, side: int = 16) -> torch.Tensor:
    """Black (-1) images with one white pixel in the middle."""
    x = torch.full((n, 1, side, side), -1.0)
    x[:, :, side // 2, side // 2] = 1.0
    return x


def test_translation_moves_each_image_within_the_shift_and_keeps_its_content():
    x = dot_images()
    y = translation(x, torch.Generator().manual_seed(0))
    assert y.shape == x.shape
    assert torch.equal((y == 1).flatten(1).sum(1), torch.ones(64, dtype=torch.long))  # the dot is moved, not lost
    rows, cols = (y[:, 0] == 1).nonzero()[:, 1], (y[:, 0] == 1).nonzero()[:, 2]
    limit = round(16 * SHIFT)
    assert (rows - 8).abs().max() <= limit and (cols - 8).abs().max() <= limit
    shifts = set(zip((rows - 8).tolist(), (cols - 8).tolist()))
    assert len(shifts) > 5  # drawn per image, not once per batch
    many = translation(dot_images(512), torch.Generator().manual_seed(1))
    where = (many[:, 0] == 1).nonzero()
    every = set(range(-limit, limit + 1))
    assert set((where[:, 1] - 8).tolist()) == every and set((where[:, 2] - 8).tolist()) == every  # both ways, fully


def test_translation_repeats_the_edges_into_the_gap():
    x = torch.linspace(-1, 1, 8).view(1, 1, 1, 8).repeat(32, 1, 8, 1)  # a horizontal ramp
    y = translation(x, torch.Generator().manual_seed(1))
    assert y.min() >= -1 and y.max() <= 1
    assert torch.all(y[:, :, :, 1:] >= y[:, :, :, :-1])  # still a non-decreasing ramp: no zeros let in


def test_cutout_zeroes_one_square_of_at_most_half_the_side():
    x = torch.ones(64, 3, 16, 16)
    y = cutout(x, torch.Generator().manual_seed(0))
    zeros = (y[:, 0] == 0).flatten(1).sum(1)
    assert zeros.max() <= 8 * 8 and zeros.min() > 0
    assert torch.equal(y[:, 0] == 0, y[:, 2] == 0)  # the same square in every channel
    assert set(y.unique().tolist()) == {0.0, 1.0}
    zeros = (cutout(torch.ones(512, 1, 16, 16), torch.Generator().manual_seed(1))[:, 0] == 0)
    counts = zeros.flatten(1).sum(1)
    full = zeros[counts == 64]  # an 8x8 square wholly inside...
    rows, cols = full.any(2), full.any(1)
    assert len(full) and torch.equal(rows.sum(1), torch.full((len(full),), 8)) and cols.sum(1).eq(8).all()
    some = zeros[counts > 0]  # ...and squares cut by an edge, whose centre DiffAugment lets reach it
    assert (some.any(2).sum(1) < 8).any() and (some.any(1).sum(1) < 8).any()  # by a top or bottom one, by a side


def test_color_changes_brightness_and_contrast_per_image():
    x = dot_images()
    y = color(x, torch.Generator().manual_seed(0))
    means = y.mean(dim=(1, 2, 3))
    assert means.std() > 0.1
    assert (y.amax(dim=(1, 2, 3)) - y.amin(dim=(1, 2, 3))).std() > 0.05


def test_color_scales_saturation_per_image_by_up_to_2():
    """Each pixel's distance from its grey, (x - mean over channels), is scaled by a factor in [0, 2]
    per image (DiffAugment's saturation) before the contrast, which scales it by 0.5-1.5 again."""
    rgb = torch.tensor([0.5, 0.0, -0.5]).view(1, 3, 1, 1).repeat(2000, 1, 4, 4)
    y = color(rgb, torch.Generator().manual_seed(0))
    spread = (y[:, 0] - y[:, 2]).mean(dim=(1, 2))  # 1.0 before
    assert spread.min() < 0.05 and spread.max() > 2.0 and spread.std() > 0.3


def test_color_shifts_brightness_by_up_to_half_as_diffaugment_does():
    flat = torch.zeros(2000, 1, 4, 4)  # one channel, one value: contrast and saturation leave it alone
    shift = color(flat, torch.Generator().manual_seed(0))[:, 0, 0, 0]
    assert torch.equal(color(flat, torch.Generator().manual_seed(0)).amin(dim=(1, 2, 3)), shift)
    assert shift.abs().max() <= 0.5 and shift.abs().max() > 0.49 and abs(shift.mean()) < 0.02


def test_augment_passes_gradients_and_repeats_with_the_seed():
    x = dot_images(8).requires_grad_(True)
    names = parse_policy("translation, cutout,color")
    y = augment(x, names, torch.Generator().manual_seed(3))
    y.square().sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    again = augment(x.detach(), names, torch.Generator().manual_seed(3))
    assert torch.equal(y.detach(), again)
    assert torch.equal(augment(x.detach(), [], None), x.detach())


def test_random_affine_moves_each_image_within_its_limits():
    x = torch.full((64, 1, 28, 28), -1.0)
    x[:, :, 13:15, 13:15] = 1  # a 2x2 dot in the middle
    assert torch.allclose(random_affine(x, 0, None, scale=0, shift=0), x, atol=1e-5)  # the identity map
    y = random_affine(x.double(), 20, torch.Generator().manual_seed(0))
    assert y.shape == x.shape and y.dtype == torch.float32 and y.min() >= -1 and y.max() <= 1
    weight = (y + 1).flatten(1)
    ys, xs = torch.meshgrid(torch.arange(28.0), torch.arange(28.0), indexing="ij")
    rows, cols = (weight * ys.flatten()).sum(1) / weight.sum(1), (weight * xs.flatten()).sum(1) / weight.sum(1)
    offsets = torch.stack([rows - 13.5, cols - 13.5], 1)
    # a dot at the centre moves by the shift alone: up to 2 pixels of 28 on each axis, times the zoom
    assert offsets.norm(dim=1).max() < 1.1 * math.sqrt(2) * 0.07 * 28 + 0.1
    assert offsets.std(0).min() > 0.5  # drawn per image
    line = torch.full((64, 1, 28, 28), -1.0)
    line[:, :, 4:24, 14] = 1  # a vertical stroke: rotation tilts it, by up to 20 degrees
    moved = (random_affine(line, 20, torch.Generator().manual_seed(0)) + 1).flatten(1)
    slope = (moved * (xs.flatten() - 13.5) * (ys.flatten() - 13.5)).sum(1) / (moved * (ys.flatten() - 13.5) ** 2).sum(1)
    assert slope.abs().max() < math.tan(math.radians(20)) * 1.2 and slope.abs().max() > math.tan(math.radians(10))


def test_random_affine_passes_gradients_and_repeats_with_the_seed():
    x = dot_images(8).requires_grad_(True)
    y = random_affine(x, 20, torch.Generator().manual_seed(3))
    y.square().sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert torch.equal(y.detach(), random_affine(x.detach(), 20, torch.Generator().manual_seed(3)))


def test_adaptive_probability_moves_towards_the_target_and_stays_in_0_1():
    p = torch.tensor(0.5)
    assert adapt_probability(p, torch.tensor(0.9), 100, 0.6, 1000).item() == pytest.approx(0.6)
    assert adapt_probability(p, torch.tensor(0.2), 100, 0.6, 1000).item() == pytest.approx(0.4)
    assert adapt_probability(torch.tensor(0.99), torch.tensor(1.0), 100, 0.6, 1000).item() == 1.0
    assert adapt_probability(torch.tensor(0.01), torch.tensor(-1.0), 100, 0.6, 1000).item() == 0.0


@pytest.mark.parametrize("p, low, high", [(0.0, 0, 0), (0.3, 0.2, 0.4), (1.0, 1, 1)])
def test_probability_is_the_share_of_images_augmented(p, low, high):
    x = torch.ones(1000, 1, 8, 8)
    y = augment(x, ["cutout"], torch.Generator().manual_seed(0), torch.tensor(p))
    share = ((y == 0).flatten(1).any(1)).float().mean().item()
    assert low <= share <= high


@pytest.mark.parametrize("by_index", [True, False])  # the CPU's way and the GPU's (masked) way
def test_both_ways_of_choosing_images_keep_the_others_and_the_dtype(by_index):
    x = torch.ones(400, 1, 8, 8, dtype=torch.bfloat16)
    y = with_probability(cutout, x, torch.Generator().manual_seed(0), torch.tensor(0.5), by_index)
    changed = (y == 0).flatten(1).any(1)
    assert y.dtype == torch.bfloat16 and 0.4 < changed.float().mean().item() < 0.6
    assert torch.equal(y[~changed], x[~changed])


def test_adaptive_training_logs_the_probability_and_resumes_exactly(tmp_path: Path):
    # A small ramp, so a few steps move p; D wins at first (E[sign(D(real))] near 1), so p rises.
    # No lr decay: it follows the budget, which differs between the two halves and the whole.
    common = ["--seed", "3", "--set", "train.checkpoint_every=5", "--set", "train.lr_decay=0",
              "--set", "model.augment=translation",
              "--set", "model.augment_target=0.6", "--set", "model.augment_ramp=2000"]
    assert train_cli("gan", tmp_path / "straight", "--steps", "10", *common) == 0
    assert train_cli("gan", tmp_path / "split", "--steps", "5", *common) == 0
    assert main(["train", "gan", "--resume", str(tmp_path / "split"), "--steps", "10", "--no-progress"]) == 0
    straight, split = read_metrics(tmp_path / "straight"), read_metrics(tmp_path / "split")
    probabilities = [r["augment_p"] for r in straight]
    steps = [p / (32 / 2000) for p in probabilities]  # each D step moves p by batch / ramp
    assert all(abs(s - round(s)) < 1e-3 for s in steps) and max(probabilities) > 0
    assert all(0 <= p <= 1 and -1 <= r["real_sign"] <= 1 for p, r in zip(probabilities, straight))
    assert [(r["loss_d"], r["augment_p"]) for r in split] == [(r["loss_d"], r["augment_p"]) for r in straight]


def test_unknown_augmentation_names_the_input():
    assert parse_policy("") == []
    with pytest.raises(GankitError, match="unknown augmentation 'flip'"):
        parse_policy("translation,flip")


def test_discriminator_sees_only_augmented_images_in_training(tmp_path: Path):
    seen: list[torch.Tensor] = []

    def record(module, args):
        if isinstance(module, MLPDiscriminator) and torch.is_grad_enabled():  # training passes, not previews
            seen.append(args[0].detach().float())

    hook = register_module_forward_pre_hook(record)
    try:
        assert train_cli("gan", tmp_path / "run", "--steps", "4", "--set", "model.augment=cutout",
                         "--set", "model.augment_target=0") == 0  # every image, not adaptively
    finally:
        hook.remove()
    # MNIST pixels and tanh outputs are never exactly 0, so only cutout's square makes zeros.
    # Real and fake both pass through D in its update (one joint batch), fakes again in G's.
    assert len(seen) == 8
    assert all(((x == 0).flatten(1).sum(1) >= 7 * 7).all() for x in seen)


def test_training_with_every_augmentation_runs(tmp_path: Path):
    out = tmp_path / "run"
    assert train_cli("gan", out, "--steps", "6", "--set", "model.augment=translation,cutout,color",
                     "--set", "model.augment_target=0") == 0
    metrics = read_metrics(out)
    assert metrics[-1]["step"] == 6 and all(torch.isfinite(torch.tensor(m["loss_d"])) for m in metrics)


@pytest.mark.parametrize("argv, words", [
    (["train", "gan", "--set", "model.augment=blur", "--steps", "1"], "unknown augmentation 'blur'"),
    (["train", "gan", "--data", "toy:ring8", "--set", "model.augment=translation", "--steps", "1"],
     "model.augment transforms images"),
    (["train", "gan", "--set", "model.augment_target=1.5", "--steps", "1"], "model.augment_target must be in [0, 1)"),
])
def test_augmentation_errors_are_one_sentence(capsys, argv, words):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert words in err and err.count("\n") == 1
