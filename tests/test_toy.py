"""Toy distributions, mode metrics, D* and the pictures drawn for vector data."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from gankit.config import DataConfig
from gankit.data import load_dataset
from gankit.data.toy import GaussianMixture, toy_distribution
from gankit.errors import GankitError
from gankit.metrics.modes import (MINIMAX_OPTIMUM, density_grid, discriminator_gap, minimax_value, mode_report,
                                  optimal_discriminator, optimal_value, sample_density, toy_metrics)
from gankit.models.gan import GAN
from gankit.train.preview import preview_inputs, save_preview
from gankit.viz import figure_1d, figure_2d, plot_window, save_png, write_gif

from conftest import step_context


def normal_pdf(x: np.ndarray, mean: float, std: float) -> np.ndarray:
    return np.exp(-0.5 * ((x - mean) / std) ** 2) / (std * math.sqrt(2 * math.pi))


# --- samplers ----------------------------------------------------------------------------------
def per_mode_stats(points: np.ndarray, mixture: GaussianMixture) -> tuple[np.ndarray, np.ndarray]:
    nearest = ((points[:, None] - mixture.centres[None]) ** 2).sum(-1).argmin(1)
    means = np.stack([points[nearest == k].mean(0) for k in range(len(mixture.centres))])
    stds = np.stack([points[nearest == k].std(0) for k in range(len(mixture.centres))])
    return means, stds


@pytest.mark.parametrize("spec, modes, std", [("toy:ring8", 8, 0.02), ("toy:grid25", 25, 0.05),
                                              ("toy:ring8,modes=5,radius=3,std=0.05,n=20000", 5, 0.05)])
def test_mixture_samples_sit_on_their_modes(spec, modes, std):
    data = load_dataset(spec)
    mixture = toy_distribution(spec)
    assert data.samples.dtype == torch.float32 and data.samples.shape[1] == 2
    assert data.labels is None and data.info.shape == (2,) and not data.info.is_image
    assert len(mixture.centres) == modes and mixture.std == std
    means, stds = per_mode_stats(data.samples.numpy().astype(np.float64), mixture)
    np.testing.assert_allclose(means, mixture.centres, atol=0.01)
    np.testing.assert_allclose(stds, std, rtol=0.1)


def test_published_layouts():
    ring = toy_distribution("toy:ring8").centres
    np.testing.assert_allclose(np.linalg.norm(ring, axis=1), 2.0)
    grid = toy_distribution("toy:grid25").centres
    assert sorted(set(grid[:, 0].round(6))) == [-4, -2, 0, 2, 4]  # PacGAN's grid


def test_gauss1d_and_spiral_shapes_and_determinism():
    one = load_dataset("toy:gauss1d,mean=-1,std=2,n=50000")
    assert one.samples.shape == (50000, 1) and one.info.shape == (1,)
    assert abs(one.samples.mean().item() + 1) < 0.05 and abs(one.samples.std().item() - 2) < 0.05
    spiral = load_dataset("toy:spiral,n=1000")
    assert spiral.samples.shape == (1000, 2) and toy_distribution("toy:spiral") is not None
    radii = load_dataset("toy:spiral,n=20000,std=0.001").samples.norm(dim=1)
    assert radii.median().item() == pytest.approx(4 * 0.51**0.5, abs=0.05)  # points evenly spaced along the arm
    assert torch.equal(load_dataset("toy:spiral,n=1000").samples, spiral.samples)
    assert not torch.equal(load_dataset("toy:spiral,n=1000,seed=1").samples, spiral.samples)
    assert toy_distribution("mnist") is None


@pytest.mark.parametrize("spec, words", [
    ("toy", "Unknown toy distribution"),
    ("toy:ring9", "ring9"),
    ("toy:ring8,foo=1", "no option 'foo'"),
    ("toy:ring8,radius=-1", "radius must be a positive number"),
    ("toy:ring8,std=0", "std must be a positive number"),
    ("toy:grid25,size=2.5", "size must be a positive integer"),
    ("toy:ring8,std", "needs a value"),
    ("toy:gauss1d,mean=inf", "mean must be a number"),
    ("toy:spiral,seed=-1", "seed must be a non-negative integer"),
    ("toy:ring8,std=0.1,std=0.2", "toy:ring8 option 'std' is given twice; give each option once"),
    ("toy:spiral,turns=1e308", "gives points beyond float32's range"),
])
def test_bad_specs_raise_one_sentence(spec, words):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # numpy's overflow warnings must not come before the sentence
        with pytest.raises(GankitError, match=words) as info:
            load_dataset(spec)
    message = str(info.value)
    assert message.endswith(".") and message.count(". ") == 0


def test_toy_refuses_image_options():
    with pytest.raises(GankitError, match="image_size"):
        load_dataset("toy:ring8", DataConfig("toy:ring8", image_size=32))


# --- mode metrics ------------------------------------------------------------------------------
def test_mode_counting_rule_on_hand_made_points():
    mixture = GaussianMixture(np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]]), std=0.1)
    on_first = np.zeros((20, 2)) + [0.29, 0.0]  # 2.9 std away: high quality
    on_second = np.tile([10.0, 0.0], (19, 1))  # one short of 20
    far = np.tile([0.0, 10.31], (30, 1))  # 3.1 std from the third centre: not high quality
    report = mode_report(np.concatenate([on_first, on_second, far]), mixture)
    assert report.counts.tolist() == [20, 19, 0]
    assert report.modes == 1 and report.total_modes == 3
    assert report.high_quality == pytest.approx(39 / 69)
    assert mode_report(on_second, mixture, min_count=1).modes == 1  # VEEGAN's rule


def test_a_perfect_sampler_captures_every_mode():
    mixture = toy_distribution("toy:grid25")
    fake = mixture.sample(2500, np.random.default_rng(3))
    metrics = toy_metrics(fake, fake, mixture)
    assert metrics["modes"] == 25 and metrics["modes_total"] == 25
    assert metrics["high_quality"] > 0.97  # P(|x| <= 3 std) in 2-D is 1 - exp(-4.5) = 0.989


def test_collapse_to_one_mode_counts_one():
    mixture = toy_distribution("toy:ring8")
    fake = mixture.centres[2] + 0.02 * np.random.default_rng(0).standard_normal((2500, 2))
    assert toy_metrics(fake, fake, mixture)["modes"] == 1


# --- D* and the minimax value ------------------------------------------------------------------
def test_optimal_discriminator_of_two_gaussians():
    x = np.linspace(-10, 10, 4001)
    p_data, p_g = normal_pdf(x, 1.0, 1.0), normal_pdf(x, -1.0, 1.0)
    d_star = optimal_discriminator(p_data, p_g)
    # Equal variances: D* is the logistic function of log p_data/p_g = 2x.
    np.testing.assert_allclose(d_star, 1 / (1 + np.exp(-2 * x)), atol=1e-9)
    assert optimal_discriminator(np.zeros(3), np.zeros(3)).tolist() == [0.5] * 3
    assert discriminator_gap(d_star, d_star, p_data, p_g) == 0
    assert discriminator_gap(np.full_like(x, 0.5), d_star, p_data, p_g) > 0.2


def test_the_discriminator_gap_weighs_both_densities():
    # Where only p_data lives D is right; where only p_g lives it is off by 1: half the mixture's mass.
    p_data, p_g = np.array([1.0, 0.0]), np.array([0.0, 1.0])
    assert discriminator_gap(np.array([1.0, 1.0]), np.array([1.0, 0.0]), p_data, p_g) == 0.5


def test_the_density_of_a_collapsed_generator_is_finite_and_peaks_at_its_point():
    x = np.linspace(0.29, 0.31, 201)[:, None]  # fine enough for the narrow peak
    density = sample_density(np.full(200, 0.3), x)
    assert abs(x[density.argmax(), 0] - 0.3) < 0.001 and (density * (x[1, 0] - x[0, 0])).sum() == pytest.approx(1)


def test_the_density_grid_reaches_a_tenth_of_the_span_past_both_ends():
    grid = density_grid(np.array([0.0, 1.0]), np.array([0.5]), points=5)
    assert grid.shape == (5, 1) and grid[0, 0] == pytest.approx(-0.101) and grid[-1, 0] == pytest.approx(1.101)


def test_value_at_d_star_is_minus_log4_plus_twice_jsd():
    x = np.linspace(-10, 10, 4001)
    same = normal_pdf(x, 0, 1)
    assert optimal_value(x, same, same) == pytest.approx(MINIMAX_OPTIMUM, abs=1e-6)
    apart = optimal_value(x, normal_pdf(x, -5, 0.5), normal_pdf(x, 5, 0.5))
    assert apart == pytest.approx(0.0, abs=1e-6)  # disjoint supports: JSD = log 2


def test_minimax_value_from_logits():
    assert minimax_value(np.zeros(10), np.zeros(10)) == pytest.approx(MINIMAX_OPTIMUM)
    assert minimax_value(np.full(10, 50.0), np.full(10, -50.0)) == pytest.approx(0.0, abs=1e-12)


def test_one_d_metrics_of_an_exact_generator_and_its_optimal_d():
    mixture = toy_distribution("toy:gauss1d")
    rng = np.random.default_rng(0)
    fake, real = mixture.sample(4000, rng), mixture.sample(2500, rng)
    constant = ConstantLogit(0.0)  # D = 1/2 everywhere: optimal when p_g = p_data
    metrics = toy_metrics(fake, real, mixture, constant)
    assert metrics["d_star_gap"] < 0.05
    assert metrics["minimax_value"] == pytest.approx(MINIMAX_OPTIMUM, abs=1e-4)
    assert metrics["minimax_at_d_star"] == pytest.approx(MINIMAX_OPTIMUM, abs=0.02)


@pytest.mark.parametrize("loss, undecided", [("lsgan", 0.5), ("hinge", 0.0)])
def test_one_d_metrics_read_d_on_its_losss_scale(loss, undecided):
    """An undecided least-squares D (0.5) matches D* where p_g = p_data; hinge's D* is a step
    between 0 and 1, so it is not scored. The cross-entropy game's value is left out, its value
    at D* kept."""
    mixture = toy_distribution("toy:gauss1d")
    rng = np.random.default_rng(0)
    fake, real = mixture.sample(4000, rng), mixture.sample(2500, rng)
    metrics = toy_metrics(fake, real, mixture, ConstantLogit(undecided), loss=loss)
    if loss == "lsgan":
        assert metrics["d_star_gap"] < 0.05
        # Read as a logit, the output 0.5 would be a belief of 0.62, far from D* = 0.5.
        assert toy_metrics(fake, real, mixture, ConstantLogit(undecided))["d_star_gap"] > 0.1
    else:
        assert "d_star_gap" not in metrics
    assert "minimax_value" not in metrics and metrics["minimax_at_d_star"] == pytest.approx(MINIMAX_OPTIMUM, abs=0.02)
    p_data, p_g = np.array([0.3, 0.1, 0.2]), np.array([0.1, 0.3, 0.2])
    assert optimal_discriminator(p_data, p_g, "hinge").tolist() == [1.0, 0.0, 0.5]
    assert optimal_discriminator(p_data, p_g, "lsgan").tolist() == optimal_discriminator(p_data, p_g).tolist()


class ConstantLogit(nn.Module):
    def __init__(self, value: float):
        super().__init__()
        self.value = nn.Parameter(torch.tensor(value))

    def forward(self, x: torch.Tensor, labels=None) -> torch.Tensor:
        return self.value.expand(len(x), 1)


# --- pictures ----------------------------------------------------------------------------------
def test_figures_write_png_and_gif(tmp_path):
    x = np.linspace(-3, 3, 50)
    p = normal_pdf(x, 0, 1)
    save_png(figure_1d(x, p, p, np.full_like(x, 0.4), np.full_like(x, 0.5), "1-D"), tmp_path / "step-000001.png")
    points = np.random.default_rng(0).standard_normal((100, 2))
    gx, gy = plot_window(points, resolution=20)
    save_png(figure_2d(points, points, gx, gy, gx * gy, "2-D"), tmp_path / "step-000002.png")
    frames = sorted(tmp_path.glob("step-*.png"))
    write_gif(frames, tmp_path / "training.gif")
    with Image.open(tmp_path / "training.gif") as gif:
        assert gif.format == "GIF" and gif.n_frames == 2
    with Image.open(frames[0]) as first, Image.open(frames[1]) as second:
        assert first.size == second.size  # frames of one GIF must share a size


@pytest.mark.parametrize("spec", ["toy:ring8", "toy:gauss1d"])
def test_save_preview_draws_vector_data_and_returns_mode_metrics(tmp_path, spec):
    data = load_dataset(spec + ",n=3000")
    model = GAN(GAN.default_config(spec), data.info)
    inputs = preview_inputs(model.generator, data.info, 0, torch.device("cpu"))
    assert inputs.z.shape == (2500, 2)
    for step in (1, 2):
        metrics = save_preview(model.generator, inputs, tmp_path / f"step-{step:06d}.png", model.discriminator, data)
    assert (tmp_path / "step-000002.png").stat().st_size > 0
    with Image.open(tmp_path / "training.gif") as gif:
        assert gif.n_frames == 2
    assert metrics["modes_total"] == len(toy_distribution(spec).centres)
    assert ("d_star_gap" in metrics) == (spec == "toy:gauss1d")


def test_save_preview_without_discriminator_draws_nothing_for_vectors(tmp_path):
    data = load_dataset("toy:ring8,n=3000")
    model = GAN(GAN.default_config("toy:ring8"), data.info)
    inputs = preview_inputs(model.generator, data.info, 0, torch.device("cpu"))
    assert save_preview(model.generator, inputs, tmp_path / "step-000001.png") == {}
    assert not any(tmp_path.iterdir())


def test_gan_defaults_are_sized_for_toy_data():
    toy, images = GAN.default_config("toy:ring8"), GAN.default_config("mnist")
    assert toy.latent_dim < images.latent_dim and max(toy.g_hidden) < max(images.g_hidden)


# --- stabilisers of the MLP GAN ----------------------------------------------------------------
def tiny_gan(**options) -> GAN:
    from gankit.models.gan import MLPConfig
    info = load_dataset("toy:ring8,n=64").info
    return GAN(MLPConfig(latent_dim=2, g_hidden=(8,), d_hidden=(8, 8), g_batchnorm=False, **options), info)


def test_packed_discriminator_judges_groups_and_scores_single_points():
    model = tiny_gan(pack=4)
    d = model.discriminator
    assert d.net[0].in_features == 8  # 4 samples of 2 coordinates side by side
    x = torch.randn(12, 2)
    packed = model.pack(x)
    assert packed.shape == (3, 8) and torch.equal(packed[1], x[4:8].reshape(-1))
    assert d(packed).shape == (3, 1)
    single = d(x)  # the pictures' use: one logit per point, as a pack of copies of itself
    assert single.shape == (12, 1)
    assert torch.allclose(single[:1], d(x[:1].repeat(1, 4)))
    with pytest.raises(GankitError, match="multiple of model.pack"):
        model.pack(torch.randn(10, 2))


def test_packing_trains_through_the_shared_step():
    model = tiny_gan(pack=2, d_spectral_norm=True)
    ctx = step_context(model)
    before = [p.detach().clone() for p in model.generator.parameters()]
    stats = model.train_step([(torch.randn(16, 2), None)], ctx)
    assert all(torch.isfinite(v) for v in stats.values())
    assert any(not torch.equal(a, b) for a, b in zip(before, model.generator.parameters()))


def test_spectral_norm_bounds_each_layer_of_d():
    model = tiny_gan(d_spectral_norm=True)
    linears = [m for m in model.discriminator.modules() if isinstance(m, nn.Linear)]
    assert len(linears) == 3
    model.discriminator.train()
    for _ in range(30):  # power iterations run on training forwards
        model.discriminator(torch.randn(4, 2))
    for layer in linears:
        assert float(torch.linalg.matrix_norm(layer.weight.detach(), ord=2)) == pytest.approx(1.0, rel=0.05)
    assert any(k.endswith("parametrizations.weight.original") for k in model.discriminator.state_dict())


def test_activation_option_replaces_leaky_relu():
    relu = tiny_gan(activation="relu")
    kinds = {type(m) for m in [*relu.generator.modules(), *relu.discriminator.modules()]}
    assert nn.ReLU in kinds and nn.LeakyReLU not in kinds
    assert not any(isinstance(m, nn.BatchNorm1d) for m in relu.generator.modules())


def test_pack_must_be_positive():
    from gankit.models.gan import MLPConfig
    with pytest.raises(GankitError, match="model.pack"):
        MLPConfig(pack=0).validate()


def test_toy_training_defaults_leave_images_alone():
    from gankit.models.gan import GAN_IMAGE_TRAIN, TOY_TRAIN

    assert GAN.default_train("mnist") == GAN_IMAGE_TRAIN and GAN.default_train("toy:ring8") == TOY_TRAIN
    toy = GAN.default_config("toy:ring8")
    assert GAN.default_config("mnist").g_batchnorm and GAN.default_config("mnist").pack == 1
    # Images get adaptive translation and the hinge loss; vectors cannot be translated.
    images = GAN.default_config("mnist")
    assert (images.augment, images.augment_target, images.loss) == ("translation", 0.4, "hinge")
    assert toy.augment == "" and GAN.default_config("toy:grid25").augment == ""
    assert toy.latent_dim == 2
    # The grid's own recipe, with or without mixture options; other toys keep the ring8 one.
    for spec in ("toy:grid25", "toy:grid25,std=0.05"):
        assert GAN.default_config(spec).latent_dim == 64 and GAN.default_train(spec)["steps"] == 80000
    assert GAN.default_train("toy:spiral") == TOY_TRAIN
