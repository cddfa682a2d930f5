"""Building blocks of several families (models/layers.py)."""

import pytest
import torch

from gankit.models.layers import FastDropout, random_bytes


def test_random_bytes_fill_any_shape_with_uniform_bytes():
    torch.manual_seed(0)
    odd = random_bytes(torch.Size([3, 5, 7]), torch.device("cpu"))  # 105 bytes: not a multiple of 8
    assert odd.shape == (3, 5, 7) and odd.dtype == torch.uint8 and odd.is_contiguous()
    counts = torch.bincount(random_bytes(torch.Size([256 * 4096]), torch.device("cpu")).long(), minlength=256)
    # 4,096 expected per value; a Poisson spread is 64, so every count lies within 6 of them
    assert counts.min() > 4096 - 6 * 64 and counts.max() < 4096 + 6 * 64
    assert not torch.equal(random_bytes(torch.Size([64]), torch.device("cpu")),
                           random_bytes(torch.Size([64]), torch.device("cpu")))


def test_random_bytes_follow_the_seed():
    torch.manual_seed(3)
    first = random_bytes(torch.Size([100]), torch.device("cpu"))
    torch.manual_seed(3)
    assert torch.equal(first, random_bytes(torch.Size([100]), torch.device("cpu")))


def test_fast_dropout_drops_p_and_keeps_the_mean():
    torch.manual_seed(0)
    dropout = FastDropout(0.4)  # 102/256 = 0.398 after rounding
    for dtype, tolerance in ((torch.float32, 0.01), (torch.bfloat16, 0.015)):
        out = dropout(torch.ones(512, 512, dtype=dtype))
        assert out.dtype == dtype
        assert abs((out == 0).float().mean().item() - 102 / 256) < 0.005
        assert torch.allclose(out[out != 0].float(), torch.tensor(256 / 154), rtol=0.004)  # bf16 rounds 1/(1-p)
        assert abs(out.float().mean().item() - 1) < tolerance


def test_fast_dropout_passes_gradients_through_the_kept_units_only():
    torch.manual_seed(1)
    x = torch.ones(64, 32, requires_grad=True)
    out = FastDropout(0.5)(x)
    out.sum().backward()
    assert torch.equal(x.grad == 0, out == 0)
    assert torch.allclose(x.grad[out != 0], torch.tensor(2.0))


def test_fast_dropout_is_the_identity_in_eval_mode():
    x = torch.randn(16, 8)
    assert torch.equal(FastDropout(0.4).eval()(x), x)


def test_keras_batchnorm_converts_its_momentum_to_pytorch_s():
    """Keras keeps 0.8 of the running average per step; PyTorch's momentum is the new value's share."""
    from gankit.models.layers import keras_batchnorm

    bn = keras_batchnorm(8)
    assert (bn.momentum, bn.eps) == (pytest.approx(0.2), 1e-3)


def test_one_hot_labels_give_each_attribute_its_own_block():
    from gankit.models.layers import one_hot_labels

    assert one_hot_labels(torch.tensor([[1, 2]]), (3, 4)).tolist() == [[0, 1, 0, 0, 0, 1, 0]]


def test_the_seed_discriminator_drops_out_after_every_hidden_layer_but_the_first():
    from gankit.models.layers import mlp_discriminator_body

    kinds = [type(m).__name__ for m in mlp_discriminator_body(4, (8, 8, 8), 0.3)]
    assert kinds == ["Linear", "LeakyReLU", "Linear", "LeakyReLU", "FastDropout", "Linear", "LeakyReLU", "FastDropout",
                     "Linear"]


def test_dcgan_convolutions_use_the_paper_s_4x4_kernels():
    from gankit.data.base import DataInfo
    from gankit.models import get_family

    family = get_family("dcgan")
    model = family(family.Config(g_width=8, d_width=8), DataInfo((3, 32, 32)))
    convs = [m for m in model.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d))]
    assert convs and all(m.kernel_size == (4, 4) for m in convs)


def test_fast_dropout_drops_exactly_the_bytes_below_its_threshold(monkeypatch):
    """p is rounded to a multiple of 1/256: with every byte value once, p=0.5 keeps exactly 128, each x2."""
    from gankit.models import layers

    monkeypatch.setattr(layers, "random_bytes", lambda shape, device: torch.arange(256, dtype=torch.uint8).view(shape))
    out = FastDropout(0.5).train()(torch.ones(1, 256))
    assert (out == 2.0).sum() == 128 and (out == 0).sum() == 128
    assert torch.equal(out[0, :128], torch.zeros(128))  # the bytes 0-127 are the dropped ones
