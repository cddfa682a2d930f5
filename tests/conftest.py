"""Shared fixtures: tiny networks so real training runs take a second or two."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from gankit.cli import main

TINY = ["--set", "model.g_hidden=32,64", "--set", "model.d_hidden=64,32", "--batch-size", "32",
        "--no-progress", "--set", "train.log_every=1"]


def train_cli(model: str, out: Path, *extra: str) -> int:
    return main(["train", model, "--out", str(out), *TINY, *extra])


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
