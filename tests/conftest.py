"""Shared fixtures: tiny networks so real training runs take a second or two."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
import torch

from gankit.cli import main
from gankit.models.base import StepContext

@pytest.fixture(autouse=True)
def quiet_machine(request, monkeypatch):
    """Training in tests acts as on a machine nobody else uses: the notes about busy cores depend on
    what runs beside the suite, and would add a line to the stderr that tests count. Tests of those
    notes are marked ``load_notes``."""
    if request.node.get_closest_marker("load_notes") is None:
        from gankit.train import loop

        monkeypatch.setattr(loop, "busy_cores", lambda: None)
        monkeypatch.setattr(loop.SlowdownWatch, "check", lambda self, record: None)


TINY = ["--set", "model.g_hidden=32,64", "--set", "model.d_hidden=64,32", "--batch-size", "32",
        "--no-progress", "--set", "train.log_every=1"]


def train_cli(model: str, out: Path, *extra: str) -> int:
    return main(["train", model, "--out", str(out), *TINY, *extra])


def step_context(model=None, seed: int = 0, lr: float = 1e-3, opts: tuple | None = None) -> StepContext:
    """A CPU StepContext for calling a family's train step directly: Adam on the parameter sets the
    loop gives G's and D's optimizers (``opts`` instead when given; none without a model), and a
    noise stream seeded with ``seed``."""
    if opts is None and model is not None:
        params = (model.generator_parameters(), model.discriminator_parameters())
        opts = tuple(torch.optim.Adam(p, lr) if p else None for p in params)
    return StepContext(*(opts or (None, None)), torch.Generator().manual_seed(seed), torch.device("cpu"))


def free_port() -> int:
    """A TCP port nothing listens on now (for a test server or a torchrun rendezvous)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def read_metrics(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture(scope="session")
def cgan_run(tmp_path_factory) -> Path:
    """A finished 40-step cgan run, shared by the tests that only read it."""
    out = tmp_path_factory.mktemp("runs") / "cgan"
    assert train_cli("cgan", out, "--steps", "40", "--set", "train.sample_every=20",
                     "--set", "train.checkpoint_every=20") == 0
    return out


def backend_failing_backward(at: int = 2) -> tuple[object, list]:
    """A torch.compile backend whose ``at``-th backward compilation fails, as a missing C++ compiler
    would make it (PyTorch compiles backward passes when they first run); with the list of backward
    graphs it was given."""
    from functorch.compile import make_boxed_func
    from torch._dynamo.backends.common import aot_autograd

    graphs: list = []

    def backward(graph, example_inputs):
        graphs.append(graph)
        if len(graphs) == at:
            raise RuntimeError("C++ compile error: no compiler here")
        return make_boxed_func(graph)

    return aot_autograd(fw_compiler=lambda graph, inputs: make_boxed_func(graph), bw_compiler=backward), graphs
