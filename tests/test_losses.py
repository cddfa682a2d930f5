"""Each adversarial loss against values computed by hand, and how D's output is read for each."""

import math

import pytest
import torch

from gankit.data.base import DataInfo
from gankit.errors import GankitError
from gankit.models.gan import GAN, MLPConfig
from gankit.models.losses import LOSSES, real_targets

from conftest import step_context

REAL = torch.tensor([[2.0], [-1.0]])
FAKE = torch.tensor([[0.5], [-3.0]])


def log_sigmoid(x: float) -> float:
    return -math.log1p(math.exp(-x))


def mean(values) -> float:
    return sum(values) / len(values)


def test_bce_discriminator_loss_is_the_papers_value():
    expected = mean([-log_sigmoid(2.0), -log_sigmoid(-1.0)]) + mean([-log_sigmoid(-0.5), -log_sigmoid(3.0)])
    assert LOSSES["nonsaturating"].d(REAL, FAKE).item() == pytest.approx(expected, rel=1e-6)
    assert LOSSES["minimax"].d(REAL, FAKE).item() == pytest.approx(expected, rel=1e-6)
    # the unsmoothed target 1.0 skips a term that is 0; a tensor of ones computes it
    assert LOSSES["nonsaturating"].d(REAL, FAKE, torch.ones(2, 1)).item() == pytest.approx(expected, rel=1e-6)


def test_generator_losses():
    # minimax: mean log(1 - sigmoid(l)); non-saturating: mean -log sigmoid(l)
    minimax = mean([math.log(1 - 1 / (1 + math.exp(-0.5))), math.log(1 - 1 / (1 + math.exp(3.0)))])
    nonsat = mean([-log_sigmoid(0.5), -log_sigmoid(-3.0)])
    assert LOSSES["minimax"].g(FAKE).item() == pytest.approx(minimax, rel=1e-6)
    assert LOSSES["nonsaturating"].g(FAKE).item() == pytest.approx(nonsat, rel=1e-6)


def test_lsgan_and_hinge():
    lsgan_d = 0.5 * mean([(2 - 1) ** 2, (-1 - 1) ** 2]) + 0.5 * mean([0.5**2, 3.0**2])
    assert LOSSES["lsgan"].d(REAL, FAKE).item() == pytest.approx(lsgan_d)
    assert LOSSES["lsgan"].g(FAKE).item() == pytest.approx(0.5 * mean([0.25, 16.0]))
    hinge_d = mean([max(0, 1 - 2), max(0, 1 + 1)]) + mean([max(0, 1 + 0.5), max(0, 1 - 3)])
    assert LOSSES["hinge"].d(REAL, FAKE).item() == pytest.approx(hinge_d)
    assert LOSSES["hinge"].g(FAKE).item() == pytest.approx(-mean([0.5, -3.0]))


def test_label_smoothing_lowers_the_real_target():
    t = 0.9
    expected = mean([-(t * log_sigmoid(x) + (1 - t) * log_sigmoid(-x)) for x in (2.0, -1.0)])
    expected += mean([-log_sigmoid(-0.5), -log_sigmoid(3.0)])
    assert LOSSES["nonsaturating"].d(REAL, FAKE, t).item() == pytest.approx(expected, rel=1e-6)
    lsgan = 0.5 * mean([(2 - t) ** 2, (-1 - t) ** 2]) + 0.5 * mean([0.5**2, 3.0**2])  # regresses real to t
    assert LOSSES["lsgan"].d(REAL, FAKE, t).item() == pytest.approx(lsgan, rel=1e-6)


@pytest.mark.parametrize("loss", [name for name, loss in sorted(LOSSES.items()) if loss.smoothable])
def test_model_label_smoothing_reaches_the_discriminator_loss(loss):
    """The family's D loss uses model.label_smoothing's targets, drawn from the step's noise stream."""
    model = GAN(MLPConfig(g_hidden=(8,), d_hidden=(8,), loss=loss, label_smoothing=0.3), DataInfo((1, 8, 8)))
    d_real, d_fake = torch.randn(6, 1), torch.randn(6, 1)
    ctx = step_context(seed=5)
    smoothed, _ = model.adversarial_d_loss(d_real, d_fake, ctx)
    targets = real_targets(6, 0.3, torch.Generator().manual_seed(5), torch.device("cpu"))
    assert smoothed.item() == pytest.approx(LOSSES[loss].d(d_real, d_fake, targets).item(), rel=1e-6)
    assert smoothed.item() != pytest.approx(LOSSES[loss].d(d_real, d_fake).item(), rel=1e-4)


def test_real_targets_lie_in_the_smoothing_interval():
    g = torch.Generator().manual_seed(0)
    assert real_targets(8, 0.0, g, torch.device("cpu")) == 1.0
    t = real_targets(1000, 0.2, g, torch.device("cpu"))
    assert t.shape == (1000, 1) and t.min() >= 0.8 and t.max() <= 1.0 and t.std() > 0.03


def test_losses_are_stable_for_extreme_logits():
    big = torch.tensor([[1e4], [-1e4]])
    for loss in LOSSES.values():
        assert torch.isfinite(loss.d(big, -big)) and torch.isfinite(loss.g(big))


# D's output where it cannot tell real from fake, and where its loss is at its best on both.
D_SCALES = {"nonsaturating": (0.0, 20.0, -20.0), "minimax": (0.0, 20.0, -20.0), "lsgan": (0.5, 1.0, 0.0),
            "hinge": (0.0, 1.0, -1.0)}


@pytest.mark.parametrize("loss", sorted(LOSSES))
def test_the_logged_d_and_adaptive_augmentation_read_each_loss_on_its_own_scale(loss: str):
    model = GAN(MLPConfig(g_hidden=(8,), d_hidden=(8,), loss=loss, augment="translation", augment_target=0.6),
                DataInfo((1, 8, 8)))
    ctx = step_context()
    undecided, real, fake = D_SCALES[loss]
    _, stats = model.adversarial_d_loss(torch.full((4, 1), undecided), torch.full((4, 1), undecided), ctx)
    assert (stats["d_real"].item(), stats["d_fake"].item(), stats["real_sign"].item()) == (0.5, 0.5, 0.0)
    _, stats = model.adversarial_d_loss(torch.full((4, 1), real), torch.full((4, 1), fake), ctx)
    assert stats["d_real"].item() > 0.99 and stats["d_fake"].item() < 0.01 and stats["real_sign"].item() == 1.0
    _, stats = model.adversarial_d_loss(torch.full((4, 1), fake), torch.full((4, 1), real), ctx)  # reals called fake
    assert stats["d_real"].item() < 0.01 and stats["real_sign"].item() == -1.0  # ADA's probability may fall
    assert LOSSES[loss].smoothable == (loss != "hinge")  # one-sided smoothing moves a target; hinge has none


def test_each_of_several_d_batches_gets_its_own_d_update_then_g_one():
    """train.d_steps=k: k D updates, one per batch, then one G update (base.train_step)."""
    torch.manual_seed(0)
    model = GAN(MLPConfig(g_hidden=(8,), d_hidden=(8,)), DataInfo((1, 8, 8)))
    calls = []

    class Counted(torch.optim.SGD):
        def step(self, closure=None):
            calls.append(self.name)
            return super().step(closure)

    opt_g, opt_d = Counted(model.generator_parameters(), 0.1), Counted(model.discriminator_parameters(), 0.1)
    opt_g.name, opt_d.name = "g", "d"
    batches = [(torch.rand(4, 1, 8, 8) * 2 - 1, None) for _ in range(3)]
    model.train_step(batches, step_context(opts=(opt_g, opt_d)))
    assert calls == ["d", "d", "d", "g"]


@pytest.mark.parametrize("key", ["label_smoothing", "augment_target"])
def test_smoothing_and_the_ada_target_stop_short_of_1(key):
    """Smoothing 1 would make every real target 0; a target of 1 could never be exceeded."""
    MLPConfig(augment="translation", **{key: 0.999}).validate()
    with pytest.raises(GankitError, match=rf"model.{key} must be in \[0, 1\)"):
        MLPConfig(augment="translation", **{key: 1.0}).validate()


def test_random_labels_draw_every_class_of_every_attribute_evenly():
    from gankit.data.base import Attribute
    from gankit.models.base import random_labels

    info = DataInfo((1, 8, 8), (Attribute("hair", tuple("abcdefghijkl")), Attribute("eyes", tuple("abcdefghijk"))))
    labels = random_labels(info, 11_000, torch.Generator().manual_seed(0), torch.device("cpu"))
    for column, classes in enumerate((12, 11)):
        counts, even = torch.bincount(labels[:, column], minlength=classes), 11_000 / classes
        assert len(counts) == classes and counts.min() > 0.8 * even and counts.max() < 1.2 * even
