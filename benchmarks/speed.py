"""Training speed: gankit's loop against a plain PyTorch loop of the same networks.

For each model and batch size: images/s of gankit (its default precision and settings), of
the plain loop (plain.py), their ratio (the medians of 3 alternating runs of each, every run
in a fresh process), and the matrix-product bound: the time of the step's matrix products
alone, run back to back in the precision gankit uses. Every family is measured: the MLP and
convolutional ones at batch 64 and 256, super-resolution (srresnet, srgan) at the paper's 16,
srgan with a VGG19 of random weights (the same work as ImageNet's). Prints a table and writes
benchmarks/results/speed.json, keeping the rows of models and batch sizes it did not measure.

    python benchmarks/speed.py [--models gan cgan] [--batches 64 256] [--seconds 10] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from plain import (CONV_FAMILIES, PLAIN_MODELS, SR_FAMILIES, in_fresh_process, plain_loop,  # noqa: E402
                   plain_sr_loop, random_vgg_features)

from gankit.config import DataConfig, RunConfig  # noqa: E402
from gankit.data import load_dataset  # noqa: E402
from gankit.models import get_family  # noqa: E402
from gankit.models.base import GANConfig  # noqa: E402
from gankit.train import Trainer  # noqa: E402
from gankit.train.runtime import cpu_description, resolve_precision  # noqa: E402

RESULTS = Path(__file__).parent / "results"


def gankit_images_per_s(model: str, batch: int, seconds: float, spec: str) -> tuple[float, str]:
    """Steady-state images/s of the real loop (logging, EMA and checks included); run in a fresh
    process, as the plain loop is: runs of earlier models in one process slowed later ones."""
    family = get_family(model)
    cfg = RunConfig(model, family.default_config(spec))
    for key, value in family.default_train(spec).items():  # srgan's: no EMA
        setattr(cfg.train, key, value)
    cfg.train.minutes = 0  # the step count sized below is the budget
    data = family.load_data(spec, cfg.data, cfg.model_cfg)
    if isinstance(cfg.model_cfg, GANConfig):
        # The same work as the plain loop, which does not augment (gan's default augmentation is
        # adaptive and stays off for most of a run anyway: models/augment.py).
        cfg.model_cfg.augment = ""
    if model == "infogan":  # nor does it ask Q to read the codes off moved fakes (an extra pass through D)
        cfg.model_cfg.q_augment = 0.0
    t = cfg.train
    # The first log interval is warm-up; a super-resolution step takes about a second, not milliseconds.
    probe_steps, t.log_every = (4, 2) if model in SR_FAMILIES else (50, 25)
    t.batch_size, t.progress = batch, False
    t.sample_every = t.checkpoint_every = 10**9
    with tempfile.TemporaryDirectory() as tmp:
        if model == "srgan":
            cfg.model_cfg.vgg_weights = str(write_random_vgg(Path(tmp)))
        # size the run from a short probe so it lasts about `seconds`
        t.steps = probe_steps
        probe = Trainer(cfg, Path(tmp) / "probe", data=data)
        start = time.perf_counter()
        probe.run()
        per_step = (time.perf_counter() - start) / probe_steps
        t.steps = t.log_every + max(probe_steps, int(seconds / per_step) // t.log_every * t.log_every)
        trainer = Trainer(cfg, Path(tmp) / "run", data=data)
        trainer.run()
        records = [json.loads(line) for line in (Path(tmp) / "run/metrics.jsonl").read_text().splitlines()]
    first, last = records[0], records[-1]
    rate = batch * t.d_steps * (last["step"] - first["step"]) / (last["time"] - first["time"])
    return rate, str(trainer.dtype).replace("torch.", "")


def write_random_vgg(folder: Path) -> Path:
    """A VGG19 weights file of random values, in the layout of torchvision's: srgan's perceptual
    loss costs the same with any weights."""
    path = folder / "vgg19-random.pth"
    torch.save({f"features.{k}": v for k, v in random_vgg_features().state_dict().items()}, path)
    return path


def plain_images_per_s(model: str, batch: int, seconds: float, spec: str) -> float:
    """The plain loop's images/s; run in a fresh process (``in_fresh_process``)."""
    if model in SR_FAMILIES:
        family = get_family(model)
        data = family.load_data(spec, DataConfig(), family.default_config(spec))
        plain_sr_loop(model, data.samples, batch, 1.0, data.info)  # warm-up
        _, _, steps, trained = plain_sr_loop(model, data.samples, batch, seconds, data.info)
        return steps * batch / trained
    data = load_dataset(spec)
    labels = data.labels if model in CONV_FAMILIES else data.labels[:, 0]
    plain_loop(model, data.samples, labels, batch, 2.0, info=data.info)  # warm-up
    _, steps, trained = plain_loop(model, data.samples, labels, batch, seconds, info=data.info)
    return steps * batch / trained


def matmul_bound(model: str, batch: int, dtype: torch.dtype, repeats: int = 50, rounds: int = 3) -> float | None:
    """Seconds per step of the step's matrix products alone (forward, input and weight grads);
    None for the convolutional families (super-resolution included), whose work is mostly convolutions."""
    if model not in PLAIN_MODELS:
        return None
    family = get_family(model)
    m = family(family.default_config(family.default_data), load_dataset(family.default_data).info)
    shapes = []  # (rows, in, out, weight_grad) per product of one step
    for net, rows, passes in ((m.generator, batch, ("fwd", "din", "dw")),
                              (m.discriminator, 2 * batch, ("fwd", "din", "dw")),
                              (m.discriminator, batch, ("fwd", "din"))):
        for layer in net.modules():
            if isinstance(layer, torch.nn.Linear):
                shapes += [(rows, layer.in_features, layer.out_features, p) for p in passes]
    tensors = []
    for rows, fan_in, fan_out, kind in shapes:
        if kind == "fwd":
            a, b = torch.randn(rows, fan_in, dtype=dtype), torch.randn(fan_in, fan_out, dtype=dtype)
        elif kind == "din":
            a, b = torch.randn(rows, fan_out, dtype=dtype), torch.randn(fan_out, fan_in, dtype=dtype)
        else:
            a, b = torch.randn(fan_out, rows, dtype=dtype), torch.randn(rows, fan_in, dtype=dtype)
        tensors.append((a, b))
    for a, b in tensors:
        a @ b
    best = float("inf")
    for _ in range(rounds):  # the fastest round: other work on a shared machine only slows rounds down
        start = time.perf_counter()
        for _ in range(repeats):
            for a, b in tensors:
                a @ b
        best = min(best, (time.perf_counter() - start) / repeats)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["gan", "cgan", *CONV_FAMILIES, *SR_FAMILIES])
    parser.add_argument("--batches", nargs="+", type=int,
                        help="batch sizes (default 64 and 256; 16, the paper's, for srresnet and srgan)")
    parser.add_argument("--seconds", type=float, default=10.0, help="measured seconds per loop, setting and repeat")
    parser.add_argument("--repeats", type=int, default=3, help="alternating runs of each loop; the median counts")
    args = parser.parse_args()
    rows = []
    for model in args.models:
        spec = get_family(model).default_data
        for batch in args.batches or ((16,) if model in SR_FAMILIES else (64, 256)):
            # Alternated and repeated: on a shared VM a single pair can differ by 20% either way.
            ours_runs, plain_runs = [], []
            for _ in range(args.repeats):
                ours, precision = in_fresh_process(gankit_images_per_s, model, batch, args.seconds, spec)
                ours_runs.append(ours)
                plain_runs.append(in_fresh_process(plain_images_per_s, model, batch, args.seconds, spec))
            ours, plain = statistics.median(ours_runs), statistics.median(plain_runs)
            dtype = resolve_precision("auto", torch.device("cpu"))
            bound = matmul_bound(model, batch, dtype)
            step = batch / ours
            rows.append({"model": model, "data": spec, "batch": batch, "device": "cpu", "precision": precision,
                         "gankit_images_per_s": round(ours), "plain_images_per_s": round(plain),
                         "ratio": round(ours / plain, 2), "step_ms": round(step * 1e3, 2),
                         "gankit_runs": [round(x) for x in ours_runs], "plain_runs": [round(x) for x in plain_runs]})
            r = rows[-1]
            line = (f"{model:7s} {batch:4d} {precision:8s} gankit {r['gankit_images_per_s']:7d} img/s  "
                    f"plain {r['plain_images_per_s']:6d} img/s  x{r['ratio']:.2f}  step {r['step_ms']:.2f} ms")
            if bound is not None:
                r.update(matmul_ms=round(bound * 1e3, 2), step_over_matmul=round(step / bound, 2))
                line += f" = {r['step_over_matmul']:.2f} x matmul {r['matmul_ms']:.2f} ms"
            print(line, flush=True)
    machine = {"cpu": cpu_description(), "threads": torch.get_num_threads(),
               "torch": torch.__version__, "python": platform.python_version()}
    RESULTS.mkdir(exist_ok=True)
    saved = RESULTS / "speed.json"
    measured = {(r["model"], r["batch"]) for r in rows}
    kept = [r for r in json.loads(saved.read_text())["rows"] if (r["model"], r["batch"]) not in measured] \
        if saved.exists() else []  # rows of models and batches not measured this time stay
    saved.write_text(json.dumps({"machine": machine, "rows": kept + rows}, indent=2) + "\n")
    print(f"wrote {RESULTS / 'speed.json'}")


if __name__ == "__main__":
    main()
