"""The optimizer every family trains with: Adam, fused into one kernel per parameter group.

On a CPU the optimizer is a large share of a small model's step. The fused kernel is about 5x
cheaper than the default per-parameter loop; what is left around it is Python, which ``LeanAdam``
trims (below). Both give the same numbers, bit for bit (tests/test_optim.py).
"""

from __future__ import annotations

from typing import Any

import torch


class LeanAdam(torch.optim.Adam):
    """``torch.optim.Adam(fused=True)`` whose step calls the fused kernel directly.

    The library's step spends about 0.08 ms a call on a CPU before the kernel runs (grouping
    tensors by device and dtype, checking each parameter's options, profiler hooks): 3% of the MLP
    GAN's batch-64 step, which makes two calls. Here the lists are read off the state and the kernel
    called with the group's settings. Whatever this path does not cover (a closure, a parameter
    without a gradient or without state yet, as in the first step) takes the library's step.
    """

    def __init__(self, params: Any, lr: float, betas: tuple[float, float]):
        super().__init__(params, lr=lr, betas=betas, fused=True)
        # torch._fused_adam_ is the kernel torch.optim itself calls; if a later PyTorch changes how
        # it is called, the library's step takes over for good (see step).
        self.lean = hasattr(torch, "_fused_adam_")

    @torch.no_grad()
    def step(self, closure: Any = None) -> Any:
        groups = self._lean_groups() if self.lean and closure is None else None
        if groups is None:
            return super().step(closure)
        for group, (params, grads, exp_avgs, exp_avg_sqs, steps) in zip(self.param_groups, groups):
            torch._foreach_add_(steps, 1)
            beta1, beta2 = group["betas"]
            try:
                torch._fused_adam_(params, grads, exp_avgs, exp_avg_sqs, [], steps, lr=group["lr"], beta1=beta1,
                                   beta2=beta2, weight_decay=group["weight_decay"], eps=group["eps"],
                                   amsgrad=False, maximize=False)
            except TypeError:  # the kernel's arguments changed: nothing was updated but the step counts
                torch._foreach_sub_(steps, 1)
                self.lean = False
                return super().step()
        return None

    def _lean_groups(self) -> list[tuple[list[torch.Tensor], ...]] | None:
        """Per group: its parameters, their gradients, both moments and the step counts; None when
        a parameter has no gradient or no state (the library's step then skips or creates it)."""
        out = []
        for group in self.param_groups:
            params = group["params"]
            grads = [p.grad for p in params]
            states = [self.state.get(p) for p in params]
            if any(g is None for g in grads) or any(not s for s in states):
                return None
            out.append((params, grads, [s["exp_avg"] for s in states], [s["exp_avg_sq"] for s in states],
                        [s["step"] for s in states]))
        return out


def make_optimizer(params: Any, lr: float, cfg: Any, device: torch.device) -> torch.optim.Adam:
    betas = (cfg.beta1, cfg.beta2)
    try:
        return LeanAdam(params, lr, betas)
    except (RuntimeError, TypeError):  # older PyTorch without the fused CPU kernel
        return torch.optim.Adam(params, lr=lr, betas=betas, foreach=device.type == "cuda")


def in_parameter_layouts(opt: torch.optim.Optimizer) -> None:
    """Give each loaded optimizer state tensor its parameter's memory layout. A checkpoint holds
    them contiguous, and ``load_state_dict`` keeps that, but the conv families keep weights
    channels_last: the fused CPU Adam then pairs each weight with another's moments (silently),
    and CUDA's refuses tensors of different strides."""
    for group in opt.param_groups:
        for p in group["params"]:
            state = opt.state.get(p, {})
            for key, value in state.items():
                if torch.is_tensor(value) and value.shape == p.shape and value.stride() != p.stride():
                    state[key] = torch.empty_like(p).copy_(value)
