"""Training speed: gankit's loop against a plain PyTorch loop of the same networks.

For each model and batch size: images/s of gankit (its default precision and settings), of
the plain loop (plain.py), their ratio (the medians of 3 alternating runs of each, every run
in a fresh process), and the matrix-product bound: the time of the step's matrix products
alone (those it computes: ``step_products``), run back to back in the precision gankit uses,
in a fresh process after each pair of runs, the fastest counting. Every family is measured: the MLP and
convolutional ones at batch 64 and 256, super-resolution (srresnet, srgan) at the paper's 16,
srgan with a VGG19 of random weights (the same work as ImageNet's). Prints a table and writes
benchmarks/results/speed.json (or ``--out``), keeping the rows of models and batch sizes it did
not measure; each row names the CPU and the time that measured it, since kept rows may come from
another machine.

On a GPU (``--device cuda``) it also reports the GPU's mean utilisation during each loop (from
nvidia-smi, polled every 0.2 s), measures gankit with ``--compile`` when asked, and writes
speed_cuda.json with the GPU's name.

    python benchmarks/speed.py [--models gan cgan] [--batches 64 256] [--seconds 10] [--repeats 3] [--out F]
    python benchmarks/speed.py --device cuda [--compile]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
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


def gankit_images_per_s(model: str, batch: int, seconds: float, spec: str, device: str = "cpu",
                        compile_networks: bool = False) -> tuple[float, str]:
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
    t.batch_size, t.progress, t.device, t.compile = batch, False, device, compile_networks
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


def plain_images_per_s(model: str, batch: int, seconds: float, spec: str, device: str = "cpu") -> float:
    """The plain loop's images/s; run in a fresh process (``in_fresh_process``)."""
    if model in SR_FAMILIES:
        family = get_family(model)
        data = family.load_data(spec, DataConfig(), family.default_config(spec))
        plain_sr_loop(model, data.samples, batch, 1.0, data.info, device)  # warm-up
        _, _, steps, trained = plain_sr_loop(model, data.samples, batch, seconds, data.info, device)
        return steps * batch / trained
    data = load_dataset(spec)
    labels = data.labels if model in CONV_FAMILIES else data.labels[:, 0]
    plain_loop(model, data.samples, labels, batch, 2.0, info=data.info, device=device)  # warm-up
    _, steps, trained = plain_loop(model, data.samples, labels, batch, seconds, info=data.info, device=device)
    return steps * batch / trained


class GpuUtilisation:
    """The GPU's mean utilisation (percent) while the block runs, polled from nvidia-smi every
    ``interval`` seconds in a thread; ``mean`` is None where nvidia-smi cannot be run, or when not
    ``enabled`` (a CPU measurement, which the polling processes would slow)."""

    def __init__(self, interval: float = 0.2, enabled: bool = True):
        self.interval, self.samples, self.mean, self.enabled = interval, [], None, enabled
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def _poll(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                out = subprocess.run(["nvidia-smi", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits"],
                                     capture_output=True, text=True, timeout=5).stdout.split()
                self.samples.append(float(out[0]))
            except (OSError, subprocess.SubprocessError, ValueError, IndexError):
                return  # no nvidia-smi (or no GPU): no figure, rather than a wrong one

    def __enter__(self) -> "GpuUtilisation":
        if self.enabled:
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self.enabled:
            self._thread.join()
        # the start-up (imports, data, a short sizing run) idles the GPU: its first fifth is left out
        kept = self.samples[len(self.samples) // 5:]
        self.mean = round(statistics.mean(kept), 1) if kept else None


def step_products(model: str, batch: int) -> list[tuple[int, int, int, str]]:
    """The matrix products of one step of an MLP model, as (rows, in, out, kind): each layer's
    forward ("fwd"), input gradient ("din") and weight gradient ("dw"), in G's pass, D's pass
    over reals and fakes, and D's pass in G's update (no weight gradients there).

    A first layer takes an input gradient only where something trainable comes before it (cgan's
    label embeddings) or, in G's update, to reach G through D: D's update sees data and detached
    fakes, and G's first layer sees the noise."""
    family = get_family(model)
    m = family(family.default_config(family.default_data), load_dataset(family.default_data).info)
    G, D = m.generator, m.discriminator
    products = []
    for net, rows, kinds, first_din in ((G, batch, ("fwd", "din", "dw"), trained_before(G)),
                                        (D, 2 * batch, ("fwd", "din", "dw"), trained_before(D)),
                                        (D, batch, ("fwd", "din"), True)):
        linears = [layer for layer in net.modules() if isinstance(layer, torch.nn.Linear)]
        for i, layer in enumerate(linears):
            products += [(rows, layer.in_features, layer.out_features, kind) for kind in kinds
                         if kind != "din" or i > 0 or first_din]
    return products


def matmul_bound(model: str, batch: int, dtype: torch.dtype, device: str = "cpu", repeats: int = 50,
                 rounds: int = 3) -> float | None:
    """Seconds per step of the step's matrix products alone (``step_products``), run back to
    back, the fastest of ``rounds``; None for the convolutional families (super-resolution
    included), whose work is mostly convolutions."""
    if model not in PLAIN_MODELS:
        return None
    tensors = []
    for rows, fan_in, fan_out, kind in step_products(model, batch):
        a_shape, b_shape = {"fwd": ((rows, fan_in), (fan_in, fan_out)), "din": ((rows, fan_out), (fan_out, fan_in)),
                            "dw": ((fan_out, rows), (rows, fan_in))}[kind]
        tensors.append((torch.randn(a_shape, dtype=dtype, device=device),
                        torch.randn(b_shape, dtype=dtype, device=device)))
    wait = torch.cuda.synchronize if torch.device(device).type == "cuda" else (lambda: None)
    for a, b in tensors:
        a @ b
    best = float("inf")
    for _ in range(rounds):  # the fastest round: other work on a shared machine only slows rounds down
        wait()
        start = time.perf_counter()
        for _ in range(repeats):
            for a, b in tensors:
                a @ b
        wait()
        best = min(best, (time.perf_counter() - start) / repeats)
    return best


def trained_before(net: torch.nn.Module) -> bool:
    """Whether ``net`` trains weights before its first layer (a conditioning with parameters)."""
    condition = getattr(net, "condition", None)
    return condition is not None and any(p.requires_grad for p in condition.parameters())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["gan", "cgan", *CONV_FAMILIES, *SR_FAMILIES])
    parser.add_argument("--batches", nargs="+", type=int,
                        help="batch sizes (default 64 and 256; 16, the paper's, for srresnet and srgan)")
    parser.add_argument("--seconds", type=float, default=10.0, help="measured seconds per loop, setting and repeat")
    parser.add_argument("--repeats", type=int, default=3, help="alternating runs of each loop; the median counts")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--compile", action="store_true", help="gankit with torch.compile (train.compile)")
    parser.add_argument("--out", type=Path, help="the JSON file (default results/speed.json, speed_cuda.json on a GPU)")
    args = parser.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: PyTorch sees no CUDA GPU here")
    rows = [measure(model, batch, args) for model in args.models
            for batch in args.batches or ((16,) if model in SR_FAMILIES else (64, 256))]
    machine = {"cpu": cpu_description(), "threads": torch.get_num_threads(),
               "torch": torch.__version__, "python": platform.python_version()}
    if args.device == "cuda":
        machine["gpu"] = torch.cuda.get_device_name()
    saved = args.out or RESULTS / ("speed.json" if args.device == "cpu" else "speed_cuda.json")
    save_rows(saved, rows, machine)
    print(f"wrote {saved}")


def save_rows(saved: Path, rows: list[dict], machine: dict) -> None:
    """Write ``rows`` to ``saved``, keeping its rows of models and batches not measured this time
    (with the CPU and time each names); ``machine`` describes the latest run."""
    measured = {(r["model"], r["batch"], r.get("compiled", False)) for r in rows}
    kept = [r for r in json.loads(saved.read_text())["rows"]
            if (r["model"], r["batch"], r.get("compiled", False)) not in measured] if saved.exists() else []
    saved.parent.mkdir(parents=True, exist_ok=True)
    saved.write_text(json.dumps({"latest_run": machine, "rows": kept + rows}, indent=2) + "\n")


def measure(model: str, batch: int, args: argparse.Namespace) -> dict:
    """One row of the table: both loops, alternated and repeated (on a shared VM a single pair can
    differ by 20% either way), and the matrix-product bound."""
    spec = get_family(model).default_data
    ours_runs, plain_runs, ours_util, plain_util, bounds = [], [], [], [], []
    on_gpu = args.device == "cuda"
    dtype = resolve_precision("auto", torch.device(args.device))
    for _ in range(args.repeats):
        with GpuUtilisation(enabled=on_gpu) as util:
            ours, precision = in_fresh_process(gankit_images_per_s, model, batch, args.seconds, spec, args.device,
                                               args.compile)
        ours_runs.append(ours)
        ours_util.append(util.mean)
        with GpuUtilisation(enabled=on_gpu) as util:
            plain_runs.append(in_fresh_process(plain_images_per_s, model, batch, args.seconds, spec, args.device))
        plain_util.append(util.mean)
        if model in PLAIN_MODELS:  # in a fresh process too, beside the loops: the fastest of these counts
            bounds.append(in_fresh_process(matmul_bound, model, batch, dtype, args.device))
    ours, plain = statistics.median(ours_runs), statistics.median(plain_runs)
    bound = min(bounds) if bounds else None
    step = batch / ours
    row = {"model": model, "data": spec, "batch": batch, "device": args.device, "precision": precision,
           "cpu": cpu_description(), "measured": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
           "gankit_images_per_s": round(ours), "plain_images_per_s": round(plain),
           "ratio": round(ours / plain, 2), "step_ms": round(step * 1e3, 2),
           "gankit_runs": [round(x) for x in ours_runs], "plain_runs": [round(x) for x in plain_runs]}
    line = (f"{model:7s} {batch:4d} {args.device:4s} {precision:8s} gankit {row['gankit_images_per_s']:7d} img/s  "
            f"plain {row['plain_images_per_s']:6d} img/s  x{row['ratio']:.2f}  step {row['step_ms']:.2f} ms")
    if args.compile:
        row["compiled"] = True
    if bound is not None:
        row.update(matmul_ms=round(bound * 1e3, 2), step_over_matmul=round(step / bound, 2))
        line += f" = {row['step_over_matmul']:.2f} x matmul {row['matmul_ms']:.2f} ms"
    if on_gpu and None not in ours_util + plain_util:
        row.update(gankit_gpu_util=statistics.median(ours_util), plain_gpu_util=statistics.median(plain_util))
        line += f"  GPU busy {row['gankit_gpu_util']:.0f}% / {row['plain_gpu_util']:.0f}%"
    print(line, flush=True)
    return row


if __name__ == "__main__":
    main()
