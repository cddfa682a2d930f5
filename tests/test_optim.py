"""LeanAdam: the fused Adam called without the library's Python around it, giving the same numbers."""

import copy

import pytest
import torch
from torch import nn

import gankit.train.optim as optim
from gankit.train.optim import LeanAdam, make_optimizer


DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])  # the GPU's kernel too, where there is one


def two_layer_net(device: str = "cpu") -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(5, 7), nn.LeakyReLU(0.2), nn.Linear(7, 3)).to(device)


def groups(net: nn.Module) -> list[dict]:
    # two groups with their own learning rates, as cgan's embedding multipliers make
    return [{"params": list(net[0].parameters())}, {"params": list(net[2].parameters()), "lr": 3e-3}]


def train(net: nn.Module, opt: torch.optim.Optimizer, steps: int, seed: int = 1, skip_grad=None) -> None:
    g = torch.Generator().manual_seed(seed)
    device = next(net.parameters()).device
    for i in range(steps):
        opt.zero_grad(set_to_none=True)
        net(torch.randn(16, 5, generator=g).to(device)).square().mean().backward()
        if skip_grad is not None and i == 1:
            skip_grad.grad = None  # a parameter this step did not reach: Adam leaves it alone
        opt.param_groups[0]["lr"] = 1e-3 * (1 + i)  # the loop's schedule changes lr every step
        opt.step()


def assert_same(net_a, opt_a, net_b, opt_b) -> None:
    for a, b in zip(net_a.parameters(), net_b.parameters()):
        assert torch.equal(a, b)
    state_a, state_b = opt_a.state_dict()["state"], opt_b.state_dict()["state"]
    assert state_a.keys() == state_b.keys() and len(state_a) == 4
    for key in state_a:
        for name in ("step", "exp_avg", "exp_avg_sq"):
            assert torch.equal(state_a[key][name], state_b[key][name]), (key, name)


def stock_and_lean(device: str = "cpu"):
    stock_net, lean_net = two_layer_net(device), two_layer_net(device)
    stock = torch.optim.Adam(groups(stock_net), lr=1e-3, betas=(0.5, 0.999), fused=True)
    lean = LeanAdam(groups(lean_net), 1e-3, (0.5, 0.999))
    return stock_net, stock, lean_net, lean


@pytest.mark.parametrize("device", DEVICES)
def test_lean_adam_matches_the_fused_adam_bit_for_bit(monkeypatch, device):
    stock_net, stock, lean_net, lean = stock_and_lean(device)
    train(stock_net, stock, 6)
    library_steps = []
    library_step = torch.optim.Adam.step
    monkeypatch.setattr(torch.optim.Adam, "step", lambda self, *a: library_steps.append(1) or library_step(self, *a))
    train(lean_net, lean, 6)
    assert library_steps == [1]  # the first step creates the state; the other five take the lean path
    assert_same(stock_net, stock, lean_net, lean)
    assert lean_net[0].weight.abs().sum() != two_layer_net(device)[0].weight.abs().sum()  # it did train


def test_a_parameter_without_a_gradient_takes_the_library_step():
    stock_net, stock, lean_net, lean = stock_and_lean()
    train(stock_net, stock, 4, skip_grad=stock_net[2].bias)
    train(lean_net, lean, 4, skip_grad=lean_net[2].bias)
    assert_same(stock_net, stock, lean_net, lean)
    assert lean.state[lean_net[2].bias]["step"].item() == 3  # skipped once


def test_lean_adam_resumes_from_its_state_dict():
    stock_net, stock, lean_net, lean = stock_and_lean()
    train(stock_net, stock, 3)
    train(lean_net, lean, 3)
    saved_net, saved_opt = copy.deepcopy(lean_net.state_dict()), copy.deepcopy(lean.state_dict())
    resumed_net = two_layer_net()
    resumed_net.load_state_dict(saved_net)
    resumed = LeanAdam(groups(resumed_net), 1e-3, (0.5, 0.999))
    resumed.load_state_dict(saved_opt)
    train(stock_net, stock, 3, seed=2)
    train(resumed_net, resumed, 3, seed=2)  # the loaded moments, not fresh ones, are the ones updated
    assert_same(stock_net, stock, resumed_net, resumed)


def test_a_changed_kernel_hands_over_to_the_library_step(monkeypatch):
    _, _, lean_net, lean = stock_and_lean()
    train(lean_net, lean, 2)
    real_kernel, calls = torch._fused_adam_, []

    def changed_kernel(*args, **kwargs):  # refuses the lean call; the library's own calls pass
        calls.append(1)
        if len(calls) == 1:
            raise TypeError("_fused_adam_() got an unexpected keyword argument 'beta1'")
        return real_kernel(*args, **kwargs)

    monkeypatch.setattr(torch, "_fused_adam_", changed_kernel)
    train(lean_net, lean, 2, seed=3)  # the step counts are not advanced twice
    assert not lean.lean and len(calls) == 1 + 2 * 2  # one refusal, then the library's step: 2 groups x 2 steps
    fresh_net = two_layer_net()
    fresh = torch.optim.Adam(groups(fresh_net), lr=1e-3, betas=(0.5, 0.999), fused=True)
    train(fresh_net, fresh, 2)
    train(fresh_net, fresh, 2, seed=3)
    assert_same(fresh_net, fresh, lean_net, lean)


def test_make_optimizer_falls_back_without_the_fused_cpu_kernel(monkeypatch):
    class Train:
        beta1, beta2 = 0.5, 0.999

    def no_fused_kernel(self, *args, **kwargs):
        raise RuntimeError("`fused=True` requires all the params to be floating point Tensors of supported devices")

    assert isinstance(make_optimizer(two_layer_net().parameters(), 2e-4, Train, torch.device("cpu")), LeanAdam)
    monkeypatch.setattr(optim.LeanAdam, "__init__", no_fused_kernel)
    opt = make_optimizer(two_layer_net().parameters(), 2e-4, Train, torch.device("cpu"))
    assert type(opt) is torch.optim.Adam and not opt.defaults["fused"] and not opt.defaults["foreach"]
    assert opt.defaults["lr"] == 2e-4 and opt.defaults["betas"] == (0.5, 0.999)


@pytest.mark.parametrize("closure", [False, True])
def test_a_closure_takes_the_library_step(closure):
    net = two_layer_net()
    opt = LeanAdam(net.parameters(), 1e-3, (0.5, 0.999))
    x = torch.randn(4, 5)

    def loss():
        opt.zero_grad()
        value = net(x).square().mean()
        value.backward()
        return value

    loss()
    opt.step()  # the state exists from here on
    loss()
    result = opt.step(loss if closure else None)
    assert (result is not None) == closure  # the closure ran: the library's step
